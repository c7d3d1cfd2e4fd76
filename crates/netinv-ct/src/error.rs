//! The error type of netinv-ct.

/// Everything that can go wrong in a CT case-study run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration field is out of range.
    #[error("invalid value for `{field}`: {reason}")]
    InvalidConfig {
        /// The field's name.
        field: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// The scan has no projection angles.
    #[error("the scan has no projection angles: at least one is needed")]
    NoAngles,
    /// Image, sinogram or network shapes do not fit together.
    #[error("shape mismatch for {what}: expected {expected}, got {got}")]
    Shape {
        /// What was checked.
        what: &'static str,
        /// The expected shape.
        expected: String,
        /// The shape found.
        got: String,
    },
    /// The BatchNorm-statistics prior is on but the classifier has no BatchNorm layer.
    #[error(
        "the BatchNorm statistics prior (weight {weight}) needs a classifier with BatchNorm \
         layers; this one has none (set `bn` to 0 or load a BatchNorm classifier)"
    )]
    NoBatchNorm {
        /// The configured prior weight.
        weight: f64,
    },
    /// A target class the network does not have.
    #[error("class {class} is out of range: the network has {outputs} outputs")]
    ClassOutOfRange {
        /// The requested class.
        class: u32,
        /// The number of network outputs.
        outputs: usize,
    },
    /// A loss or gradient became NaN or infinite.
    #[error("non-finite {what} at iteration {iteration}")]
    NonFinite {
        /// What became non-finite.
        what: &'static str,
        /// The iteration (1-based).
        iteration: usize,
    },
    /// Tomography errors (geometry, SIRT, PDHG, noise).
    #[error(transparent)]
    Tomo(#[from] netinv_tomo::Error),
    /// Inversion errors.
    #[error(transparent)]
    Invert(#[from] netinv_invert::Error),
    /// Metric errors.
    #[error(transparent)]
    Metrics(#[from] netinv_metrics::Error),
    /// Model errors (the tensor bridge, the host softmax).
    #[error(transparent)]
    Models(#[from] netinv_models::Error),
    /// Observer / monitor errors.
    #[error(transparent)]
    Core(#[from] netinv_core::Error),
    /// candle errors.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field,
        reason: reason.into(),
    }
}
