//! Parallel-beam tomography for netinv: an ASTRA-compatible 2-D geometry, the Joseph ray
//! transform with its exact adjoint (on the fly or as a CSR matrix), SIRT and FBP exactly
//! as ASTRA's CPU algorithms, a TV-regularised reconstruction by PDHG (Chambolle-Pock)
//! with a box constraint, the modified Shepp-Logan phantom, Poisson and Gaussian noise,
//! and `.npy` input/output so data move to and from numpy and ASTRA.
//!
//! Conventions (ASTRA's, see [`ParallelBeam2d`]): images are f32 `[rows, cols]`, unit
//! pixels centred on the origin, row 0 at the top; sinograms are f32
//! `[angles, detectors]`; angles in radians. Sums are accumulated in f64. Geometry,
//! projector and algorithms are separate, as in ASTRA and ODL: an algorithm takes any
//! [`LinearOperator`].
//!
//! The projector comes in two forms with the same weights: [`RayTransform`] steps along
//! the rays on every product (no memory beyond the images), [`CsrOperator`] stores the
//! matrix and its transpose (faster for many products of small problems, but
//! [`CsrOperator::required_bytes`] grows as `size^3`: 42 MB at 128 px / 90 angles, 5.4 GB at
//! 512 px / 720 angles). [`AutoOperator`] picks the matrix below a memory budget
//! ([`DEFAULT_CSR_BUDGET`], 256 MiB) and the matrix-free form above it;
//! [`CsrOperator::with_budget`] refuses with [`Error::OverMemoryBudget`] instead, and
//! [`CsrOperator::new`] builds the matrix whatever it takes.
//!
//! Iterative solvers are a prepared state plus a step, as in argmin: [`Sirt::start`] and
//! [`TvPdhg::start`] (or their batched forms) give a [`BatchRun`] ([`SirtRun`], [`TvRun`])
//! whose [`step`](BatchRun::step) does one iteration on every image, with every image's own
//! state and stop; `reconstruct*` drive such a run to its end. SIRT's weights are computed
//! once per operator ([`SirtWeights`]) and a SIRT run takes changes of its images between
//! steps, so other iterations (network inversion) can alternate with it.
//!
//! ```
//! use netinv_tomo::{shepp_logan, LinearOperator, ParallelBeam2d, RayTransform, Sirt, SirtConfig};
//!
//! let angles: Vec<f32> = (0..60).map(|k| k as f32 * std::f32::consts::PI / 60.0).collect();
//! let geom = ParallelBeam2d::new(32, 32, angles, 48, 1.0)?;
//! let op = RayTransform::new(geom)?;                    // Joseph projector
//! let image = shepp_logan(32, 32)?;
//! let sino = op.apply(image.view());                    // [60, 48]
//! let back = op.adjoint(sino.view());                   // [32, 32]
//! assert_eq!((sino.dim(), back.dim()), ((60, 48), (32, 32)));
//! let cfg = SirtConfig { iterations: 100, min: Some(0.0), max: Some(1.0), ..Default::default() };
//! let rec = Sirt::new(cfg)?.reconstruct(&op, sino.view())?;
//! assert_eq!(rec.image.dim(), (32, 32));
//! # Ok::<(), netinv_tomo::Error>(())
//! ```
#![warn(missing_docs)]

mod auto;
mod batch;
mod error;
mod fbp;
mod geometry;
mod joseph;
mod noise;
mod npy;
mod operator;
mod par;
mod pdhg;
mod phantom;
mod projector;
#[cfg(any(test, feature = "testing"))]
mod reference;
mod run;
mod sirt;
mod sparse;
mod tv;

pub use ndarray;

// With `lapack-tests`, ndarray-linalg turns on ndarray's BLAS backend, so every `dot` of every
// binary linking this crate calls CBLAS: link OpenBLAS through this crate.
#[cfg(feature = "lapack-tests")]
use ndarray_linalg as _;

pub use auto::{AutoOperator, DEFAULT_CSR_BUDGET};
pub use batch::{stack_images, unstack_images};
pub use error::{Error, Result};
pub use fbp::{Fbp, FbpConfig, FbpFilter};
pub use geometry::ParallelBeam2d;
pub use joseph::{SimdPath, SIMD_ENV};
pub use noise::{gaussian_noise, poisson_noise};
pub use npy::{read_angles, read_npy2, read_npy_f32, write_npy, write_npy1};
pub use operator::LinearOperator;
pub use pdhg::{PdhgState, TvRun};
pub use phantom::{shepp_logan, MODIFIED_SHEPP_LOGAN};
pub use projector::RayTransform;
#[cfg(any(test, feature = "testing"))]
pub use reference::dense_matrix;
pub use run::{BatchRun, BatchStep, StepReport};
pub use sirt::{Reconstruction, Sirt, SirtConfig, SirtRun, SirtState, SirtWeights};
pub use sparse::{CsrOperator, SparseMatrix};
pub use tv::{total_variation, TvConfig, TvPdhg};
