//! The benchmark's webhook receiver: `hookline-bench receiver --port P`, run as its own process
//! so its CPU is accounted apart from hookline's.
//!
//! Plain hyper (HTTP/1.1 keep-alive, no routing framework). `POST /s/<name>` answers 204 and
//! records the delivery: the pair (`webhook-id`, path) for the unique count, the receive time
//! per path (first and last, for rates), and publish->receipt latency when the body carries
//! `"sent_ns":<unix nanos>` (the publisher stamps it just before publishing). `POST /hang/<name>`
//! never answers (an endpoint that accepts connections and then times out). The control
//! endpoints `GET /_bench/stats[?latency]` (JSON, see [`Stats`]), `POST /_bench/missing` (an
//! [`Expected`] in, its [`Loss`] out: which expected pairs never arrived) and `POST /_bench/reset`
//! belong to the orchestrator.
//!
//! Invariant: a 204 is sent only after the delivery is recorded, so "hookline got a 2xx" implies
//! "the receiver counted it"; the unique count is what "nothing lost" is checked against.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};

use crate::pairs::{Expected, Loss};

/// What `/_bench/stats` returns.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    /// POSTs answered with 204 (duplicates included).
    pub requests: u64,
    /// Distinct (webhook-id, path) pairs.
    pub unique: u64,
    /// Requests parked on a `/hang/` path.
    pub hanging: u64,
    /// Per path: distinct deliveries and first/last receive time (unix ns).
    pub paths: BTreeMap<String, PathStats>,
    /// Publish->receipt latency over every recorded request, microseconds.
    pub latency_us: Percentiles,
}

/// One path's deliveries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PathStats {
    pub unique: u64,
    pub first_ns: u64,
    pub last_ns: u64,
}

/// Percentiles of a sample (all zero when empty).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
}

impl Percentiles {
    /// Nearest-rank percentiles; sorts `sample` in place.
    pub fn of(sample: &mut [u64]) -> Percentiles {
        if sample.is_empty() {
            return Percentiles::default();
        }
        sample.sort_unstable();
        let at =
            |q: f64| sample[((sample.len() as f64 * q).ceil() as usize).clamp(1, sample.len()) - 1];
        Percentiles {
            count: sample.len() as u64,
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

impl Stats {
    /// Sum of unique deliveries and the first/last receipt over the paths `keep` selects.
    pub fn over(&self, keep: impl Fn(&str) -> bool) -> (u64, u64, u64) {
        let mut total = 0;
        let (mut first, mut last) = (u64::MAX, 0);
        for (path, p) in self.paths.iter().filter(|(path, _)| keep(path)) {
            let _ = path;
            total += p.unique;
            first = first.min(p.first_ns);
            last = last.max(p.last_ns);
        }
        (total, if total == 0 { 0 } else { first }, last)
    }
}

#[derive(Default)]
struct State {
    path_ids: HashMap<String, u32>,
    paths: Vec<(String, PathStats)>,
    seen: HashSet<(u32, Box<str>)>,
    requests: u64,
    hanging: u64,
    latencies_us: Vec<u64>,
}

type Shared = Arc<Mutex<State>>;

/// Serves until the process is killed.
pub async fn run(port: u16) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let state: Shared = Arc::default();
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(state.clone(), req));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

async fn handle(
    state: Shared,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/_bench/stats") => {
            let with_latency = req.uri().query().is_some_and(|q| q.contains("latency"));
            let json = serde_json::to_vec(&snapshot(&state, with_latency)).unwrap_or_default();
            Ok(reply(StatusCode::OK, json))
        }
        (&Method::POST, "/_bench/missing") => {
            let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
                return Ok(reply(StatusCode::BAD_REQUEST, "body unreadable"));
            };
            let Ok(expected) = serde_json::from_slice::<Expected>(&body) else {
                return Ok(reply(StatusCode::BAD_REQUEST, "body is not an Expected as json"));
            };
            let json = serde_json::to_vec(&loss(&state, &expected)).unwrap_or_default();
            Ok(reply(StatusCode::OK, json))
        }
        (&Method::POST, "/_bench/reset") => {
            // Requests parked on a hanging endpoint stay parked across a reset (the isolation
            // scenario's warm-up already fills the dead endpoint's in-flight limit).
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            let hanging = s.hanging;
            *s = State { hanging, ..State::default() };
            Ok(reply(StatusCode::NO_CONTENT, Bytes::new()))
        }
        (&Method::POST, p) if p.starts_with("/hang/") => {
            state.lock().unwrap_or_else(|e| e.into_inner()).hanging += 1;
            tokio::time::sleep(Duration::from_secs(600)).await;
            Ok(reply(StatusCode::NO_CONTENT, Bytes::new()))
        }
        (&Method::POST, p) if p.starts_with("/s/") => {
            let id = req
                .headers()
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, "body unreadable")),
            };
            record(&state, path, id, &body);
            Ok(reply(StatusCode::NO_CONTENT, Bytes::new()))
        }
        _ => Ok(reply(StatusCode::NOT_FOUND, "unknown path")),
    }
}

