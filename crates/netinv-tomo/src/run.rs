//! A run of a batched iterative solver: the solver's prepared state (its step), the images
//! and every image's own state and stop. The run owns the loop's bookkeeping, as argmin's
//! executor does; the solver only does the iteration.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};
use netinv_core::{BatchProgress, IterState, MaxIterations, Monitor, StopRule, Termination};

use crate::{Reconstruction, Result};

/// Called after every iteration for each image still running, with the image's index,
/// state and current values; may stop that image (a driver's observers and stop rules: a
/// [`Monitor`], for one image).
pub(crate) type Observe<'a> =
    dyn FnMut(usize, &IterState, ArrayView2<f32>) -> Result<Option<Termination>> + 'a;

pub(crate) mod sealed {
    /// Keeps [`BatchStep`](super::BatchStep) to this crate's solvers.
    pub trait Sealed {}
}

/// What one iteration of a batched solver reports: each image's cost, an optional named
/// metric per image, and which images the solver's own rule stops (empty: none).
pub type StepReport = (Vec<f64>, Option<(&'static str, Vec<f64>)>, Vec<bool>);

/// The iteration of a batched solver, the part of a [`BatchRun`] that differs between
/// solvers: [`SirtState`](crate::SirtState) and [`PdhgState`](crate::PdhgState). Sealed:
/// implemented by this crate's solvers only.
pub trait BatchStep: sealed::Sealed {
    /// One iteration on the images `x` (`[rows, cols, batch]`, standard layout; the step
    /// may swap in a new array of the same shape).
    #[doc(hidden)]
    fn iterate(&mut self, x: &mut Array3<f32>) -> StepReport;
}

/// A solver run in progress on a batch of images (a batch of one for a single image): the
/// solver's prepared state `S`, the current images `[rows, cols, batch]` (pixel-major, as
/// [`stack_images`](crate::stack_images)), and every image's own [`IterState`] and stop.
///
/// [`step`](Self::step) does one iteration on every image; an image stops when an observer
/// passed to [`step_with`](Self::step_with), the solver's own rule (PDHG's relative change)
/// or the iteration budget of the configuration stops it. Its result is then frozen, but
/// steps go on updating its image with the batch (the images do not interact, and the
/// batched projection costs the same). [`finish`](Self::finish) gives every image's
/// [`Reconstruction`]. See [`SirtRun`](crate::SirtRun) and [`TvRun`](crate::TvRun).
#[derive(Debug)]
pub struct BatchRun<S> {
    solver: S,
    x: Array3<f32>,
    progress: BatchProgress<Array2<f32>>,
    budget: MaxIterations,
}

impl<S: BatchStep> BatchRun<S> {
    /// A run of `solver` from the images `x` (in standard layout, which [`standard`]
    /// gives), each allowed `max_iterations`.
    pub(crate) fn new(solver: S, x: Array3<f32>, max_iterations: usize) -> Self {
        assert!(
            x.is_standard_layout(),
            "a run's images are in standard layout"
        );
        let batch = x.dim().2;
        Self {
            solver,
            x,
            progress: BatchProgress::new(batch, max_iterations),
            budget: MaxIterations(max_iterations),
        }
    }

    /// One iteration on every image, then the stops: each running image's state advances
    /// (with the solver's cost and metric), and the solver's own rule, then the iteration
    /// budget, may stop it.
    ///
    /// # Errors
    /// None from the solvers themselves; the `Result` is that of
    /// [`step_with`](Self::step_with).
    pub fn step(&mut self) -> Result<()> {
        self.step_observed(&mut |_, _, _| Ok(None))
    }

    /// [`step`](Self::step), asking `observe(k, state, image)` for each running image `k`
    /// first whether it stops (a [`Monitor`]'s observers and stop rules, say); the
    /// solver's rule and the budget apply when `observe` returns `None`.
    ///
    /// # Errors
    /// The first error `observe` returns.
    pub fn step_with(
        &mut self,
        mut observe: impl FnMut(usize, &IterState, ArrayView2<f32>) -> Result<Option<Termination>>,
    ) -> Result<()> {
        self.step_observed(&mut observe)
    }

    /// One iteration, then the stop decisions (`observe` first).
    pub(crate) fn step_observed(&mut self, observe: &mut Observe<'_>) -> Result<()> {
        let (cost, metric, stops) = self.solver.iterate(&mut self.x);
        let metric = metric
            .as_ref()
            .map(|(name, values)| (*name, values.as_slice()));
        let (x, budget) = (&self.x, &mut self.budget);
        self.progress.end_iteration(
            &cost,
            metric,
            |k, state| {
                Ok(match observe(k, state, x.index_axis(Axis(2), k))? {
                    Some(reason) => Some(reason),
                    None if stops.get(k) == Some(&true) => Some(Termination::Converged),
                    None => budget.check(state),
                })
            },
            |k| x.index_axis(Axis(2), k).to_owned(),
        )
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.x.dim().2
    }

    /// Whether the run has no images (never: a run has at least one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether any image is still running.
    pub fn running(&self) -> bool {
        self.progress.running()
    }

    /// Whether image `k` is still running.
    ///
    /// # Panics
    /// If `k >= self.len()`.
    pub fn is_running(&self, k: usize) -> bool {
        self.progress.is_running(k)
    }

    /// Image `k`'s state (iterations done, last cost, metrics); at its stop once stopped.
    ///
    /// # Panics
    /// If `k >= self.len()`.
    pub fn state(&self, k: usize) -> &IterState {
        self.progress.state(k)
    }

    /// The current image `k`, `[rows, cols]`.
    ///
    /// # Panics
    /// If `k >= self.len()`.
    pub fn image(&self, k: usize) -> ArrayView2<'_, f32> {
        self.x.index_axis(Axis(2), k)
    }

    /// All current images, `[rows, cols, batch]`.
    pub fn images(&self) -> ArrayView3<'_, f32> {
        self.x.view()
    }

    /// The solver's prepared state.
    pub fn solver(&self) -> &S {
        &self.solver
    }

    /// The images, mutably (for the solvers whose state allows outside changes).
    pub(crate) fn x_mut(&mut self) -> &mut Array3<f32> {
        &mut self.x
    }

    /// Ends the run: every image's [`Reconstruction`] in batch order, with its state and
    /// termination. An image that stopped is as it was at its stop; one still running is
    /// as it is now, with [`Termination::Other`] saying the caller finished it.
    pub fn finish(self) -> Vec<Reconstruction> {
        let x = self.x;
        self.progress
            .finish(|k| x.index_axis(Axis(2), k).to_owned(), finished_early())
            .into_iter()
            .map(|stopped| {
                let mut state = stopped.state;
                state.termination = Some(stopped.reason);
                Reconstruction {
                    image: stopped.iterate,
                    state,
                }
            })
            .collect()
    }
}

