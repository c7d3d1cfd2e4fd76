//! The error type of netinv-models.

use std::path::PathBuf;

/// Errors of netinv-models: invalid configurations, shape mismatches, checkpoint problems
/// and errors from candle.
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
    /// A tensor does not have the expected shape.
    #[error("shape mismatch: expected {expected}, got {got}")]
    Shape {
        /// The shape that was expected.
        expected: String,
        /// The shape that was given.
        got: String,
    },
    /// Reading or writing `path` failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A checkpoint file is malformed or does not match its configuration.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file or folder involved.
        path: PathBuf,
        /// What is wrong, naming the tensor or field.
        reason: String,
    },
    /// An error from candle.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// An error from netinv-core (file output).
    #[error(transparent)]
    Core(#[from] netinv_core::Error),
    /// Soft labels that are not distributions (negative, or a row not summing to 1).
    #[error("soft labels: row {row} {reason}")]
    SoftLabels {
        /// The first offending row of the batch.
        row: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The training loss became NaN or infinite; the last completed epoch's checkpoint (if
    /// any) is kept.
    #[error("training loss is {loss} at epoch {epoch}, step {step} (both from 1); stopped")]
    NonFiniteLoss {
        /// The epoch, from 1.
        epoch: usize,
        /// The step within the epoch, from 1.
        step: usize,
        /// The loss value.
        loss: f64,
    },
    /// An error from netinv-data (batching, reading).
    #[error(transparent)]
    Data(#[from] netinv_data::Error),
    /// An error from netinv-metrics.
    #[error(transparent)]
    Metrics(#[from] netinv_metrics::Error),
    /// A judge failed its acceptance gate (see `JudgeRecipe`).
    #[error(
        "the judge was rejected: clean accuracy {clean_accuracy:.4} (need {min_clean_accuracy}), \
         attack accuracy {attack_accuracy:.4} (need {min_attack_accuracy}), noise hits \
         {noise_hits} (at most {max_noise_hits})"
    )]
    JudgeRejected {
        /// The measured clean test accuracy.
        clean_accuracy: f64,
        /// The gate's smallest clean accuracy.
        min_clean_accuracy: f64,
        /// The measured accuracy under attack.
        attack_accuracy: f64,
        /// The gate's smallest accuracy under attack.
        min_attack_accuracy: f64,
        /// Noise images judged as their target.
        noise_hits: usize,
        /// The gate's largest number of noise hits.
        max_noise_hits: usize,
    },
    /// A judge of a panel failed (its gate, training, checkpoint or I/O).
    #[error("judge {name}: {source}")]
    PanelJudge {
        /// The judge's name in the panel.
        name: String,
        /// What went wrong.
        source: Box<Error>,
    },
    /// A JSON (de)serialisation error.
    #[error("JSON error: {0}")]
    Json(#[from] serde_json::Error),
}

/// `Result` with netinv-models' [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An [`Error::InvalidConfig`].
pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field,
        reason: reason.into(),
    }
}