fn record(state: &Shared, path: String, id: String, body: &[u8]) {
    let at = now_ns();
    let latency = sent_ns(body).map(|sent| at.saturating_sub(sent) / 1000);
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    s.requests += 1;
    if let Some(l) = latency {
        s.latencies_us.push(l);
    }
    let next = s.paths.len() as u32;
    let pid = *s.path_ids.entry(path.clone()).or_insert(next);
    if pid == next {
        s.paths.push((path, PathStats { unique: 0, first_ns: at, last_ns: at }));
    }
    if s.seen.insert((pid, id.into_boxed_str())) {
        let p = &mut s.paths[pid as usize].1;
        p.unique += 1;
        p.first_ns = p.first_ns.min(at);
        p.last_ns = p.last_ns.max(at);
    }
}

/// Which of the `expected` pairs were never received (and which received ones were not expected).
fn loss(state: &Shared, expected: &Expected) -> Loss {
    let s = state.lock().unwrap_or_else(|e| e.into_inner());
    let received = |path: &str, id: &str| {
        s.path_ids.get(path).is_some_and(|pid| s.seen.contains(&(*pid, Box::<str>::from(id))))
    };
    let all = s.seen.iter().map(|(pid, id)| (s.paths[*pid as usize].0.as_str(), &**id));
    expected.loss(received, all)
}

/// The `"sent_ns":<digits>` the publisher put in the payload (a byte scan, no JSON parse).
fn sent_ns(body: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"sent_ns\":";
    let start = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = body[start..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&body[start..start + digits]).ok()?.parse().ok()
}

/// The counters; latency percentiles only when asked (sorting a large sample on every progress
/// poll would steal CPU from the system under test).
fn snapshot(state: &Shared, with_latency: bool) -> Stats {
    let (mut latencies, paths, requests, hanging, unique) = {
        let s = state.lock().unwrap_or_else(|e| e.into_inner());
        let latencies = if with_latency { s.latencies_us.clone() } else { Vec::new() };
        (latencies, s.paths.clone(), s.requests, s.hanging, s.seen.len() as u64)
    };
    Stats {
        requests,
        unique,
        hanging,
        paths: paths.into_iter().collect(),
        latency_us: Percentiles::of(&mut latencies),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_ns_is_found_in_a_webhook_body() {
        assert_eq!(sent_ns(br#"{"type":"a","data":{"sent_ns":123,"pad":"x"}}"#), Some(123));
        assert_eq!(sent_ns(br#"{"data":{}}"#), None);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).collect();
        let p = Percentiles::of(&mut v);
        assert_eq!((p.p50, p.p95, p.p99, p.max, p.count), (50, 95, 99, 100, 100));
    }
}
