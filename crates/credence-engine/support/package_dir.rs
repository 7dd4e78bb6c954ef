//! Reads a strategy package directory into a `PackageSource`, for tests, benches and examples.
//!
//! The engine itself never opens files; this helper is shared by code around it that may.

use super::PackageSource;
use std::path::Path;

/// Every file below `root`, by its path relative to `root` with `/` separators.
pub fn read(root: &Path) -> PackageSource {
    fn walk(root: &Path, dir: &Path, source: &mut PackageSource) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(root, &path, source);
            } else {
                let relative = path.strip_prefix(root).expect("below the root");
                let relative = relative.to_string_lossy().replace('\\', "/");
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                source.insert(relative, bytes);
            }
        }
    }
    let mut source = PackageSource::new();
    walk(root, root, &mut source);
    source
}
