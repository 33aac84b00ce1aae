//! The HTTP endpoints: `/`, `/status`, `/healthz`, `/metrics`, `/events/stream`, `/events/recent`, `/trace/ID`.

mod server;

use super::metrics::{self, Format, Snapshot};
use super::runner::{Shared, stopped};
use crate::ops::OpsError;
use crate::ops::follow::{Follower, Resume, resume_offset};
use crate::ops::query::{EventFilter, Selector};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use std::convert::Infallible;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::broadcast::error::RecvError;

const DASHBOARD: &str = include_str!("dashboard.html");
/// Most events `/events/recent` returns.
const MAX_RECENT: usize = 1000;

/// Serves until the daemon stops, within the limits of [`server`].
pub(crate) async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let bound = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "HTTP server has no local address; not serving");
            return;
        }
    };
    let stop = shared.stop.clone();
    let hosts = server::AllowedHosts::new(bound);
    let app = Router::new()
        .route("/", get(dashboard))
        .route("/status", get(status))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/events/stream", get(stream))
        .route("/events/recent", get(recent))
        .route("/trace/{event_id}", get(trace))
        .route(
            "/sync",
            post(move |state, headers| sync_now(state, headers, hosts)),
        )
        .fallback(not_found)
        .with_state(shared);
    let app = server::with_limits(app, hosts);
    server::run(listener, app, stop).await;
}

fn json_response(code: StatusCode, v: Value) -> Response {
    (
        code,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        v.to_string(),
    )
        .into_response()
}

fn error_response(code: StatusCode, kind: &str, message: String) -> Response {
    json_response(
        code,
        json!({"ok": false, "error": {"kind": kind, "message": message}}),
    )
}

/// `{"ok": true, ...fields of value}`.
fn ok_object(value: impl serde::Serialize) -> Value {
    let mut out = Map::new();
    out.insert("ok".into(), Value::Bool(true));
    if let Ok(Value::Object(m)) = serde_json::to_value(value) {
        out.extend(m);
    }
    Value::Object(out)
}

/// Most blocking HTTP jobs (status, metrics, events, traces) running at once.
///
/// They run on their own small budget, so a flood of requests can occupy at
/// most this many threads while syncs and dispatch passes run on theirs; the
/// rest wait (bounded by the server's request limits and timeout).
pub const HTTP_WORKERS: usize = 2;

/// The permits of [`HTTP_WORKERS`], shared by every server of this process.
fn workers() -> Arc<tokio::sync::Semaphore> {
    static POOL: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| Arc::new(tokio::sync::Semaphore::new(HTTP_WORKERS)))
        .clone()
}

/// Sets the flag when dropped: the request future was dropped (client gone).
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs blocking file work off the async threads and maps failures to 500.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, OpsError> + Send + 'static,
) -> Result<T, Response> {
    cancellable(move |_| f()).await
}

/// Runs blocking work within [`HTTP_WORKERS`]; the work sees a flag that is set
/// when the client goes away, and holds its worker until it has really ended.
async fn cancellable<T: Send + 'static>(
    f: impl FnOnce(&AtomicBool) -> Result<T, OpsError> + Send + 'static,
) -> Result<T, Response> {
    let permit = match workers().acquire_owned().await {
        Ok(p) => p,
        Err(e) => {
            return Err(error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "internal",
                e.to_string(),
            ));
        }
    };
    let flag = Arc::new(AtomicBool::new(false));
    let _cancel = CancelOnDrop(flag.clone());
    let job = move || {
        let _permit = permit;
        f(&flag)
    };
    match tokio::task::spawn_blocking(job).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.kind(),
            e.to_string(),
        )),
        Err(e) => Err(error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            e.to_string(),
        )),
    }
}

async fn dashboard(State(shared): State<Arc<Shared>>) -> Response {
    let node = shared.node();
    let initial = blocking(move || {
        let status = crate::ops::status::status(&node)?;
        let filter = EventFilter {
            limit: Some(100),
            ..Default::default()
        };
        let events = crate::ops::query::events(&node, &filter)?;
        Ok(json!({"status": status, "events": events}))
    })
    .await
    .unwrap_or(Value::Null);
    // Inside <script> only "</" could end the element early; JSON allows escaping '<'.
    let embedded = initial.to_string().replace('<', "\\u003c");
    let page = DASHBOARD.replacen("/*INITIAL*/null", &embedded, 1);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response()
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    let node = shared.node();
    match blocking(move || crate::ops::status::status(&node)).await {
        Ok(s) => json_response(StatusCode::OK, ok_object(s)),
        Err(r) => r,
    }
}

