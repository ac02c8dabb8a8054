//! Standard Webhooks signatures: signing with one or more keys, and verification for receivers
//! written in Rust. Pure functions, no I/O.
//!
//! Signed content is `"<webhook-id>.<webhook-timestamp>.<body>"`. Two schemes:
//! - `v1` (symmetric, the default): HMAC-SHA256 keyed by the base64-decoded part of a `whsec_`
//!   secret; header entry `v1,<base64 mac>`;
//! - `v1a` (asymmetric): an Ed25519 signature by the `whsk_` signing key (base64 of its 32-byte
//!   seed), which receivers verify with the `whpk_` public key (base64 of its 32 bytes); header
//!   entry `v1a,<base64 signature>`.
//!
//! The header holds one space-separated entry per live key (during a rotation, two). `seed`
//! holds the seed-compatible (non-Standard-Webhooks) HMACs and canonical JSON.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::Sha256;

mod seed;

pub use seed::{canonical_json, seed_hex_signature};

type HmacSha256 = Hmac<Sha256>;

/// Prefix of every HMAC secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Prefix of an Ed25519 signing key (hookline's side; never shown).
pub const SIGNING_KEY_PREFIX: &str = "whsk_";
/// Prefix of an Ed25519 public key (the receiver's side).
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";
/// Default timestamp tolerance of [`verify`]: five minutes either way.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// The kind of key a subscription signs with.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    /// `whsec_` secret, `v1` HMAC-SHA256 signatures.
    #[default]
    Hmac,
    /// `whsk_` / `whpk_` key pair, `v1a` Ed25519 signatures.
    Ed25519,
}

/// A webhook signing key: an HMAC secret or an Ed25519 signing key; its `Debug` never prints
/// the key.
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
    /// The Ed25519 key pair (derived once from the seed in `key`); `None` for HMAC.
    pair: Option<Arc<Ed25519KeyPair>>,
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.key == other.key && self.key_type() == other.key_type()
    }
}

impl Eq for Secret {}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// An Ed25519 public key (`whpk_...`): verifies `v1a` signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    bytes: [u8; 32],
}

/// Why signing or verification failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("secret must be \"whsec_\" followed by base64 of 24 to 64 bytes")]
    BadSecret,
    #[error("key must be \"whsk_\" or \"whpk_\" followed by base64 of 32 bytes")]
    BadKey,
    #[error("timestamp {0:?} is not Unix seconds")]
    BadTimestamp(String),
    #[error("timestamp is outside the tolerance of {tolerance} seconds")]
    TimestampOutOfTolerance { tolerance: u64 },
    #[error("no signature matches")]
    NoMatch,
}

