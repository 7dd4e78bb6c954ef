//! Reads a strategy package directory from disk into a `PackageSource`.

use anyhow::{bail, Context};
use credence_engine::PackageSource;
use std::path::Path;

/// Largest file a package may hold; larger ones are refused rather than read into memory.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Reads every regular file below `dir` (skipping hidden entries) with its path relative to `dir`.
pub fn read(dir: &Path) -> anyhow::Result<PackageSource> {
    if !dir.join(credence_engine::MANIFEST).is_file() {
        bail!(
            "{} is not a strategy package: it has no {}",
            dir.display(),
            credence_engine::MANIFEST
        );
    }
    let mut source = PackageSource::new();
    walk(dir, dir, &mut source)?;
    Ok(source)
}

fn walk(root: &Path, dir: &Path, source: &mut PackageSource) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory {}", dir.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read directory {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", path.display()))?;
        if kind.is_dir() {
            walk(root, &path, source)?;
        } else if kind.is_file() {
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if size > MAX_FILE_BYTES {
                continue;
            }
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let relative: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            source.insert(relative.join("/"), bytes);
        }
    }
    Ok(())
}