/// 200 when the node is healthy, else 503; the body says why (docs/operations.md, "Health").
/// `POST /sync`: starts a sync at once, coalesced with one already asked for.
///
/// A web page may send a simple POST to a loopback address; browsers name the page's
/// origin in `Origin`, so a request from any origin but this server's is refused.
async fn sync_now(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    hosts: server::AllowedHosts,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let same = origin
            .to_str()
            .ok()
            .and_then(|o| o.strip_prefix("http://"))
            .is_some_and(|authority| hosts.allows(authority));
        if !same {
            return error_response(
                StatusCode::FORBIDDEN,
                "forbidden",
                "POST /sync from another origin is refused".into(),
            );
        }
    }
    shared.sync_now.notify_one();
    json_response(StatusCode::ACCEPTED, json!({"ok": true, "queued": true}))
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let node = shared.node();
    match blocking(move || crate::ops::status::status(&node)).await {
        Ok(s) => {
            let code = if s.health.healthy {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json_response(
                code,
                json!({"ok": s.health.healthy, "healthy": s.health.healthy, "reasons": s.health.reasons}),
            )
        }
        Err(_) => {
            let reason = json!({"code": "status_error", "message": "the status report could not be built (see /status)"});
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"ok": false, "healthy": false, "reasons": [reason]}),
            )
        }
    }
}

async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let node = shared.node();
    let node_id = node.id().to_string();
    let snap = blocking(move || {
        let status = match crate::ops::status::status(&node) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "status for /metrics failed");
                None
            }
        };
        Ok(Snapshot {
            status,
            dead_letters: crate::dispatch::user::pending_dead_letters(&node)
                .map(|d| d.len() as u64)
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "reading the dead-letter file for /metrics failed");
                    0
                }),
        })
    })
    .await
    .unwrap_or_default();
    let m = shared.metrics().clone();
    match metrics::render(&node_id, &m, &snap, format) {
        Ok(text) => ([(header::CONTENT_TYPE, format.content_type())], text).into_response(),
        Err(e) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("encoding the metrics failed: {e}"),
        ),
    }
}

/// Counts open streams in the metrics for as long as it lives.
struct ClientGuard(Arc<Shared>);

impl ClientGuard {
    fn new(shared: Arc<Shared>) -> ClientGuard {
        shared.metrics().sse_clients += 1;
        ClientGuard(shared)
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let mut m = self.0.metrics();
        m.sse_clients = m.sse_clients.saturating_sub(1);
    }
}

/// Most `/events/stream` connections open at once; one more gets 503.
///
/// Below [`server::MAX_CONNECTIONS`], so streams never take every connection slot
/// from the other endpoints.
pub const MAX_STREAMS: usize = 64;
/// Log lines one stream reads per look: what it may hold for a client that reads slowly.
const STREAM_BATCH: usize = 256;
/// A stream looks at the log at least this often, even without a wake.
const STREAM_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// The permits of [`MAX_STREAMS`], shared by every server of this process.
fn streams() -> Arc<tokio::sync::Semaphore> {
    static POOL: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS)))
        .clone()
}

/// What `/events/stream` was asked for: filters and where to resume.
#[derive(Debug, Default)]
struct StreamQuery {
    filter: EventFilter,
    last_event_id: Option<String>,
}

/// Reads `topic`, `type`, `pattern` (repeatable) and `last_event_id` from a query string.
fn stream_query(query: &str) -> Result<StreamQuery, String> {
    let mut q = StreamQuery::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_encoding::percent_decode_str(v)
            .decode_utf8()
            .map_err(|_| format!("query parameter {k:?} is not UTF-8"))?
            .into_owned();
        match k {
            "topic" => q.filter.topic = Some(v),
            "type" | "event_type" => q.filter.event_type = Some(v),
            "pattern" => q.filter.patterns.push(v),
            "last_event_id" => q.last_event_id = Some(v),
            other => {
                return Err(format!(
                    "unknown query parameter {other:?}; known: topic, type, pattern, last_event_id"
                ));
            }
        }
    }
    Ok(q)
}

/// One message a stream has read and not yet sent.
struct Pending {
    id: String,
    line: String,
}

