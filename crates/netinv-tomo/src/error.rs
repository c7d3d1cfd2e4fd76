//! The error type of netinv-tomo.

use std::path::PathBuf;

/// Errors of netinv-tomo: invalid geometries and configs, mismatched or non-finite data,
/// and `.npy` file problems.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A geometry parameter is out of its valid range (empty angle list, zero size, ...).
    #[error("invalid geometry `{field}`: {reason}")]
    InvalidGeometry {
        /// The offending parameter.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// A configuration field is out of its valid range.
    #[error("invalid value for `{field}`: {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// Data do not have the shape the geometry or operator expects.
    #[error("shape mismatch for {what}: expected {expected}, got {got}")]
    Shape {
        /// Which input (for example "sinogram").
        what: &'static str,
        /// The expected shape.
        expected: String,
        /// The given shape.
        got: String,
    },
    /// Input data contain NaN or infinite values.
    #[error("{what} contains a non-finite value at index {index}")]
    NonFinite {
        /// Which input (for example "sinogram").
        what: &'static str,
        /// Flat (row-major) index of the first offending value.
        index: usize,
    },
    /// Building something (the CSR matrix of a projector) would take more memory than the
    /// caller allows.
    #[error(
        "the {what} of images {image:?} and sinograms {sinogram:?} needs {needed} bytes, \
         over the memory budget of {budget} bytes"
    )]
    OverMemoryBudget {
        /// What would have been built (for example "CSR operator").
        what: &'static str,
        /// The bytes it needs.
        needed: usize,
        /// The budget it exceeds, in bytes.
        budget: usize,
        /// The operator's image shape `(rows, cols)`.
        image: (usize, usize),
        /// The operator's sinogram shape `(angles, detectors)`.
        sinogram: (usize, usize),
    },
    /// Reading or writing a `.npy` file failed.
    #[error("npy error on {path}: {reason}")]
    Npy {
        /// The file involved.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// An error from netinv-core (an observer aborting the run, a failed write).
    #[error(transparent)]
    Core(#[from] netinv_core::Error),
}

/// `Result` with netinv-tomo's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Checks that every value is finite.
pub(crate) fn check_finite<'a>(
    what: &'static str,
    values: impl IntoIterator<Item = &'a f32>,
) -> Result<()> {
    match values.into_iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::NonFinite { what, index }),
        None => Ok(()),
    }
}

/// Checks a 2-D array's shape, then that its values are finite.
pub(crate) fn check_array(
    what: &'static str,
    expected: (usize, usize),
    values: ndarray::ArrayView2<f32>,
) -> Result<()> {
    check_shape(what, expected, values.dim())?;
    check_finite(what, values.iter())
}

/// Checks a 2-D shape.
pub(crate) fn check_shape(
    what: &'static str,
    expected: (usize, usize),
    got: (usize, usize),
) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::Shape {
            what,
            expected: format!("[{}, {}]", expected.0, expected.1),
            got: format!("[{}, {}]", got.0, got.1),
        })
    }
}
