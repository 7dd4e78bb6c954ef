//! The HTTP/1.1 client of provider calls: a GET over a pool of kept-alive connections (plain TCP
//! or TLS), the whole exchange done inside the calling task.
//!
//! Why not a general-purpose client: hyper's pooled client runs each connection as a task of
//! its own and passes every request and response across channels between the two. At the
//! thousands of provider calls a second a busy service makes, that machinery was a large part
//! of the server's CPU (the measurement is in docs/benchmarks.md, "Decisions that call a
//! third-party provider"). A provider call is narrow — a GET with a few headers, a JSON answer,
//! a deadline set by the caller — so the exchange is written out here: the request in one
//! write, the response head parsed by `httparse`, the body framed by `Content-Length`, chunked
//! coding or the end of the connection.
//!
//! What it guarantees: a connection goes back to the pool only after a whole response was read
//! and the server did not ask to close; a call dropped mid-exchange (its deadline passed)
//! drops its connection; a call on a reused connection that the server had already closed is
//! made once more on a new connection (a GET is idempotent), never when any of the answer had
//! arrived.

use http::Uri;
use rustls_pki_types::ServerName;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Largest response head accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest response body accepted: a provider's JSON answer is kilobytes.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Idle connections kept per origin; more are closed on return.
const MAX_IDLE_PER_ORIGIN: usize = 1024;
/// An idle connection older than this is closed rather than reused (servers close theirs
/// after 5 s to a few minutes; this stays below most).
const IDLE_FOR_AT_MOST: Duration = Duration::from_secs(30);
/// Headers read from a response head at most.
const MAX_HEADERS: usize = 64;

/// A provider's answer: its status and its whole body.
#[derive(Debug)]
pub struct HttpAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The whole body.
    pub body: Vec<u8>,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(stream) => stream.write_all(bytes).await,
            Stream::Tls(stream) => {
                stream.write_all(bytes).await?;
                stream.flush().await
            }
        }
    }

    /// Reads what is there into `buffer`'s spare room; 0 at the end of the stream.
    async fn receive(&mut self, buffer: &mut Vec<u8>) -> std::io::Result<usize> {
        if buffer.capacity() - buffer.len() < 4096 {
            buffer.reserve(8192);
        }
        match self {
            Stream::Plain(stream) => stream.read_buf(buffer).await,
            Stream::Tls(stream) => stream.read_buf(buffer).await,
        }
    }
}

struct Idle {
    stream: Stream,
    since: Instant,
}

/// Where a URL points: the pool key and what connecting needs.
struct Target {
    https: bool,
    /// As the URL writes it (IPv6 in brackets), for the `Host` header and the pool key.
    authority: String,
    /// Without brackets, for connecting and for TLS.
    host: String,
    port: u16,
    path_and_query: String,
}

