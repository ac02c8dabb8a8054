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

use crate::signing::{Secret, verify};

#[derive(Debug, clap::Args)]
pub struct ReceiveArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// Secret(s) to verify with; repeatable (one per subscription pointed here).
    #[arg(long = "secret", required = true)]
    pub secrets: Vec<String>,
}

struct State {
    secrets: Vec<Secret>,
    seen: Mutex<HashSet<String>>,
}

/// Serves until interrupted.
pub async fn run(args: ReceiveArgs) -> anyhow::Result<()> {
    let secrets = args
        .secrets
        .iter()
        .map(|s| {
            Secret::parse(s).map_err(|e| crate::commands::InputError(format!("--secret: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let state = Arc::new(State { secrets, seen: Mutex::new(HashSet::new()) });
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let state = state.clone();
        async move { receive(&state, uri, headers, body) }
    });
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("receiver listening on http://{}", listener.local_addr()?);
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
    let status = if path.starts_with("/fail") {
        StatusCode::INTERNAL_SERVER_ERROR
    } else if path.starts_with("/flaky")
        && state.seen.lock().map(|mut s| s.insert(id.clone())).unwrap_or(false)
    {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    println!("[{path}] signature verified: {id} {kind} -> answering {}", status.as_u16());
    status
}
