//! Standard Webhooks signatures: signing with one or more secrets, and verification for
//! receivers written in Rust. Pure functions, no I/O.
//!
//! Signed content is `"<webhook-id>.<webhook-timestamp>.<body>"`, signed with HMAC-SHA256 keyed
//! by the base64-decoded part of a `whsec_` secret; the header value is `v1,<base64 mac>`, one
//! space-separated entry per live secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Prefix of every secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Default timestamp tolerance of [`verify`]: five minutes either way.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// A webhook signing secret; its `Debug` never prints the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    key: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Why signing or verification failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("secret must be \"whsec_\" followed by base64 of 24 to 64 bytes")]
    BadSecret,
    #[error("timestamp {0:?} is not Unix seconds")]
    BadTimestamp(String),
    #[error("timestamp is outside the tolerance of {tolerance} seconds")]
    TimestampOutOfTolerance { tolerance: u64 },
    #[error("no signature matches")]
    NoMatch,
}

impl Secret {
    /// Parses `whsec_<base64>`. A bare base64 string without the prefix is accepted too, as the
    /// official libraries do.
    pub fn parse(s: &str) -> Result<Secret, SignatureError> {
        let b64 = s.strip_prefix(SECRET_PREFIX).unwrap_or(s);
        let key = B64.decode(b64.trim()).map_err(|_| SignatureError::BadSecret)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SignatureError::BadSecret);
        }
        Ok(Secret { key })
    }

    /// A new random secret of 32 bytes.
    pub fn generate() -> Secret {
        let mut key = vec![0u8; 32];
        rand::fill(&mut key[..]);
        Secret { key }
    }

    /// The `whsec_...` text form (shown once on creation, stored in Redis).
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", B64.encode(&self.key))
    }

    /// `v1,<base64 HMAC-SHA256(key, "<id>.<ts>.<body>")>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", B64.encode(self.mac(id, timestamp, body)))
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

/// The `webhook-signature` header value for all live secrets (space-separated).
pub fn signature_header(secrets: &[Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|s| s.sign(id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// Verifies a delivery as a receiver would: `signatures` is the `webhook-signature` header (any
/// number of space-separated `v1,<mac>` entries; one match suffices), `timestamp` the
/// `webhook-timestamp` header, which must lie within `tolerance_secs` of `now` (Unix seconds).
pub fn verify(
    secret: &Secret,
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
    let expected = secret.mac(id, ts, body);
    let matched = signatures
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| B64.decode(b64).ok())
        .any(|got| subtle::ConstantTimeEq::ct_eq(got.as_slice(), expected.as_slice()).into());
    if matched { Ok(()) } else { Err(SignatureError::NoMatch) }
}

/// Hex HMAC-SHA256 keyed by the secret's text (`whsec_...` string bytes, as the seed-compatible
/// receivers use it), over `body`.
pub fn seed_hex_signature(secret: &Secret, body: &[u8]) -> String {
    let text = secret.expose();
    let mut mac = HmacSha256::new_from_slice(text.as_bytes()).expect("hmac accepts any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Canonical JSON: keys sorted, no whitespace, non-ASCII escaped as `\uXXXX` — the bytes
/// Python's `json.dumps(v, sort_keys=True, separators=(",", ":"))` produces for the same value
/// (integers and strings exactly; floats may differ in exponent notation).
pub fn canonical_json(value: &serde_json::Value) -> Vec<u8> {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out.into_bytes()
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_ascii_string(k, out);
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_ascii_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn write_ascii_string(s: &str, out: &mut String) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7f => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{:04x}", unit);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
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
    fn canonical_json_sorts_keys_compacts_and_escapes_like_python() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"b": [1, {"d": "é\n", "c": true}], "a": null, "€": "\"q\""}"#)
                .unwrap();
        // python3 -c 'import json; print(json.dumps({"b":[1,{"d":"é\n","c":True}],"a":None,"€":"\"q\""}, sort_keys=True, separators=(",",":")))'
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            r#"{"a":null,"b":[1,{"c":true,"d":"\u00e9\n"}],"\u20ac":"\"q\""}"#
        );
        let astral: serde_json::Value = serde_json::json!("😀");
        assert_eq!(String::from_utf8(canonical_json(&astral)).unwrap(), r#""\ud83d\ude00""#);
    }

    #[test]
    fn seed_signature_is_hex_hmac_keyed_by_the_secret_text() {
        let s = Secret::parse(SECRET).unwrap();
        // python3: hmac.new(b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", b"{}", hashlib.sha256).hexdigest()
        assert_eq!(
            seed_hex_signature(&s, b"{}"),
            "6cbbcdf2c8016ca85b50543b19e8e121ef16137967bdfa3ce660972922bafaeb"
        );
    }

    #[test]
    fn secrets_of_wrong_length_or_alphabet_are_rejected() {
        assert_eq!(Secret::parse("whsec_c2hvcnQ="), Err(SignatureError::BadSecret));
        assert_eq!(Secret::parse("whsec_!!!"), Err(SignatureError::BadSecret));
    }
}
