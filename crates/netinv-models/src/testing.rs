//! Small synthetic data for tests (this crate's and its dependents'), behind the
//! `testing` feature.

use netinv_data::ndarray::Array3;
use netinv_data::Dataset;

/// `n` 8x8 images with labels 0..4: a bright 4x4 square in the quadrant of the class
/// (0 top left, 1 top right, 2 bottom left, 3 bottom right), brightness 0.9, 0.8 or 0.7.
pub fn toy_dataset(n: usize) -> Dataset {
    let mut images = Array3::<f32>::zeros((n, 8, 8));
    let mut labels = Vec::new();
    for i in 0..n {
        let c = (i % 4) as u8;
        let (r0, c0) = (usize::from(c / 2) * 4, usize::from(c % 2) * 4);
        for r in 0..4 {
            for q in 0..4 {
                images[[i, r0 + r, c0 + q]] = 0.9 - 0.1 * ((i / 4) % 3) as f32;
            }
        }
        labels.push(c);
    }
    Dataset::new(images, labels).unwrap_or_else(|e| unreachable!("a valid toy data set: {e}"))
}
