//! The linear-operator trait: an apply / adjoint pair on 2-D arrays.

use ndarray::{Array2, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis};

use crate::error::check_array;
use crate::Result;

/// A linear map `y = A x` from images `[rows, cols]` to data `[angles, detectors]` (or
/// any other 2-D shapes), with its adjoint `x = A^T y`.
///
/// Implementors write into preallocated buffers (`_into`); [`apply`](Self::apply) and
/// [`adjoint`](Self::adjoint) allocate. The adjoint must be the exact transpose:
///
/// ```text
/// <A x, y> = <x, A^T y>   for all x, y
/// ```
///
/// `apply`/`adjoint` panic on wrong shapes (a documented precondition); the `try_`
/// variants check shapes and finiteness and return an error instead.
pub trait LinearOperator: Sync {
    /// Shape of the domain (the image), `(rows, cols)`.
    fn domain_shape(&self) -> (usize, usize);

    /// Shape of the range (the sinogram), `(angles, detectors)`.
    fn range_shape(&self) -> (usize, usize);

    /// `y = A x`, overwriting `y`.
    ///
    /// # Panics
    /// If `x` does not have [`domain_shape`](Self::domain_shape) or `y`
    /// [`range_shape`](Self::range_shape).
    fn apply_into(&self, x: ArrayView2<f32>, y: ArrayViewMut2<f32>);

    /// `x = A^T y`, overwriting `x`.
    ///
    /// # Panics
    /// If `y` does not have [`range_shape`](Self::range_shape) or `x`
    /// [`domain_shape`](Self::domain_shape).
    fn adjoint_into(&self, y: ArrayView2<f32>, x: ArrayViewMut2<f32>);

    /// `A x` in a new array of [`range_shape`](Self::range_shape).
    ///
    /// # Panics
    /// If `x` does not have [`domain_shape`](Self::domain_shape).
    fn apply(&self, x: ArrayView2<f32>) -> Array2<f32> {
        let mut y = Array2::zeros(self.range_shape());
        self.apply_into(x, y.view_mut());
        y
    }

    /// `A^T y` in a new array of [`domain_shape`](Self::domain_shape).
    ///
    /// # Panics
    /// If `y` does not have [`range_shape`](Self::range_shape).
    fn adjoint(&self, y: ArrayView2<f32>) -> Array2<f32> {
        let mut x = Array2::zeros(self.domain_shape());
        self.adjoint_into(y, x.view_mut());
        x
    }

    /// `Y = A X` for a batch of images stored pixel-major: `x` is `[rows, cols, batch]`
    /// (image `k` is `x[.., .., k]`, see [`stack_images`](crate::stack_images)) and `y`
    /// `[angles, detectors, batch]`, overwritten. The default applies
    /// [`apply_into`](Self::apply_into) image by image; operators with a faster batched
    /// form ([`CsrOperator`](crate::CsrOperator)) override it with the same results.
    ///
    /// # Panics
    /// If the shapes do not match the operator or the batch sizes differ.
    fn apply_batch_into(&self, x: ArrayView3<f32>, mut y: ArrayViewMut3<f32>) {
        assert_batch_shapes(self.domain_shape(), x.dim(), self.range_shape(), y.dim());
        for (xk, yk) in x.axis_iter(Axis(2)).zip(y.axis_iter_mut(Axis(2))) {
            self.apply_into(xk, yk);
        }
    }

    /// `X = A^T Y` for a batch stored as in [`apply_batch_into`](Self::apply_batch_into):
    /// `y` is `[angles, detectors, batch]`, `x` `[rows, cols, batch]`, overwritten.
    ///
    /// # Panics
    /// If the shapes do not match the operator or the batch sizes differ.
    fn adjoint_batch_into(&self, y: ArrayView3<f32>, mut x: ArrayViewMut3<f32>) {
        assert_batch_shapes(self.domain_shape(), x.dim(), self.range_shape(), y.dim());
        for (yk, xk) in y.axis_iter(Axis(2)).zip(x.axis_iter_mut(Axis(2))) {
            self.adjoint_into(yk, xk);
        }
    }

    /// [`apply`](Self::apply) after checking the shape and finiteness of `x`.
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) or [`Error::NonFinite`](crate::Error::NonFinite).
    fn try_apply(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        check_array("image", self.domain_shape(), x)?;
        Ok(self.apply(x))
    }

    /// [`adjoint`](Self::adjoint) after checking the shape and finiteness of `y`.
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) or [`Error::NonFinite`](crate::Error::NonFinite).
    fn try_adjoint(&self, y: ArrayView2<f32>) -> Result<Array2<f32>> {
        check_array("sinogram", self.range_shape(), y)?;
        Ok(self.adjoint(y))
    }
}

/// Checks the shapes of an `_into` call and panics with a clear message otherwise.
pub(crate) fn assert_shapes(
    what_in: &str,
    got_in: (usize, usize),
    expected_in: (usize, usize),
    what_out: &str,
    got_out: (usize, usize),
    expected_out: (usize, usize),
) {
    assert_eq!(
        got_in, expected_in,
        "{what_in} has shape {got_in:?}, expected {expected_in:?}"
    );
    assert_eq!(
        got_out, expected_out,
        "{what_out} has shape {got_out:?}, expected {expected_out:?}"
    );
}

/// Checks the shapes of a batched call (`[.., .., batch]` on both sides) and panics with a
/// clear message otherwise.
pub(crate) fn assert_batch_shapes(
    domain: (usize, usize),
    image: (usize, usize, usize),
    range: (usize, usize),
    sinogram: (usize, usize, usize),
) {
    assert_eq!(
        (image.0, image.1),
        domain,
        "image batch has shape {image:?}, expected {domain:?} x batch"
    );
    assert_eq!(
        (sinogram.0, sinogram.1),
        range,
        "sinogram batch has shape {sinogram:?}, expected {range:?} x batch"
    );
    assert_eq!(image.2, sinogram.2, "image and sinogram batch sizes differ");
}
