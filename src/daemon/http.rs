//! The HTTP endpoints: `/`, `/status`, `/healthz`, `/metrics`, `/events/stream`, `/events/recent`, `/trace/ID`.

mod server;

use super::metrics::{self, Format, Snapshot};
use super::runner::{Shared, stopped};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use serde_json::{Map, Value, json};
use std::convert::Infallible;
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
    f: impl FnOnce() -> Result<T, crate::ops::OpsError> + Send + 'static,
) -> Result<T, Response> {
    cancellable(move |_| f()).await
}

/// Runs blocking work within [`HTTP_WORKERS`]; the work sees a flag that is set
/// when the client goes away, and holds its worker until it has really ended.
async fn cancellable<T: Send + 'static>(
    f: impl FnOnce(&AtomicBool) -> Result<T, crate::ops::OpsError> + Send + 'static,
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
        let filter = crate::ops::query::EventFilter {
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

enum Next {
    Line(Arc<str>),
    Lagged(u64),
    End,
}

async fn stream(
    State(shared): State<Arc<Shared>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = shared.events.subscribe();
    let stop = shared.stop.clone();
    let guard = ClientGuard::new(shared);
    let s =
        futures_util::stream::unfold((rx, stop, guard), |(mut rx, mut stop, guard)| async move {
            let next = tokio::select! {
                _ = stopped(&mut stop) => Next::End,
                r = rx.recv() => match r {
                    Ok(line) => Next::Line(line),
                    Err(RecvError::Lagged(n)) => Next::Lagged(n),
                    Err(RecvError::Closed) => Next::End,
                },
            };
            let event = match next {
                Next::Line(line) => Event::default().data(&*line),
                // A slow reader missed events: say how many, so it can re-fetch.
                Next::Lagged(n) => Event::default().event("lagged").data(n.to_string()),
                Next::End => return None,
            };
            Some((Ok(event), (rx, stop, guard)))
        });
    Sse::new(s).keep_alive(KeepAlive::default())
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
    let filter = crate::ops::query::EventFilter {
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
