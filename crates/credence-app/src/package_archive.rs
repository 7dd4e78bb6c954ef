//! Strategy packages on the wire: a gzip-compressed tar of the package directory.
//!
//! Unpacking is defensive: only regular files, no absolute paths or `..`, bounded sizes, and a
//! single top-level directory is stripped so that `tar czf p.tgz consumer-loan/` works as
//! well as `tar czf p.tgz -C consumer-loan .`. Packing is deterministic (sorted paths, zero
//! times and owners), so the same package always packs to the same bytes.

use crate::error::{AppError, ErrorCode};
use credence_engine::{PackageSource, MANIFEST};
use std::io::Read;

/// Most uncompressed bytes a package may hold.
pub const MAX_UNPACKED_BYTES: u64 = 64 * 1024 * 1024;
/// Most files a package may hold.
pub const MAX_FILES: usize = 10_000;

fn invalid(message: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::InvalidPackage, message)
}

/// Reads a `.tar.gz` upload into a package source.
pub fn unpack(bytes: &[u8]) -> Result<PackageSource, AppError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(invalid(
            "the body is not gzip data; upload the package as a .tar.gz (e.g. `tar czf package.tgz -C my-strategy .`)",
        ));
    }
    let decoder = flate2::read::GzDecoder::new(bytes).take(MAX_UNPACKED_BYTES + 1);
    let mut archive = tar::Archive::new(decoder);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut total: u64 = 0;
    let entries = archive
        .entries()
        .map_err(|e| invalid(format!("cannot read the tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| invalid(format!("cannot read the tar archive: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| invalid(format!("an entry has an unreadable path: {e}")))?
            .into_owned();
        let mut parts = Vec::new();
        for component in path.components() {
            match component {
                std::path::Component::Normal(part) => {
                    parts.push(part.to_string_lossy().into_owned())
                }
                std::path::Component::CurDir => {}
                _ => {
                    return Err(invalid(format!(
                        "entry {} leaves the package (absolute path or ..); paths must be relative",
                        path.display()
                    )))
                }
            }
        }
        if parts.is_empty() || parts.iter().any(|p| p.starts_with('.')) {
            continue;
        }
        if files.len() >= MAX_FILES {
            return Err(invalid(format!(
                "the package has more than {MAX_FILES} files"
            )));
        }
        let mut content = Vec::new();
        entry
            .read_to_end(&mut content)
            .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
        total += content.len() as u64;
        if total > MAX_UNPACKED_BYTES {
            return Err(invalid(format!(
                "the package unpacks to more than {} MiB",
                MAX_UNPACKED_BYTES / 1024 / 1024
            )));
        }
        files.push((parts.join("/"), content));
    }
    let at_root = files.iter().any(|(p, _)| p == MANIFEST);
    let prefix = if at_root {
        None
    } else {
        let tops: std::collections::BTreeSet<&str> = files
            .iter()
            .filter_map(|(p, _)| p.split_once('/').map(|(top, _)| top))
            .collect();
        match tops.into_iter().collect::<Vec<_>>().as_slice() {
            [only]
                if files
                    .iter()
                    .any(|(p, _)| *p == format!("{only}/{MANIFEST}")) =>
            {
                Some(format!("{only}/"))
            }
            _ => {
                return Err(invalid(format!(
                    "the archive has no {MANIFEST} at its root or in a single top-level directory"
                )))
            }
        }
    };
    let mut source = PackageSource::new();
    for (path, content) in files {
        match &prefix {
            Some(prefix) => {
                if let Some(rest) = path.strip_prefix(prefix.as_str()) {
                    source.insert(rest, content);
                }
            }
            None => source.insert(path, content),
        }
    }
    Ok(source)
}

/// Packs a package source into a deterministic `.tar.gz`.
pub fn pack(source: &PackageSource) -> std::io::Result<Vec<u8>> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    builder.mode(tar::HeaderMode::Deterministic);
    let mut paths: Vec<&str> = source.paths().collect();
    paths.sort_unstable();
    for path in paths {
        let content = source.bytes(path).unwrap_or_default();
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, path, content)?;
    }
    builder.into_inner()?.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(files: &[(&str, &str)]) -> PackageSource {
        let mut source = PackageSource::new();
        for (path, content) in files {
            source.insert(*path, content.as_bytes().to_vec());
        }
        source
    }

    #[test]
    fn pack_then_unpack_round_trips_deterministically() {
        let original = source(&[("strategy.yaml", "name: x"), ("flows/a.yaml", "steps: []")]);
        let packed = pack(&original).unwrap();
        assert_eq!(packed, pack(&original).unwrap(), "packing is deterministic");
        let unpacked = unpack(&packed).unwrap();
        assert_eq!(unpacked.bytes("flows/a.yaml"), Some(&b"steps: []"[..]));
        assert_eq!(unpacked.paths().count(), 2);
    }

    #[test]
    fn a_single_top_level_directory_is_stripped() {
        let nested = source(&[("pkg/strategy.yaml", "name: x"), ("pkg/flows/a.yaml", "")]);
        let unpacked = unpack(&pack(&nested).unwrap()).unwrap();
        assert!(unpacked.bytes("strategy.yaml").is_some());
        assert!(unpacked.bytes("flows/a.yaml").is_some());
    }

    /// Each refused archive, and a word its message must contain.
    #[test]
    fn bad_archives_are_refused_with_a_reason() {
        let no_manifest = pack(&source(&[("a/x.yaml", ""), ("b/y.yaml", "")])).unwrap();
        let cases: [(&str, Vec<u8>, &str); 3] = [
            ("not gzip", b"PK\x03\x04zip".to_vec(), "not gzip"),
            (
                "truncated",
                pack(&source(&[("strategy.yaml", "x")])).unwrap()[..20].to_vec(),
                "tar",
            ),
            ("no manifest", no_manifest, "strategy.yaml"),
        ];
        for (name, bytes, needle) in cases {
            let error = unpack(&bytes).expect_err(name);
            assert_eq!(error.code, ErrorCode::InvalidPackage, "{name}");
            assert!(error.message.contains(needle), "{name}: {}", error.message);
        }
    }
}
