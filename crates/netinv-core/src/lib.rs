//! Shared machinery of the netinv crates: the state of an iterative method, observers that
//! watch it, stop rules that end it, atomic file writes, JSON output and PNG image grids.
//!
//! Every iterative algorithm in netinv (SIRT, classifier training, network inversion) owns
//! its loop and reports to a [`Monitor`] after each iteration: observers only watch (progress
//! bars, snapshots, logs), stop rules alone end a run, and the result carries the final
//! [`IterState`] with the [`Termination`] reason.
//!
//! Conventions: images are f32 in [0, 1], stored row-major as `[n, height, width]`.
//!
//! ```
//! use netinv_core::{IterState, MaxIterations, Monitor, Termination};
//!
//! // Minimise f(x) = (x - 3)^2 by gradient descent, stopping after 50 iterations.
//! let mut monitor: Monitor<f64> = Monitor::new().with_stop_rule(MaxIterations(50));
//! let mut x = 0.0_f64;
//! let mut state = IterState::new(50);
//! let reason = loop {
//!     x -= 0.1 * 2.0 * (x - 3.0);
//!     state.advance(Some((x - 3.0).powi(2)));
//!     if let Some(reason) = monitor.after_iteration(&state, &x).unwrap() {
//!         break reason;
//!     }
//! };
//! assert_eq!(reason, Termination::MaxIterations);
//! assert!((x - 3.0).abs() < 1e-4);
//! ```

mod batch;
mod cleanup;
mod cpu_time;
mod error;
mod grid;
mod io;
mod iterate;
mod memory;
mod progress;
pub mod shard;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use batch::{BatchProgress, Stopped};
pub use cleanup::install_cleanup_handler;
pub use cpu_time::process_cpu_seconds;
pub use error::{Error, Result};
pub use grid::{GridImages, ImageGrid, ImageRef};
pub use io::{atomic_write, atomic_write_bytes, write_json};
pub use iterate::{
    CostTolerance, IterState, MaxIterations, Monitor, NonFiniteCost, Observer, StopRule,
    Termination,
};
pub use memory::{retain_freed_memory, retain_freed_memory_once, KEEP_MALLOC_DEFAULTS};
pub use progress::ProgressObserver;

/// The ndarray version whose views [`ImageGrid`] takes, so callers need not pin it.
pub use ndarray;
