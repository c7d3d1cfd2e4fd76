//! Batches of images or sinograms in the pixel-major layout `[rows, cols, batch]` that the
//! batched operators ([`LinearOperator::apply_batch_into`]) and solvers use: the values of
//! one pixel for every image sit next to each other, so a sparse matrix row is read once
//! for the whole batch.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};
use netinv_core::{BatchProgress, IterState, MaxIterations, Monitor, StopRule, Termination};

use crate::error::check_array;
use crate::{Error, Reconstruction, Result};

/// Stacks equally shaped 2-D arrays into one `[rows, cols, batch]` array (image `k` is
/// `out[.., .., k]`).
///
/// # Errors
/// [`Error::Shape`] if `images` is empty or the shapes differ.
///
/// # Examples
/// ```
/// use netinv_tomo::{ndarray::array, stack_images, unstack_images};
/// let (a, b) = (array![[1.0f32, 2.0]], array![[3.0f32, 4.0]]);
/// let batch = stack_images(&[a.view(), b.view()]).unwrap();
/// assert_eq!(batch.dim(), (1, 2, 2));
/// assert_eq!(batch[[0, 1, 1]], 4.0);
/// assert_eq!(unstack_images(batch.view()), vec![a, b]);
/// ```
pub fn stack_images(images: &[ArrayView2<f32>]) -> Result<Array3<f32>> {
    let first = images.first().ok_or_else(|| Error::Shape {
        what: "image batch",
        expected: "at least one image".into(),
        got: "none".into(),
    })?;
    let (rows, cols) = first.dim();
    if let Some(bad) = images.iter().find(|x| x.dim() != (rows, cols)) {
        return Err(Error::Shape {
            what: "image in a batch",
            expected: format!("{:?}", (rows, cols)),
            got: format!("{:?}", bad.dim()),
        });
    }
    Ok(Array3::from_shape_fn(
        (rows, cols, images.len()),
        |(r, c, k)| images[k][[r, c]],
    ))
}

/// Splits a `[rows, cols, batch]` array into its `batch` images.
pub fn unstack_images(batch: ArrayView3<f32>) -> Vec<Array2<f32>> {
    batch.axis_iter(Axis(2)).map(|x| x.to_owned()).collect()
}

/// The batch as one contiguous slice (`[rows, cols, batch]` in standard layout).
///
/// # Panics
/// If the array is not in standard layout; the solvers only call it on arrays they made.
pub(crate) fn flat(a: &Array3<f32>) -> &[f32] {
    a.as_slice().expect("solver buffers are in standard layout")
}

/// Mutable [`flat`].
pub(crate) fn flat_mut(a: &mut Array3<f32>) -> &mut [f32] {
    a.as_slice_mut()
        .expect("solver buffers are in standard layout")
}

/// Called after every iteration of a batched solver for each image still running, with
/// the image's index, state and current values; may stop that image (a driver's observers
/// and stop rules: a [`Monitor`], for one image).
pub(crate) type Observe<'a> =
    dyn FnMut(usize, &IterState, ArrayView2<f32>) -> Result<Option<Termination>> + 'a;

/// The reason given to images still running when their run is finished by the caller.
fn finished_early() -> Termination {
    Termination::Other("finished by the caller before a stop rule fired".into())
}

/// The iterates of a batched solver run, `[rows, cols, batch]` in standard layout, with
/// their per-image stops: every image has its own state and stops on its own (an observer,
/// the solver's own rule, or the budget); the run goes on until the last one has stopped.
#[derive(Debug, Clone)]
pub(crate) struct Iterates {
    x: Array3<f32>,
    progress: BatchProgress<Array2<f32>>,
    budget: MaxIterations,
}

impl Iterates {
    /// `x` the initial images `[rows, cols, batch]` (any layout; stored in standard
    /// layout), each allowed `max_iterations`.
    pub(crate) fn new(x: Array3<f32>, max_iterations: usize) -> Self {
        let x = if x.is_standard_layout() {
            x
        } else {
            x.as_standard_layout().into_owned()
        };
        let batch = x.dim().2;
        Self {
            x,
            progress: BatchProgress::new(batch, max_iterations),
            budget: MaxIterations(max_iterations),
        }
    }

