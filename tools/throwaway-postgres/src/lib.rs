//! A throwaway PostgreSQL cluster for tests: one per test process on a private port, a fresh database per test, stopped when the process ends.
//!
//! [`cluster`] gives the process's cluster, started at first use:
//! - with `CREDENCE_TEST_DATABASE_URL` set (a superuser URL), that server is used as it is;
//! - otherwise a cluster is made with `initdb` in a temporary folder and its postmaster
//!   started as a child of a thread that lives as long as the process, with the parent-death
//!   signal set to `SIGQUIT` (PostgreSQL's immediate shutdown): when the test process ends,
//!   however it ends, the server goes with it. As root, the cluster belongs to the `postgres`
//!   user (PostgreSQL refuses to run as root).
//!
//! The binaries are looked up in `CREDENCE_POSTGRES_BIN`, then under `/usr/lib/postgresql/*/bin`
//! (newest first). Where there are none, [`cluster`] returns `None` and tests skip with a
//! message — unless `CREDENCE_REQUIRE_POSTGRES` is set (CI sets it), where it panics.
//!
//! The cluster runs with `fsync=off`: it is thrown away, and tests measure behaviour, not
//! speed. Benchmarks start their own server (`tools/postgres/start.sh`).

#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running PostgreSQL server that tests may create databases on.
pub struct Cluster {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    /// The binaries' folder, for tools that need `pg_dump` and the like (`None` for a server
    /// given by URL).
    pub bin_dir: Option<PathBuf>,
}

static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();

/// The process's cluster, started at first call; `None` (after a message on stderr) when no
/// PostgreSQL is installed and none is required.
pub fn cluster() -> Option<&'static Cluster> {
    CLUSTER
        .get_or_init(|| match std::env::var("CREDENCE_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Some(Cluster::from_url(&url)),
            _ => start(),
        })
        .as_ref()
}

/// [`cluster`], or a skip message naming the test: `let Some(pg) = require("name") else { return };`.
pub fn require(test: &str) -> Option<&'static Cluster> {
    let found = cluster();
    if found.is_none() {
        eprintln!(
            "{test}: skipped: no PostgreSQL here (set CREDENCE_POSTGRES_BIN or install postgresql)"
        );
    }
    found
}

impl Cluster {
    fn from_url(url: &str) -> Cluster {
        let config: tokio_postgres::Config = url
            .parse()
            .unwrap_or_else(|e| panic!("CREDENCE_TEST_DATABASE_URL is not a PostgreSQL URL: {e}"));
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => "127.0.0.1".to_string(),
        };
        Cluster {
            host,
            port: config.get_ports().first().copied().unwrap_or(5432),
            user: config.get_user().unwrap_or("postgres").to_string(),
            password: config
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            bin_dir: None,
        }
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        match &self.password {
            Some(password) => format!(
                "postgres://{}:{}@{}:{}/{name}",
                self.user, password, self.host, self.port
            ),
            None => format!(
                "postgres://{}@{}:{}/{name}",
                self.user, self.host, self.port
            ),
        }
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates an empty database (dropping one of the same name first) and returns its URL.
    /// Names are made unique per process by the caller's test name and the process id.
    pub fn fresh_database(&self, test: &str) -> String {
        let name: String = format!("t_{}_{}", std::process::id(), test)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(63)
            .collect();
        let admin = self.url("postgres");
        let created = name.clone();
        block_on(async move {
            let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                .await
                .expect("connecting to the test server");
            let running = tokio::spawn(connection);
            client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {created} WITH (FORCE)"))
                .await
                .expect("dropping an old test database");
            client
                .batch_execute(&format!("CREATE DATABASE {created}"))
                .await
                .expect("creating a test database");
            drop(client);
            let _ = running.await;
        });
        self.url(&name)
    }
}

/// Runs `future` to completion on a thread of its own (callers may be inside a runtime).
fn block_on<F>(future: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the test server's set-up")
            .block_on(future)
    })
    .join()
    .expect("the test server's set-up")
}

fn bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("CREDENCE_POSTGRES_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The uid and gid of the `postgres` user, when running as root.
fn postgres_user() -> Option<(libc::uid_t, libc::gid_t)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = c"postgres";
    // SAFETY: a NUL-terminated name; the returned pointer is read at once, before any other
    // call to the passwd functions.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        panic!("running as root, and there is no `postgres` user to run PostgreSQL as");
    }
    // SAFETY: not null, see above.
    unsafe { Some(((*entry).pw_uid, (*entry).pw_gid)) }
}

fn start() -> Option<Cluster> {
    start_in("", &[], &[])
}

