//! The error type of netinv-prototypes.

/// Errors of netinv-prototypes: invalid configurations and inputs, points outside the
/// Poincare ball, and errors from candle, netinv-core, netinv-models and netinv-invert.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration field or argument is out of its valid range.
    #[error("invalid value for `{field}`: {reason}")]
    InvalidConfig {
        /// The offending field or argument.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// A tensor or list does not have the expected shape or length.
    #[error("shape mismatch: expected {expected}, got {got}")]
    Shape {
        /// The shape that was expected.
        expected: String,
        /// The shape that was given.
        got: String,
    },
    /// A label is not one of the prototypes `0..classes`.
    #[error(
        "label {label} at batch index {index} is out of range: there are {classes} prototypes"
    )]
    LabelOutOfRange {
        /// Position of the label in the batch.
        index: usize,
        /// The label.
        label: u32,
        /// Number of prototypes.
        classes: usize,
    },
    /// A point that must lie in the open unit ball does not (`||z|| >= 1` or not finite).
    #[error("point {index} has norm {norm}, outside the open unit (Poincare) ball")]
    OutsideBall {
        /// Row of the offending point.
        index: usize,
        /// Its Euclidean norm.
        norm: f64,
    },
    /// A prototype file is malformed.
    #[error("prototype file {path}: {reason}")]
    Format {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An error from candle.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// An error from netinv-core (file output).
    #[error(transparent)]
    Core(#[from] netinv_core::Error),
    /// An error from netinv-models.
    #[error(transparent)]
    Models(#[from] netinv_models::Error),
    /// An error from netinv-invert.
    #[error(transparent)]
    Invert(#[from] netinv_invert::Error),
}

/// `Result` with netinv-prototypes' [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for [`Error::InvalidConfig`].
pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field,
        reason: reason.into(),
    }
}
