//! Reads a strategy package from disk into a `PackageSource`: a directory (holding `strategy.yaml`) or a `.tar.gz` of one.

use crate::error::{AppError, ErrorCode};
use credence_engine::PackageSource;
use std::path::Path;

/// Largest file a package may hold; larger ones are refused rather than read into memory.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

fn unreadable(path: &Path, error: impl std::fmt::Display) -> AppError {
    AppError::new(
        ErrorCode::InvalidInput,
        format!("cannot read {}: {error}", path.display()),
    )
}

/// Reads a package: a directory's every regular file (skipping hidden entries) with its path
/// relative to the directory, or a gzip-compressed tar of one (as uploads are).
pub fn read(path: &Path) -> Result<PackageSource, AppError> {
    if path.is_file() {
        let bytes = std::fs::read(path).map_err(|e| unreadable(path, e))?;
        return crate::package_archive::unpack(&bytes);
    }
    if !path.join(credence_engine::MANIFEST).is_file() {
        return Err(AppError::new(
            ErrorCode::InvalidInput,
            format!(
                "{} is not a strategy package: it has no {} (give the package's directory or a .tar.gz of it)",
                path.display(),
                credence_engine::MANIFEST
            ),
        ));
    }
    let mut source = PackageSource::new();
    walk(path, path, &mut source)?;
    Ok(source)
}

fn walk(root: &Path, dir: &Path, source: &mut PackageSource) -> Result<(), AppError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| unreadable(dir, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| unreadable(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| unreadable(&path, e))?;
        if kind.is_dir() {
            walk(root, &path, source)?;
        } else if kind.is_file() {
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if size > MAX_FILE_BYTES {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| unreadable(&path, e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_and_its_archive_read_as_the_same_package() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/consumer-loan");
        let from_dir = read(&dir).unwrap();
        let archive = std::env::temp_dir().join(format!(
            "credence-package-dir-{}.tar.gz",
            std::process::id()
        ));
        std::fs::write(&archive, crate::package_archive::pack(&from_dir).unwrap()).unwrap();
        let from_archive = read(&archive).unwrap();
        let _ = std::fs::remove_file(&archive);
        let version =
            |s: &PackageSource| credence_engine::compile(s).unwrap().version().to_string();
        assert_eq!(version(&from_dir), version(&from_archive));
        let missing = read(Path::new("/nonexistent-package")).unwrap_err();
        assert!(
            missing.message.contains("is not a strategy package"),
            "{}",
            missing.message
        );
    }
}
