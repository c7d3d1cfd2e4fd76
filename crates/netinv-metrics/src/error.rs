//! The error type of netinv-metrics.

/// Errors of netinv-metrics: bad images, bad configurations and bad labels.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The reference and the estimate do not have the same shape `[rows, cols]`.
    #[error("shape mismatch: reference is {reference:?} but estimate is {estimate:?}")]
    Shape {
        /// Shape of the reference image.
        reference: [usize; 2],
        /// Shape of the estimate.
        estimate: [usize; 2],
    },
    /// An image has no pixels.
    #[error("empty image: shape {shape:?}")]
    Empty {
        /// The shape of the empty image.
        shape: [usize; 2],
    },
    /// An image is smaller than the SSIM window along some axis.
    #[error("image of shape {shape:?} is smaller than the {window}x{window} SSIM window")]
    SmallerThanWindow {
        /// Shape of the images.
        shape: [usize; 2],
        /// Side length of the window.
        window: usize,
    },
    /// An image holds NaN or an infinity.
    #[error("non-finite value {value} in the {image} at [{row}, {col}]")]
    NonFinite {
        /// `"reference"` or `"estimate"`.
        image: &'static str,
        /// Row of the first non-finite pixel (row-major order).
        row: usize,
        /// Column of that pixel.
        col: usize,
        /// The value found there.
        value: f32,
    },
    /// A configuration field or argument is out of its valid range.
    #[error("invalid value for `{field}`: {reason}")]
    InvalidConfig {
        /// The offending field or argument.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// The true and predicted label sequences have different lengths.
    #[error("label length mismatch: {truth} true labels but {predicted} predictions")]
    LabelLength {
        /// Number of true labels.
        truth: usize,
        /// Number of predicted labels.
        predicted: usize,
    },
    /// A label is not below the number of classes.
    #[error("{which} label {label} at position {position} is not below n_classes = {n_classes}")]
    LabelOutOfRange {
        /// `"true"` or `"predicted"`.
        which: &'static str,
        /// Index of the label in its sequence.
        position: usize,
        /// The label.
        label: usize,
        /// The number of classes.
        n_classes: usize,
    },
}

/// `Result` with netinv-metrics' [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
