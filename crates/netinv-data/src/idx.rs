//! Reading and writing IDX files, the format of the MNIST distribution.
//!
//! An IDX file is a big-endian header followed by the raw values:
//!
//! ```text
//! images (idx3-ubyte): magic 0x00000803, n: u32, rows: u32, cols: u32, n*rows*cols u8 (row-major)
//! labels (idx1-ubyte): magic 0x00000801, n: u32, n u8
//! ```
//!
//! Files may be gzip-compressed: a file whose first two bytes are the gzip magic `1f 8b` is
//! decompressed first, whatever its name. Reading is strict: the magic number, the declared
//! size against the bytes present (truncated or trailing data) are checked before anything
//! is allocated from the header's numbers, and each problem is its own [`Error`] variant
//! naming the file.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use ndarray::{Array3, ArrayView3};

use crate::{Error, Result};

/// Magic number of an IDX file of u8 values with 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of u8 values with 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// The first two bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Whether an IDX file is written raw or gzip-compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Plain IDX bytes.
    Raw,
    /// Gzip (deflate level 9, header mtime 0, no file name), so the same data always give
    /// the same bytes.
    Gzip,
}

/// Reads a whole file, mapping "not found" to [`Error::MissingFile`].
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::MissingFile {
                path: path.to_path_buf(),
            }
        } else {
            Error::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// Returns the IDX bytes of `bytes`: decompressed if they start with the gzip magic bytes,
/// borrowed unchanged otherwise.
///
/// # Errors
/// [`Error::Gzip`] naming `path` if the gzip stream is corrupt or cut short.
pub fn decompress<'a>(bytes: &'a [u8], path: &Path) -> Result<Cow<'a, [u8]>> {
    if bytes.len() >= 2 && bytes[..2] == GZIP_MAGIC {
        let mut out = Vec::new();
        MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|source| Error::Gzip {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Cow::Owned(out))
    } else {
        Ok(Cow::Borrowed(bytes))
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Checks an IDX header with `dims` dimensions and returns the dimensions and the payload.
fn parse<'a>(
    bytes: &'a [u8],
    path: &Path,
    magic: u32,
    dims: usize,
) -> Result<(Vec<usize>, &'a [u8])> {
    let header = 4 + 4 * dims;
    let actual = bytes.len() as u64;
    if bytes.len() < 4 {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            expected: header as u64,
            actual,
        });
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(Error::BadMagic {
            path: path.to_path_buf(),
            expected: magic,
            found,
        });
    }
    if bytes.len() < header {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            expected: header as u64,
            actual,
        });
    }
    let shape: Vec<usize> = (0..dims)
        .map(|d| be_u32(bytes, 4 + 4 * d) as usize)
        .collect();
    // u32 dimensions: the product of three fits in u128; saturate to u64 for the report.
    let declared = header as u128 + shape.iter().map(|&s| s as u128).product::<u128>();
    let expected = u64::try_from(declared).unwrap_or(u64::MAX);
    if (actual as u128) < declared {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            expected,
            actual,
        });
    }
    if (actual as u128) > declared {
        return Err(Error::TrailingBytes {
            path: path.to_path_buf(),
            expected,
            actual,
        });
    }
    Ok((shape, &bytes[header..]))
}

/// `(n, rows, cols)` of an image file.
pub(crate) type ImageDims = (usize, usize, usize);

/// Parses IDX image bytes (already decompressed): returns `(n, rows, cols)` and the
/// `n * rows * cols` pixel bytes, row-major.
pub(crate) fn parse_images<'a>(bytes: &'a [u8], path: &Path) -> Result<(ImageDims, &'a [u8])> {
    let (shape, payload) = parse(bytes, path, IMAGES_MAGIC, 3)?;
    Ok(((shape[0], shape[1], shape[2]), payload))
}

/// Parses IDX label bytes (already decompressed): returns the labels.
pub(crate) fn parse_labels<'a>(bytes: &'a [u8], path: &Path) -> Result<&'a [u8]> {
    let (_, payload) = parse(bytes, path, LABELS_MAGIC, 1)?;
    Ok(payload)
}

/// Decodes an image IDX file held in memory (raw or gzip) into `[n, rows, cols]` u8 values.
/// `path` only names the data in errors.
///
/// # Errors
/// [`Error::Gzip`], [`Error::BadMagic`], [`Error::Truncated`], [`Error::TrailingBytes`], each
/// naming `path`.
///
/// # Examples
/// ```
/// use netinv_data::idx::{decode_idx_images, encode_idx_images, Compression};
/// let images = ndarray::Array3::<u8>::from_shape_fn((2, 3, 4), |(i, r, c)| (i * 12 + r * 4 + c) as u8);
/// let bytes = encode_idx_images(images.view(), Compression::Gzip).unwrap();
/// let back = decode_idx_images(&bytes, "memory".as_ref()).unwrap();
/// assert_eq!(back, images);
/// ```
pub fn decode_idx_images(bytes: &[u8], path: &Path) -> Result<Array3<u8>> {
    let raw = decompress(bytes, path)?;
    let (dims, payload) = parse_images(&raw, path)?;
    Array3::from_shape_vec(dims, payload.to_vec()).map_err(|e| Error::Shape {
        expected: format!("{dims:?}"),
        got: e.to_string(),
    })
}

