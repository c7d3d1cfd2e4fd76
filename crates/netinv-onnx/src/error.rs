//! The error type of netinv-onnx.

use std::path::PathBuf;

/// Errors of netinv-onnx: unreadable or malformed files, models that are not image
/// classifiers, operators or attributes outside the supported set, and shape errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not a valid ONNX model (protobuf decoding failed, no graph, a tensor
    /// whose data does not match its shape, ...).
    #[error("not a valid ONNX model: {0}")]
    Format(String),
    /// The model is valid ONNX but not a supported image classifier: its input is not one
    /// float32 `[batch, C, H, W]` tensor, its output not `[batch, classes]`, or its opset is
    /// outside 13..=21.
    #[error("not a supported image classifier: {0}")]
    NotImageModel(String),
    /// A node uses an operator, attribute or attribute value that is not supported.
    #[error("node `{node}` ({op_type}): unsupported {what}{}", attribute.as_ref().map(|a| format!(" attribute `{a}`")).unwrap_or_default())]
    Unsupported {
        /// The node's name (or `#index` when the node has no name).
        node: String,
        /// The node's operator type.
        op_type: String,
        /// The attribute, when one is at fault.
        attribute: Option<String>,
        /// What is not supported and why.
        what: String,
    },
    /// Evaluating a node failed (shapes that do not fit, a missing input, ...).
    #[error("node `{node}` ({op_type}): {reason}")]
    Node {
        /// The node's name (or `#index`).
        node: String,
        /// The node's operator type.
        op_type: String,
        /// What went wrong.
        reason: String,
    },
    /// A tensor or argument does not have the expected shape.
    #[error("shape mismatch: expected {expected}, got {got}")]
    Shape {
        /// The shape that was expected.
        expected: String,
        /// The shape that was given.
        got: String,
    },
    /// An argument is out of its valid range.
    #[error("invalid value for `{field}`: {reason}")]
    InvalidConfig {
        /// The offending field or argument.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// An error from candle.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// An error from netinv-core (file output).
    #[error(transparent)]
    Core(#[from] netinv_core::Error),
}

/// `Result` with netinv-onnx's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for netinv_invert::Error {
    /// Shape errors stay shape errors; everything else becomes a candle message error
    /// carrying the full text (netinv-invert has no variant for foreign errors).
    fn from(e: Error) -> Self {
        match e {
            Error::Shape { expected, got } => netinv_invert::Error::Shape { expected, got },
            Error::Candle(c) => netinv_invert::Error::Candle(c),
            other => netinv_invert::Error::Candle(candle_core::Error::Msg(other.to_string())),
        }
    }
}
