//! Tidy tests: the rules of ARCHITECTURE.md that a reviewer would otherwise have to remember — layering, pure core, module docs, file sizes.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The layers, bottom up: a crate may depend on crates of its own layer or below, never above.
/// The pure core does no I/O and knows nothing of HTTP, storage or time; adapters (stores, the
/// service, the command line) sit on it.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "pure core",
        &[
            "credence-expr",
            "credence-model",
            "credence-engine",
            "credence-account",
            "credence-backtest",
            "credence-review",
        ],
    ),
    ("stores", &["credence-store", "credence-store-postgres"]),
    ("application", &["credence-app"]),
    (
        "adapters",
        &["credence-outbound", "credence-service", "credence-python"],
    ),
    (
        "binaries and tools",
        &[
            "credence-cli",
            "credence-loadgen",
            "credence-provider-sim",
            "credence-throwaway-postgres",
            "credence-tidy",
        ],
    ),
];

/// What the application layer must not depend on: it reaches the outside world through ports
/// (the store traits, `DataProviders`, `Clock`), never through HTTP servers or clients.
const NOT_IN_APPLICATION: &[&str] = &[
    "axum",
    "hyper",
    "hyper-util",
    "tower",
    "tower-http",
    "ureq",
    "reqwest",
    "rustls",
    "tokio-rustls",
    "rusqlite",
    "tokio-postgres",
    "sqlx",
    "askama",
];

/// Crates that do I/O (network, files, databases, processes) or keep global state: none of them
/// may be a dependency of the pure core.
const IO_CRATES: &[&str] = &[
    "tokio",
    "axum",
    "hyper",
    "hyper-util",
    "tower",
    "tower-http",
    "rusqlite",
    "tokio-postgres",
    "sqlx",
    "ureq",
    "reqwest",
    "libc",
    "mimalloc",
    "tracing",
    "metrics",
    "indicatif",
];

/// What a pure-core source file must not call: files, network, processes, the environment, the
/// clock (time is injected).
const IO_CALLS: &[&str] = &[
    "std::fs",
    "std::net",
    "std::process",
    "std::env",
    "SystemTime::now",
    "Instant::now",
    "Utc::now",
    "Local::now",
];

/// The longest a source file may be, not counting its unit tests.
const MAX_LINES: usize = 800;

/// Source files still longer than [`MAX_LINES`], to be split (issue 23). The list may only
/// shrink: a listed file within the limit fails the test until it is removed from here.
const TOO_LONG_FOR_NOW: &[&str] = &[];

fn layer_of(name: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, crates)| crates.contains(&name))
}

