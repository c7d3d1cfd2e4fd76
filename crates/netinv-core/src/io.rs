//! Atomic file output: write to a temporary file in the same folder, fsync, rename.
//!
//! A reader never sees a half-written file, and a crash mid-write leaves the previous
//! version in place: this is how every netinv output and checkpoint is written.
//!
//! The file gets the permissions a plain `File::create` would give it: a new file gets
//! `0o666 & !umask` (0644 under the usual umask 022), a replaced file keeps its mode. The
//! temporary file is removed when the write fails, and on SIGINT / SIGTERM once
//! [`install_cleanup_handler`](crate::install_cleanup_handler) has been called.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cleanup::LiveTemp;
use crate::{Error, Result};

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a file atomically: `write` fills a buffered temporary file in the target's
/// folder, which is flushed, fsynced and renamed over `path`. Missing parent folders are
/// created. The file's mode is that of `File::create`: `0o666 & !umask` for a new file,
/// unchanged for a replaced one.
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
    // Declared before `tmp`, so it is dropped after it: the file is deleted before it leaves
    // the registry, and a signal in between finds it listed.
    let _listed: LiveTemp;
    let tmp = create_temp(&parent, path).map_err(io_error(path))?;
    _listed = LiveTemp::register(tmp.path());
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

/// Creates the temporary file in `parent` with the mode `File::create` would give `target`.
fn create_temp(parent: &Path, target: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".netinv");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The kernel applies the umask to the mode given at creation, exactly as for
        // `File::create` (tempfile's default, 0o600, is what made every output private).
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let tmp = builder.tempfile_in(parent)?;
    // `File::create` on an existing file keeps its mode; the rename would not.
    if let Ok(existing) = std::fs::metadata(target) {
        tmp.as_file().set_permissions(existing.permissions())?;
    }
    Ok(tmp)
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

    #[test]
    fn failed_first_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("never.txt");
        let err = atomic_write(&path, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("disk on fire").into())
        });
        assert!(err.unwrap_err().to_string().contains("disk on fire"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

/// Modes and signals are process-wide, so these tests run the test binary itself as a child
/// (under `sh` to set its umask) and look at what it left behind.
#[cfg(all(test, unix))]
mod process_tests {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::ExitStatusExt;
    use std::path::Path;
    use std::process::{Command, Stdio};

    use super::*;

    const OUT_VAR: &str = "NETINV_IO_TEST_OUT";
    const WRITING: &str = "child: temporary file open";

    /// Runs the ignored test `name` of this binary with `umask` and `OUT_VAR=out`.
    fn child(name: &str, umask: &str, out: &Path) -> Command {
        let exe = std::env::current_exe().unwrap();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(exe)
            .args([
                name,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(OUT_VAR, out);
        cmd
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    #[ignore = "run by new_files_get_the_create_mode in a child process"]
    fn child_writes_file() {
        if let Some(out) = std::env::var_os(OUT_VAR) {
            atomic_write_bytes(out, b"mode test").unwrap();
        }
    }

    #[test]
    fn new_files_get_the_create_mode() {
        let dir = tempfile::tempdir().unwrap();
        for (umask, expected) in [("022", 0o644), ("077", 0o600), ("002", 0o664)] {
            let out = dir.path().join(format!("umask{umask}.txt"));
            let status = child("io::process_tests::child_writes_file", umask, &out)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
            assert_eq!(mode(&out), expected, "umask {umask}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }

    #[test]
    fn replaced_file_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private.json");
        std::fs::write(&path, b"{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_json(&path, &[1, 2]).unwrap();
        assert_eq!(mode(&path), 0o640);
    }

    #[test]
    #[ignore = "run by sigterm_removes_the_temp_file in a child process"]
    fn child_blocks_mid_write() {
        let Some(out) = std::env::var_os(OUT_VAR) else {
            return;
        };
        crate::install_cleanup_handler().unwrap();
        atomic_write(out, |w| {
            w.write_all(b"half")?;
            // libtest prints "test <name> ... " without a newline before the test runs.
            println!("\n{WRITING}");
            std::io::stdout().flush()?;
            loop {
                std::thread::park();
            }
        })
        .unwrap();
    }

    #[test]
    fn sigterm_removes_the_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("interrupted.bin");
        let mut proc = child("io::process_tests::child_blocks_mid_write", "022", &out)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = proc.stdout.take().unwrap();
        let started = BufReader::new(stdout)
            .lines()
            .map_while(|line| line.ok())
            .any(|line| line == WRITING);
        assert!(started, "the child never reached the write");
        let temps = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(temps, 1, "the temporary file exists while writing");
        let killed = Command::new("kill")
            .args(["-TERM", &proc.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = proc.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(15),
            "ends as SIGTERM would: {status:?}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
