//! The error type of netinv-invert.

/// Errors of netinv-invert: invalid configurations and inputs, non-finite values during a
/// run, and errors from candle, netinv-core and netinv-models.
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
    /// A target class is not one of the network's outputs.
    #[error("target class {class} at batch index {index} is out of range: the network has {outputs} outputs")]
    TargetOutOfRange {
        /// Position of the target in the batch.
        index: usize,
        /// The requested class.
        class: u32,
        /// Number of network outputs (valid classes are `0..outputs`).
        outputs: usize,
    },
    /// The BatchNorm statistics prior was requested for a network without BatchNorm layers.
    #[error(
        "the BatchNorm statistics prior needs a network with BatchNorm layers; this one has none"
    )]
    NoBatchNorm,
    /// An image, loss or gradient became NaN or infinite.
    #[error("non-finite {what} at iteration {iteration}")]
    NonFinite {
        /// What was not finite ("initial image", "loss", "gradient").
        what: &'static str,
        /// The iteration (0 = before the first update).
        iteration: usize,
    },
    /// An error from candle.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// An error from netinv-core (file output, observers).
    #[error(transparent)]
    Core(#[from] netinv_core::Error),
    /// An error from netinv-models (network forward passes, checkpoints, training).
    #[error(transparent)]
    Models(#[from] netinv_models::Error),
}

/// `Result` with netinv-invert's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for [`Error::InvalidConfig`].
pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field,
        reason: reason.into(),
    }
}