/// Each workspace crate: its directory and parsed manifest.
fn crates() -> Vec<(PathBuf, toml::Table)> {
    let mut out = Vec::new();
    for folder in ["crates", "tools"] {
        for entry in std::fs::read_dir(root().join(folder)).unwrap() {
            let dir = entry.unwrap().path();
            let manifest = dir.join("Cargo.toml");
            if manifest.exists() {
                let text = std::fs::read_to_string(&manifest).unwrap();
                out.push((dir, text.parse::<toml::Table>().unwrap()));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn name(manifest: &toml::Table) -> String {
    manifest["package"]["name"].as_str().unwrap().to_string()
}

/// The names of a manifest's normal (not dev or build) dependencies.
fn dependencies(manifest: &toml::Table) -> Vec<String> {
    manifest
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default()
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

#[test]
fn every_crate_is_in_a_layer_and_depends_only_downwards() {
    let mut problems = Vec::new();
    for (_, manifest) in crates() {
        let crate_name = name(&manifest);
        let Some(layer) = layer_of(&crate_name) else {
            problems.push(format!("{crate_name} is in no layer: add it to LAYERS"));
            continue;
        };
        for dependency in dependencies(&manifest) {
            if let Some(their_layer) = layer_of(&dependency) {
                if their_layer > layer {
                    problems.push(format!(
                        "{crate_name} ({}) depends on {dependency} ({}), a layer above it",
                        LAYERS[layer].0, LAYERS[their_layer].0
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_pure_core_does_no_io() {
    let mut problems = Vec::new();
    for (dir, manifest) in crates() {
        let crate_name = name(&manifest);
        if layer_of(&crate_name) != Some(0) {
            continue;
        }
        for dependency in dependencies(&manifest) {
            if IO_CRATES.contains(&dependency.as_str()) {
                problems.push(format!(
                    "{crate_name} depends on {dependency}, which does I/O"
                ));
            }
        }
        for file in rust_files(&dir.join("src")) {
            // A unit-test module in a file of its own may read fixtures.
            if file.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for call in IO_CALLS {
                if code.contains(call) {
                    problems.push(format!("{} uses {call}", relative(&file)));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_application_reaches_out_only_through_ports() {
    let application = LAYERS
        .iter()
        .position(|(layer, _)| *layer == "application")
        .unwrap();
    let mut problems = Vec::new();
    for (_, manifest) in crates() {
        let crate_name = name(&manifest);
        if layer_of(&crate_name) != Some(application) {
            continue;
        }
        for dependency in dependencies(&manifest) {
            if NOT_IN_APPLICATION.contains(&dependency.as_str()) {
                problems.push(format!(
                    "{crate_name} depends on {dependency}: HTTP and databases belong to adapters; reach them through a port"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Only the expression crate knows the ZEN evaluator: the others read and build values through
/// `credence_expr::Value`, so that a change of evaluator stays in one crate.
#[test]
fn only_the_expression_crate_knows_zen() {
    let mut problems = Vec::new();
    for (dir, manifest) in crates() {
        let crate_name = name(&manifest);
        if crate_name == "credence-expr" || crate_name == "credence-tidy" {
            continue;
        }
        if dependencies(&manifest)
            .iter()
            .any(|d| d.starts_with("zen-"))
        {
            problems.push(format!("{crate_name} depends on a zen- crate"));
        }
        for file in rust_files(&dir) {
            let text = std::fs::read_to_string(&file).unwrap();
            if text.contains("zen_expression") || text.contains("zen_types") {
                problems.push(format!("{} names a ZEN type", relative(&file)));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn every_source_file_opens_with_what_it_owns() {
    let mut problems = Vec::new();
    for folder in ["crates", "tools"] {
        for file in rust_files(&root().join(folder)) {
            let text = std::fs::read_to_string(&file).unwrap();
            if !text.starts_with("//!") {
                problems.push(relative(&file));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "files without a leading `//!` line saying what they own: {problems:#?}"
    );
}

#[test]
fn no_source_file_is_longer_than_800_lines_without_its_tests() {
    let mut too_long = Vec::new();
    for folder in ["crates", "tools"] {
        for file in rust_files(&root().join(folder)) {
            let path = relative(&file);
            let is_test = path.contains("/tests/")
                || path.contains("/benches/")
                || path.ends_with("/tests.rs");
            if is_test {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let lines = text
                .lines()
                .take_while(|l| !l.starts_with("#[cfg(test)]"))
                .count();
            if lines > MAX_LINES {
                too_long.push((path, lines));
            }
        }
    }
    let new: Vec<_> = too_long
        .iter()
        .filter(|(path, _)| !TOO_LONG_FOR_NOW.contains(&path.as_str()))
        .collect();
    assert!(
        new.is_empty(),
        "split these files (at most {MAX_LINES} lines besides their tests): {new:#?}"
    );
    let fixed: Vec<_> = TOO_LONG_FOR_NOW
        .iter()
        .filter(|path| !too_long.iter().any(|(p, _)| p == *path))
        .collect();
    assert!(
        fixed.is_empty(),
        "these files are within the limit now: remove them from TOO_LONG_FOR_NOW: {fixed:#?}"
    );
}

/// Library crates whose `pub` items are not all documented yet (issue 23). The list may only
/// shrink: every other library crate must keep `#![warn(missing_docs)]` (an error under CI's
/// `clippy -D warnings`).
const UNDOCUMENTED_FOR_NOW: &[&str] = &[];

#[test]
fn library_crates_document_every_public_item() {
    let mut problems = Vec::new();
    for (dir, manifest) in crates() {
        let crate_name = name(&manifest);
        let lib = dir.join("src/lib.rs");
        if !lib.exists() || crate_name == "credence-tidy" {
            continue;
        }
        let text = std::fs::read_to_string(&lib).unwrap();
        let warns = text.contains("#![warn(missing_docs)]");
        let listed = UNDOCUMENTED_FOR_NOW.contains(&crate_name.as_str());
        if !warns && !listed {
            problems.push(format!(
                "{crate_name}: add #![warn(missing_docs)] to src/lib.rs"
            ));
        }
        if warns && listed {
            problems.push(format!(
                "{crate_name} documents every item now: remove it from UNDOCUMENTED_FOR_NOW"
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Every file the README's commands name exists (`examples/…`, `data/…`, `crates/…`, `tools/…`,
/// `docs/…`), and no command writes its output into the repository (`--output`, `--report`,
/// `--summary-json`, `--diff` point outside it).
#[test]
fn the_readme_cites_files_that_exist_and_writes_outside_the_repository() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut in_code = false;
    let mut problems = Vec::new();
    for (number, line) in readme.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == '\'' || c == '"' || c == '@')
            .filter(|w| !w.is_empty())
            .collect();
        for (i, word) in words.iter().enumerate() {
            let cited = ["examples/", "data/", "crates/", "tools/", "docs/"]
                .iter()
                .any(|prefix| word.starts_with(prefix));
            if cited && !word.contains('*') && !word.contains('{') && !root().join(word).exists() {
                problems.push(format!("README.md:{}: {word} does not exist", number + 1));
            }
            let writes = ["--output", "--report", "--summary-json", "--diff"].contains(word);
            if let Some(target) = words.get(i + 1).filter(|_| writes) {
                if !target.starts_with('/') && *target != "-" {
                    problems.push(format!(
                        "README.md:{}: {word} {target} writes into the repository; use a scratch directory",
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
