//! A progress-bar observer (indicatif).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{IterState, Observer, Result};

/// Shows a progress bar on standard error, with the latest cost and metrics.
///
/// The bar is hidden when standard error is not a terminal (indicatif's default), so logs
/// and CI output stay clean.
pub struct ProgressObserver {
    bar: ProgressBar,
}

impl ProgressObserver {
    /// A bar of `len` steps with a label in front.
    pub fn new(len: usize, label: &str) -> Self {
        let bar = ProgressBar::new(len as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{elapsed_precise}] {bar:30} {pos}/{len} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(label.to_string());
        Self { bar }
    }

    /// A bar that draws nothing (for quiet runs and tests).
    pub fn hidden() -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        Self { bar }
    }

    /// The underlying indicatif bar, for loops that drive it directly.
    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }
}

impl<X: ?Sized> Observer<X> for ProgressObserver {
    fn on_iter(&mut self, state: &IterState, _x: &X) -> Result<()> {
        self.bar.set_position(state.iteration as u64);
        let mut msg = state
            .cost
            .map(|c| format!("cost {c:.4e}"))
            .unwrap_or_default();
        for (name, value) in &state.metrics {
            msg.push_str(&format!(" {name} {value:.4}"));
        }
        self.bar.set_message(msg);
        Ok(())
    }

    fn on_finish(&mut self, _state: &IterState, _x: &X) -> Result<()> {
        self.bar.finish();
        Ok(())
    }
}
