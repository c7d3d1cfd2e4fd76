//! The error type of netinv-interp.

/// Errors of netinv-interp: its own invalid arguments and shape mismatches, and errors of
/// netinv-models (the VAE, training, checkpoints) and the crates below it, wrapped.
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
    /// An error of netinv-models (the VAE, training, checkpoints), or of candle, netinv-core
    /// and netinv-data as netinv-models reports them.
    #[error(transparent)]
    Models(#[from] netinv_models::Error),
}

/// Candle errors arrive as netinv-models' [`netinv_models::Error::Candle`].
impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Models(e.into())
    }
}

/// netinv-core errors (file output) arrive as netinv-models' [`netinv_models::Error::Core`].
impl From<netinv_core::Error> for Error {
    fn from(e: netinv_core::Error) -> Self {
        Error::Models(e.into())
    }
}

/// netinv-data errors (batching) arrive as netinv-models' [`netinv_models::Error::Data`].
impl From<netinv_data::Error> for Error {
    fn from(e: netinv_data::Error) -> Self {
        Error::Models(e.into())
    }
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

/// Our error as netinv-models' error, for the [`netinv_models::train::BatchSource`]
/// implementation (whose methods return netinv-models' `Result`).
impl From<Error> for netinv_models::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Models(m) => m,
            Error::InvalidConfig { field, reason } => {
                netinv_models::Error::InvalidConfig { field, reason }
            }
            Error::Shape { expected, got } => netinv_models::Error::Shape { expected, got },
        }
    }
}
