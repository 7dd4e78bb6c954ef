//! `credence-loadgen`: POSTs a JSON body (or GETs a path) at a fixed rate (open loop) and reports the latency of
//! each request from the moment it was due, not from when it was sent.
//!
//! Why not wrk alone: wrk keeps N connections busy (a closed loop), so its rate is whatever
//! the server manages at that concurrency, and a request held up behind a slow one is never
//! sent at all — its wait goes unmeasured. "Sustains 2,000 decisions/s with p99 ≤ X" asks for
//! the other kind of test: requests arrive at 2,000/s whatever happens to earlier ones, as
//! they would from many independent clients, and a request that could not be sent on time
//! counts its wait.
//!
//! Each millisecond, the requests due in it are sent; their latency counts from when each was
//! due, so the generator's own lag (under a millisecond) counts against the server. (Pacing
//! each request to its exact moment from a thread of its own was tried: its wake-ups every
//! 500 µs at 2,000/s cost the machine more than they took off the measurement.) Requests go
//! out on kept-alive HTTP/1.1 connections, opened as needed up to `--max-connections`. `{n}` in the body is replaced by the request's number, so each
//! request can be a new customer. Runs on one thread, like `wrk -t1`.

use anyhow::{bail, Context};
use clap::Parser;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

#[derive(Parser)]
#[command(about = "Open-loop HTTP load at a fixed rate")]
struct Args {
    /// `http://host:port/path` to POST to.
    url: String,
    /// Requests per second.
    #[arg(long)]
    rate: u32,
    /// How long to send, in seconds (after the warm-up).
    #[arg(long, default_value_t = 20)]
    duration_s: u64,
    /// Seconds of load before measuring (not reported).
    #[arg(long, default_value_t = 3)]
    warmup_s: u64,
    /// The JSON body; `{n}` becomes the request's number.
    #[arg(long, required_unless_present = "get")]
    body_file: Option<std::path::PathBuf>,
    /// Send bodiless GETs instead of POSTs (a floor such as `/healthz`).
    #[arg(long)]
    get: bool,
    /// Extra request headers, `Name: value`.
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Connections opened at most; a request due when all are busy waits for one (and its wait
    /// counts).
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Writes every measured request as `due_ms,latency_ms,send_lag_ms` (CSV, due time from the
    /// start of the run) for a look at when the slow ones happened.
    #[arg(long)]
    samples_csv: Option<std::path::PathBuf>,
}

struct Target {
    host_port: String,
    path: String,
}

fn parse_url(url: &str) -> anyhow::Result<Target> {
    let rest = url
        .strip_prefix("http://")
        .context("the URL must start with http://")?;
    let (host_port, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if host_port.is_empty() {
        bail!("the URL names no host");
    }
    Ok(Target {
        host_port: host_port.to_string(),
        path: path.to_string(),
    })
}

/// What one request came to.
#[derive(Clone, Copy)]
struct Sample {
    /// When it was due, from the start of the run.
    due_us: u64,
    /// From the moment it was due to the end of its answer.
    latency_us: u64,
    /// From the moment it was due to the moment its first byte was written: the generator's
    /// own lag (its 1 ms tick, its CPU) plus any wait for a free connection.
    send_lag_us: u64,
    /// Whether the answer was a 2xx.
    ok: bool,
    /// Whether it was due after the warm-up.
    measured: bool,
}

/// Sends one request on `stream` and reads the answer's status, skipping its body.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> std::io::Result<u16> {
    stream.write_all(request).await?;
    buffer.clear();
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let (head_length, status, body_length) = loop {
        if stream.read_buf(buffer).await? == 0 {
            return Err(invalid("the server closed the connection"));
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(buffer) {
            Ok(httparse::Status::Complete(length)) => {
                let body_length = response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| {
                        std::str::from_utf8(h.value)
                            .ok()?
                            .trim()
                            .parse::<usize>()
                            .ok()
                    })
                    .ok_or_else(|| invalid("the answer has no Content-Length"))?;
                break (length, response.code.unwrap_or(0), body_length);
            }
            Ok(httparse::Status::Partial) => {}
            Err(_) => return Err(invalid("the answer is not HTTP")),
        }
    };
    while buffer.len() < head_length + body_length {
        if stream.read_buf(buffer).await? == 0 {
            return Err(invalid("the server closed the connection mid-answer"));
        }
    }
    Ok(status)
}

/// p50, p90, p99 and p99.9 of sorted microseconds, in milliseconds.
fn spread_ms(sorted: &[u64]) -> String {
    let [p50, p90, p99, p999] =
        [50.0, 90.0, 99.0, 99.9].map(|p| percentile(sorted, p) as f64 / 1000.0);
    format!("p50 {p50:.1} ms, p90 {p90:.1} ms, p99 {p99:.1} ms, p99.9 {p999:.1} ms")
}

/// The `p`th percentile (0–100, to a tenth) of sorted values.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // Nearest rank, in tenths of a per cent so that 99.9 is exact (0.999 is not, in binary).
    let tenths = (p * 10.0).round().clamp(0.0, 1000.0) as usize;
    let rank = (tenths * sorted.len()).div_ceil(1000);
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.rate == 0 {
        bail!("--rate: give requests per second, e.g. 2000");
    }
    let target = parse_url(&args.url)?;
    let template = match &args.body_file {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => String::new(),
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(args, target, template))
}

async fn run(args: Args, target: Target, template: String) -> anyhow::Result<()> {
    let mut head = if args.get {
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\n",
            target.path, target.host_port
        )
    } else {
        format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n",
            target.path, target.host_port
        )
    };
    for header in &args.headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    let head: Arc<str> = head.into();
    let template: Arc<str> = template.into();
    let idle: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
    let permits = Arc::new(tokio::sync::Semaphore::new(args.max_connections));
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));

    let period = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup_s);
    let total = u64::from(args.rate) * (args.warmup_s + args.duration_s);
    let mut tasks = tokio::task::JoinSet::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent: u64 = 0;
    while sent < total {
        ticker.tick().await;
        // Every request due by now goes out, each counted from when it was due.
        let now = Instant::now();
        while sent < total {
            let due = start + period.mul_f64(sent as f64);
            if due > now {
                break;
            }
            let n = sent;
            sent += 1;
            let body = template.replace("{n}", &n.to_string());
            let mut request = Vec::with_capacity(head.len() + body.len() + 32);
            request.extend_from_slice(head.as_bytes());
            if args.get {
                request.extend_from_slice(b"\r\n");
            } else {
                request.extend_from_slice(
                    format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes(),
                );
                request.extend_from_slice(body.as_bytes());
            }
            let (idle, permits, samples, failures, host_port) = (
                idle.clone(),
                permits.clone(),
                samples.clone(),
                failures.clone(),
                target.host_port.clone(),
            );
            tasks.spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return;
                };
                let pooled = idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let mut stream = match pooled {
                    Some(stream) => stream,
                    None => match TcpStream::connect(&host_port).await {
                        Ok(stream) => {
                            let _ = stream.set_nodelay(true);
                            stream
                        }
                        Err(error) => {
                            failures
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(error.to_string());
                            return;
                        }
                    },
                };
                let mut buffer = Vec::with_capacity(16 * 1024);
                let send_lag_us = due.elapsed().as_micros() as u64;
                let result = exchange(&mut stream, &request, &mut buffer).await;
                let latency_us = due.elapsed().as_micros() as u64;
                let measured = due >= measure_from;
                match result {
                    Ok(status) => {
                        idle.lock().unwrap_or_else(|e| e.into_inner()).push(stream);
                        samples
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(Sample {
                                due_us: due.duration_since(start).as_micros() as u64,
                                latency_us,
                                send_lag_us,
                                ok: (200..300).contains(&status),
                                measured,
                            });
                    }
                    Err(error) => {
                        failures
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(error.to_string());
                    }
                }
            });
        }
        while tasks.try_join_next().is_some() {}
    }
    let sending_s = start.elapsed().as_secs_f64();
    while tasks.join_next().await.is_some() {}

    let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let failures = failures.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let measured: Vec<Sample> = samples.iter().copied().filter(|s| s.measured).collect();
    let mut latencies: Vec<u64> = measured.iter().map(|s| s.latency_us).collect();
    latencies.sort_unstable();
    let not_ok = measured.iter().filter(|s| !s.ok).count();
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "rate {}/s for {} s (after {} s warm-up): {} answered, {} not 2xx, {} failed; sending took {:.1} s",
        args.rate,
        args.duration_s,
        args.warmup_s,
        measured.len(),
        not_ok,
        failures.len(),
        sending_s
    );
    println!(
        "latency from the scheduled time: {}, max {:.1} ms",
        spread_ms(&latencies),
        ms(latencies.last().copied().unwrap_or(0)),
    );
    // The same requests timed from when each was written: what the server and the network
    // took, without the generator's own lag. For reading the one above, not instead of it.
    let mut from_sending: Vec<u64> = measured
        .iter()
        .map(|s| s.latency_us.saturating_sub(s.send_lag_us))
        .collect();
    from_sending.sort_unstable();
    let mut lags: Vec<u64> = measured.iter().map(|s| s.send_lag_us).collect();
    lags.sort_unstable();
    println!(
        "latency from sending: {}; sent after it was due by p50 {:.2} ms, p99 {:.2} ms",
        spread_ms(&from_sending),
        ms(percentile(&lags, 50.0)),
        ms(percentile(&lags, 99.0)),
    );
    if let Some(path) = &args.samples_csv {
        let mut csv = String::from("due_ms,latency_ms,send_lag_ms\n");
        for sample in &measured {
            csv.push_str(&format!(
                "{:.3},{:.3},{:.3}\n",
                sample.due_us as f64 / 1000.0,
                ms(sample.latency_us),
                ms(sample.send_lag_us)
            ));
        }
        std::fs::write(path, csv).with_context(|| format!("writing {}", path.display()))?;
    }
    for failure in failures.iter().take(3) {
        eprintln!("failed: {failure}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=1000).collect();
        let cases = [
            (50.0, 500),
            (99.0, 990),
            (99.9, 999),
            (100.0, 1000),
            (0.0, 1),
        ];
        for (p, expected) in cases {
            assert_eq!(percentile(&values, p), expected, "p{p}");
        }
        assert_eq!(percentile(&[], 99.0), 0);
        assert_eq!(
            spread_ms(&values.iter().map(|v| v * 100).collect::<Vec<_>>()),
            "p50 50.0 ms, p90 90.0 ms, p99 99.0 ms, p99.9 99.9 ms"
        );
    }

    #[test]
    fn urls_split_into_host_and_path() {
        let target = parse_url("http://127.0.0.1:8080/v1/decisions/application").unwrap();
        assert_eq!(target.host_port, "127.0.0.1:8080");
        assert_eq!(target.path, "/v1/decisions/application");
        assert_eq!(parse_url("http://h:1").unwrap().path, "/");
        assert!(parse_url("https://h/x").is_err());
        assert!(parse_url("http:///x").is_err());
    }
}
