//! The HTTP/1.1 listener: accepts connections up to a cap, serves each on one of the HTTP threads, times out slow or idle clients, and drains open connections at shutdown.
//!
//! `axum::serve` sets no timer, so a connection that never finishes its headers is kept for
//! ever, and a few thousand of them exhaust the process's open files while costing the client
//! nothing. Here each connection is served by hyper with a header-read timeout (which, as
//! hyper starts it whenever a connection waits for a request's head, is also the keep-alive
//! idle timeout), the whole request — body included — runs under a deadline (the router's
//! `around` layer, `request_timeout_ms`), and connections beyond `max_connections` are closed as soon as
//! they are accepted, so the listener's backlog never fills with them and the connections
//! already open keep being served.
//!
//! Threads: the listener hands each accepted connection, in turn, to one of `http_threads`
//! threads, each running a single-threaded runtime that serves its connections from start to
//! end. A work-stealing runtime wakes a second worker whenever the first has more than one task
//! ready, and at a moderate load that is nearly every request: its threads spent about a fifth
//! of the node's CPU per decision handing work to each other (docs/benchmarks.md, issue 28).
//! A connection's requests are sequential anyway, so pinning it to a thread loses nothing but
//! the stealing of one connection's work by another thread.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

/// The address a request's connection came from, as a request extension (for sign-in
/// throttling; behind a proxy it is the proxy's).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddress(pub std::net::SocketAddr);

/// Connection limits, timeouts and threads of the listener; see `docs/service.md`, "Limits".
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
    /// The threads serving connections, each with a single-threaded runtime (at least 1).
    pub threads: usize,
}

/// Most HTTP threads an operator may ask for.
pub const MAX_HTTP_THREADS: usize = 256;

/// One HTTP thread per core the process may use.
pub fn default_http_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(MAX_HTTP_THREADS)
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            max_connections: 10_000,
            max_header_bytes: 16 * 1024,
            threads: default_http_threads(),
        }
    }
}

/// An accepted connection on its way to an HTTP thread, with its place under `max_connections`.
struct Accepted {
    stream: std::net::TcpStream,
    peer: std::net::SocketAddr,
    permit: OwnedSemaphorePermit,
}

/// What every HTTP thread serves connections with.
#[derive(Clone)]
struct Serving {
    router: Router,
    http: Arc<hyper::server::conn::http1::Builder>,
    stop: watch::Receiver<bool>,
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open requests finish
/// (for at most `drain_ms`).
///
/// The HTTP threads outlive this call and the process's runtime: what requests started on
/// them (a database connection a pool opened there, a task a store started on first use) is
/// still driven while the process ends its work after the listener stops.
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
    let serving = Serving {
        router,
        http: Arc::new(http),
        stop,
    };
    let threads = start_http_threads(limits.threads.clamp(1, MAX_HTTP_THREADS), &serving)?;
    let mut next_thread = 0usize;
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
        // Registered again with the chosen thread's runtime; the socket stays non-blocking.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "cannot hand a connection to an HTTP thread");
                continue;
            }
        };
        // In turn; a thread that is gone is passed over.
        let mut unsent = Some(Accepted {
            stream,
            peer,
            permit,
        });
        for _ in 0..threads.len() {
            let Some(accepted) = unsent.take() else {
                break;
            };
            let thread = &threads[next_thread % threads.len()];
            next_thread = next_thread.wrapping_add(1);
            if let Err(mpsc::error::SendError(back)) = thread.send(accepted) {
                unsent = Some(back);
            }
        }
        if unsent.is_some() {
            tracing::error!("no HTTP thread is running; closing the connection");
        }
    }
    drop(listener);
    drop(threads);
    let _ = stop_sender.send(true);
    // Every slot back means every connection has ended.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_millis(drain_ms), slots.acquire_many(all)).await;
    Ok(())
}

/// Starts the HTTP threads; each serves what it is sent until the process ends.
fn start_http_threads(
    count: usize,
    serving: &Serving,
) -> std::io::Result<Vec<mpsc::UnboundedSender<Accepted>>> {
    let mut senders = Vec::with_capacity(count);
    for index in 0..count {
        let (sender, receiver) = mpsc::unbounded_channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let serving = serving.clone();
        std::thread::Builder::new()
            .name(format!("credence-http-{index}"))
            .spawn(move || runtime.block_on(http_thread(receiver, serving)))?;
        senders.push(sender);
    }
    Ok(senders)
}

