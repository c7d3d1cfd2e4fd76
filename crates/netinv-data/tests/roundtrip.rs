//! Writing with the IDX writer and reading back: single files and whole MNIST directories.

use netinv_data::idx::{self, Compression};
use netinv_data::ndarray::Array3;
use netinv_data::{Dataset, Mnist, FILE_NAMES};

fn small_mnist() -> Mnist {
    let full = Mnist::embedded().unwrap();
    Mnist::new(full.train().take(50), full.test().take(20)).unwrap()
}

#[test]
fn idx_files_round_trip_raw_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let images = Array3::from_shape_fn((7, 28, 13), |(i, r, c)| ((i * 31 + r * 7 + c) % 256) as u8);
    let labels: Vec<u8> = (0..7).collect();
    for (compression, name) in [(Compression::Raw, "a"), (Compression::Gzip, "a.gz")] {
        let ip = dir.path().join(format!("img-{name}"));
        let lp = dir.path().join(format!("lab-{name}"));
        idx::write_idx_images(&ip, images.view(), compression).unwrap();
        idx::write_idx_labels(&lp, &labels, compression).unwrap();
        assert_eq!(idx::read_idx_images(&ip).unwrap(), images);
        assert_eq!(idx::read_idx_labels(&lp).unwrap(), labels);
    }
}

#[test]
fn from_dir_reads_what_write_dir_wrote() {
    let mnist = small_mnist();
    for (compression, suffix) in [(Compression::Raw, ""), (Compression::Gzip, ".gz")] {
        let dir = tempfile::tempdir().unwrap();
        mnist.write_dir(dir.path(), compression).unwrap();
        for name in FILE_NAMES {
            assert!(dir.path().join(format!("{name}{suffix}")).is_file());
        }
        let back = Mnist::from_dir(dir.path()).unwrap();
        assert_eq!(back, mnist);
    }
}

#[test]
fn from_dir_accepts_a_mix_of_raw_and_gz() {
    let mnist = small_mnist();
    let dir = tempfile::tempdir().unwrap();
    mnist.write_dir(dir.path(), Compression::Gzip).unwrap();
    // Replace the test labels with a raw file.
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    idx::write_idx_labels(
        dir.path().join("t10k-labels-idx1-ubyte"),
        mnist.test().labels(),
        Compression::Raw,
    )
    .unwrap();
    assert_eq!(Mnist::from_dir(dir.path()).unwrap(), mnist);
}

#[test]
fn the_crate_data_dir_is_the_embedded_set() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data");
    assert_eq!(Mnist::from_dir(dir).unwrap(), Mnist::embedded().unwrap());
}

#[test]
fn dataset_write_idx_is_exact_for_u8_data() {
    let ds = Mnist::embedded().unwrap().test().take(30);
    let dir = tempfile::tempdir().unwrap();
    let (ip, lp) = (dir.path().join("i.gz"), dir.path().join("l.gz"));
    ds.write_idx(&ip, &lp, Compression::Gzip).unwrap();
    let images = idx::read_idx_images(&ip).unwrap();
    let labels = idx::read_idx_labels(&lp).unwrap();
    let back = Dataset::new(images.mapv(|v| f32::from(v) / 255.0), labels).unwrap();
    assert_eq!(back, ds);
}

#[test]
fn writer_errors() {
    // A dimension beyond the IDX header's u32 (an empty array, so nothing is allocated).
    let huge = Array3::<u8>::zeros((1usize << 32, 0, 1));
    match idx::encode_idx_images(huge.view(), Compression::Raw) {
        Err(netinv_data::Error::InvalidConfig { field, .. }) => assert_eq!(field, "images.n"),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    // A parent that is a file, not a folder: the atomic write fails and names the target.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let target = file.join("labels-idx1-ubyte");
    match idx::write_idx_labels(&target, &[1, 2], Compression::Raw) {
        Err(err @ netinv_data::Error::Core(_)) => {
            assert!(err.to_string().contains("plain-file"), "{err}")
        }
        other => panic!("expected Core, got {other:?}"),
    }
}

#[test]
fn mnist_new_requires_28_by_28() {
    let ok = Dataset::new(Array3::zeros((2, 28, 28)), vec![1, 2]).unwrap();
    let small = Dataset::new(Array3::zeros((2, 8, 8)), vec![1, 2]).unwrap();
    assert!(Mnist::new(ok.clone(), ok.clone()).is_ok());
    assert!(matches!(
        Mnist::new(ok, small),
        Err(netinv_data::Error::Shape { .. })
    ));
}
