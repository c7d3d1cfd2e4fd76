//! The error type of netinv-core.

use std::path::PathBuf;

/// Errors of netinv-core: file output and invalid arguments.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing `path` failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Serialising a value to JSON failed.
    #[error("JSON error: {0}")]
    Json(#[from] serde_json::Error),
    /// Encoding a PNG failed.
    #[error("image encoding error on {path}: {source}")]
    Image {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: image::ImageError,
    },
    /// A configuration field or argument is out of its valid range.
    #[error("invalid value for `{field}`: {reason}")]
    InvalidConfig {
        /// The offending field or argument.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// Data do not have the expected shape or length.
    #[error("shape mismatch: expected {expected}, got {got}")]
    Shape {
        /// The shape that was expected.
        expected: String,
        /// The shape that was given.
        got: String,
    },
    /// An observer asked to abort a run (its message says why).
    #[error("observer failed: {0}")]
    Observer(String),
}

/// `Result` with netinv-core's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
