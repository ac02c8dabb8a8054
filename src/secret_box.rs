//! Signing secrets sealed at rest: an AEAD over each `whsec_` secret of a subscription, keyed
//! by the `[secrets]` keys, so what the subscription store holds is of no use without
//! hookline's configuration. Pure: no I/O; the store's codec calls it for the `secrets` field.
//!
//! Stored form of one secret: `enc:v1:<key id>:<base64 of nonce || ciphertext || tag>`. Each
//! seal takes a fresh random 24-byte nonce from the operating system's CSPRNG; the associated
//! data is the format version, the key id and the subscription id, so a sealed value copied to
//! another subscription, or relabelled with another key id, does not open. A value without the
//! `enc:` prefix is a plain `whsec_` secret (what hookline stored before, and stores with no
//! encryption key): it is read as it is, and sealed at its next write.
//!
//! XChaCha20-Poly1305 rather than AES-GCM(-SIV): its 192-bit nonces make random nonces safe for
//! any number of seals under one key (96-bit nonces are not past about 2^32), it is
//! constant-time in software on every CPU (no AES-NI needed), and it is the RustCrypto family
//! of the HMAC and SHA-2 crates [`crate::signing`] already uses.
//!
//! Invariants: neither key material nor a secret appears in `Debug` or in an error message;
//! errors name at most a key id. Keys can rotate: one current key seals, every configured key
//! (current and older) opens.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::signing::Secret;

/// Prefix of every sealed value; a stored secret without it is plain.
pub const SEALED_PREFIX: &str = "enc:";
/// Prefix of the one sealed format this version writes.
const V1: &str = "enc:v1:";
/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// Longest key id.
pub const MAX_KEY_ID_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// A key from the configuration, parsed from `<key id>:<base64 of 32 bytes>`.
#[derive(Clone)]
pub struct KeySpec {
    id: String,
    material: [u8; KEY_LEN],
}

impl std::fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySpec").field("id", &self.id).field("material", &"[redacted]").finish()
    }
}

/// A key that cannot be used; never echoes the key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("expected \"<key id>:<base64 of {KEY_LEN} bytes>\"")]
    MissingId,
    #[error(
        "the key id (before the first `:`) must be 1 to {MAX_KEY_ID_LEN} letters, digits, `_` \
         or `-`"
    )]
    BadId,
    #[error("key {0}: the key is not valid base64")]
    BadBase64(String),
    #[error("key {id}: the key is {len} bytes, not {KEY_LEN}")]
    BadLength { id: String, len: usize },
    #[error("key id {0} is given twice with different keys")]
    Duplicate(String),
}

/// Whether `id` is a valid key id: 1 to 32 ASCII letters, digits, `_` or `-`.
pub fn key_id_ok(id: &str) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

impl KeySpec {
    /// Parses `<key id>:<base64 of 32 bytes>` (standard base64, padding optional).
    pub fn parse(text: &str) -> Result<KeySpec, KeyError> {
        let (id, b64) = text.trim().split_once(':').ok_or(KeyError::MissingId)?;
        if !key_id_ok(id) {
            return Err(KeyError::BadId);
        }
        let bytes = B64
            .decode(b64.trim())
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64.trim()))
            .map_err(|_| KeyError::BadBase64(id.to_string()))?;
        let material: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::BadLength { id: id.to_string(), len: bytes.len() })?;
        Ok(KeySpec { id: id.to_string(), material })
    }

    /// The key's id, as written in sealed values.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// A sealed secret that cannot be read; names the key id, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error(
        "sealed with key id {0:?}, which neither secrets.encryption_key nor \
         secrets.decryption_keys holds"
    )]
    UnknownKey(String),
    #[error(
        "sealed with key id {0:?} but does not open: altered, or copied from another subscription"
    )]
    DoesNotOpen(String),
    #[error("sealed value of an unknown format (expected enc:v1:<key id>:<base64>)")]
    Malformed,
    #[error("not a valid whsec_ secret")]
    NotASecret,
}

struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
}