/// The state of one `/events/stream` connection between two messages.
struct StreamState {
    shared: Arc<Shared>,
    selector: Arc<Selector>,
    follower: Follower,
    pending: std::collections::VecDeque<Pending>,
    first: Option<Event>,
    wake: tokio::sync::broadcast::Receiver<Arc<str>>,
    stop: tokio::sync::watch::Receiver<Option<&'static str>>,
    _guard: ClientGuard,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl StreamState {
    /// The next message, reading the log as needed; `None` when the daemon stops.
    async fn next(&mut self) -> Option<Event> {
        if let Some(e) = self.first.take() {
            return Some(e);
        }
        loop {
            if let Some(p) = self.pending.pop_front() {
                return Some(Event::default().id(p.id).data(p.line));
            }
            let caught_up = self.read().await;
            if !self.pending.is_empty() {
                continue;
            }
            if caught_up {
                // Any broadcast, even a lagged one, only means "look again".
                tokio::select! {
                    _ = stopped(&mut self.stop) => return None,
                    r = self.wake.recv() => if matches!(r, Err(RecvError::Closed)) { return None },
                    _ = tokio::time::sleep(STREAM_POLL) => {},
                }
            }
        }
    }

    /// Reads one batch of committed lines on an HTTP worker; whether it reached the end.
    async fn read(&mut self) -> bool {
        let node = self.shared.node();
        let sel = self.selector.clone();
        let mut follower = self.follower.clone();
        let job = cancellable(move |_| {
            let mut got = Vec::new();
            let p = follower.poll(&node.log, &sel, STREAM_BATCH, |_, e| {
                got.push(Pending {
                    id: e.event_id.clone(),
                    line: e.to_json_line().trim_end().to_string(),
                });
                ControlFlow::Continue(())
            })?;
            Ok((follower, got, p.caught_up))
        });
        match job.await {
            Ok((f, got, caught_up)) => {
                self.follower = f;
                self.pending.extend(got);
                caught_up
            }
            Err(_) => {
                tracing::warn!(
                    offset = self.follower.offset(),
                    "reading the log for /events/stream failed; retrying"
                );
                true
            }
        }
    }
}

/// `/events/stream`: server-sent events, one per stored event, `id:` being its event id.
///
/// Starts at the end of the log, or right after `Last-Event-ID` (header, or the
/// `last_event_id` query parameter) so a reconnecting client misses nothing and
/// sees nothing twice. Filters as in `gitmesh events`. Each stream reads the log
/// itself in batches of [`STREAM_BATCH`] lines, so a slow client holds at most
/// one batch and no worker while it is not reading.
async fn stream(State(shared): State<Arc<Shared>>, headers: HeaderMap, uri: Uri) -> Response {
    let q = match stream_query(uri.query().unwrap_or("")) {
        Ok(q) => q,
        Err(m) => return error_response(StatusCode::BAD_REQUEST, "usage", m),
    };
    let selector = match q.filter.compile() {
        Ok(s) => Arc::new(s),
        Err(e) => return error_response(StatusCode::BAD_REQUEST, e.kind(), e.to_string()),
    };
    let from_header = headers
        .get("last-event-id")
        .map(|v| v.to_str().map(str::to_string));
    let last = match from_header {
        Some(Ok(h)) if !h.is_empty() => Some(h),
        Some(Err(_)) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "usage",
                "Last-Event-ID is not text".into(),
            );
        }
        _ => q.last_event_id.filter(|v| !v.is_empty()),
    };
    let Ok(slot) = streams().try_acquire_owned() else {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("{MAX_STREAMS} event streams are open already; retry later"),
        );
    };
    // Subscribed before the start is fixed, so no append between the two goes unnoticed.
    let wake = shared.events.subscribe();
    let node = shared.node();
    let start = blocking(move || {
        let end = node.log.read_head()?.log_len;
        let Some(id) = last else {
            return Ok((end, None));
        };
        match resume_offset(&node, &Resume::After(id.clone())) {
            Ok(at) => Ok((at, None)),
            Err(OpsError::NotFound(m)) => Ok((end, Some((id, m)))),
            Err(e) => Err(e),
        }
    })
    .await;
    let (offset, unknown) = match start {
        Ok(x) => x,
        Err(r) => return r,
    };
    // An id this log does not hold (a restored root, another node's stream): say so,
    // then stream from the end rather than replay or refuse.
    let first = unknown.map(|(id, m)| {
        Event::default()
            .event("reset")
            .data(json!({"last_event_id": id, "reason": m}).to_string())
    });
    let state = StreamState {
        stop: shared.stop.clone(),
        _guard: ClientGuard::new(shared.clone()),
        shared,
        selector,
        follower: Follower::new(offset),
        pending: std::collections::VecDeque::new(),
        first,
        wake,
        _slot: slot,
    };
    let s = futures_util::stream::unfold(state, |mut st| async move {
        let e = st.next().await?;
        Some((Ok::<_, Infallible>(e), st))
    });
    Sse::new(s).keep_alive(KeepAlive::default()).into_response()
}

async fn recent(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let limit = uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("limit="))
        .map(|v| v.parse::<usize>());
    let limit = match limit {
        None => 50,
        Some(Ok(n)) => n.min(MAX_RECENT),
        Some(Err(_)) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "usage",
                "limit must be a non-negative integer".into(),
            );
        }
    };
    let node = shared.node();
    let filter = EventFilter {
        limit: Some(limit),
        ..Default::default()
    };
    match blocking(move || crate::ops::query::events(&node, &filter)).await {
        Ok(events) => json_response(StatusCode::OK, json!({"ok": true, "events": events})),
        Err(r) => r,
    }
}

async fn trace(State(shared): State<Arc<Shared>>, Path(event_id): Path<String>) -> Response {
    if crate::log::index_key(&event_id).is_none() {
        return error_response(
            StatusCode::BAD_REQUEST,
            "usage",
            format!("{event_id:?} is not an event id (evt_ + 32 hex digits)"),
        );
    }
    let node = shared.node();
    let id = event_id.clone();
    let built = cancellable(move |cancel| Ok(super::trace::from_log(&node, &id, cancel)?)).await;
    match built {
        Ok(Some(t)) => json_response(StatusCode::OK, ok_object(t)),
        Ok(None) => error_response(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("event {event_id} is not in this node's log"),
        ),
        Err(r) => r,
    }
}

async fn not_found(uri: Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no endpoint {}; try /, /status, /healthz, /metrics, /events/stream, /events/recent, /trace/EVENT_ID",
            uri.path()
        ),
    )
}

#[cfg(test)]
mod tests;
