//! `hookline receive`: a development receiver that verifies Standard Webhooks signatures and
//! prints each delivery. The demo points subscriptions at it; it is also handy to try an
//! integration by hand.
//!
//! Paths choose the behaviour: `/fail...` always answers 500, `/flaky...` answers 500 to the
//! first attempt of each webhook id and 200 after, anything else 200. A signature that does not
//! verify with any `--secret` gets 401.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};

use crate::signing::{ReceiverKey, verify};

const RECEIVE_HELP: &str = "\
Paths choose the answer:
  /fail...   always 500 (deliveries retry, then go to the DLQ)
  /flaky...  500 to the first attempt of each webhook id, 200 after (one retry)
  anything else  200
A delivery whose signature verifies with none of the --secret values gets 401; the accepted
clock difference is fixed at 300 s. Point subscriptions at http://<listen>/<path> and pass each
one's whsec_ secret (printed once by `subscriptions create`), or an ed25519 one's whpk_ public key.

The receiver is on a loopback or private address, which SSRF protection refuses: both
`hookline serve` and `hookline subscriptions create` need egress.allow_cidrs to cover it. At
start-up the receiver prints the exact setting (e.g. HOOKLINE_EGRESS__ALLOW_CIDRS='[\"127.0.0.0/8\"]').";

#[derive(Debug, clap::Args)]
#[command(after_help = RECEIVE_HELP)]
pub struct ReceiveArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// Secret(s) to verify with; repeatable (one per subscription pointed here).
    #[arg(long = "secret", required = true)]
    pub secrets: Vec<String>,
}

struct State {
    secrets: Vec<ReceiverKey>,
    seen: Mutex<HashSet<String>>,
}

/// Serves until interrupted.
pub async fn run(args: ReceiveArgs) -> anyhow::Result<()> {
    let secrets = args
        .secrets
        .iter()
        .map(|s| ReceiverKey::parse(s).map_err(|e| super::InputError(format!("--secret: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let state = Arc::new(State { secrets, seen: Mutex::new(HashSet::new()) });
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let state = state.clone();
        async move { receive(&state, uri, headers, body) }
    });
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    println!("receiver listening on http://{addr}");
    println!(
        "deliveries to it need egress.allow_cidrs to cover it, for `serve` and `subscriptions create`: \
         HOOKLINE_EGRESS__ALLOW_CIDRS='[\"{}\"]'",
        allow_cidr(addr.ip())
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

fn receive(state: &State, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (id, ts, sig) = (h("webhook-id"), h("webhook-timestamp"), h("webhook-signature"));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let valid = state.secrets.iter().any(|s| verify(s, &id, &ts, &sig, &body, now, 300).is_ok());
    let path = uri.path();
    if !valid {
        println!("[{path}] REJECTED {id}: signature does not verify");
        return StatusCode::UNAUTHORIZED;
    }
    let kind = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_default();
    // `/flaky` fails the first attempt of each webhook id: the id is new to `seen`.
    let fails = path.starts_with("/fail")
        || (path.starts_with("/flaky")
            && state.seen.lock().map(|mut s| s.insert(id.clone())).unwrap_or(false));
    let status = if fails { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
    println!("[{path}] signature verified: {id} {kind} -> answering {}", status.as_u16());
    status
}

/// The `egress.allow_cidrs` entry that lets hookline deliver to a receiver bound to `ip` (an
/// unspecified bind address is reached over loopback).
pub fn allow_cidr(ip: std::net::IpAddr) -> String {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() || v4.is_unspecified() => "127.0.0.0/8".into(),
        IpAddr::V6(v6) if v6.is_loopback() || v6.is_unspecified() => "::1/128".into(),
        IpAddr::V4(v4) => format!("{v4}/32"),
        IpAddr::V6(v6) => format!("{v6}/128"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_cidr_covers_the_listen_address() {
        assert_eq!(allow_cidr("127.0.0.1".parse().unwrap()), "127.0.0.0/8");
        assert_eq!(allow_cidr("0.0.0.0".parse().unwrap()), "127.0.0.0/8");
        assert_eq!(allow_cidr("::1".parse().unwrap()), "::1/128");
        assert_eq!(allow_cidr("10.1.2.3".parse().unwrap()), "10.1.2.3/32");
    }
}
