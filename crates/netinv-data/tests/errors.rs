//! Every bad-input error of the readers, raw and gzip, checked on files in a temp dir: each
//! is its own variant and names the offending file.

use std::io::Write;
use std::path::{Path, PathBuf};

use netinv_data::idx::{self, Compression};
use netinv_data::ndarray::Array3;
use netinv_data::{Error, Mnist, FILE_NAMES};

const TRAIN_IMAGES: usize = 0;
const TRAIN_LABELS: usize = 1;
const TEST_IMAGES: usize = 2;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn images(n: usize, rows: usize, cols: usize) -> Vec<u8> {
    let a = Array3::from_shape_fn((n, rows, cols), |(i, r, c)| ((i + r * c) % 256) as u8);
    idx::encode_idx_images(a.view(), Compression::Raw).unwrap()
}

fn labels(values: &[u8]) -> Vec<u8> {
    idx::encode_idx_labels(values, Compression::Raw).unwrap()
}

/// Raw IDX bytes of a valid small MNIST: 4 train and 2 test items of 28 x 28.
fn valid_files() -> [Vec<u8>; 4] {
    [
        images(4, 28, 28),
        labels(&[0, 1, 2, 9]),
        images(2, 28, 28),
        labels(&[3, 4]),
    ]
}

/// Writes `files` (raw IDX bytes) into a new temp dir, gzipped with `.gz` names if `gz`.
/// Returns the dir and the four paths.
fn write_dir(files: &[Vec<u8>; 4], gz: bool) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let paths = FILE_NAMES
        .iter()
        .zip(files)
        .map(|(name, bytes)| {
            if gz {
                let p = dir.path().join(format!("{name}.gz"));
                std::fs::write(&p, gzip(bytes)).unwrap();
                p
            } else {
                let p = dir.path().join(name);
                std::fs::write(&p, bytes).unwrap();
                p
            }
        })
        .collect();
    (dir, paths)
}

/// Loads a dir built from `files` with one file replaced, raw and gzip; returns both errors
/// and the paths of each case.
fn load_with(file: usize, bytes: Vec<u8>) -> Vec<(Error, Vec<PathBuf>)> {
    [false, true]
        .into_iter()
        .map(|gz| {
            let mut files = valid_files();
            files[file] = bytes.clone();
            let (dir, paths) = write_dir(&files, gz);
            let err = Mnist::from_dir(dir.path()).expect_err("must fail");
            let msg = err.to_string();
            assert!(
                paths.iter().any(|p| msg.contains(&p.display().to_string())),
                "message names no file: {msg}"
            );
            (err, paths)
        })
        .collect()
}

#[test]
fn valid_dir_loads_raw_and_gz() {
    for gz in [false, true] {
        let (dir, _) = write_dir(&valid_files(), gz);
        let mnist = Mnist::from_dir(dir.path()).unwrap();
        assert_eq!(mnist.train().len(), 4);
        assert_eq!(mnist.train().labels(), [0, 1, 2, 9]);
        assert_eq!(mnist.test().labels(), [3, 4]);
    }
}