/// The bytes a signature covers: `"<id>.<timestamp>.<body>"`.
fn signed_content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(id.len() + body.len() + 24);
    content.extend_from_slice(id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.to_string().as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

fn ed25519_seed(text: &str) -> Result<Vec<u8>, SignatureError> {
    let bytes = B64.decode(text.trim()).map_err(|_| SignatureError::BadKey)?;
    // 32 bytes is the seed; 64 is seed || public key, the form some libraries write.
    match bytes.len() {
        32 | 64 => Ok(bytes[..32].to_vec()),
        _ => Err(SignatureError::BadKey),
    }
}

impl Secret {
    /// Parses `whsec_<base64>` (HMAC) or `whsk_<base64>` (Ed25519). A bare base64 string without
    /// a prefix is an HMAC secret, as the official libraries accept.
    pub fn parse(s: &str) -> Result<Secret, SignatureError> {
        if let Some(b64) = s.strip_prefix(SIGNING_KEY_PREFIX) {
            return Secret::ed25519(ed25519_seed(b64)?);
        }
        let b64 = s.strip_prefix(SECRET_PREFIX).unwrap_or(s);
        let key = B64.decode(b64.trim()).map_err(|_| SignatureError::BadSecret)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SignatureError::BadSecret);
        }
        Ok(Secret { key, pair: None })
    }

    fn ed25519(seed: Vec<u8>) -> Result<Secret, SignatureError> {
        let pair =
            Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| SignatureError::BadKey)?;
        Ok(Secret { key: seed, pair: Some(Arc::new(pair)) })
    }

    /// A new random HMAC secret of 32 bytes.
    pub fn generate() -> Secret {
        let mut key = vec![0u8; 32];
        rand::fill(&mut key[..]);
        Secret { key, pair: None }
    }

    /// A new random key of `key_type`.
    pub fn generate_of(key_type: KeyType) -> Secret {
        match key_type {
            KeyType::Hmac => Secret::generate(),
            KeyType::Ed25519 => {
                let mut seed = vec![0u8; 32];
                rand::fill(&mut seed[..]);
                // Any 32 bytes are a valid Ed25519 seed.
                Secret::ed25519(seed).expect("a 32-byte seed is an ed25519 key")
            }
        }
    }

    /// Which scheme this key signs with.
    pub fn key_type(&self) -> KeyType {
        if self.pair.is_some() { KeyType::Ed25519 } else { KeyType::Hmac }
    }

    /// The public key of an Ed25519 signing key (`None` for HMAC).
    pub fn public_key(&self) -> Option<PublicKey> {
        let pair = self.pair.as_ref()?;
        let bytes = pair.public_key().as_ref().try_into().ok()?;
        Some(PublicKey { bytes })
    }

    /// The text form, `whsec_...` or `whsk_...` (the stored form; only an HMAC secret is shown).
    pub fn expose(&self) -> String {
        let prefix = match self.key_type() {
            KeyType::Hmac => SECRET_PREFIX,
            KeyType::Ed25519 => SIGNING_KEY_PREFIX,
        };
        format!("{prefix}{}", B64.encode(&self.key))
    }

    /// `v1,<base64 HMAC-SHA256(key, "<id>.<ts>.<body>")>` or `v1a,<base64 Ed25519 signature>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        match &self.pair {
            Some(pair) => {
                let signature = pair.sign(&signed_content(id, timestamp, body));
                format!("v1a,{}", B64.encode(signature.as_ref()))
            }
            None => format!("v1,{}", B64.encode(self.mac(id, timestamp, body))),
        }
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        // Keys of any length are valid for HMAC; new_from_slice cannot fail here.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("hmac accepts any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }
}

impl PublicKey {
    /// Parses `whpk_<base64 of 32 bytes>`.
    pub fn parse(s: &str) -> Result<PublicKey, SignatureError> {
        let b64 = s.strip_prefix(PUBLIC_KEY_PREFIX).ok_or(SignatureError::BadKey)?;
        let bytes = B64.decode(b64.trim()).map_err(|_| SignatureError::BadKey)?;
        let bytes = bytes.try_into().map_err(|_| SignatureError::BadKey)?;
        Ok(PublicKey { bytes })
    }

    /// The `whpk_...` text form (what the receiver is given).
    pub fn expose(&self) -> String {
        format!("{PUBLIC_KEY_PREFIX}{}", B64.encode(self.bytes))
    }

    fn verifies(&self, content: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.bytes).verify(content, signature).is_ok()
    }
}

/// A key a receiver verifies with: an HMAC secret (`v1` entries), an Ed25519 public key or
/// signing key (`v1a` entries).
pub trait VerifyKey {
    /// Whether one entry of the space-separated `signatures` is valid for this key.
    fn any_valid(&self, id: &str, timestamp: i64, signatures: &str, body: &[u8]) -> bool;
}

fn entries<'a>(signatures: &'a str, version: &'a str) -> impl Iterator<Item = Vec<u8>> + 'a {
    signatures
        .split_whitespace()
        .filter_map(move |entry| entry.strip_prefix(version)?.strip_prefix(','))
        .filter_map(|b64| B64.decode(b64).ok())
}

impl VerifyKey for Secret {
    fn any_valid(&self, id: &str, timestamp: i64, signatures: &str, body: &[u8]) -> bool {
        match self.public_key() {
            Some(public) => public.any_valid(id, timestamp, signatures, body),
            None => {
                let expected = self.mac(id, timestamp, body);
                entries(signatures, "v1").any(|got| {
                    subtle::ConstantTimeEq::ct_eq(got.as_slice(), expected.as_slice()).into()
                })
            }
        }
    }
}

impl VerifyKey for PublicKey {
    fn any_valid(&self, id: &str, timestamp: i64, signatures: &str, body: &[u8]) -> bool {
        let content = signed_content(id, timestamp, body);
        entries(signatures, "v1a").any(|sig| self.verifies(&content, &sig))
    }
}

/// A key given as text to a verifying receiver: `whsec_` (or bare base64), `whpk_` or `whsk_`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiverKey {
    Secret(Secret),
    Public(PublicKey),
}

