//! Batches of images or sinograms in the pixel-major layout `[rows, cols, batch]` that the
//! batched operators ([`LinearOperator::apply_batch_into`]) and solvers use: the values of
//! one pixel for every image sit next to each other, so a sparse matrix row is read once
//! for the whole batch.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};

use crate::error::check_array;
use crate::{Error, Result};

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
