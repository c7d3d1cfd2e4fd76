//! The error type of netinv-data.

use std::path::PathBuf;

/// Errors of netinv-data: unreadable or malformed IDX files and invalid arguments.
///
/// Every variant about a file names it (`path`); the embedded files are named
/// `<embedded>/<file name>`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file does not exist (for [`Mnist::from_dir`](crate::Mnist::from_dir): neither the
    /// raw name nor the name with `.gz`; `path` is the raw name).
    #[error("missing file: {path}")]
    MissingFile {
        /// The file that was looked for.
        path: PathBuf,
    },
    /// Reading or writing the file failed for another reason than its absence.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file starts with the gzip magic bytes but is not a valid gzip stream.
    #[error("invalid gzip data in {path}: {source}")]
    Gzip {
        /// The file involved.
        path: PathBuf,
        /// The decoder's error.
        source: std::io::Error,
    },
    /// The IDX magic number is not the expected one (`0x00000803` for images,
    /// `0x00000801` for labels).
    #[error("wrong IDX magic number in {path}: expected {expected:#010x}, found {found:#010x}")]
    BadMagic {
        /// The file involved.
        path: PathBuf,
        /// The magic number this kind of file must have.
        expected: u32,
        /// The first four bytes of the file, big-endian.
        found: u32,
    },
    /// The file holds fewer bytes than its header declares (or is shorter than a header).
    #[error("truncated IDX file {path}: header declares {expected} bytes, file holds {actual}")]
    Truncated {
        /// The file involved.
        path: PathBuf,
        /// Bytes the header declares, header included (`u64::MAX` if the declared size
        /// overflows).
        expected: u64,
        /// Bytes actually present (after gzip decompression).
        actual: u64,
    },
    /// The file holds more bytes than its header declares.
    #[error(
        "trailing bytes in IDX file {path}: header declares {expected} bytes, file holds {actual}"
    )]
    TrailingBytes {
        /// The file involved.
        path: PathBuf,
        /// Bytes the header declares, header included.
        expected: u64,
        /// Bytes actually present (after gzip decompression).
        actual: u64,
    },
    /// An image file and its label file hold different numbers of items.
    #[error(
        "count mismatch: {images} holds {n_images} images but {labels} holds {n_labels} labels"
    )]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// The label file.
        labels: PathBuf,
        /// Number of images declared by the image file.
        n_images: usize,
        /// Number of labels declared by the label file.
        n_labels: usize,
    },
    /// The images do not have the required size (MNIST: 28 x 28).
    #[error(
        "wrong image dimensions in {path}: expected {expected:?} (rows, cols), found {found:?}"
    )]
    WrongDimensions {
        /// The file involved.
        path: PathBuf,
        /// The required (rows, cols).
        expected: (usize, usize),
        /// The (rows, cols) the file declares.
        found: (usize, usize),
    },
    /// A label in a label file is not a digit class 0..=9.
    #[error("label out of range in {path}: item {index} has label {label} (must be 0..=9)")]
    LabelOutOfRange {
        /// The file involved.
        path: PathBuf,
        /// The position of the first bad label.
        index: usize,
        /// Its value.
        label: u8,
    },
    /// A label given in memory is not a digit class 0..=9.
    #[error("invalid label: item {index} has label {label} (must be 0..=9)")]
    InvalidLabel {
        /// The position of the first bad label.
        index: usize,
        /// Its value.
        label: u8,
    },
    /// A class argument is not a digit class 0..=9.
    #[error("invalid class {class} (must be 0..=9)")]
    InvalidClass {
        /// The class that was asked for.
        class: u8,
    },
    /// A class has no items, so a per-class statistic is undefined.
    #[error("class {class} has no items")]
    EmptyClass {
        /// The class that was asked for.
        class: u8,
    },
    /// A pixel value is not finite or outside [0, 1].
    #[error("pixel value {value} at [{}, {}, {}] is outside [0, 1]", index[0], index[1], index[2])]
    ValueOutOfRange {
        /// `[item, row, col]` of the first bad value.
        index: [usize; 3],
        /// Its value.
        value: f32,
    },
    /// An item index is out of range.
    #[error("index {index} out of range for a dataset of {len} items")]
    IndexOutOfRange {
        /// The index that was asked for.
        index: usize,
        /// The number of items.
        len: usize,
    },
    /// Data do not have the expected shape or length.
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
        /// The offending argument.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// Writing a file through netinv-core failed.
    #[error(transparent)]
    Core(#[from] netinv_core::Error),
}

/// `Result` with netinv-data's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