/// Decodes a label IDX file held in memory (raw or gzip) into its u8 values (any value;
/// the MNIST readers check the 0..=9 range). `path` only names the data in errors.
///
/// # Errors
/// As [`decode_idx_images`].
pub fn decode_idx_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let raw = decompress(bytes, path)?;
    Ok(parse_labels(&raw, path)?.to_vec())
}

/// Reads an image IDX file (`*-idx3-ubyte`, raw or gzip) into `[n, rows, cols]` u8 values.
///
/// # Errors
/// [`Error::MissingFile`], [`Error::Io`], and the errors of [`decode_idx_images`], each
/// naming `path`.
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<Array3<u8>> {
    let path = path.as_ref();
    decode_idx_images(&read_file(path)?, path)
}

/// Reads a label IDX file (`*-idx1-ubyte`, raw or gzip) into its u8 values.
///
/// # Errors
/// [`Error::MissingFile`], [`Error::Io`], and the errors of [`decode_idx_labels`], each
/// naming `path`.
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    decode_idx_labels(&read_file(path)?, path)
}

fn dim_u32(value: usize, field: &'static str) -> Result<[u8; 4]> {
    u32::try_from(value)
        .map(u32::to_be_bytes)
        .map_err(|_| Error::InvalidConfig {
            field,
            reason: format!("{value} does not fit the IDX header's u32"),
        })
}

fn compress(raw: Vec<u8>, compression: Compression) -> Result<Vec<u8>> {
    match compression {
        Compression::Raw => Ok(raw),
        Compression::Gzip => {
            // Header: no file name, mtime 0 (GzEncoder's defaults), so output is reproducible.
            let mut encoder = GzEncoder::new(
                Vec::with_capacity(raw.len() / 4),
                flate2::Compression::best(),
            );
            encoder
                .write_all(&raw)
                .and_then(|()| encoder.finish())
                .map_err(|source| Error::Io {
                    path: "<memory>".into(),
                    source,
                })
        }
    }
}

/// Encodes `[n, rows, cols]` u8 images as an image IDX file (magic `0x00000803`).
///
/// # Errors
/// [`Error::InvalidConfig`] if a dimension exceeds `u32::MAX`.
pub fn encode_idx_images(images: ArrayView3<u8>, compression: Compression) -> Result<Vec<u8>> {
    let (n, rows, cols) = images.dim();
    let mut raw = Vec::with_capacity(16 + images.len());
    raw.extend_from_slice(&IMAGES_MAGIC.to_be_bytes());
    raw.extend_from_slice(&dim_u32(n, "images.n")?);
    raw.extend_from_slice(&dim_u32(rows, "images.rows")?);
    raw.extend_from_slice(&dim_u32(cols, "images.cols")?);
    raw.extend(images.iter().copied());
    compress(raw, compression)
}

/// Encodes u8 labels as a label IDX file (magic `0x00000801`).
///
/// # Errors
/// [`Error::InvalidConfig`] if there are more than `u32::MAX` labels.
pub fn encode_idx_labels(labels: &[u8], compression: Compression) -> Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(8 + labels.len());
    raw.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    raw.extend_from_slice(&dim_u32(labels.len(), "labels.len")?);
    raw.extend_from_slice(labels);
    compress(raw, compression)
}

/// Writes `[n, rows, cols]` u8 images to `path` as an image IDX file, atomically (through
/// [`netinv_core::atomic_write_bytes`]). The file name is not changed: add `.gz` yourself
/// when writing [`Compression::Gzip`] (readers detect gzip by its magic bytes anyway).
///
/// # Errors
/// [`Error::InvalidConfig`] if a dimension exceeds `u32::MAX`; [`Error::Core`] if writing
/// fails.
pub fn write_idx_images(
    path: impl AsRef<Path>,
    images: ArrayView3<u8>,
    compression: Compression,
) -> Result<()> {
    let bytes = encode_idx_images(images, compression)?;
    netinv_core::atomic_write_bytes(path, &bytes)?;
    Ok(())
}

