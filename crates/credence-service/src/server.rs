//! The HTTP/1.1 listener: accepts connections up to a cap, times out slow or idle clients, and drains open connections at shutdown.
//!
//! `axum::serve` sets no timer, so a connection that never finishes its headers is kept for
//! ever, and a few thousand of them exhaust the process's open files while costing the client
//! nothing. Here each connection is served by hyper with a header-read timeout (which, as
//! hyper starts it whenever a connection waits for a request's head, is also the keep-alive
//! idle timeout), the whole request — body included — runs under a deadline (the router's
//! `around` layer, `request_timeout_ms`), and connections beyond `max_connections` are closed as soon as
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
            let connection = http.serve_connection(TokioIo::new(JsonErrors::new(stream)), service);
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
