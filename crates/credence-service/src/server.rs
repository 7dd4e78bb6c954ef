//! The HTTP/1.1 listener: accepts connections up to a cap, times out slow or idle clients, and drains open connections at shutdown.
//!
//! `axum::serve` sets no timer, so a connection that never finishes its headers is kept for
//! ever, and a few thousand of them exhaust the process's open files while costing the client
//! nothing. Here each connection is served by hyper with a header-read timeout (which, as
//! hyper starts it whenever a connection waits for a request's head, is also the keep-alive
//! idle timeout), the whole request — body included — runs under a deadline (the router's
//! `request_timeout` layer), and connections beyond `max_connections` are closed as soon as
//! they are accepted, so the listener's backlog never fills with them and the connections
//! already open keep being served.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

/// The address a request's connection came from, as a request extension (for sign-in
/// throttling; behind a proxy it is the proxy's).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddress(pub std::net::SocketAddr);

/// Connection limits and timeouts of the listener; see `docs/service.md`, "Limits".
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// The most time a connection may take to send a request's headers, counted from its
    /// opening or from the previous answer on it (so also the idle keep-alive timeout).
    pub header_read_timeout_ms: u64,
    /// The most time a request may take from its headers to its answer, body included.
    pub request_timeout_ms: u64,
    /// The most connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// The largest request head (request line and headers) in bytes.
    pub max_header_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            max_connections: 10_000,
            max_header_bytes: 16 * 1024,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open requests finish
/// (for at most `drain_ms`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
    drain_ms: u64,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_sender, stop) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms.max(1)))
        // hyper's buffer bounds the head: a larger one is answered 431 and closed.
        .max_buf_size(limits.max_header_bytes.max(8192));
    let http = Arc::new(http);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Out of file descriptors or the like: back off briefly rather than spin.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics::counter!(crate::metrics::CONNECTIONS_REFUSED).increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(PeerAddress(peer));
                request
            },
        ));
        let http = http.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let connection = http.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let mut draining = false;
            loop {
                tokio::select! {
                    _ = connection.as_mut() => break,
                    changed = stop.changed(), if !draining => {
                        draining = true;
                        if changed.is_ok() {
                            connection.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_sender.send(true);
    // Every slot back means every connection has ended.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_millis(drain_ms), slots.acquire_many(all)).await;
    Ok(())
}