/// `x` in standard layout (moved if it is, copied otherwise).
pub(crate) fn standard(x: Array3<f32>) -> Array3<f32> {
    if x.is_standard_layout() {
        x
    } else {
        x.as_standard_layout().into_owned()
    }
}

/// The reason given to images still running when their run is finished by the caller.
fn finished_early() -> Termination {
    Termination::Other("finished by the caller before a stop rule fired".into())
}

/// Drives a run of one image to its end, reporting every iteration to `monitor` (which
/// may stop it, before the solver's own rules) and finishing with it.
pub(crate) fn run_monitored<S: BatchStep>(
    mut run: BatchRun<S>,
    monitor: &mut Monitor<'_, Array2<f32>>,
) -> Result<Reconstruction> {
    let mut observe = |_: usize, state: &IterState, x: ArrayView2<f32>| {
        Ok(monitor.after_iteration(state, &x.to_owned())?)
    };
    while run.running() {
        run.step_observed(&mut observe)?;
    }
    let Reconstruction { image, mut state } = run
        .finish()
        .pop()
        .expect("a run of one image gives one result");
    let reason = state.termination.clone().unwrap_or_else(finished_early);
    monitor.finish(&mut state, reason, &image)?;
    Ok(Reconstruction { image, state })
}

/// Drives a batched run to its end without observers.
pub(crate) fn run_quiet<S: BatchStep>(mut run: BatchRun<S>) -> Result<Vec<Reconstruction>> {
    while run.running() {
        run.step()?;
    }
    Ok(run.finish())
}
