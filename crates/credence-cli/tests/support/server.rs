//! Starts the real `credence serve` binary on a free port and speaks HTTP to it; shared by
//! the service integration tests (included with `#[path]`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_credence");

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn example_input(name: &str) -> serde_json::Value {
    let path = repo_root()
        .join("examples/consumer-loan/samples")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A fresh directory under the target directory, removed first if it exists.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub struct Server {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    /// The PostgreSQL it keeps its state in, when started with `--database-url`.
    pub database_url: Option<String>,
}

impl Server {
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Server::start_with_env(data_dir, extra, &[])
    }

    pub fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let log_path = data_dir.with_extension("log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(["--strategy-refresh-ms", "100"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("credence serve starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = lines
            .next()
            .expect("the server prints its URL")
            .expect("stdout is readable");
        let url = first
            .strip_prefix("credence listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_string();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        let database_url = extra
            .iter()
            .position(|a| *a == "--database-url")
            .and_then(|i| extra.get(i + 1))
            .map(|url| url.to_string());
        Server {
            child,
            url,
            data_dir: data_dir.to_path_buf(),
            log_path,
            database_url,
        }
    }

    /// A new key on the server's store (its data directory or its database).
    pub fn key(&self, roles: &str, user: &str) -> String {
        match &self.database_url {
            Some(url) => create_key_in(&["--database-url", url], roles, user),
            None => create_key(&self.data_dir, roles, user),
        }
    }

    /// The Prometheus text of `/metrics` (open: scrapers carry no key).
    pub fn metrics(&self) -> String {
        ureq::get(&format!("{}/metrics", self.url))
            .call()
            .unwrap()
            .into_string()
            .unwrap()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn create_key(data_dir: &Path, roles: &str, user: &str) -> String {
    create_key_in(&["--data-dir", data_dir.to_str().unwrap()], roles, user)
}

/// A new key in the store named by `place` (`--data-dir DIR` or `--database-url URL`).
pub fn create_key_in(place: &[&str], roles: &str, user: &str) -> String {
    let output = Command::new(BIN)
        .args(["keys", "create"])
        .args(place)
        .args(["--role", roles, "--user", user])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string()
}

/// An HTTP answer: status, selected headers and the body parsed as JSON (Null if not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub json: serde_json::Value,
    pub replayed: bool,
}

pub fn request(
    method: &str,
    url: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Answer {
    let mut req = ureq::request(method, url).timeout(std::time::Duration::from_secs(60));
    if let Some(key) = key {
        req = req.set("Authorization", &format!("Bearer {key}"));
    }
    for (name, value) in headers {
        req = req.set(name, value);
    }
    let result = match body {
        Some(body) => req.send_bytes(body),
        None => req.call(),
    };
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("{method} {url}: {error}"),
    };
    let status = response.status();
    let replayed = response.header("idempotent-replayed") == Some("true");
    let text = response.into_string().unwrap_or_default();
    Answer {
        status,
        json: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        replayed,
    }
}

pub fn post_json(
    url: &str,
    key: &str,
    body: &serde_json::Value,
    headers: &[(&str, &str)],
) -> Answer {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    request(
        "POST",
        url,
        Some(key),
        &all,
        Some(body.to_string().as_bytes()),
    )
}

pub fn get(url: &str, key: &str) -> Answer {
    request("GET", url, Some(key), &[], None)
}

/// Decides the example application that is referred (with a `decide` key); its decision.
pub fn refer_application(server: &Server, key: &str) -> serde_json::Value {
    let referred = post_json(
        &format!("{}/v1/decisions/application", server.url),
        key,
        &example_input("application-refer.json"),
        &[],
    );
    assert_eq!(referred.json["outcome"], "refer", "{}", referred.json);
    referred.json
}

/// Runs `credence audit verify`; returns (exit code, output).
pub fn audit_verify(data_dir: &Path) -> (i32, String) {
    let output = Command::new(BIN)
        .args(["audit", "verify", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// Copies the example package to `dest` so a test can change it.
pub fn copy_example(dest: &Path) {
    copy_dir(&repo_root().join("examples/consumer-loan"), dest);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
