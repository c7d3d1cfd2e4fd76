//! The Joseph projector as a CSR matrix below a memory budget, matrix-free above it.

use ndarray::{Array2, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3};

use crate::{CsrOperator, LinearOperator, RayTransform, Result};

/// The default memory budget of [`AutoOperator::new`]: 256 MiB.
///
/// The CSR operator pays off for small problems solved many times, and those are small:
/// the CT study's digit operators (28x28 at 30 to 90 angles) need 0.7-2.1 MB, a 128x128
/// image at 90 angles 42 MB (0.04-0.06 s to build), so both are built as matrices with room to
/// spare. The next sizes up are where the matrix stops being worth its memory: 256 px at
/// 360 angles needs 681 MB (0.45-0.9 s to build), 512 px at 720 angles 5.4 GB (3.6-9 s),
/// for a product only a few times faster than the matrix-free one. (Image side `n`,
/// `n` to `6n` angles and `ceil(sqrt(2) n) + 2` detectors; measured on 2 cores.)
///
/// # Examples
/// ```
/// assert_eq!(netinv_tomo::DEFAULT_CSR_BUDGET, 256 << 20);
/// ```
pub const DEFAULT_CSR_BUDGET: usize = 256 << 20;

/// The Joseph ray transform in the form that fits a memory budget: the precomputed
/// [`CsrOperator`] when its matrix and transpose take at most the budget
/// ([`CsrOperator::required_bytes`], counted before anything is built), the matrix-free
/// [`RayTransform`] otherwise. It is a [`LinearOperator`] that hands every method,
/// the batched products included, to the operator it holds, so it is as fast as that
/// operator and gives the same bits.
///
/// Both forms compute the same map up to rounding (the matrix stores the weights in f32,
/// the matrix-free projector uses them in f64: relative differences of about 1e-7). The CSR form is faster for repeated products (SIRT,
/// PDHG, batches of small images); the matrix-free form needs no memory beyond the
/// images. To build the matrix whatever its size, use [`CsrOperator::new`].
///
/// # Examples
/// ```
/// use netinv_tomo::{ndarray::Array2, AutoOperator, LinearOperator, ParallelBeam2d, RayTransform};
/// let ray = RayTransform::new(ParallelBeam2d::uniform(28, 28, 30, 42, 1.0).unwrap()).unwrap();
/// let op = AutoOperator::new(ray.clone()); // a digit: well under the default budget
/// assert!(op.is_csr());
/// let small = AutoOperator::with_budget(ray, 1 << 10); // 1 KiB: too small for the matrix
/// assert!(!small.is_csr());
/// let x = Array2::from_elem((28, 28), 0.5f32);
/// let (a, b) = (op.apply(x.view()), small.apply(x.view()));
/// assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() <= 1e-5 * p.abs().max(1.0)));
/// ```
#[derive(Debug, Clone)]
pub enum AutoOperator {
    /// The precomputed matrix and its transpose (chosen at or below the budget).
    Csr(CsrOperator),
    /// The matrix-free projector (chosen above the budget).
    MatrixFree(RayTransform),
}

impl AutoOperator {
    /// The CSR form if it takes at most [`DEFAULT_CSR_BUDGET`] (256 MiB), the matrix-free
    /// form otherwise.
    ///
    /// # Examples
    /// ```
    /// use netinv_tomo::{AutoOperator, ParallelBeam2d, RayTransform};
    /// let ray = RayTransform::new(ParallelBeam2d::uniform(16, 16, 20, 24, 1.0).unwrap()).unwrap();
    /// assert!(AutoOperator::new(ray).is_csr());
    /// ```
    pub fn new(op: RayTransform) -> Self {
        Self::with_budget(op, DEFAULT_CSR_BUDGET)
    }

    /// The CSR form if it takes at most `max_bytes` ([`CsrOperator::required_bytes`]),
    /// the matrix-free form otherwise (then nothing is built: only the entries are
    /// counted).
    ///
    /// # Examples
    /// ```
    /// use netinv_tomo::{AutoOperator, CsrOperator, ParallelBeam2d, RayTransform};
    /// let ray = RayTransform::new(ParallelBeam2d::uniform(16, 16, 20, 24, 1.0).unwrap()).unwrap();
    /// let needed = CsrOperator::required_bytes(&ray);
    /// assert!(AutoOperator::with_budget(ray.clone(), needed).is_csr());
    /// assert!(!AutoOperator::with_budget(ray, needed - 1).is_csr());
    /// ```
    pub fn with_budget(op: RayTransform, max_bytes: usize) -> Self {
        match CsrOperator::with_budget(&op, max_bytes) {
            Ok(csr) => Self::Csr(csr),
            Err(_) => Self::MatrixFree(op),
        }
    }

    /// Whether the CSR form was chosen.
    ///
    /// # Examples
    /// ```
    /// use netinv_tomo::{AutoOperator, ParallelBeam2d, RayTransform};
    /// let ray = RayTransform::new(ParallelBeam2d::uniform(16, 16, 20, 24, 1.0).unwrap()).unwrap();
    /// assert!(!AutoOperator::with_budget(ray, 0).is_csr());
    /// ```
    pub fn is_csr(&self) -> bool {
        matches!(self, Self::Csr(_))
    }

    /// The operator it holds.
    fn inner(&self) -> &dyn LinearOperator {
        match self {
            Self::Csr(op) => op,
            Self::MatrixFree(op) => op,
        }
    }
}

impl LinearOperator for AutoOperator {
    fn domain_shape(&self) -> (usize, usize) {
        self.inner().domain_shape()
    }

    fn range_shape(&self) -> (usize, usize) {
        self.inner().range_shape()
    }

    fn apply_into(&self, x: ArrayView2<f32>, y: ArrayViewMut2<f32>) {
        self.inner().apply_into(x, y)
    }

    fn adjoint_into(&self, y: ArrayView2<f32>, x: ArrayViewMut2<f32>) {
        self.inner().adjoint_into(y, x)
    }

    fn apply(&self, x: ArrayView2<f32>) -> Array2<f32> {
        self.inner().apply(x)
    }

    fn adjoint(&self, y: ArrayView2<f32>) -> Array2<f32> {
        self.inner().adjoint(y)
    }

    fn apply_batch_into(&self, x: ArrayView3<f32>, y: ArrayViewMut3<f32>) {
        self.inner().apply_batch_into(x, y)
    }

    fn adjoint_batch_into(&self, y: ArrayView3<f32>, x: ArrayViewMut3<f32>) {
        self.inner().adjoint_batch_into(y, x)
    }

    fn check_domain(&self, shape: (usize, usize)) -> Result<()> {
        self.inner().check_domain(shape)
    }

    fn check_range(&self, shape: (usize, usize)) -> Result<()> {
        self.inner().check_range(shape)
    }

    fn check_domain_array(&self, x: ArrayView2<f32>) -> Result<()> {
        self.inner().check_domain_array(x)
    }

    fn check_range_array(&self, y: ArrayView2<f32>) -> Result<()> {
        self.inner().check_range_array(y)
    }

    fn norm_estimate(&self, iterations: usize, seed: u64) -> f64 {
        self.inner().norm_estimate(iterations, seed)
    }

    fn try_apply(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        self.inner().try_apply(x)
    }

    fn try_adjoint(&self, y: ArrayView2<f32>) -> Result<Array2<f32>> {
        self.inner().try_adjoint(y)
    }
}
