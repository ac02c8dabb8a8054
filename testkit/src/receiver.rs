//! The scriptable webhook receiver: the endpoint at the far end of `deliver -> endpoint`.
//!
//! Owns an in-process axum server on 127.0.0.1:0 that accepts any method on any path, records
//! every request (path, lowercased headers, body, arrival time) and answers per path from a
//! script: each request consumes the next scripted [`Reply`], and once the script is used up the
//! path's default reply applies (200 unless set with [`Receiver::set_default`]).
//! It also measures overlap: per path, how many requests are open at once (from arrival until
//! the handler has produced its answer) and the most that ever were ([`Receiver::max_in_flight`]),
//! so a concurrency limit is checked by what the endpoint saw, not inferred from arrival times.
//! Invariants: a request is recorded before it is answered, so a [`Reply::Hang`] is visible in
//! [`Receiver::requests`]; hanging handlers are released when the receiver stops or drops; a
//! request counts as open until its handler finishes or is dropped, never longer.
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{eventually, init};

/// How long a [`Reply::Hang`] holds a request: far beyond any client timeout in the tests.
const HANG_FOR: Duration = Duration::from_secs(3600);

/// What the receiver answers to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(dead_code)]
pub enum Reply {
    /// This status, empty body.
    Status(u16),
    /// This status plus one header, e.g. `StatusWithHeader(429, "retry-after".into(), "2".into())`.
    StatusWithHeader(u16, String, String),
    /// This status plus these headers (name, value), e.g. a validation handshake's answer.
    StatusWithHeaders(u16, Vec<(String, String)>),
    /// This status with this text body (a failing endpoint that says why).
    StatusWithBody(u16, String),
    /// Never answer (until the receiver stops): the client must time out.
    Hang,
    /// Answer 200 after this delay (a slow but healthy endpoint).
    Delay(Duration),
}

impl Reply {
    /// `status` with a `Retry-After: <seconds>` header.
    pub fn retry_after(status: u16, seconds: u64) -> Reply {
        Reply::StatusWithHeader(status, "retry-after".to_owned(), seconds.to_string())
    }
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// The path without the query, e.g. `/hooks/a`.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Lowercased header names to values (repeated headers joined with `, `).
    pub headers: BTreeMap<String, String>,
    /// The body bytes exactly as received.
    pub body: Bytes,
    /// When the request reached the handler.
    pub received_at: Instant,
}

impl Recorded {
    /// A header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// The body as UTF-8 (lossy).
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics naming the path when it is not JSON.
    pub fn body_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("body of request to {} is not json ({e}): {}", self.path, self.body_str())
        })
    }
}

