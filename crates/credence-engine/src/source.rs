//! The bytes of a strategy package, handed in by whoever read them (CLI, service, tests).
//!
//! The engine never opens files: the outer layer reads a package directory (or an upload) into
//! a `PackageSource`, and compilation takes what the manifest references from it. Only the
//! referenced files make up the strategy's content hash, so a README beside the package does
//! not change its version.

use std::collections::BTreeMap;

/// Relative path (with `/`) → file bytes.
#[derive(Debug, Clone, Default)]
pub struct PackageSource {
    files: BTreeMap<String, Vec<u8>>,
}

impl PackageSource {
    /// An empty package.
    pub fn new() -> Self {
        PackageSource::default()
    }

    /// Adds a file (paths use `/`; `./` and repeated slashes are normalised).
    pub fn insert(&mut self, path: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.files.insert(normalise(&path.into()), bytes.into());
    }

    /// A file's bytes, if the package has it.
    pub fn bytes(&self, path: &str) -> Option<&[u8]> {
        self.files.get(&normalise(path)).map(Vec::as_slice)
    }

    /// Every file's path, in order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }
}

fn normalise(path: &str) -> String {
    let path = path.replace('\\', "/");
    path.trim_start_matches("./").to_string()
}
