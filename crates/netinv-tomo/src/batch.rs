//! Batches of images or sinograms in the pixel-major layout `[rows, cols, batch]` that the
//! batched operators ([`LinearOperator::apply_batch_into`]) and solvers use: the values of
//! one pixel for every image sit next to each other, so a sparse matrix row is read once
//! for the whole batch.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};
use netinv_core::{IterState, Monitor, Termination};

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
/// the image's index, state and current values; may stop that image.
pub(crate) type Observe<'a> =
    dyn FnMut(usize, &IterState, ArrayView2<f32>) -> Result<Option<Termination>> + 'a;

/// One image's result of a batched solver: the image as it was when it stopped, its state
/// and why it stopped.
pub(crate) type Stopped = (Array2<f32>, IterState, Termination);

/// The per-image bookkeeping of a batched iterative solver: every image has its own state
/// and stops on its own; the batch iterates until the last one has stopped.
pub(crate) struct BatchProgress {
    states: Vec<IterState>,
    stopped: Vec<Option<Stopped>>,
}

impl BatchProgress {
    /// `batch` images, each allowed `max_iterations`.
    pub(crate) fn new(batch: usize, max_iterations: usize) -> Self {
        Self {
            states: vec![IterState::new(max_iterations); batch],
            stopped: vec![None; batch],
        }
    }

    /// Whether any image is still running.
    pub(crate) fn running(&self) -> bool {
        self.stopped.iter().any(Option::is_none)
    }

    /// Ends an iteration: for each running image `k` of `x` (`[rows, cols, batch]`),
    /// records `cost[k]` and the metric, then asks `observe`, then `rule(k, state)`,
    /// whether to stop it.
    pub(crate) fn end_iteration(
        &mut self,
        x: ArrayView3<f32>,
        cost: &[f64],
        metric: Option<(&'static str, &[f64])>,
        observe: &mut Observe<'_>,
        mut rule: impl FnMut(usize, &IterState) -> Option<Termination>,
    ) -> Result<()> {
        for (k, state) in self.states.iter_mut().enumerate() {
            if self.stopped[k].is_some() {
                continue;
            }
            state.advance(Some(cost[k]));
            if let Some((name, values)) = metric {
                state.set_metric(name, values[k]);
            }
            let image = x.index_axis(Axis(2), k);
            let reason = match observe(k, state, image)? {
                Some(reason) => Some(reason),
                None => rule(k, state),
            };
            if let Some(reason) = reason {
                self.stopped[k] = Some((image.to_owned(), state.clone(), reason));
            }
        }
        Ok(())
    }

    /// Every image's result, in batch order (call once nothing is running).
    pub(crate) fn finish(self) -> Vec<Stopped> {
        self.stopped.into_iter().flatten().collect()
    }
}

/// Runs a batched solver `run(sinograms, start, observe)` on one image, reporting every
/// iteration to `monitor`: `sinogram` `[angles, detectors]`, `start` `[rows, cols]`.
pub(crate) fn run_one(
    sinogram: ArrayView2<f32>,
    start: Array2<f32>,
    monitor: &mut Monitor<'_, Array2<f32>>,
    run: impl FnOnce(ArrayView3<f32>, Array3<f32>, &mut Observe<'_>) -> Result<Vec<Stopped>>,
) -> Result<Reconstruction> {
    let start = start.insert_axis(Axis(2)).as_standard_layout().into_owned();
    let mut observe = |_: usize, state: &IterState, x: ArrayView2<f32>| {
        Ok(monitor.after_iteration(state, &x.to_owned())?)
    };
    let (image, mut state, reason) = run(sinogram.insert_axis(Axis(2)), start, &mut observe)?
        .pop()
        .expect("a batch of one image gives one result");
    monitor.finish(&mut state, reason, &image)?;
    Ok(Reconstruction { image, state })
}

/// Runs a batched solver on a batch without observers and finishes every image's state.
pub(crate) fn run_quiet(
    run: impl FnOnce(&mut Observe<'_>) -> Result<Vec<Stopped>>,
) -> Result<Vec<Reconstruction>> {
    let mut quiet = |_: usize, _: &IterState, _: ArrayView2<f32>| Ok(None);
    run(&mut quiet)?
        .into_iter()
        .map(|(image, mut state, reason)| {
            Monitor::new().finish(&mut state, reason, &image)?;
            Ok(Reconstruction { image, state })
        })
        .collect()
}