impl ReceiverKey {
    /// Parses any of the three forms.
    pub fn parse(s: &str) -> Result<ReceiverKey, SignatureError> {
        if s.starts_with(PUBLIC_KEY_PREFIX) {
            PublicKey::parse(s).map(ReceiverKey::Public)
        } else {
            Secret::parse(s).map(ReceiverKey::Secret)
        }
    }
}

impl VerifyKey for ReceiverKey {
    fn any_valid(&self, id: &str, timestamp: i64, signatures: &str, body: &[u8]) -> bool {
        match self {
            ReceiverKey::Secret(s) => s.any_valid(id, timestamp, signatures, body),
            ReceiverKey::Public(p) => p.any_valid(id, timestamp, signatures, body),
        }
    }
}

/// The `webhook-signature` header value for all live keys (space-separated).
pub fn signature_header(secrets: &[Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|s| s.sign(id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// Verifies a delivery as a receiver would: `signatures` is the `webhook-signature` header (any
/// number of space-separated `v1,<mac>` / `v1a,<signature>` entries; one valid for `key`
/// suffices), `timestamp` the `webhook-timestamp` header, which must lie within
/// `tolerance_secs` of `now` (Unix seconds). `key` is a [`Secret`] (`whsec_`), a
/// [`PublicKey`] (`whpk_`) or a [`ReceiverKey`].
pub fn verify<K: VerifyKey + ?Sized>(
    key: &K,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp(timestamp.to_string()))?;
    if now.abs_diff(ts) > tolerance_secs {
        return Err(SignatureError::TimestampOutOfTolerance { tolerance: tolerance_secs });
    }
    if key.any_valid(id, ts, signatures, body) { Ok(()) } else { Err(SignatureError::NoMatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn standard_webhooks_test_vector_signs() {
        assert_eq!(Secret::parse(SECRET).unwrap().sign(ID, TS, BODY), SIG);
    }

    #[test]
    fn standard_webhooks_test_vector_verifies() {
        let s = Secret::parse(SECRET).unwrap();
        assert_eq!(verify(&s, ID, "1614265330", SIG, BODY, TS, 300), Ok(()));
    }

    #[test]
    fn any_of_several_signatures_may_match() {
        let s = Secret::parse(SECRET).unwrap();
        let other = Secret::generate();
        let header = signature_header(&[other, s.clone()], ID, TS, BODY);
        assert_eq!(header.split(' ').count(), 2);
        assert_eq!(verify(&s, ID, "1614265330", &header, BODY, TS, 300), Ok(()));
        assert_eq!(
            verify(&s, ID, "1614265330", "v2,abc v1,bad! v1,AAAA", BODY, TS, 300),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn tampered_body_or_id_does_not_verify() {
        let s = Secret::parse(SECRET).unwrap();
        assert_eq!(
            verify(&s, ID, "1614265330", SIG, b"{\"test\": 1}", TS, 300),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify(&s, "msg_other", "1614265330", SIG, BODY, TS, 300),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn timestamp_outside_tolerance_is_rejected_both_ways() {
        let s = Secret::parse(SECRET).unwrap();
        let late = verify(&s, ID, "1614265330", SIG, BODY, TS + 301, 300);
        assert_eq!(late, Err(SignatureError::TimestampOutOfTolerance { tolerance: 300 }));
        assert!(verify(&s, ID, "1614265330", SIG, BODY, TS - 301, 300).is_err());
        assert_eq!(verify(&s, ID, "1614265330", SIG, BODY, TS + 300, 300), Ok(()));
        assert!(matches!(
            verify(&s, ID, "soon", SIG, BODY, TS, 300),
            Err(SignatureError::BadTimestamp(_))
        ));
    }

    #[test]
    fn generated_secrets_round_trip_and_are_not_debug_printed() {
        let s = Secret::generate();
        let text = s.expose();
        assert!(text.starts_with("whsec_"));
        assert_eq!(Secret::parse(&text).unwrap(), s);
        assert!(!format!("{s:?}").contains(&text[6..]));
    }

    #[test]
    fn ed25519_keys_sign_v1a_that_their_public_key_verifies() {
        let key = Secret::generate_of(KeyType::Ed25519);
        assert_eq!(key.key_type(), KeyType::Ed25519);
        let text = key.expose();
        assert!(text.starts_with("whsk_") && !format!("{key:?}").contains(&text[5..]));
        assert_eq!(Secret::parse(&text).unwrap(), key, "the stored form parses back");
        let public = key.public_key().unwrap();
        let whpk = public.expose();
        assert!(whpk.starts_with("whpk_"));
        assert_eq!(PublicKey::parse(&whpk).unwrap(), public);
        let header = signature_header(std::slice::from_ref(&key), ID, TS, BODY);
        assert!(header.starts_with("v1a,"));
        assert_eq!(B64.decode(&header[4..]).unwrap().len(), 64);
        assert_eq!(verify(&public, ID, "1614265330", &header, BODY, TS, 300), Ok(()));
        assert_eq!(verify(&key, ID, "1614265330", &header, BODY, TS, 300), Ok(()));
        let receiver = ReceiverKey::parse(&whpk).unwrap();
        assert_eq!(verify(&receiver, ID, "1614265330", &header, BODY, TS, 300), Ok(()));
        let tampered = verify(&public, ID, "1614265330", &header, b"{}", TS, 300);
        assert_eq!(tampered, Err(SignatureError::NoMatch));
        let hmac = Secret::parse(SECRET).unwrap();
        assert_eq!(hmac.public_key(), None);
        assert_eq!(
            verify(&hmac, ID, "1614265330", &header, BODY, TS, 300),
            Err(SignatureError::NoMatch)
        );
        let other = Secret::generate_of(KeyType::Ed25519).public_key().unwrap();
        assert!(verify(&other, ID, "1614265330", &header, BODY, TS, 300).is_err());
    }

    #[test]
    fn a_rotation_header_carries_both_keys_and_either_verifies() {
        let (old, new) =
            (Secret::generate_of(KeyType::Ed25519), Secret::generate_of(KeyType::Ed25519));
        let header = signature_header(&[new.clone(), old.clone()], ID, TS, BODY);
        assert_eq!(header.split(' ').count(), 2);
        for key in [old, new] {
            let public = key.public_key().unwrap();
            assert_eq!(verify(&public, ID, "1614265330", &header, BODY, TS, 300), Ok(()));
        }
    }

    /// The per-delivery signing cost (BENCHMARKS.md, "Signing cost"): `cargo test --lib
    /// signing_cost -- --ignored --nocapture` (add `--release` for release numbers).
    #[test]
    #[ignore = "a measurement, not a check"]
    fn signing_cost() {
        let body = vec![b'x'; 256];
        let time = |what: &str, n: u32, f: &mut dyn FnMut()| {
            let start = std::time::Instant::now();
            for _ in 0..n {
                f();
            }
            let per = start.elapsed() / n;
            println!("{what}: {per:?} per call ({n} calls)");
        };
        let hmac = Secret::generate();
        let ed = Secret::generate_of(KeyType::Ed25519);
        let ed2 = Secret::generate_of(KeyType::Ed25519);
        let seed = ed.expose();
        let header = signature_header(std::slice::from_ref(&ed), ID, TS, &body);
        let public = ed.public_key().unwrap();
        time("v1 hmac sign, 256 B body", 20_000, &mut || {
            std::hint::black_box(hmac.sign(ID, TS, &body));
        });
        time("v1a ed25519 sign, 256 B body", 20_000, &mut || {
            std::hint::black_box(ed.sign(ID, TS, &body));
        });
        time("v1a header with two keys (rotation)", 10_000, &mut || {
            std::hint::black_box(signature_header(&[ed.clone(), ed2.clone()], ID, TS, &body));
        });
        time("whsk_ parse (key pair derived; once per cache fill)", 10_000, &mut || {
            std::hint::black_box(Secret::parse(&seed).unwrap());
        });
        time("v1a verify (receiver side)", 10_000, &mut || {
            std::hint::black_box(verify(&public, ID, "1614265330", &header, &body, TS, 300)).ok();
        });
    }

    #[test]
    fn malformed_public_and_signing_keys_are_rejected() {
        assert_eq!(PublicKey::parse("whpk_c2hvcnQ="), Err(SignatureError::BadKey));
        assert_eq!(
            PublicKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SignatureError::BadKey)
        );
        assert!(Secret::parse("whsk_c2hvcnQ=").is_err());
        assert!(ReceiverKey::parse("whpk_!!").is_err());
    }

    #[test]
    fn secrets_of_wrong_length_or_alphabet_are_rejected() {
        assert_eq!(Secret::parse("whsec_c2hvcnQ="), Err(SignatureError::BadSecret));
        assert_eq!(Secret::parse("whsec_!!!"), Err(SignatureError::BadSecret));
    }
}
