//! The CloudEvents webhook validation request (cloudevents/spec `http-webhook.md` 4.1-4.2):
//! `OPTIONS <url>` with `WebHook-Request-Origin` and, when the subscription is rate limited,
//! `WebHook-Request-Rate` (requests per minute), and the judgement of the answer. Sent with the
//! deliveries' HTTP client, so the egress policy (SSRF protection) applies to it exactly as to
//! a delivery; redirects are not followed.
//!
//! Allowed only on a 2xx carrying `WebHook-Allowed-Origin` equal to the origin (DNS names
//! compare case-insensitively) or `*`. `WebHook-Allowed-Rate` is `*` (no limit) or a positive
//! integer per minute; anything else refuses. The asynchronous `WebHook-Request-Callback` is not
//! offered: an endpoint must answer the request itself.

use std::time::Duration;

use super::http_post::REQUEST_ORIGIN;
use crate::store::subscriptions::Verdict;

const REQUEST_RATE: &str = "webhook-request-rate";
const ALLOWED_ORIGIN: &str = "webhook-allowed-origin";
const ALLOWED_RATE: &str = "webhook-allowed-rate";

/// Longest header value quoted in a refusal.
const QUOTE_MAX: usize = 64;

/// Sends the validation request to `url` as `origin`, asking for `rate` requests per minute
/// (`None`: no rate asked), waiting at most `timeout`, and judges the answer.
#[tracing::instrument(level = "debug", skip_all, fields(url = %url))]
pub async fn validate(
    http: &reqwest::Client,
    url: &str,
    origin: &str,
    rate: Option<u32>,
    timeout: Duration,
) -> Verdict {
    let mut request =
        http.request(reqwest::Method::OPTIONS, url).timeout(timeout).header(REQUEST_ORIGIN, origin);
    if let Some(rate) = rate {
        request = request.header(REQUEST_RATE, rate.to_string());
    }
    match request.send().await {
        Ok(response) => {
            let header = |name| response.headers().get(name).map(|v| v.to_str().unwrap_or("?"));
            judge(response.status().as_u16(), header(ALLOWED_ORIGIN), header(ALLOWED_RATE), origin)
        }
        Err(e) => Verdict::Refused(match crate::egress::blocked_detail(&e) {
            Some(detail) => detail,
            None => format!(
                "no answer to the validation request ({})",
                super::http_post::describe(&e).1
            ),
        }),
    }
}

/// The verdict on an answer: its status and its `WebHook-Allowed-Origin` and
/// `WebHook-Allowed-Rate` headers.
pub fn judge(
    status: u16,
    allowed_origin: Option<&str>,
    allowed_rate: Option<&str>,
    origin: &str,
) -> Verdict {
    if !(200..300).contains(&status) {
        return Verdict::Refused(format!("the endpoint answered http status {status} to OPTIONS"));
    }
    let Some(allowed) = allowed_origin.map(str::trim) else {
        return Verdict::Refused(format!(
            "the endpoint answered {status} without a WebHook-Allowed-Origin header"
        ));
    };
    if allowed != "*" && !allowed.eq_ignore_ascii_case(origin) {
        return Verdict::Refused(format!(
            "WebHook-Allowed-Origin is {:?}, not {origin:?} or \"*\"",
            quote(allowed)
        ));
    }
    match allowed_rate.map(parse_allowed_rate) {
        None => Verdict::Allowed { rate: None },
        Some(Ok(rate)) => Verdict::Allowed { rate },
        Some(Err(why)) => Verdict::Refused(why),
    }
}

/// A `WebHook-Allowed-Rate` value: `*` is no limit (`None`), else requests per minute, a
/// positive integer.
pub fn parse_allowed_rate(value: &str) -> Result<Option<u32>, String> {
    let value = value.trim();
    if value == "*" {
        return Ok(None);
    }
    if value.is_empty()
        || !value.bytes().all(|b| b.is_ascii_digit())
        || value.bytes().all(|b| b == b'0')
    {
        return Err(invalid_rate(value));
    }
    // More than u32::MAX per minute: as good as unlimited.
    Ok(value.parse::<u32>().ok())
}

fn invalid_rate(value: &str) -> String {
    format!(
        "WebHook-Allowed-Rate is {:?}: neither \"*\" nor a positive number per minute",
        quote(value)
    )
}

/// At most [`QUOTE_MAX`] characters of a header value.
fn quote(value: &str) -> String {
    value.chars().take(QUOTE_MAX).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "hooks.example.com";

    fn refused(v: Verdict) -> String {
        match v {
            Verdict::Refused(why) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_2xx_with_the_origin_or_a_star_allows() {
        assert_eq!(judge(200, Some(ORIGIN), None, ORIGIN), Verdict::Allowed { rate: None });
        assert_eq!(judge(204, Some(" * "), None, ORIGIN), Verdict::Allowed { rate: None });
        assert_eq!(
            judge(200, Some("Hooks.Example.COM"), Some("120"), ORIGIN),
            Verdict::Allowed { rate: Some(120) },
            "DNS names compare case-insensitively"
        );
        assert_eq!(judge(200, Some("*"), Some("*"), ORIGIN), Verdict::Allowed { rate: None });
    }

    #[test]
    fn anything_else_refuses_and_says_why() {
        assert!(refused(judge(405, None, None, ORIGIN)).contains("405"));
        assert!(refused(judge(500, Some(ORIGIN), None, ORIGIN)).contains("500"), "status first");
        assert!(refused(judge(200, None, None, ORIGIN)).contains("WebHook-Allowed-Origin"));
        let other = refused(judge(200, Some("evil.example.org"), None, ORIGIN));
        assert!(other.contains("evil.example.org") && other.contains(ORIGIN), "{other}");
        let long = "x".repeat(500);
        assert!(refused(judge(200, Some(&long), None, ORIGIN)).len() < 200, "quotes are capped");
        assert!(refused(judge(200, Some(ORIGIN), Some("fast"), ORIGIN)).contains("fast"));
    }

    #[test]
    fn allowed_rates_are_a_star_or_a_positive_number_per_minute() {
        assert_eq!(parse_allowed_rate("100"), Ok(Some(100)));
        assert_eq!(parse_allowed_rate(" 1 "), Ok(Some(1)));
        assert_eq!(parse_allowed_rate("*"), Ok(None));
        assert_eq!(parse_allowed_rate("99999999999"), Ok(None), "beyond u32: no limit");
        for bad in ["0", "000", "-5", "1.5", "", "12/min", "1e3"] {
            assert!(parse_allowed_rate(bad).is_err(), "{bad:?} accepted");
        }
    }
}
