//! Atomic file output: write to a temporary file in the same folder, fsync, rename.
//!
//! A reader never sees a half-written file, and a crash mid-write leaves the previous
//! version in place: this is how every netinv output and checkpoint is written.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{Error, Result};

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a file atomically: `write` fills a buffered temporary file in the target's
/// folder, which is flushed, fsynced and renamed over `path`. Missing parent folders are
/// created.
///
/// # Errors
/// [`Error::Io`] naming `path` if any step fails (the temporary file is removed), or the
/// error `write` returned.
///
/// # Examples
/// ```
/// use std::io::Write;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("hello.txt");
/// netinv_core::atomic_write(&path, |w| Ok(w.write_all(b"hello")?)).unwrap();
/// assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello");
/// ```
pub fn atomic_write<F>(path: impl AsRef<Path>, write: F) -> Result<()>
where
    F: FnOnce(&mut dyn Write) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>,
{
    let path = path.as_ref();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io_error(path))?;
    let tmp = tempfile::NamedTempFile::new_in(&parent).map_err(io_error(path))?;
    {
        let mut writer = BufWriter::new(tmp.as_file());
        write(&mut writer).map_err(|e| match e.downcast::<std::io::Error>() {
            Ok(io) => Error::Io {
                path: path.to_path_buf(),
                source: *io,
            },
            Err(other) => Error::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(other.to_string()),
            },
        })?;
        writer.flush().map_err(io_error(path))?;
    }
    tmp.as_file().sync_all().map_err(io_error(path))?;
    tmp.persist(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Writes `bytes` to `path` atomically (see [`atomic_write`]).
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub fn atomic_write_bytes(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    atomic_write(path, |w| Ok(w.write_all(bytes)?))
}

/// Writes `value` as pretty-printed JSON to `path`, atomically.
///
/// # Errors
/// [`Error::Json`] if serialisation fails, [`Error::Io`] if writing does.
///
/// # Examples
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("counts.json");
/// netinv_core::write_json(&path, &vec![1, 2, 3]).unwrap();
/// let back: Vec<i32> = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
/// assert_eq!(back, vec![1, 2, 3]);
/// ```
pub fn write_json<T: Serialize + ?Sized>(path: impl AsRef<Path>, value: &T) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    atomic_write_bytes(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_existing_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a").join("out.bin");
        atomic_write_bytes(&path, b"one").unwrap();
        atomic_write_bytes(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let entries: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn failed_write_keeps_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keep.txt");
        atomic_write_bytes(&path, b"old").unwrap();
        let err = atomic_write(&path, |w| {
            w.write_all(b"partial")?;
            Err("generator failed".into())
        });
        assert!(matches!(err, Err(Error::Io { .. })));
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