fn parse_target(url: &str) -> Result<Target, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("the URL {url} is not valid: {e}"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("the URL {url} must start with http:// or https://")),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| format!("the URL {url} names no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!(
            "the URL {url} carries user information; send credentials in a header"
        ));
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    Ok(Target {
        https,
        authority: authority.as_str().to_string(),
        host: host.to_string(),
        port,
        path_and_query: uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or("/")
            .to_string(),
    })
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The request bytes; a header that could split the request is refused, naming it.
fn request_bytes(target: &Target, headers: &[(String, String)]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(target.path_and_query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let given = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let defaults = [
        ("host", target.authority.as_str()),
        ("accept", "application/json"),
        (
            "user-agent",
            concat!("credence/", env!("CARGO_PKG_VERSION")),
        ),
    ];
    for (name, value) in defaults {
        if !given(name) {
            push_header(&mut out, name, value);
        }
    }
    for (name, value) in headers {
        if !is_token(name) {
            return Err(format!(
                "header name {name:?} is not an HTTP token; use letters, digits and -"
            ));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(format!(
                "header {name} holds a line break or NUL; remove it from the value"
            ));
        }
        push_header(&mut out, name, value);
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// How the body of a response ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

/// What the head of a response says, read out of the buffer.
struct Head {
    length: usize,
    status: u16,
    framing: Framing,
    keep_alive: bool,
}

/// Parses a response head at the start of `buffer`: `None` while it is incomplete.
fn parse_head(buffer: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let length = match response.parse(buffer) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if buffer.len() > MAX_HEAD_BYTES => {
            return Err(format!(
                "the response head is longer than {MAX_HEAD_BYTES} bytes"
            ))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(format!("the response is not HTTP/1.x: {error}")),
    };
    let status = response.code.unwrap_or(0);
    let version_1_1 = response.version == Some(1);
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut close = !version_1_1;
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            let parsed: usize = value
                .parse()
                .map_err(|_| format!("Content-Length {value:?} is not a number"))?;
            if content_length.is_some_and(|earlier| earlier != parsed) {
                return Err("the response has two different Content-Length headers".into());
            }
            content_length = Some(parsed);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            if !chunked {
                // Any other coding ends only with the connection.
                close = true;
            }
        } else if header.name.eq_ignore_ascii_case("connection") {
            for option in value.split(',').map(str::trim) {
                if option.eq_ignore_ascii_case("close") {
                    close = true;
                } else if option.eq_ignore_ascii_case("keep-alive") && !version_1_1 {
                    close = false;
                }
            }
        }
    }
    if status == 101 {
        // Switched to another protocol: not HTTP/1.1 any more.
        close = true;
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(length) = content_length {
        Framing::Length(length)
    } else {
        close = true;
        Framing::UntilClose
    };
    if let Framing::Length(length) = framing {
        if length > MAX_BODY_BYTES {
            return Err(too_large());
        }
    }
    Ok(Some(Head {
        length,
        status,
        framing,
        keep_alive: !close,
    }))
}

fn too_large() -> String {
    format!("the answer is larger than {} MiB", MAX_BODY_BYTES >> 20)
}

/// Why an exchange failed, and whether it may be made again on a new connection.
struct Failed {
    message: String,
    /// Nothing of the answer had arrived on a reused connection: the server had closed it.
    stale: bool,
}

/// Reads one response from `stream`, `buffer` holding what was already read. Returns the answer
/// and whether the connection may carry another request.
async fn read_response(
    stream: &mut Stream,
    buffer: &mut Vec<u8>,
    reused: bool,
) -> Result<(HttpAnswer, bool), Failed> {
    let failed = |message: String| Failed {
        message,
        stale: false,
    };
    let head = loop {
        if !buffer.is_empty() {
            if let Some(head) = parse_head(buffer).map_err(failed)? {
                if (100..200).contains(&head.status) && head.status != 101 {
                    // An interim answer: the real one follows.
                    buffer.drain(..head.length);
                    continue;
                }
                break head;
            }
        }
        match stream.receive(buffer).await {
            Ok(0) if buffer.is_empty() => {
                return Err(Failed {
                    message: "the provider closed the connection without answering".into(),
                    stale: reused,
                })
            }
            Ok(0) => {
                return Err(failed(
                    "the connection ended inside the response head".into(),
                ))
            }
            Ok(_) => {}
            Err(error) => {
                return Err(Failed {
                    stale: reused && buffer.is_empty(),
                    message: format!("reading the answer failed: {error}"),
                })
            }
        }
    };
    let mut keep_alive = head.keep_alive;
    let mut at = head.length;
    let body = match head.framing {
        Framing::Empty => Vec::new(),
        Framing::Length(length) => {
            fill(stream, buffer, at + length).await.map_err(failed)?;
            at += length;
            buffer[head.length..at].to_vec()
        }
        Framing::UntilClose => {
            loop {
                if buffer.len() - at > MAX_BODY_BYTES {
                    return Err(failed(too_large()));
                }
                match stream.receive(buffer).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(error) => {
                        return Err(failed(format!("reading the answer failed: {error}")))
                    }
                }
            }
            keep_alive = false;
            let body = buffer[at..].to_vec();
            at = buffer.len();
            body
        }
        Framing::Chunked => {
            let mut body = Vec::new();
            loop {
                let size_end = line_end(stream, buffer, at).await.map_err(failed)?;
                let line = std::str::from_utf8(&buffer[at..size_end]).unwrap_or("");
                let size_text = line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_text, 16).map_err(|_| {
                    failed(format!("a chunk size {size_text:?} is not hexadecimal"))
                })?;
                at = size_end + 2;
                if size == 0 {
                    // Trailers, if any, up to the empty line.
                    loop {
                        let end = line_end(stream, buffer, at).await.map_err(failed)?;
                        let empty = end == at;
                        at = end + 2;
                        if empty {
                            break;
                        }
                    }
                    break body;
                }
                if body.len() + size > MAX_BODY_BYTES {
                    return Err(failed(too_large()));
                }
                fill(stream, buffer, at + size + 2).await.map_err(failed)?;
                body.extend_from_slice(&buffer[at..at + size]);
                if &buffer[at + size..at + size + 2] != b"\r\n" {
                    return Err(failed("a chunk does not end with CRLF".into()));
                }
                at += size + 2;
            }
        }
    };
    // Bytes past the answer were never asked for: the connection is not trusted again.
    if at != buffer.len() {
        keep_alive = false;
    }
    Ok((
        HttpAnswer {
            status: head.status,
            body,
        },
        keep_alive,
    ))
}

