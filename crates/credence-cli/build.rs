//! Embeds the example strategy packages so that `credence serve` on a fresh data directory
//! has a strategy to activate (and, with `--example`, a second product) without reading files
//! next to the binary.

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn main() {
    let mut code = String::new();
    for (constant, folder) in [
        ("BUNDLED_STRATEGY", "consumer-loan"),
        ("BUNDLED_CARD_STRATEGY", "card-line"),
    ] {
        embed(&mut code, constant, folder);
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("bundled_strategy.rs");
    std::fs::write(out, code).unwrap();
}

/// Writes `pub static {constant}: &[(path, bytes)]` for every file of `examples/{folder}`.
fn embed(code: &mut String, constant: &str, folder: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(folder);
    let root = root
        .canonicalize()
        .unwrap_or_else(|_| panic!("examples/{folder} exists"));
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    writeln!(
        code,
        "/// (path inside the package, bytes) of every file of examples/{folder}.\npub static {constant}: &[(&str, &[u8])] = &["
    )
    .unwrap();
    for file in &files {
        let relative = file.strip_prefix(&root).unwrap();
        let relative: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        writeln!(
            code,
            "    ({:?}, include_bytes!({:?})),",
            relative.join("/"),
            file.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    println!("cargo:rerun-if-changed={}", root.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.is_file() {
            files.push(path);
        }
    }
}
