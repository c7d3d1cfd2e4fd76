//! The linear-operator trait: an apply / adjoint pair on 2-D arrays.

use ndarray::{Array2, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{check_array, check_shape};
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
/// variants check shapes and finiteness and return an error instead, and the `check_`
/// methods check data before a solver starts without computing anything.
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

    /// Checks that `shape` is the [`domain_shape`](Self::domain_shape).
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) naming the image otherwise.
    fn check_domain(&self, shape: (usize, usize)) -> Result<()> {
        check_shape("image", self.domain_shape(), shape)
    }

    /// Checks that `shape` is the [`range_shape`](Self::range_shape).
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) naming the sinogram otherwise.
    fn check_range(&self, shape: (usize, usize)) -> Result<()> {
        check_shape("sinogram", self.range_shape(), shape)
    }

    /// Checks that `x` is an image of this operator: its shape
    /// ([`check_domain`](Self::check_domain)), then that every value is finite.
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) or [`Error::NonFinite`](crate::Error::NonFinite).
    fn check_domain_array(&self, x: ArrayView2<f32>) -> Result<()> {
        check_array("image", self.domain_shape(), x)
    }

    /// Checks that `y` is data of this operator (a sinogram): its shape
    /// ([`check_range`](Self::check_range)), then that every value is finite.
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) or [`Error::NonFinite`](crate::Error::NonFinite).
    ///
    /// # Examples
    /// ```
    /// use netinv_tomo::{ndarray::Array2, Error, LinearOperator, ParallelBeam2d, RayTransform};
    /// let op = RayTransform::new(ParallelBeam2d::uniform(8, 8, 4, 12, 1.0).unwrap()).unwrap();
    /// assert!(op.check_range_array(Array2::zeros((4, 12)).view()).is_ok());
    /// let wrong = op.check_range_array(Array2::zeros((4, 11)).view());
    /// assert!(matches!(wrong, Err(Error::Shape { .. })));
    /// let nan = op.check_range_array(Array2::from_elem((4, 12), f32::NAN).view());
    /// assert!(matches!(nan, Err(Error::NonFinite { index: 0, .. })));
    /// ```
    fn check_range_array(&self, y: ArrayView2<f32>) -> Result<()> {
        check_array("sinogram", self.range_shape(), y)
    }

    /// Estimates the operator norm `||A||` (the largest singular value) by `iterations`
    /// power iterations on `A^T A` (at least one), from a Gaussian start drawn with `seed`
    /// (the same seed gives the same estimate):
    ///
    /// ```text
    /// v <- v / ||v||;   w = A^T A v;   estimate = sqrt(||w||);   v <- w
    /// ```
    ///
    /// The estimate converges from below (it is a lower bound up to rounding); sums are
    /// taken in f64. Step sizes of first-order methods (PDHG) need an upper bound: scale
    /// it up a little (PDHG uses 1.05 times the estimate).
    ///
    /// # Examples
    /// ```
    /// use netinv_tomo::{LinearOperator, ParallelBeam2d, RayTransform};
    /// let op = RayTransform::new(ParallelBeam2d::uniform(16, 16, 8, 16, 1.0).unwrap()).unwrap();
    /// let l = op.norm_estimate(100, 0);
    /// // ||A||^2 >= ||A 1||^2 / ||1||^2: every ray through the image has length about 16.
    /// assert!(l > 10.0 && l < 40.0);
    /// assert_eq!(l, op.norm_estimate(100, 0));
    /// ```
    fn norm_estimate(&self, iterations: usize, seed: u64) -> f64 {
        power_iteration(self, iterations, seed, |_, _| {})
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

/// `sum v^2` in f64.
fn norm2(a: &Array2<f32>) -> f64 {
    a.iter().map(|&v| (v as f64) * (v as f64)).sum()
}

/// The power iteration of [`LinearOperator::norm_estimate`] on `A^T A + E`, where
/// `extra(v, w)` adds `E v` to `w = A^T A v` (nothing for `||A||`; `grad^T grad v` for the
/// norm of `[A; grad]`).
pub(crate) fn power_iteration<O: LinearOperator + ?Sized>(
    op: &O,
    iterations: usize,
    seed: u64,
    mut extra: impl FnMut(&Array2<f32>, &mut Array2<f32>),
) -> f64 {
    let mut rng = StdRng::seed_from_u64(seed);
    let shape = op.domain_shape();
    let mut v = Array2::from_shape_fn(shape, |_| {
        let z: f64 = StandardNormal.sample(&mut rng);
        z as f32
    });
    let mut av = Array2::zeros(op.range_shape());
    let mut w = Array2::zeros(shape);
    let mut estimate = 0.0;
    for _ in 0..iterations.max(1) {
        let n = norm2(&v).sqrt();
        if n == 0.0 {
            break;
        }
        v.mapv_inplace(|x| (x as f64 / n) as f32);
        op.apply_into(v.view(), av.view_mut());
        op.adjoint_into(av.view(), w.view_mut());
        extra(&v, &mut w);
        estimate = norm2(&w).sqrt().sqrt();
        std::mem::swap(&mut v, &mut w);
    }
    estimate
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
