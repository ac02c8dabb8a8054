//! Header values of the CloudEvents NATS and HTTP bindings: percent-encoding of attribute values
//! (space, `"`, `%` and everything outside printable ASCII, upper-case hex) and the decoding a
//! receiver must do: unquote an RFC 7230 double-quoted string, then one round of
//! percent-decoding whose bytes must be valid UTF-8 (an overlong `%C0%A0` is refused).

use std::fmt::Write;

/// Why a header value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadEncoding {
    #[error("'%' at byte {0} is not followed by two hex digits")]
    BadEscape(usize),
    #[error("percent-decoded bytes are not valid UTF-8")]
    NotUtf8,
    #[error("unterminated double-quoted string")]
    Unterminated,
}

/// Encodes one attribute value for a header (CloudEvents NATS/HTTP binding, section 3.1.3.2).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'"' && b != b'%' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Decodes one header value: double-quoted string first, then one round of percent-decoding.
pub fn decode(raw: &str) -> Result<String, BadEncoding> {
    let unquoted = unquote(raw.trim())?;
    let bytes = unquoted.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
            match (hex(i + 1), hex(i + 2)) {
                (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                _ => return Err(BadEncoding::BadEscape(i)),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| BadEncoding::NotUtf8)
}

/// The content of an RFC 7230 quoted-string (backslash escapes resolved), or `raw` itself when
/// it is not quoted.
fn unquote(raw: &str) -> Result<std::borrow::Cow<'_, str>, BadEncoding> {
    let Some(inner) = raw.strip_prefix('"') else {
        return Ok(raw.into());
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().ok_or(BadEncoding::Unterminated)?),
            '"' if chars.as_str().is_empty() => return Ok(out.into()),
            '"' => return Err(BadEncoding::Unterminated),
            c => out.push(c),
        }
    }
    Err(BadEncoding::Unterminated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_encodes_and_decodes() {
        let value = "Euro \u{20AC} \u{1F600}";
        assert_eq!(encode(value), "Euro%20%E2%82%AC%20%F0%9F%98%80");
        assert_eq!(decode("Euro%20%E2%82%AC%20%F0%9F%98%80").unwrap(), value);
    }

    #[test]
    fn space_quote_and_percent_are_encoded_and_the_rest_of_ascii_is_not() {
        assert_eq!(encode(r#"a "b" 100%"#), "a%20%22b%22%20100%25");
        assert_eq!(encode("/a/b?c=d&e"), "/a/b?c=d&e");
    }

    #[test]
    fn decoding_accepts_lower_case_and_needless_escapes() {
        assert_eq!(decode("%e2%82%ac").unwrap(), "\u{20AC}");
        assert_eq!(decode("%61bc").unwrap(), "abc");
        assert_eq!(decode("plain").unwrap(), "plain");
    }

    #[test]
    fn decoding_does_exactly_one_round() {
        assert_eq!(decode("100%2525").unwrap(), "100%25");
    }

    #[test]
    fn bad_escapes_and_invalid_utf8_are_refused() {
        assert_eq!(decode("50%"), Err(BadEncoding::BadEscape(2)));
        assert_eq!(decode("%G1"), Err(BadEncoding::BadEscape(0)));
        assert_eq!(decode("%C0%A0"), Err(BadEncoding::NotUtf8));
        assert_eq!(decode("%FF"), Err(BadEncoding::NotUtf8));
    }

    #[test]
    fn double_quoted_values_are_unescaped_before_percent_decoding() {
        assert_eq!(decode(r#""a b \"c\" %41""#).unwrap(), r#"a b "c" A"#);
        assert_eq!(decode(r#""open"#), Err(BadEncoding::Unterminated));
        assert_eq!(decode(r#""a"b""#), Err(BadEncoding::Unterminated));
    }

    #[test]
    fn every_encoded_value_decodes_to_itself() {
        for value in ["", "x", " ", "%", "\"", "\u{7f}\u{80}\u{9f}", "tab\there", "日本語"] {
            assert_eq!(decode(&encode(value)).unwrap(), value, "{value:?}");
        }
    }
}