#[test]
fn missing_file() {
    for gz in [false, true] {
        let (dir, paths) = write_dir(&valid_files(), gz);
        std::fs::remove_file(&paths[TRAIN_LABELS]).unwrap();
        match Mnist::from_dir(dir.path()) {
            Err(Error::MissingFile { path }) => {
                assert_eq!(path, dir.path().join(FILE_NAMES[TRAIN_LABELS]))
            }
            other => panic!("expected MissingFile, got {other:?}"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nothing-idx3-ubyte");
    match idx::read_idx_images(&path) {
        Err(Error::MissingFile { path: p }) => assert_eq!(p, path),
        other => panic!("expected MissingFile, got {other:?}"),
    }
    assert!(matches!(
        Mnist::from_dir(dir.path().join("no-such-dir")),
        Err(Error::MissingFile { .. })
    ));
}

#[test]
fn wrong_magic() {
    // A label file where the images belong, and an image file where the labels belong.
    for (err, paths) in load_with(TRAIN_IMAGES, labels(&[0, 1, 2, 9])) {
        match err {
            Error::BadMagic {
                path,
                expected,
                found,
            } => {
                assert_eq!(path, paths[TRAIN_IMAGES]);
                assert_eq!((expected, found), (0x803, 0x801));
            }
            other => panic!("expected BadMagic, got {other:?}"),
        }
    }
    let mut bad = labels(&[0, 1, 2, 9]);
    bad[2] = 0x0d; // 0x00000d01: not u8 data
    for (err, paths) in load_with(TRAIN_LABELS, bad) {
        match err {
            Error::BadMagic {
                path,
                expected,
                found,
            } => {
                assert_eq!(path, paths[TRAIN_LABELS]);
                assert_eq!((expected, found), (0x801, 0x0d01));
            }
            other => panic!("expected BadMagic, got {other:?}"),
        }
    }
}

#[test]
fn truncated() {
    let mut cut = images(4, 28, 28);
    cut.pop();
    for (err, paths) in load_with(TRAIN_IMAGES, cut) {
        match err {
            Error::Truncated {
                path,
                expected,
                actual,
            } => {
                assert_eq!(path, paths[TRAIN_IMAGES]);
                assert_eq!(expected, 16 + 4 * 784);
                assert_eq!(actual, expected - 1);
            }
            other => panic!("expected Truncated, got {other:?}"),
        }
    }
    // Header cut short.
    for (err, paths) in load_with(TRAIN_LABELS, vec![0, 0, 8, 1, 0, 0]) {
        match err {
            Error::Truncated {
                path,
                expected: 8,
                actual: 6,
            } => {
                assert_eq!(path, paths[TRAIN_LABELS])
            }
            other => panic!("expected Truncated, got {other:?}"),
        }
    }
}

#[test]
fn trailing_bytes() {
    let mut long = labels(&[3, 4]);
    long.push(0);
    for (err, paths) in load_with(TEST_IMAGES + 1, long) {
        match err {
            Error::TrailingBytes {
                path,
                expected: 10,
                actual: 11,
            } => {
                assert_eq!(path, paths[TEST_IMAGES + 1])
            }
            other => panic!("expected TrailingBytes, got {other:?}"),
        }
    }
}

#[test]
fn count_mismatch() {
    for (err, paths) in load_with(TRAIN_LABELS, labels(&[0, 1, 2])) {
        match err {
            Error::CountMismatch {
                images,
                labels,
                n_images,
                n_labels,
            } => {
                assert_eq!(images, paths[TRAIN_IMAGES]);
                assert_eq!(labels, paths[TRAIN_LABELS]);
                assert_eq!((n_images, n_labels), (4, 3));
            }
            other => panic!("expected CountMismatch, got {other:?}"),
        }
    }
}

#[test]
fn wrong_dimensions() {
    for (err, paths) in load_with(TEST_IMAGES, images(2, 27, 28)) {
        match err {
            Error::WrongDimensions {
                path,
                expected,
                found,
            } => {
                assert_eq!(path, paths[TEST_IMAGES]);
                assert_eq!(expected, (28, 28));
                assert_eq!(found, (27, 28));
            }
            other => panic!("expected WrongDimensions, got {other:?}"),
        }
    }
    // The generic reader accepts any size.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("small-idx3-ubyte");
    std::fs::write(&p, images(2, 27, 5)).unwrap();
    assert_eq!(idx::read_idx_images(&p).unwrap().dim(), (2, 27, 5));
}

#[test]
fn label_above_nine() {
    for (err, paths) in load_with(TRAIN_LABELS, labels(&[0, 1, 10, 9])) {
        match err {
            Error::LabelOutOfRange { path, index, label } => {
                assert_eq!(path, paths[TRAIN_LABELS]);
                assert_eq!((index, label), (2, 10));
            }
            other => panic!("expected LabelOutOfRange, got {other:?}"),
        }
    }
}

#[test]
fn corrupt_gzip() {
    let (dir, paths) = write_dir(&valid_files(), true);
    let bytes = std::fs::read(&paths[TRAIN_IMAGES]).unwrap();
    std::fs::write(&paths[TRAIN_IMAGES], &bytes[..bytes.len() - 20]).unwrap();
    match Mnist::from_dir(dir.path()) {
        Err(Error::Gzip { path, .. }) => assert_eq!(path, paths[TRAIN_IMAGES]),
        other => panic!("expected Gzip, got {other:?}"),
    }
}

#[test]
fn unreadable_path_is_io() {
    // A directory cannot be read as a file.
    let dir = tempfile::tempdir().unwrap();
    match idx::read_idx_labels(dir.path()) {
        Err(Error::Io { path, .. }) => assert_eq!(path, dir.path()),
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn errors_name_the_file_in_their_message() {
    let p = Path::new("/some/dir/train-images-idx3-ubyte");
    let err = idx::decode_idx_images(&[1, 2, 3, 4], p).unwrap_err();
    assert!(err
        .to_string()
        .contains("/some/dir/train-images-idx3-ubyte"));
    assert!(err.to_string().contains("0x00000803"), "{err}");
}
