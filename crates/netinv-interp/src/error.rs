//! The error type of netinv-interp.

use std::path::PathBuf;

/// Errors of netinv-interp: invalid configurations or arguments, shape mismatches,
/// checkpoint problems and errors from the crates below.
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
    /// A tensor or array does not have the expected shape.
    #[error("shape mismatch: expected {expected}, got {got}")]
    Shape {
        /// The shape that was expected.
        expected: String,
        /// The shape that was given.
        got: String,
    },
    /// Reading `path` failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A checkpoint is malformed or does not match the expected configuration.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file or folder involved.
        path: PathBuf,
        /// What is wrong, naming the tensor or field.
        reason: String,
    },
    /// The training loss became NaN or infinite.
    #[error("VAE loss is {loss} at epoch {epoch}, step {step} (both from 1); stopped")]
    NonFiniteLoss {
        /// The epoch, from 1.
        epoch: usize,
        /// The step within the epoch, from 1.
        step: usize,
        /// The loss value.
        loss: f64,
    },
    /// An error from candle.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// An error from netinv-core (file output, observers).
    #[error(transparent)]
    Core(#[from] netinv_core::Error),
    /// An error from netinv-data (batching).
    #[error(transparent)]
    Data(#[from] netinv_data::Error),
    /// An error from netinv-models.
    #[error(transparent)]
    Models(#[from] netinv_models::Error),
    /// A JSON (de)serialisation error.
    #[error("JSON error: {0}")]
    Json(#[from] serde_json::Error),
}

/// `Result` with netinv-interp's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An [`Error::InvalidConfig`].
pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field,
        reason: reason.into(),
    }
}

/// Converts our error into netinv-models' error, for the [`netinv_models::train::BatchSource`]
/// implementation.
pub(crate) fn to_models_error(e: Error) -> netinv_models::Error {
    match e {
        Error::Models(m) => m,
        Error::Candle(c) => netinv_models::Error::Candle(c),
        Error::Data(d) => netinv_models::Error::Data(d),
        Error::Core(c) => netinv_models::Error::Core(c),
        Error::Json(j) => netinv_models::Error::Json(j),
        Error::InvalidConfig { field, reason } => {
            netinv_models::Error::InvalidConfig { field, reason }
        }
        Error::Shape { expected, got } => netinv_models::Error::Shape { expected, got },
        Error::Io { path, source } => netinv_models::Error::Io { path, source },
        Error::Checkpoint { path, reason } => netinv_models::Error::Checkpoint { path, reason },
        Error::NonFiniteLoss { epoch, step, loss } => {
            netinv_models::Error::NonFiniteLoss { epoch, step, loss }
        }
    }
}
