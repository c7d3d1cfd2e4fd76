//! Removal of half-written temporary files when the process is interrupted.
//!
//! [`atomic_write`](crate::atomic_write) writes into a temporary file next to its target and
//! renames it into place. A temporary file is removed when the write fails or the program
//! unwinds, but a signal (Ctrl-C, `kill`) ends the process without running destructors, and
//! the `.tmpXXXXXX` file would stay behind. Every live temporary file is therefore listed in
//! a small registry, and [`install_cleanup_handler`] starts a thread that, on SIGINT,
//! SIGTERM or SIGHUP, deletes the listed files and then ends the process the way the signal
//! would have (same exit status as without the handler).
//!
//! The handler is installed explicitly, not by the first write: a library must not take over
//! a program's signals behind its back (an application with its own Ctrl-C handling would
//! be killed by ours). The netinv examples call it first thing in `main`.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use crate::{Error, Result};

/// Paths of the temporary files being written right now.
static LIVE_TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn live_temps() -> MutexGuard<'static, Vec<PathBuf>> {
    // A panic while the list was locked leaves it consistent (push / remove are atomic).
    LIVE_TEMPS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Lists a temporary file in the registry for as long as the guard lives.
pub(crate) struct LiveTemp {
    path: PathBuf,
}

impl LiveTemp {
    /// Lists `path`; the guard takes it off the list when dropped.
    pub(crate) fn register(path: &Path) -> Self {
        live_temps().push(path.to_path_buf());
        Self {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for LiveTemp {
    fn drop(&mut self) {
        let mut live = live_temps();
        if let Some(i) = live.iter().position(|p| *p == self.path) {
            live.swap_remove(i);
        }
    }
}

/// Deletes every listed temporary file; returns how many were removed.
fn remove_live_temps() -> usize {
    live_temps()
        .drain(..)
        .filter(|p| std::fs::remove_file(p).is_ok())
        .count()
}

/// Installs a handler that deletes netinv's half-written temporary files on SIGINT, SIGTERM
/// and SIGHUP, then ends the process as the signal would have. Call it once at the start
/// of a program; further calls do nothing. On non-Unix platforms it does nothing.
///
/// The handler is a thread woken through a self-pipe (signal-hook's iterator), so the file
/// removal runs outside signal context. Installing it means the program no longer dies
/// inside the signal itself but a moment later, once the files are gone.
///
/// # Errors
/// [`Error::Io`] if the signal handler or its thread cannot be set up.
///
/// # Examples
/// ```
/// netinv_core::install_cleanup_handler().unwrap();
/// netinv_core::install_cleanup_handler().unwrap(); // a second call is a no-op
/// ```
pub fn install_cleanup_handler() -> Result<()> {
    static INSTALLED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| spawn_handler().map_err(|e| e.to_string()))
        .clone()
        .map_err(|reason| Error::Io {
            path: PathBuf::from("<signal handler>"),
            source: std::io::Error::other(reason),
        })
}

#[cfg(unix)]
fn spawn_handler() -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("netinv-temp-cleanup".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                remove_live_temps();
                // Restores the default action and re-raises, so the exit status says
                // "killed by SIGINT" as it would have without us.
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}

#[cfg(not(unix))]
fn spawn_handler() -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_lists_and_unlists_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("listed.tmp");
        {
            let _guard = LiveTemp::register(&path);
            assert!(live_temps().contains(&path));
        }
        assert!(!live_temps().contains(&path));
    }

    #[test]
    fn install_is_idempotent() {
        install_cleanup_handler().unwrap();
        install_cleanup_handler().unwrap();
    }
}