    /// The images, `[rows, cols, batch]`.
    pub(crate) fn x(&self) -> &Array3<f32> {
        &self.x
    }

    /// The images, mutably.
    pub(crate) fn x_mut(&mut self) -> &mut Array3<f32> {
        &mut self.x
    }

    /// The per-image stop bookkeeping.
    pub(crate) fn progress(&self) -> &BatchProgress<Array2<f32>> {
        &self.progress
    }

    /// Ends an iteration: for each running image `k`, records `cost[k]` and the metric,
    /// then asks `observe`, then the solver's `rule(k)`, then the budget whether to stop it.
    pub(crate) fn end_iteration(
        &mut self,
        cost: &[f64],
        metric: Option<(&'static str, &[f64])>,
        observe: &mut Observe<'_>,
        mut rule: impl FnMut(usize) -> Option<Termination>,
    ) -> Result<()> {
        let (x, budget) = (&self.x, &mut self.budget);
        self.progress.end_iteration(
            cost,
            metric,
            |k, state| {
                Ok(match observe(k, state, x.index_axis(Axis(2), k))? {
                    Some(reason) => Some(reason),
                    None => rule(k).or_else(|| budget.check(state)),
                })
            },
            |k| x.index_axis(Axis(2), k).to_owned(),
        )
    }

    /// Every image's reconstruction in batch order, with its termination recorded: a
    /// stopped image as it was at its stop, one still running as it is now.
    pub(crate) fn finish(self) -> Vec<Reconstruction> {
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

/// A batched solver run as the drivers see it: a step that ends with the per-image stops.
pub(crate) trait Stepper {
    /// One iteration, then the stop decisions (`observe` first).
    fn step_observed(&mut self, observe: &mut Observe<'_>) -> Result<()>;
    /// Whether any image is still running.
    fn still_running(&self) -> bool;
    /// Every image's reconstruction.
    fn finish_all(self) -> Vec<Reconstruction>;
}

/// Drives a run of one image to its end, reporting every iteration to `monitor` (which
/// may stop it, before the solver's own rules) and finishing with it.
pub(crate) fn run_monitored(
    mut run: impl Stepper,
    monitor: &mut Monitor<'_, Array2<f32>>,
) -> Result<Reconstruction> {
    let mut observe = |_: usize, state: &IterState, x: ArrayView2<f32>| {
        Ok(monitor.after_iteration(state, &x.to_owned())?)
    };
    while run.still_running() {
        run.step_observed(&mut observe)?;
    }
    let Reconstruction { image, mut state } = run
        .finish_all()
        .pop()
        .expect("a run of one image gives one result");
    let reason = state.termination.clone().unwrap_or_else(finished_early);
    monitor.finish(&mut state, reason, &image)?;
    Ok(Reconstruction { image, state })
}

/// Drives a batched run to its end without observers.
pub(crate) fn run_quiet(mut run: impl Stepper) -> Result<Vec<Reconstruction>> {
    let mut quiet = |_: usize, _: &IterState, _: ArrayView2<f32>| Ok(None);
    while run.still_running() {
        run.step_observed(&mut quiet)?;
    }
    Ok(run.finish_all())
}

/// Checks initial images (one per sinogram, each `shape`) and stacks them.
pub(crate) fn stack_initial(
    initial: &[ArrayView2<f32>],
    sinograms: usize,
    shape: (usize, usize),
) -> Result<Array3<f32>> {
    if initial.len() != sinograms {
        return Err(Error::Shape {
            what: "initial images",
            expected: format!("{sinograms} (one per sinogram)"),
            got: initial.len().to_string(),
        });
    }
    for x in initial {
        check_array("initial image", shape, *x)?;
    }
    stack_images(initial)
}