/// Writes u8 labels to `path` as a label IDX file, atomically (see [`write_idx_images`]).
///
/// # Errors
/// [`Error::InvalidConfig`] if there are more than `u32::MAX` labels; [`Error::Core`] if
/// writing fails.
pub fn write_idx_labels(
    path: impl AsRef<Path>,
    labels: &[u8],
    compression: Compression,
) -> Result<()> {
    let bytes = encode_idx_labels(labels, compression)?;
    netinv_core::atomic_write_bytes(path, &bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn sample_images() -> Array3<u8> {
        Array3::from_shape_fn((3, 5, 4), |(i, r, c)| (i * 20 + r * 4 + c) as u8 * 3)
    }

    #[test]
    fn images_round_trip_raw_and_gzip() {
        let images = sample_images();
        for compression in [Compression::Raw, Compression::Gzip] {
            let bytes = encode_idx_images(images.view(), compression).unwrap();
            assert_eq!(decode_idx_images(&bytes, Path::new("x")).unwrap(), images);
        }
    }

    #[test]
    fn labels_round_trip_raw_and_gzip() {
        let labels: Vec<u8> = (0..=255).collect();
        for compression in [Compression::Raw, Compression::Gzip] {
            let bytes = encode_idx_labels(&labels, compression).unwrap();
            assert_eq!(decode_idx_labels(&bytes, Path::new("x")).unwrap(), labels);
        }
    }

    #[test]
    fn raw_layout_is_the_idx_format() {
        let images = Array3::from_shape_vec((1, 1, 2), vec![7u8, 9]).unwrap();
        let bytes = encode_idx_images(images.view(), Compression::Raw).unwrap();
        assert_eq!(
            bytes,
            [0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 7, 9]
        );
        let bytes = encode_idx_labels(&[4, 2], Compression::Raw).unwrap();
        assert_eq!(bytes, [0, 0, 8, 1, 0, 0, 0, 2, 4, 2]);
    }

    #[test]
    fn gzip_output_is_reproducible() {
        let images = sample_images();
        let a = encode_idx_images(images.view(), Compression::Gzip).unwrap();
        let b = encode_idx_images(images.view(), Compression::Gzip).unwrap();
        assert_eq!(a, b);
        assert_eq!(a[..2], GZIP_MAGIC);
        assert_eq!(a[4..8], [0, 0, 0, 0], "mtime must be 0");
    }

    #[test]
    fn empty_and_short_inputs_are_truncated() {
        for bytes in [&[][..], &[0, 0, 8][..], &[0, 0, 8, 3, 0, 0, 0, 1][..]] {
            match decode_idx_images(bytes, Path::new("f")) {
                Err(Error::Truncated {
                    path,
                    expected,
                    actual,
                }) => {
                    assert_eq!(path, Path::new("f"));
                    assert_eq!(expected, 16);
                    assert_eq!(actual, bytes.len() as u64);
                }
                other => panic!("expected Truncated, got {other:?}"),
            }
        }
    }

    #[test]
    fn huge_declared_size_is_rejected_before_allocation() {
        // n = rows = cols = u32::MAX: 2^96 bytes declared, 16 present.
        let mut bytes = IMAGES_MAGIC.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0xff; 12]);
        match decode_idx_images(&bytes, Path::new("huge")) {
            Err(Error::Truncated {
                expected, actual, ..
            }) => {
                assert_eq!(expected, u64::MAX);
                assert_eq!(actual, 16);
            }
            other => panic!("expected Truncated, got {other:?}"),
        }
    }

    #[test]
    fn gzip_is_detected_by_magic_not_name() {
        let dir = tempfile::tempdir().unwrap();
        let labels = [1u8, 2, 3];
        // A gzip file without .gz, and a raw file named .gz.
        let gz_no_ext = dir.path().join("labels");
        let raw_gz_ext = dir.path().join("labels-raw.gz");
        write_idx_labels(&gz_no_ext, &labels, Compression::Gzip).unwrap();
        write_idx_labels(&raw_gz_ext, &labels, Compression::Raw).unwrap();
        assert_eq!(read_idx_labels(&gz_no_ext).unwrap(), labels);
        assert_eq!(read_idx_labels(&raw_gz_ext).unwrap(), labels);
    }

    #[test]
    fn corrupt_gzip_is_a_gzip_error() {
        let bytes = encode_idx_labels(&[1; 100], Compression::Gzip).unwrap();
        let cut = &bytes[..bytes.len() / 2];
        assert!(matches!(
            decode_idx_labels(cut, Path::new("cut.gz")),
            Err(Error::Gzip { .. })
        ));
    }

    #[test]
    fn labels_file_is_not_an_images_file() {
        let bytes = encode_idx_labels(&[1, 2], Compression::Raw).unwrap();
        match decode_idx_images(&bytes, Path::new("l")) {
            Err(Error::BadMagic {
                expected, found, ..
            }) => {
                assert_eq!(expected, IMAGES_MAGIC);
                assert_eq!(found, LABELS_MAGIC);
            }
            other => panic!("expected BadMagic, got {other:?}"),
        }
    }
}