/// One HTTP thread's work: a task per connection handed to it.
async fn http_thread(mut receiver: mpsc::UnboundedReceiver<Accepted>, serving: Serving) {
    while let Some(accepted) = receiver.recv().await {
        match tokio::net::TcpStream::from_std(accepted.stream) {
            Ok(stream) => {
                tokio::spawn(serve_connection(
                    stream,
                    accepted.peer,
                    accepted.permit,
                    serving.clone(),
                ));
            }
            Err(error) => tracing::warn!(%error, "cannot serve an accepted connection"),
        }
    }
    // The listener has stopped. The runtime stays: connections drain, and whatever requests
    // started on it keeps being driven until the process exits.
    std::future::pending::<()>().await;
}

/// Serves one connection until it closes, or until shutdown lets its last request finish.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    permit: OwnedSemaphorePermit,
    serving: Serving,
) {
    let Serving {
        router,
        http,
        mut stop,
    } = serving;
    let service = TowerToHyperService::new(router.map_request(
        move |mut request: axum::http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(PeerAddress(peer));
            request
        },
    ));
    let connection = http.serve_connection(TokioIo::new(JsonErrors::new(stream)), service);
    tokio::pin!(connection);
    let mut draining = *stop.borrow();
    if draining {
        connection.as_mut().graceful_shutdown();
    }
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
}

/// A connection whose answers hyper writes itself — to a request head it cannot parse (400)
/// or one over `max_header_bytes` (431), which never reach the router — carry the service's
/// `{code, message, details}` body like every other error.
///
/// hyper writes such an answer as one buffer, `connection: close` and `content-length: 0`,
/// and closes the connection after it; the router never answers with an empty 4xx. So a write
/// of exactly that shape is replaced by the same status with a JSON body. Vectored writes are
/// declined, so that hyper hands every answer over as one buffer.
pub struct JsonErrors<IO> {
    io: IO,
    /// A replacement answer being written, and how much of it is out.
    pending: Option<(Vec<u8>, usize)>,
}

impl<IO> JsonErrors<IO> {
    /// Wraps a connection.
    pub fn new(io: IO) -> JsonErrors<IO> {
        JsonErrors { io, pending: None }
    }
}