/// A cluster of the test's own (beside the process's shared one), with server `settings`
/// (`name=value`) and `files` written into its data directory first, owned by the server with
/// mode 0600 (a TLS key and certificate, say). `None` (after a message) without PostgreSQL,
/// unless it is required. Always started here, even when `CREDENCE_TEST_DATABASE_URL` names a
/// server: the settings need a server of the test's own.
pub fn private_cluster(test: &str, settings: &[&str], files: &[(&str, &[u8])]) -> Option<Cluster> {
    let cluster = start_in(test, settings, files);
    if cluster.is_none() {
        eprintln!(
            "{test}: skipped: no PostgreSQL here (set CREDENCE_POSTGRES_BIN or install postgresql)"
        );
    }
    cluster
}

fn start_in(name: &str, settings: &[&str], files: &[(&str, &[u8])]) -> Option<Cluster> {
    let Some(bin) = bin_dir() else {
        if std::env::var_os("CREDENCE_REQUIRE_POSTGRES").is_some() {
            panic!("CREDENCE_REQUIRE_POSTGRES is set and no PostgreSQL is installed (looked in CREDENCE_POSTGRES_BIN and /usr/lib/postgresql/*/bin)");
        }
        return None;
    };
    remove_stale_clusters();
    let suffix = if name.is_empty() {
        String::new()
    } else {
        format!("-{name}")
    };
    let dir = std::env::temp_dir().join(format!("credence-pg-{}{suffix}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the test cluster's folder");
    let owner = postgres_user();
    if let Some((uid, gid)) = owner {
        chown(&dir, uid, gid);
    }
    let data = dir.join("data");
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        .arg("-D")
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    as_user(&mut initdb, owner, false);
    let output = initdb.output().expect("running initdb");
    assert!(
        output.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (file, bytes) in files {
        let path = data.join(file);
        std::fs::write(&path, bytes).expect("writing a file into the test cluster");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .expect("making a test cluster's file private");
        if let Some((uid, gid)) = owner {
            chown(&path, uid, gid);
        }
    }
    let port = free_port();
    let log = std::fs::File::create(dir.join("server.log")).expect("creating the server log");
    if let Some((uid, gid)) = owner {
        chown(&dir.join("server.log"), uid, gid);
    }
    let mut postgres = Command::new(bin.join("postgres"));
    postgres
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-k"])
        .arg(&dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=64MB",
        ])
        .args(settings.iter().flat_map(|setting| ["-c", setting]))
        .stdout(Stdio::null())
        .stderr(log);
    as_user(&mut postgres, owner, true);
    let (started, spawned) = std::sync::mpsc::channel();
    // The postmaster's parent is this thread, which never ends: the parent-death signal comes
    // when the process does.
    std::thread::Builder::new()
        .name("throwaway-postgres".into())
        .spawn(move || {
            let child = postgres.spawn();
            let mut child = match child {
                Ok(child) => {
                    let _ = started.send(Ok(()));
                    child
                }
                Err(error) => {
                    let _ = started.send(Err(error.to_string()));
                    return;
                }
            };
            let _ = child.wait();
            // The server stopped on its own: keep the thread (the parent) alive regardless.
            loop {
                std::thread::park();
            }
        })
        .expect("starting the server's thread");
    spawned
        .recv()
        .expect("the server's thread")
        .unwrap_or_else(|e| panic!("starting postgres: {e}"));
    let cluster = Cluster {
        host: "127.0.0.1".into(),
        port,
        user: "postgres".into(),
        password: None,
        bin_dir: Some(bin),
    };
    wait_until_ready(&cluster, &dir);
    Some(cluster)
}

fn wait_until_ready(cluster: &Cluster, dir: &Path) {
    let started = Instant::now();
    loop {
        let url = cluster.url("postgres");
        let attempt = block_on(async move {
            tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .map(|_| ())
        });
        match attempt {
            Ok(()) => return,
            Err(error) if started.elapsed() > Duration::from_secs(30) => panic!(
                "the test server did not start in 30 s: {error}; its log: {}",
                std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
            ),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Runs `command` as the `postgres` user when root; with `die_with_parent`, it gets SIGQUIT
/// when its parent thread ends.
fn as_user(
    command: &mut Command,
    owner: Option<(libc::uid_t, libc::gid_t)>,
    die_with_parent: bool,
) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (setgroups, setgid, setuid, prctl).
    unsafe {
        command.pre_exec(move || {
            if let Some((uid, gid)) = owner {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // After the change of user, which would clear it.
            if die_with_parent && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    if owner.is_some() {
        command.env("HOME", "/tmp");
    }
}

fn chown(path: &Path, uid: libc::uid_t, gid: libc::gid_t) {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("a path without NUL");
    // SAFETY: a NUL-terminated path.
    let status = unsafe { libc::chown(name.as_ptr(), uid, gid) };
    assert_eq!(status, 0, "chown {}", path.display());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port for the test server")
}

/// Removes the folders of clusters whose test process is gone.
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("credence-pg-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
