//! The seed-compatible signatures some receivers expect instead of Standard Webhooks: a hex
//! HMAC keyed by the secret's text, and the canonical JSON body such receivers re-serialise to.

use hmac::{KeyInit, Mac};

use super::{HmacSha256, Secret};

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
}