/// The JSON answer for one of hyper's own empty error answers, or `None` for any other write.
fn json_error_for(written: &[u8]) -> Option<Vec<u8>> {
    let head = std::str::from_utf8(written).ok()?;
    let rest = head.strip_prefix("HTTP/1.1 ")?;
    let status = rest.get(..3)?;
    let lower = head.to_ascii_lowercase();
    if !head.ends_with("\r\n\r\n")
        || !lower.contains("\r\ncontent-length: 0\r\n")
        || !lower.contains("\r\nconnection: close\r\n")
    {
        return None;
    }
    let (code, message) = match status {
        "400" => (
            crate::ErrorCode::MalformedRequest.as_str(),
            "the request line or a header is not valid HTTP (a header value may not hold control characters such as NUL); fix the request",
        ),
        "431" => (
            crate::ErrorCode::HeadersTooLarge.as_str(),
            "the request's headers are larger than this server accepts; send shorter headers (an Idempotency-Key has at most 255 characters)",
        ),
        _ => return None,
    };
    let reason = rest.get(4..)?.split("\r\n").next()?;
    let body = serde_json::json!({"code": code, "message": message, "details": null}).to_string();
    Some(
        format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<IO: tokio::io::AsyncWrite + Unpin> JsonErrors<IO> {
    /// Writes out a pending replacement; ready when none is left.
    fn drain(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        while let Some((bytes, written)) = &mut self.pending {
            if *written == bytes.len() {
                self.pending = None;
                break;
            }
            match std::pin::Pin::new(&mut self.io).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for JsonErrors<IO> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<IO: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for JsonErrors<IO> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        let this = self.get_mut();
        match this.drain(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        // hyper's own error answers are small; anything larger is the router's.
        if buf.len() < 512 {
            if let Some(replacement) = json_error_for(buf) {
                this.pending = Some((replacement, 0));
                if let Poll::Ready(Err(e)) = this.drain(cx) {
                    return Poll::Ready(Err(e));
                }
                return Poll::Ready(Ok(buf.len()));
            }
        }
        std::pin::Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = self.get_mut();
        match this.drain(cx) {
            Poll::Ready(Ok(())) => std::pin::Pin::new(&mut this.io).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = self.get_mut();
        match this.drain(cx) {
            Poll::Ready(Ok(())) => std::pin::Pin::new(&mut this.io).poll_shutdown(cx),
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One request on a new connection to a server on 127.0.0.1; the answer's status line and body.
    fn get(address: std::net::SocketAddr, path: &str) -> std::io::Result<(String, String)> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n"
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head.lines().next().unwrap_or_default().to_string();
        Ok((status, body.to_string()))
    }

    /// Connections are served on the HTTP threads (each in turn), and at shutdown the listener
    /// closes while a request already running is still answered.
    #[test]
    fn connections_are_served_on_the_http_threads_and_drained_at_shutdown() {
        use std::sync::atomic::{AtomicBool, Ordering};
        static SLOW_STARTED: AtomicBool = AtomicBool::new(false);
        let (release, released) = watch::channel(false);
        let router = Router::new()
            .route(
                "/thread",
                axum::routing::get(|| async {
                    std::thread::current()
                        .name()
                        .unwrap_or_default()
                        .to_string()
                }),
            )
            .route(
                "/slow",
                axum::routing::get(move || {
                    let mut released = released.clone();
                    async move {
                        SLOW_STARTED.store(true, Ordering::SeqCst);
                        let _ = released.wait_for(|go| *go).await;
                        "done"
                    }
                }),
            );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let limits = HttpLimits {
            threads: 2,
            ..HttpLimits::default()
        };
        let server = runtime.spawn(serve(
            listener,
            router,
            limits,
            async move {
                let _ = stopped.await;
            },
            10_000,
        ));
        let mut threads: Vec<String> = (0..4)
            .map(|_| {
                let (status, body) = get(address, "/thread").unwrap();
                assert!(status.contains("200"), "{status}");
                body
            })
            .collect();
        threads.sort();
        assert_eq!(
            threads,
            [
                "credence-http-0",
                "credence-http-0",
                "credence-http-1",
                "credence-http-1"
            ]
        );
        let slow = std::thread::spawn(move || get(address, "/slow"));
        while !SLOW_STARTED.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        stop.send(()).unwrap();
        // The listener closes at once; the running request is still waiting.
        while std::net::TcpStream::connect(address).is_ok() {
            std::thread::yield_now();
        }
        assert!(!slow.is_finished());
        release.send(true).unwrap();
        let (status, body) = slow.join().unwrap().unwrap();
        assert!(status.contains("200"), "{status}");
        assert_eq!(body, "done");
        runtime.block_on(server).unwrap().unwrap();
    }

    #[test]
    fn only_hypers_own_empty_error_answers_get_a_json_body() {
        let hyper_400 = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 03:34:39 GMT\r\n\r\n";
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 03:34:39 GMT\r\n\r\n";
        let routed = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 52\r\n\r\n{\"code\":\"malformed_json\",\"message\":\"x\",\"details\":null}";
        let empty_ok = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        let cases: &[(&[u8], Option<&str>)] = &[
            (hyper_400, Some("malformed_request")),
            (hyper_431, Some("headers_too_large")),
            (routed, None),
            (empty_ok, None),
        ];
        for (written, code) in cases {
            let replaced = json_error_for(written).map(|b| String::from_utf8(b).unwrap());
            match (code, replaced) {
                (None, None) => {}
                (Some(code), Some(text)) => {
                    let (head, body) = text.split_once("\r\n\r\n").unwrap();
                    assert!(head.starts_with(&String::from_utf8_lossy(&written[..12]).to_string()));
                    let json: serde_json::Value = serde_json::from_str(body).unwrap();
                    assert_eq!(json["code"], *code);
                    assert!(head.contains(&format!("content-length: {}", body.len())));
                }
                (code, replaced) => panic!("{code:?}: {replaced:?}"),
            }
        }
    }
}
