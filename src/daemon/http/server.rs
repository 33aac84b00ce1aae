//! The HTTP server's edge: connection cap, timeouts, size limits and the `Host` check.
//!
//! The endpoints have no authentication, so these limits are what keeps a local
//! page or a stuck client from exhausting the daemon's file descriptors, memory or
//! blocking threads, and what keeps a web page from reading them through DNS
//! rebinding.

use super::error_response;
use crate::daemon::runner::stopped;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header, uri::Authority};
use axum::middleware::{self, Next};
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// Most connections open at once, `/events/stream` included; further clients wait
/// in the kernel's accept queue, where they cost the daemon no file descriptor.
pub const MAX_CONNECTIONS: usize = 256;
/// Most requests handled at once; the rest wait for a slot within [`REQUEST_TIMEOUT`].
pub const MAX_CONCURRENT_REQUESTS: usize = 32;
/// Time a client has to send a request's headers, on a new or an idle kept-alive
/// connection; then the connection is closed and its slot freed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to produce a response's headers (a stream's body then runs on); 503 after it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest request body accepted (413 above it); no endpoint reads one.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Largest request head (request line and headers) buffered per connection (431 above it).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(500);

/// The `Host` values this server answers: loopback names and its own address, on its port.
#[derive(Debug, Clone, Copy)]
pub struct AllowedHosts {
    bound: SocketAddr,
}

impl AllowedHosts {
    /// Hosts for a server bound to `bound`.
    pub fn new(bound: SocketAddr) -> AllowedHosts {
        AllowedHosts { bound }
    }

    /// Whether a request for `host` (a `Host` header or URI authority) is answered.
    ///
    /// A DNS-rebinding page reaches the daemon under the attacker's DNS name, so
    /// the only name accepted is `localhost`; IP literals are accepted when they
    /// are a loopback address or the bound one (any, on a wildcard bind). A port,
    /// when given, must be the bound port.
    pub fn allows(&self, host: &str) -> bool {
        let Ok(authority) = host.parse::<Authority>() else {
            return false;
        };
        if authority.as_str().contains('@') {
            return false;
        }
        let name = authority.host();
        // `port_u16` is None for a port that is not a number: compare the text instead.
        let port = authority.as_str()[name.len()..].strip_prefix(':');
        if port.is_some_and(|p| p.parse::<u16>() != Ok(self.bound.port())) {
            return false;
        }
        if name.eq_ignore_ascii_case("localhost") {
            return true;
        }
        let literal = name.strip_prefix('[').and_then(|n| n.strip_suffix(']'));
        match literal.unwrap_or(name).parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || ip == self.bound.ip() || self.bound.ip().is_unspecified(),
            Err(_) => false,
        }
    }

    /// How to reach the server, for the refusal message.
    fn example(&self) -> String {
        if self.bound.ip().is_unspecified() {
            format!("localhost:{}", self.bound.port())
        } else {
            self.bound.to_string()
        }
    }
}

/// Refuses requests for another host with 421 before any endpoint runs.
async fn check_host(State(hosts): State<AllowedHosts>, req: Request, next: Next) -> Response {
    let from_uri = req.uri().authority().map(|a| a.as_str().to_string());
    let from_header = match req.headers().get(header::HOST).map(|v| v.to_str()) {
        None => None,
        Some(Ok(h)) => Some(h.to_string()),
        // Not text: no allowed host looks like that.
        Some(Err(_)) => Some(String::from("(not text)")),
    };
    // No Host at all (an HTTP/1.0 probe) names nothing a rebinding page could use.
    for host in from_uri.iter().chain(from_header.iter()) {
        if !hosts.allows(host) {
            return error_response(
                StatusCode::MISDIRECTED_REQUEST,
                "host",
                format!(
                    "this daemon answers requests for http://{}/ (or localhost on its port), \
                     not for Host {host:?}; other names are refused against DNS rebinding",
                    hosts.example()
                ),
            );
        }
    }
    next.run(req).await
}

/// Wraps the endpoints in the limits; the last layer added runs first.
pub fn with_limits(app: Router, hosts: AllowedHosts) -> Router {
    app.layer(GlobalConcurrencyLimitLayer::new(MAX_CONCURRENT_REQUESTS))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(middleware::from_fn_with_state(hosts, check_host))
}

/// Accepts connections until `stop`, at most [`MAX_CONNECTIONS`] open at once.
pub async fn run(
    listener: TcpListener,
    app: Router,
    mut stop: watch::Receiver<Option<&'static str>>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        // Waiting for a slot before `accept` leaves excess clients in the kernel's queue.
        let slot = tokio::select! {
            _ = stopped(&mut stop) => break,
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = stopped(&mut stop) => break,
            a = listener.accept() => a,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed; retrying");
                tokio::select! {
                    _ = stopped(&mut stop) => break,
                    _ = tokio::time::sleep(ACCEPT_RETRY) => continue,
                }
            }
        };
        let app = app.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            serve_connection(tcp, app, stop).await;
            drop(slot);
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    // Idle connections close at once; open streams end on the same stop signal.
    while connections.join_next().await.is_some() {}
}

/// Errors that concern one client only: the listener itself is fine.
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    )
}

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    app: Router,
    mut stop: watch::Receiver<Option<&'static str>>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    let conn = builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(app));
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // Timeouts and clients that hang up are routine for a server.
        tracing::debug!(error = %e, "HTTP connection ended");
    }
}

#[cfg(test)]
mod tests;
