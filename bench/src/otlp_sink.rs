//! `--otlp-sink`: an OTLP/HTTP collector stand-in inside the benchmark process, so a run can
//! measure hookline with span export on. It reads and counts every export request (and its
//! bytes) and answers 200 with an empty body; nothing is decoded, so its cost stays small.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// Export requests and body bytes received.
#[derive(Debug, Default)]
pub struct Received {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
}

/// Starts the sink on a free loopback port; returns its base URL and its counters.
pub async fn start() -> anyhow::Result<(String, Arc<Received>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let received = Arc::<Received>::default();
    let counters = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counters = counters.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| take(counters.clone(), req));
                let _ = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((url, received))
}

async fn take(
    counters: Arc<Received>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    counters.requests.fetch_add(1, Ordering::Relaxed);
    counters.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    Ok(Response::new(Full::new(Bytes::new())))
}