/// Seals and opens signing secrets with the configured keys (none: secrets stay plain).
#[derive(Default)]
pub struct SecretBox {
    /// Every key that opens, the current one first when there is one.
    keys: Vec<Key>,
    /// Whether `keys[0]` is the current key, the one that seals.
    sealing: bool,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox")
            .field("current_key_id", &self.current_key_id())
            .field("key_ids", &self.keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

impl SecretBox {
    /// No keys: secrets are stored plain, and a sealed one does not open.
    pub fn plain() -> SecretBox {
        SecretBox::default()
    }

    /// `current` seals (none: new writes are plain); it and every key of `older` open. A key
    /// id given twice is refused unless both name the same key.
    pub fn new(current: Option<KeySpec>, older: Vec<KeySpec>) -> Result<SecretBox, KeyError> {
        let sealing = current.is_some();
        let mut specs: Vec<KeySpec> = Vec::new();
        for spec in current.into_iter().chain(older) {
            match specs.iter().find(|s| s.id == spec.id) {
                Some(seen) if seen.material == spec.material => continue,
                Some(_) => return Err(KeyError::Duplicate(spec.id)),
                None => specs.push(spec),
            }
        }
        let keys = specs
            .into_iter()
            .map(|s| Key { cipher: XChaCha20Poly1305::new(&s.material.into()), id: s.id })
            .collect();
        Ok(SecretBox { keys, sealing })
    }

    /// The id of the key that seals new writes, if any.
    pub fn current_key_id(&self) -> Option<&str> {
        self.current().map(|k| k.id.as_str())
    }

    fn current(&self) -> Option<&Key> {
        self.keys.first().filter(|_| self.sealing)
    }

    /// The stored form of `secret` for `subscription_id`: sealed with the current key, or the
    /// plain `whsec_` text when there is none.
    pub fn seal(&self, subscription_id: &str, secret: &Secret) -> String {
        self.seal_text(subscription_id, &secret.expose())
    }

    /// [`Self::seal`] of any text held like a secret (a subscription's custom headers); plain
    /// text must not start with [`SEALED_PREFIX`].
    pub fn seal_text(&self, subscription_id: &str, plain: &str) -> String {
        let Some(key) = self.current() else {
            return plain.to_string();
        };
        let nonce = XNonce::generate();
        let aad = associated_data(&key.id, subscription_id);
        let sealed = key
            .cipher
            .encrypt(&nonce, Payload { msg: plain.as_bytes(), aad: &aad })
            // Fails only for messages over 256 GiB; what is sealed here is a few KiB at most.
            .expect("XChaCha20-Poly1305 seals a short message");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{V1}{}:{}", key.id, B64.encode(bytes))
    }

    /// The secret a stored value holds: a plain `whsec_` one as it is, a sealed one opened with
    /// the key its id names, checked against `subscription_id`.
    pub fn open(&self, subscription_id: &str, stored: &str) -> Result<Secret, OpenError> {
        let text = self.open_text(subscription_id, stored)?;
        Secret::parse(&text).map_err(|_| OpenError::NotASecret)
    }

    /// The text a value stored by [`Self::seal_text`] holds.
    pub fn open_text(&self, subscription_id: &str, stored: &str) -> Result<String, OpenError> {
        if !stored.starts_with(SEALED_PREFIX) {
            return Ok(stored.to_string());
        }
        let (key_id, b64) = stored
            .strip_prefix(V1)
            .and_then(|rest| rest.split_once(':'))
            .filter(|(id, _)| key_id_ok(id))
            .ok_or(OpenError::Malformed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or_else(|| OpenError::UnknownKey(key_id.to_string()))?;
        let bytes = B64.decode(b64).map_err(|_| OpenError::Malformed)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| OpenError::Malformed)?;
        let aad = associated_data(key_id, subscription_id);
        let plain = key
            .cipher
            .decrypt(&nonce, Payload { msg: sealed, aad: &aad })
            .map_err(|_| OpenError::DoesNotOpen(key_id.to_string()))?;
        String::from_utf8(plain).map_err(|_| OpenError::NotASecret)
    }

    /// Whether `stored` is already in the form [`Self::seal`] writes now (sealed with the
    /// current key, or plain when there is none): a value that is not needs a reseal.
    pub fn is_current(&self, stored: &str) -> bool {
        sealed_key_id(stored) == self.current_key_id()
    }
}

/// The key id a stored value was sealed with; `None` for a plain value.
pub fn sealed_key_id(stored: &str) -> Option<&str> {
    if !stored.starts_with(SEALED_PREFIX) {
        return None;
    }
    // A sealed value of another format counts as sealed with no known key ("").
    Some(stored.strip_prefix(V1).and_then(|rest| rest.split_once(':')).map_or("", |(id, _)| id))
}

/// What a sealed value is bound to besides its key: the format, the key id and the
/// subscription (NUL-separated: none of them can contain a NUL).
fn associated_data(key_id: &str, subscription_id: &str) -> Vec<u8> {
    format!("hookline-secret\0v1\0{key_id}\0{subscription_id}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    fn boxed(current: Option<&str>, older: &[&str]) -> SecretBox {
        SecretBox::new(
            current.map(|k| KeySpec::parse(k).unwrap()),
            older.iter().map(|k| KeySpec::parse(k).unwrap()).collect(),
        )
        .unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_for_its_subscription_and_hides_the_secret() {
        let sb = boxed(Some(K1), &[]);
        let secret = Secret::generate();
        let stored = sb.seal("sub_a", &secret);
        assert!(stored.starts_with("enc:v1:k1:"), "{stored}");
        let text = secret.expose();
        assert!(!stored.contains(&text) && !stored.contains(&text["whsec_".len()..]));
        assert_eq!(sb.open("sub_a", &stored), Ok(secret.clone()));
        assert_ne!(sb.seal("sub_a", &secret), stored, "a fresh nonce every seal");
        assert!(sb.is_current(&stored));
    }

    #[test]
    fn a_sealed_secret_copied_to_another_subscription_does_not_open() {
        let sb = boxed(Some(K1), &[]);
        let stored = sb.seal("sub_a", &Secret::generate());
        assert_eq!(sb.open("sub_b", &stored), Err(OpenError::DoesNotOpen("k1".into())));
    }

    #[test]
    fn a_relabelled_or_altered_value_does_not_open() {
        let sb = boxed(Some(K1), &[K2]);
        let stored = sb.seal("sub_a", &Secret::generate());
        let relabelled = stored.replacen("enc:v1:k1:", "enc:v1:k2:", 1);
        assert_eq!(sb.open("sub_a", &relabelled), Err(OpenError::DoesNotOpen("k2".into())));
        let b64 = stored.strip_prefix("enc:v1:k1:").unwrap();
        let mut bytes = B64.decode(b64).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = format!("enc:v1:k1:{}", B64.encode(&bytes));
        assert_eq!(sb.open("sub_a", &tampered), Err(OpenError::DoesNotOpen("k1".into())));
        for bad in ["enc:v1:k1:!!", "enc:v1:k1:AAAA", "enc:v2:k1:AAAA", "enc:v1:k 1:AAAA"] {
            assert_eq!(sb.open("sub_a", bad), Err(OpenError::Malformed), "{bad}");
        }
    }

    #[test]
    fn an_unknown_key_id_is_an_error_naming_it() {
        let stored = boxed(Some(K2), &[]).seal("sub_a", &Secret::generate());
        let err = boxed(Some(K1), &[]).open("sub_a", &stored).unwrap_err();
        assert_eq!(err, OpenError::UnknownKey("k2".into()));
        assert!(err.to_string().contains("\"k2\""), "{err}");
        assert!(SecretBox::plain().open("sub_a", &stored).is_err(), "no key opens nothing sealed");
    }

    #[test]
    fn a_plain_secret_is_read_with_or_without_keys_and_needs_a_reseal_only_with_one() {
        let secret = Secret::generate();
        let plain = SecretBox::plain().seal("sub_a", &secret);
        assert_eq!(plain, secret.expose());
        assert_eq!(SecretBox::plain().open("sub_a", &plain), Ok(secret.clone()));
        assert_eq!(boxed(Some(K1), &[]).open("sub_a", &plain), Ok(secret));
        assert!(SecretBox::plain().is_current(&plain));
        assert!(!boxed(Some(K1), &[]).is_current(&plain));
        assert_eq!(SecretBox::plain().open("sub_a", "whsec_nope"), Err(OpenError::NotASecret));
    }

    #[test]
    fn an_older_key_opens_and_the_current_one_seals() {
        let secret = Secret::generate();
        let old = boxed(Some(K1), &[]).seal("sub_a", &secret);
        let rotated = boxed(Some(K2), &[K1]);
        assert_eq!(rotated.open("sub_a", &old), Ok(secret.clone()));
        assert!(!rotated.is_current(&old));
        assert_eq!(sealed_key_id(&rotated.seal("sub_a", &secret)), Some("k2"));
        // Decryption keys alone: sealed values are read, new writes are plain (turning off).
        let off = boxed(None, &[K1]);
        assert_eq!(off.open("sub_a", &old), Ok(secret.clone()));
        assert_eq!(off.seal("sub_a", &secret), secret.expose());
        assert!(!off.is_current(&old));
    }

    #[test]
    fn keys_are_checked_without_echoing_their_material() {
        let material = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        assert_eq!(KeySpec::parse(material).unwrap_err(), KeyError::MissingId);
        assert_eq!(KeySpec::parse(&format!("k/1:{material}")).unwrap_err(), KeyError::BadId);
        assert_eq!(KeySpec::parse(&format!(":{material}")).unwrap_err(), KeyError::BadId);
        assert_eq!(KeySpec::parse("k1:not base64!").unwrap_err(), KeyError::BadBase64("k1".into()));
        assert_eq!(
            KeySpec::parse("k1:AAECAwQ=").unwrap_err(),
            KeyError::BadLength { id: "k1".into(), len: 5 }
        );
        let other = KeySpec::parse("k1:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=").unwrap();
        let err = SecretBox::new(Some(KeySpec::parse(K1).unwrap()), vec![other]).unwrap_err();
        assert_eq!(err, KeyError::Duplicate("k1".into()));
        assert!(
            boxed(Some(K1), &[K1, K2]).current_key_id() == Some("k1"),
            "same key twice is fine"
        );
        let unpadded = KeySpec::parse(K1.trim_end_matches('=')).unwrap();
        assert_eq!(unpadded.id(), "k1");
    }

    #[test]
    fn debug_shows_key_ids_never_key_material() {
        let sb = boxed(Some(K1), &[K2]);
        let spec = KeySpec::parse(K1).unwrap();
        let text = format!("{sb:?} {spec:?}");
        assert!(text.contains("k1") && text.contains("k2"), "{text}");
        for material in [K1, K2] {
            let b64 = material.split_once(':').unwrap().1;
            assert!(!text.contains(b64) && !text.contains(&b64[..8]), "{text}");
        }
        assert!(!text.contains("[0, 1, 2"), "{text}");
    }
}