/// Reads until `buffer` holds at least `wanted` bytes.
async fn fill(stream: &mut Stream, buffer: &mut Vec<u8>, wanted: usize) -> Result<(), String> {
    while buffer.len() < wanted {
        match stream.receive(buffer).await {
            Ok(0) => return Err("the connection ended inside the answer".into()),
            Ok(_) => {}
            Err(error) => return Err(format!("reading the answer failed: {error}")),
        }
    }
    Ok(())
}

/// The position of the next CRLF at or after `from`, reading as needed (lines of chunked
/// coding are short: a longer one is refused).
async fn line_end(stream: &mut Stream, buffer: &mut Vec<u8>, from: usize) -> Result<usize, String> {
    loop {
        if let Some(offset) = buffer[from.min(buffer.len())..]
            .windows(2)
            .position(|w| w == b"\r\n")
        {
            return Ok(from + offset);
        }
        if buffer.len() - from > 4096 {
            return Err("a line of the chunked answer is longer than 4 KiB".into());
        }
        fill(stream, buffer, buffer.len() + 1).await?;
    }
}

/// A GET ready to send: where to, and its bytes. Building it checks the URL and the headers,
/// so a request that could never be sent is refused before any attempt.
pub struct PreparedGet {
    target: Target,
    request: Vec<u8>,
    /// The pool key of the origin.
    key: String,
}

impl PreparedGet {
    /// A GET of `url` with `headers`, checked and written out once; errors name what is wrong.
    pub fn new(url: &str, headers: &[(String, String)]) -> Result<PreparedGet, String> {
        let target = parse_target(url)?;
        let request = request_bytes(&target, headers)?;
        let key = format!(
            "{}://{}:{}",
            if target.https { "https" } else { "http" },
            target.host,
            target.port
        );
        Ok(PreparedGet {
            target,
            request,
            key,
        })
    }
}

/// The provider client of a process: TLS settings and the idle connections by origin.
pub struct ProviderHttp {
    tls: tokio_rustls::TlsConnector,
    /// The TLS set-up, for other clients that must trust what provider calls trust.
    tls_config: Arc<rustls::ClientConfig>,
    idle: Mutex<HashMap<String, Vec<Idle>>>,
}

impl ProviderHttp {
    /// The TLS set-up these calls use: Mozilla's roots and the operator's CAs.
    pub fn tls_config(&self) -> Arc<rustls::ClientConfig> {
        self.tls_config.clone()
    }

    /// A client with no connections yet, using `tls` for `https` URLs.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> ProviderHttp {
        ProviderHttp {
            tls: tokio_rustls::TlsConnector::from(tls.clone()),
            tls_config: tls,
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// Connections waiting for reuse, all origins together.
    pub fn idle_connections(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(Vec::len)
            .sum()
    }

    fn checkout(&self, key: &str) -> Option<Stream> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let connections = idle.get_mut(key)?;
        let now = Instant::now();
        // Most recently used first: it is the least likely to have been closed.
        while let Some(connection) = connections.pop() {
            if now.duration_since(connection.since) < IDLE_FOR_AT_MOST {
                return Some(connection.stream);
            }
        }
        None
    }

