//! The flapping endpoint of the chaos suite: an HTTP server on 127.0.0.1 whose every answer is
//! drawn at random — 200, 500, or a hang that outlasts hookline's request timeout — and that
//! records each request (subscription path, event id, which hookline instance sent it, what it
//! answered, when) so the ledger can tell "delivered" (a 2xx answer was sent) from "attempted".
//!
//! `/flaky/<name>` flaps; `/dead/<name>` always answers 500 (its deliveries must end in the DLQ);
//! `/ok/<name>` always answers 200 (a healthy endpoint: none of its deliveries may end there).
//! Invariant: a request is recorded with its answer before the answer is sent, and a hang never
//! turns into a 2xx.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::watch;

/// How long a hang lasts: far beyond the request timeout of the chaos config.
const HANG: Duration = Duration::from_secs(30);

/// What the endpoint answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Ok,
    Error,
    Hang,
}

/// One request as the endpoint saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The last path segment: the subscription's name in the run.
    pub name: String,
    pub event_id: String,
    /// The `user-agent`, which names the hookline instance (`chaos-p<i>g<generation>`).
    pub agent: String,
    pub answer: Answer,
    /// Since the run started.
    pub at: Duration,
}

/// How an endpoint of the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// At random, by the [`Mix`].
    Flaky,
    /// Always 500.
    Dead,
    /// Always 200.
    Healthy,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Flaky => "flaky",
            Endpoint::Dead => "dead",
            Endpoint::Healthy => "ok",
        }
    }
}

/// Shares of each answer on a flapping path.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    pub ok: f64,
    pub error: f64,
}

#[derive(Clone)]
struct Shared {
    hits: Arc<Mutex<Vec<Hit>>>,
    count: Arc<AtomicUsize>,
    rng: Arc<Mutex<StdRng>>,
    mix: Mix,
    started: Instant,
    stopping: watch::Receiver<bool>,
}

/// A running flapping endpoint; stops (and releases hangs) when dropped.
pub struct FlakyReceiver {
    addr: SocketAddr,
    shared: Shared,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl FlakyReceiver {
    pub async fn start(seed: u64, mix: Mix, started: Instant) -> FlakyReceiver {
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the flaky receiver");
        let addr = listener.local_addr().expect("receiver address");
        let (stop, stopping) = watch::channel(false);
        let shared = Shared {
            hits: Arc::default(),
            count: Arc::default(),
            rng: Arc::new(Mutex::new(StdRng::seed_from_u64(seed))),
            mix,
            started,
            stopping,
        };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FlakyReceiver { addr, shared, stop, task }
    }

    /// URL of the endpoint named `name`, answering as `endpoint` says.
    pub fn url(&self, name: &str, endpoint: Endpoint) -> String {
        format!("http://{}/{}/{name}", self.addr, endpoint.path())
    }

    /// Requests received so far.
    pub fn count(&self) -> usize {
        self.shared.count.load(Ordering::SeqCst)
    }

    /// Every request so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for FlakyReceiver {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

async fn handle(State(shared): State<Shared>, uri: Uri, headers: HeaderMap) -> StatusCode {
    let mut segments = uri.path().rsplit('/');
    let name = segments.next().unwrap_or_default().to_string();
    let kind = segments.next();
    let answer = if kind == Some(Endpoint::Dead.path()) {
        Answer::Error
    } else if kind == Some(Endpoint::Healthy.path()) {
        Answer::Ok
    } else {
        let roll: f64 = shared.rng.lock().unwrap_or_else(|p| p.into_inner()).random();
        if roll < shared.mix.ok {
            Answer::Ok
        } else if roll < shared.mix.ok + shared.mix.error {
            Answer::Error
        } else {
            Answer::Hang
        }
    };
    let header =
        |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let hit = Hit {
        name,
        event_id: header("webhook-id"),
        agent: header("user-agent"),
        answer,
        at: shared.started.elapsed(),
    };
    shared.hits.lock().unwrap_or_else(|p| p.into_inner()).push(hit);
    shared.count.fetch_add(1, Ordering::SeqCst);
    match answer {
        Answer::Ok => StatusCode::OK,
        Answer::Error => StatusCode::INTERNAL_SERVER_ERROR,
        Answer::Hang => {
            let mut stopping = shared.stopping.clone();
            tokio::select! {
                _ = tokio::time::sleep(HANG) => {}
                _ = stopping.wait_for(|s| *s) => {}
            }
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}