#[derive(Default)]
struct Book {
    recorded: Vec<Recorded>,
    scripts: HashMap<String, VecDeque<Reply>>,
    defaults: HashMap<String, Reply>,
    /// Per path: requests open now, and the most that were open at once.
    open: HashMap<String, Overlap>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Overlap {
    now: usize,
    most: usize,
}

/// One open request of a path; closes it (in the book) when the handler ends or is dropped.
struct OpenRequest {
    book: Arc<Mutex<Book>>,
    path: String,
}

impl OpenRequest {
    /// Counts a request to `path` as open; the caller holds the book's lock.
    fn open(book: &Arc<Mutex<Book>>, locked: &mut Book, path: &str) -> OpenRequest {
        let overlap = locked.open.entry(path.to_owned()).or_default();
        overlap.now += 1;
        overlap.most = overlap.most.max(overlap.now);
        OpenRequest { book: book.clone(), path: path.to_owned() }
    }
}

impl Drop for OpenRequest {
    fn drop(&mut self) {
        let mut book = self.book.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(overlap) = book.open.get_mut(&self.path) {
            overlap.now = overlap.now.saturating_sub(1);
        }
    }
}

#[derive(Clone)]
struct Shared {
    book: Arc<Mutex<Book>>,
    stopping: watch::Receiver<bool>,
}

/// A running test receiver; stops when dropped.
pub struct Receiver {
    addr: SocketAddr,
    book: Arc<Mutex<Book>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Receiver {
    /// Binds 127.0.0.1:0 and serves in a tokio task of the current runtime.
    pub async fn start() -> Receiver {
        init();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the test receiver to 127.0.0.1:0");
        let addr = listener.local_addr().expect("reading the test receiver's address");
        let book = Arc::new(Mutex::new(Book::default()));
        let (stop, stopping) = watch::channel(false);
        let app =
            Router::new().fallback(handle).with_state(Shared { book: book.clone(), stopping });
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, %addr, "test receiver stopped serving");
            }
        });
        Receiver { addr, book, stop, task }
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port><path>`; a missing leading `/` is added.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, normalize(path))
    }

    /// Replaces the script of `path`: the next requests get these replies in order.
    pub fn script(&self, path: &str, replies: Vec<Reply>) {
        self.lock().scripts.insert(normalize(path), replies.into());
    }

    /// The reply for `path` once its script is used up (200 until set).
    pub fn set_default(&self, path: &str, reply: Reply) {
        self.lock().defaults.insert(normalize(path), reply);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().recorded.clone()
    }

    /// The requests to `path`, in arrival order.
    pub fn requests_for(&self, path: &str) -> Vec<Recorded> {
        let path = normalize(path);
        self.lock().recorded.iter().filter(|r| r.path == path).cloned().collect()
    }

    /// How many requests reached `path`.
    pub fn count(&self, path: &str) -> usize {
        let path = normalize(path);
        self.lock().recorded.iter().filter(|r| r.path == path).count()
    }

    /// Requests to `path` open right now (arrived, not yet answered).
    pub fn in_flight(&self, path: &str) -> usize {
        self.lock().open.get(&normalize(path)).map_or(0, |o| o.now)
    }

    /// The most requests to `path` that were ever open at the same time.
    pub fn max_in_flight(&self, path: &str) -> usize {
        self.lock().open.get(&normalize(path)).map_or(0, |o| o.most)
    }

    /// Waits (via [`eventually`]) until `path` has at least `n` requests, and returns them.
    pub async fn wait_for_requests(
        &self,
        path: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<Recorded> {
        let what = format!("{n} request(s) to {} on the test receiver", normalize(path));
        eventually(timeout, &what, || {
            let found = self.requests_for(path);
            async move { (found.len() >= n).then_some(found) }
        })
        .await
    }

    /// Stops serving and releases hanging requests (dropping does the same).
    pub fn stop(self) {}

    fn lock(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

fn normalize(path: &str) -> String {
    if path.starts_with('/') { path.to_owned() } else { format!("/{path}") }
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let (reply, _open) = {
        let mut book = shared.book.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let open = OpenRequest::open(&shared.book, &mut book, &path);
        book.recorded.push(Recorded {
            method: method.to_string(),
            path: path.clone(),
            query: uri.query().map(str::to_owned),
            headers: header_map(&headers),
            body,
            received_at: Instant::now(),
        });
        let scripted = book.scripts.get_mut(&path).and_then(VecDeque::pop_front);
        let reply =
            scripted.or_else(|| book.defaults.get(&path).cloned()).unwrap_or(Reply::Status(200));
        (reply, open)
    };
    respond(reply, shared.stopping).await
}

async fn respond(reply: Reply, mut stopping: watch::Receiver<bool>) -> Response {
    match reply {
        Reply::Status(code) => status(code).into_response(),
        Reply::StatusWithBody(code, body) => (status(code), body).into_response(),
        Reply::StatusWithHeader(code, name, value) => with_headers(code, vec![(name, value)]),
        Reply::StatusWithHeaders(code, headers) => with_headers(code, headers),
        Reply::Delay(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK.into_response()
        }
        Reply::Hang => {
            tokio::select! {
                _ = tokio::time::sleep(HANG_FOR) => {}
                _ = stopping.wait_for(|stop| *stop) => {}
            }
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// `code` with these headers, empty body.
fn with_headers(code: u16, headers: Vec<(String, String)>) -> Response {
    let mut response = status(code).into_response();
    for (name, value) in headers {
        let name = HeaderName::try_from(name.as_str())
            .unwrap_or_else(|e| panic!("scripted header name {name:?}: {e}"));
        let value = HeaderValue::try_from(value.as_str())
            .unwrap_or_else(|e| panic!("scripted header value {value:?}: {e}"));
        response.headers_mut().insert(name, value);
    }
    response
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or_else(|e| panic!("scripted status {code}: {e}"))
}

fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        map.entry(name.as_str().to_owned())
            .and_modify(|existing| {
                existing.push_str(", ");
                existing.push_str(&value);
            })
            .or_insert(value);
    }
    map
}