    fn give_back(&self, key: String, stream: Stream) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let connections = idle.entry(key).or_default();
        if connections.len() < MAX_IDLE_PER_ORIGIN {
            connections.push(Idle {
                stream,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self, target: &Target) -> Result<Stream, String> {
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", target.authority))?;
        let _ = tcp.set_nodelay(true);
        if !target.https {
            return Ok(Stream::Plain(tcp));
        }
        let name = ServerName::try_from(target.host.clone())
            .map_err(|e| format!("{} is not a usable TLS server name: {e}", target.host))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {} failed: {e}", target.authority))?;
        Ok(Stream::Tls(Box::new(tls)))
    }

    /// GETs a prepared request: the answer, or why there is none (a message for the call's
    /// record). No deadline of its own: the caller drops the future when its time is up.
    pub async fn get(&self, prepared: &PreparedGet) -> Result<HttpAnswer, String> {
        let PreparedGet {
            target,
            request,
            key,
        } = prepared;
        let mut pooled = self.checkout(key);
        loop {
            let reused = pooled.is_some();
            let mut stream = match pooled.take() {
                Some(stream) => stream,
                None => self.connect(target).await?,
            };
            let mut buffer = Vec::with_capacity(8192);
            let outcome = match stream.send(request).await {
                Ok(()) => read_response(&mut stream, &mut buffer, reused).await,
                Err(error) => Err(Failed {
                    message: format!("sending the request failed: {error}"),
                    stale: reused,
                }),
            };
            match outcome {
                Ok((answer, keep_alive)) => {
                    if keep_alive {
                        self.give_back(key.clone(), stream);
                    }
                    return Ok(answer);
                }
                // The server had closed the kept connection: once more on a new one.
                Err(failed) if failed.stale => continue,
                Err(failed) => return Err(failed.message),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::net::TcpListener;

    fn client() -> ProviderHttp {
        let roots = rustls::RootCertStore::empty();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        ProviderHttp::new(Arc::new(tls))
    }

    /// A server that answers each request on a connection with the next of `answers` (raw
    /// bytes, each possibly in pieces), closing after the last; counts connections accepted.
    async fn scripted(
        answers: Vec<Vec<&'static [u8]>>,
        per_connection: usize,
    ) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let answers = Arc::new(Mutex::new(answers.into_iter()));
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                let answers = answers.clone();
                tokio::spawn(async move {
                    for _ in 0..per_connection {
                        let mut seen = Vec::new();
                        let mut chunk = [0u8; 1024];
                        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => seen.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let Some(pieces) = answers.lock().unwrap().next() else {
                            return;
                        };
                        for piece in pieces {
                            socket.write_all(piece).await.unwrap();
                            socket.flush().await.unwrap();
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    #[tokio::test]
    async fn bodies_are_framed_by_length_chunks_or_the_end_of_the_connection() {
        // (pieces the server sends, status, body expected, connection kept)
        let cases: Vec<(Vec<&'static [u8]>, u16, &str, bool)> = vec![
            (
                vec![b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}"],
                200,
                "{\"a\":1}",
                true,
            ),
            (
                vec![b"HTTP/1.1 200 OK\r\nContent-Le", b"ngth: 7\r\n\r\n{\"a\"", b":1}"],
                200,
                "{\"a\":1}",
                true,
            ),
            (
                vec![
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\n{\"a\"\r\n",
                    b"3\r\n:1}\r\n0\r\nTrailer: t\r\n\r\n",
                ],
                200,
                "{\"a\":1}",
                true,
            ),
            (
                vec![b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy"],
                503,
                "busy",
                true,
            ),
            (
                vec![b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"],
                200,
                "{}",
                false,
            ),
            (vec![b"HTTP/1.0 200 OK\r\n\r\n{\"b\":2}"], 200, "{\"b\":2}", false),
            (vec![b"HTTP/1.1 204 No Content\r\n\r\n"], 204, "", true),
        ];
        for (pieces, status, body, kept) in cases {
            let (url, _) = scripted(vec![pieces.clone()], 1).await;
            let http = client();
            let request = PreparedGet::new(&format!("{url}/r"), &[]).unwrap();
            let answer = http.get(&request).await.unwrap();
            assert_eq!(answer.status, status, "{pieces:?}");
            assert_eq!(String::from_utf8(answer.body).unwrap(), body, "{pieces:?}");
            assert_eq!(http.idle_connections(), usize::from(kept), "{pieces:?}");
        }
    }

    #[tokio::test]
    async fn answers_that_do_not_parse_are_failures_that_name_the_fault() {
        let cases: Vec<(Vec<&'static [u8]>, &str)> = vec![
            (vec![b"{\"report\": <html>oops"], "not HTTP/1.x"),
            (
                vec![b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n"],
                "Content-Length",
            ),
            (
                vec![b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"],
                "two different Content-Length",
            ),
            (
                vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"],
                "ended inside the answer",
            ),
            (
                vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
                "not hexadecimal",
            ),
            (
                vec![b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n"],
                "larger than 8 MiB",
            ),
        ];
        for (pieces, expected) in cases {
            let (url, _) = scripted(vec![pieces.clone()], 1).await;
            let request = PreparedGet::new(&url, &[]).unwrap();
            let error = client().get(&request).await.unwrap_err();
            assert!(error.contains(expected), "{pieces:?}: {error}");
        }
    }

    #[tokio::test]
    async fn kept_connections_are_reused_and_a_closed_one_is_replaced_once() {
        let ok: &'static [u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        // One answer per connection, without saying so: the second call finds the kept
        // connection closed and makes the call again on a new one.
        let (url, accepted) = scripted(vec![vec![ok], vec![ok], vec![ok]], 1).await;
        let http = client();
        let request = PreparedGet::new(&url, &[]).unwrap();
        for _ in 0..3 {
            assert_eq!(http.get(&request).await.unwrap().status, 200);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);

        // A server that keeps its connections serves every call on the first one.
        let (url, accepted) = scripted(vec![vec![ok]; 5], 5).await;
        let http = client();
        let request = PreparedGet::new(&url, &[]).unwrap();
        for _ in 0..5 {
            assert_eq!(http.get(&request).await.unwrap().status, 200);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(http.idle_connections(), 1);
    }

    #[test]
    fn requests_carry_the_headers_given_and_refuse_ones_that_would_split_them() {
        let target = parse_target("http://[::1]:8080/v1/r/C%201?k=1").unwrap();
        assert_eq!((target.host.as_str(), target.port), ("::1", 8080));
        let bytes = request_bytes(
            &target,
            &[
                ("Authorization".into(), "Bearer t".into()),
                ("Accept".into(), "text/json".into()),
            ],
        )
        .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.starts_with("GET /v1/r/C%201?k=1 HTTP/1.1\r\nhost: [::1]:8080\r\n"),
            "{text}"
        );
        assert!(text.contains("Authorization: Bearer t\r\n"), "{text}");
        assert!(
            text.contains("Accept: text/json\r\n") && !text.contains("application/json"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\n"));

        let injected = request_bytes(&target, &[("X-A".into(), "v\r\nX-B: w".into())]);
        assert!(injected
            .unwrap_err()
            .contains("header X-A holds a line break"));
        assert!(request_bytes(&target, &[("X A".into(), "v".into())]).is_err());
        for (url, expected) in [
            ("ftp://h/x", "must start with http:// or https://"),
            ("http://user:pw@h/x", "user information"),
            ("not a url", "is not valid"),
        ] {
            let error = parse_target(url).err().unwrap();
            assert!(error.contains(expected), "{url}: {error}");
        }
        assert_eq!(parse_target("https://h").unwrap().path_and_query, "/");
        assert_eq!(parse_target("https://h").unwrap().port, 443);
    }
}
