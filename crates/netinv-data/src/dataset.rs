//! The in-memory dataset: f32 images in [0, 1] and digit labels, with seeded shuffling,
//! batching and class subsets.

use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, Axis};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::idx::{self, Compression};
use crate::{Error, Result};

/// Number of digit classes; labels are `0..NUM_CLASSES`.
pub const NUM_CLASSES: usize = 10;

/// A labelled set of grey-scale images.
///
/// Images are f32 `[n, height, width]` (28 x 28 for MNIST), row-major, values in [0, 1]
/// (MNIST bytes divided by 255); labels are digit classes 0..=9, one per image. Both are
/// checked by [`Dataset::new`], so every `Dataset` satisfies them.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    images: Array3<f32>,
    labels: Vec<u8>,
}

/// One batch of a [`Dataset`], produced by [`Dataset::batches`].
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Images, f32 `[b, height, width]` in [0, 1].
    pub images: Array3<f32>,
    /// Labels 0..=9, one per image.
    pub labels: Vec<u8>,
    /// Positions of these items in the dataset the batch was drawn from.
    pub indices: Vec<usize>,
}

impl Batch {
    /// Number of items in the batch.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch has no items (never the case for batches from [`Dataset::batches`]).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// The permutation of `0..n` drawn by a `StdRng` seeded with `seed` (Fisher-Yates via
/// `SliceRandom::shuffle`, rand 0.9).
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    order
}

fn check_class(class: u8) -> Result<()> {
    if usize::from(class) < NUM_CLASSES {
        Ok(())
    } else {
        Err(Error::InvalidClass { class })
    }
}

impl Dataset {
    /// Builds a dataset from f32 images `[n, height, width]` and `n` labels.
    ///
    /// # Errors
    /// [`Error::Shape`] if `labels.len() != n` or an image has a zero side,
    /// [`Error::InvalidLabel`] for a label above 9, [`Error::ValueOutOfRange`] for a pixel that
    /// is not finite or outside [0, 1].
    ///
    /// # Examples
    /// ```
    /// use netinv_data::{ndarray::Array3, Dataset};
    /// let ds = Dataset::new(Array3::zeros((2, 28, 28)), vec![3, 7]).unwrap();
    /// assert_eq!(ds.len(), 2);
    /// assert!(Dataset::new(Array3::zeros((2, 28, 28)), vec![3]).is_err());
    /// ```
    pub fn new(images: Array3<f32>, labels: Vec<u8>) -> Result<Self> {
        let (n, height, width) = images.dim();
        if labels.len() != n {
            return Err(Error::Shape {
                expected: format!("{n} labels (one per image)"),
                got: format!("{} labels", labels.len()),
            });
        }
        if height == 0 || width == 0 {
            return Err(Error::Shape {
                expected: "images [n, height, width] with height, width >= 1".into(),
                got: format!("{:?}", images.dim()),
            });
        }
        if let Some((index, &label)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| usize::from(l) >= NUM_CLASSES)
        {
            return Err(Error::InvalidLabel { index, label });
        }
        if let Some((index, &value)) = images
            .indexed_iter()
            .find(|(_, v)| !(0.0..=1.0).contains(*v))
        {
            return Err(Error::ValueOutOfRange {
                index: [index.0, index.1, index.2],
                value,
            });
        }
        Ok(Self {
            images: images.as_standard_layout().into_owned(),
            labels,
        })
    }

    /// Builds a dataset from u8 pixels (each divided by 255) and labels already checked to
    /// be 0..=9 and one per image.
    pub(crate) fn from_u8(
        dims: (usize, usize, usize),
        pixels: &[u8],
        labels: Vec<u8>,
    ) -> Result<Self> {
        let data: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
        let images = Array3::from_shape_vec(dims, data).map_err(|e| Error::Shape {
            expected: format!("{dims:?}"),
            got: e.to_string(),
        })?;
        Ok(Self { images, labels })
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the dataset has no items.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `(height, width)` of the images (28 x 28 for MNIST).
    pub fn image_dim(&self) -> (usize, usize) {
        let (_, h, w) = self.images.dim();
        (h, w)
    }

    /// All images, f32 `[n, height, width]` in [0, 1] (standard layout).
    pub fn images(&self) -> ArrayView3<'_, f32> {
        self.images.view()
    }

    /// All labels, 0..=9, one per image.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Image `i`, f32 `[height, width]` in [0, 1].
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn image(&self, i: usize) -> ArrayView2<'_, f32> {
        self.images.index_axis(Axis(0), i)
    }

    /// The images as u8, `round(v * 255)`: exact for data read from IDX files.
    pub fn images_u8(&self) -> Array3<u8> {
        self.images.mapv(|v| (v * 255.0).round() as u8)
    }

    /// The items at `indices`, in that order (repeats allowed).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for the first index `>= self.len()`.
    pub fn select(&self, indices: &[usize]) -> Result<Dataset> {
        if let Some(&index) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(Error::IndexOutOfRange {
                index,
                len: self.len(),
            });
        }
        Ok(self.gather(indices))
    }

    /// Gathers items at indices known to be in range.
    fn gather(&self, indices: &[usize]) -> Dataset {
        let (_, h, w) = self.images.dim();
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        // Images are kept in standard layout (see `new`), so items are contiguous chunks;
        // the element-wise copy below is the fallback.
        let size = h * w;
        let fast = self.images.as_slice().and_then(|all| {
            let mut data = Vec::with_capacity(indices.len() * size);
            for &i in indices {
                data.extend_from_slice(&all[i * size..(i + 1) * size]);
            }
            Array3::from_shape_vec((indices.len(), h, w), data).ok()
        });
        let images = fast.unwrap_or_else(|| {
            let mut images = Array3::zeros((indices.len(), h, w));
            for (mut dst, &i) in images.outer_iter_mut().zip(indices) {
                dst.assign(&self.images.index_axis(Axis(0), i));
            }
            images
        });
        Dataset { images, labels }
    }

    /// The first `min(n, len)` items.
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            images: self.images.slice(s![..n, .., ..]).to_owned(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// The items whose label is in `classes`, in their original order.
    ///
    /// # Errors
    /// [`Error::InvalidClass`] if a class is above 9.
    ///
    /// # Examples
    /// ```
    /// let mnist = netinv_data::Mnist::embedded().unwrap();
    /// let zeros_and_ones = mnist.test().with_classes(&[0, 1]).unwrap();
    /// assert!(zeros_and_ones.labels().iter().all(|&l| l <= 1));
    /// ```
    pub fn with_classes(&self, classes: &[u8]) -> Result<Dataset> {
        let mut keep = [false; NUM_CLASSES];
        for &c in classes {
            check_class(c)?;
            keep[usize::from(c)] = true;
        }
        let indices: Vec<usize> = (0..self.len())
            .filter(|&i| keep[usize::from(self.labels[i])])
            .collect();
        Ok(self.gather(&indices))
    }

    /// The dataset in a random order drawn from `StdRng::seed_from_u64(seed)`: the same seed
    /// always gives the same order (for a given length and rand 0.9).
    pub fn shuffled(&self, seed: u64) -> Dataset {
        self.gather(&permutation(self.len(), seed))
    }

    /// Number of items of each class 0..=9.
    pub fn class_counts(&self) -> [usize; NUM_CLASSES] {
        let mut counts = [0; NUM_CLASSES];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// The mean image of a class, `[height, width]`, accumulated in f64:
    ///
    /// ```text
    /// mean[r, c] = (1 / |S|) * sum_{i in S} images[i, r, c],  S = { i : labels[i] = class }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidClass`] if `class > 9`, [`Error::EmptyClass`] if no item has it.
    pub fn class_mean(&self, class: u8) -> Result<Array2<f32>> {
        check_class(class)?;
        let (_, h, w) = self.images.dim();
        let mut sum = Array2::<f64>::zeros((h, w));
        let mut count = 0usize;
        for (image, &label) in self.images.outer_iter().zip(&self.labels) {
            if label == class {
                sum.zip_mut_with(&image, |s, &v| *s += f64::from(v));
                count += 1;
            }
        }
        if count == 0 {
            return Err(Error::EmptyClass { class });
        }
        Ok(sum.mapv(|s| (s / count as f64) as f32))
    }

    /// Iterates over the dataset in batches of `batch_size` items: in order when
    /// `shuffle_seed` is `None`, else in the order of [`Dataset::shuffled`] with that seed.
    /// Every item appears in exactly one batch; the last batch is kept even if it is partial
    /// (it holds `len % batch_size` items when that is not zero). An empty dataset gives no
    /// batches.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `batch_size` is 0.
    ///
    /// # Examples
    /// ```
    /// use netinv_data::{ndarray::Array3, Dataset};
    /// let ds = Dataset::new(Array3::zeros((10, 2, 2)), vec![0; 10]).unwrap();
    /// let sizes: Vec<usize> = ds.batches(4, Some(1)).unwrap().map(|b| b.len()).collect();
    /// assert_eq!(sizes, [4, 4, 2]);
    /// ```
    pub fn batches(&self, batch_size: usize, shuffle_seed: Option<u64>) -> Result<Batches<'_>> {
        if batch_size == 0 {
            return Err(Error::InvalidConfig {
                field: "batch_size",
                reason: "must be at least 1".into(),
            });
        }
        let order = match shuffle_seed {
            Some(seed) => permutation(self.len(), seed),
            None => (0..self.len()).collect(),
        };
        Ok(Batches {
            dataset: self,
            order,
            batch_size,
            position: 0,
        })
    }

    /// Writes the dataset as two IDX files (images as `round(v * 255)` bytes, labels).
    ///
    /// # Errors
    /// See [`idx::write_idx_images`] and [`idx::write_idx_labels`].
    pub fn write_idx(
        &self,
        images_path: impl AsRef<std::path::Path>,
        labels_path: impl AsRef<std::path::Path>,
        compression: Compression,
    ) -> Result<()> {
        idx::write_idx_images(images_path, self.images_u8().view(), compression)?;
        idx::write_idx_labels(labels_path, &self.labels, compression)
    }
}

/// Iterator over the batches of a [`Dataset`]; see [`Dataset::batches`].
#[derive(Clone, Debug)]
pub struct Batches<'a> {
    dataset: &'a Dataset,
    order: Vec<usize>,
    batch_size: usize,
    position: usize,
}

impl Iterator for Batches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.position >= self.order.len() {
            return None;
        }
        let end = (self.position + self.batch_size).min(self.order.len());
        let indices = self.order[self.position..end].to_vec();
        self.position = end;
        let Dataset { images, labels } = self.dataset.gather(&indices);
        Some(Batch {
            images,
            labels,
            indices,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.order.len() - self.position).div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Batches<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// 12 items of 2 x 3 images; item i has every pixel = i / 20 and label i % 4.
    fn small() -> Dataset {
        let images = Array3::from_shape_fn((12, 2, 3), |(i, _, _)| i as f32 / 20.0);
        let labels = (0..12).map(|i| (i % 4) as u8).collect();
        Dataset::new(images, labels).unwrap()
    }

    fn item_ids(ds: &Dataset) -> Vec<usize> {
        (0..ds.len())
            .map(|i| (ds.image(i)[[0, 0]] * 20.0).round() as usize)
            .collect()
    }

    #[test]
    fn new_validates_shape_labels_and_values() {
        assert!(matches!(
            Dataset::new(Array3::zeros((2, 2, 2)), vec![0]),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(
            Dataset::new(Array3::zeros((2, 0, 2)), vec![0, 0]),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(
            Dataset::new(Array3::zeros((2, 2, 2)), vec![0, 10]),
            Err(Error::InvalidLabel {
                index: 1,
                label: 10
            })
        ));
        let mut images = Array3::zeros((2, 2, 2));
        images[[1, 0, 1]] = 1.5;
        match Dataset::new(images.clone(), vec![0, 0]) {
            Err(Error::ValueOutOfRange { index, value }) => {
                assert_eq!(index, [1, 0, 1]);
                assert_eq!(value, 1.5);
            }
            other => panic!("expected ValueOutOfRange, got {other:?}"),
        }
        images[[1, 0, 1]] = f32::NAN;
        assert!(matches!(
            Dataset::new(images, vec![0, 0]),
            Err(Error::ValueOutOfRange { .. })
        ));
        let empty = Dataset::new(Array3::zeros((0, 28, 28)), vec![]).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.batches(4, None).unwrap().count(), 0);
    }

    #[test]
    fn select_take_and_bounds() {
        let ds = small();
        let sel = ds.select(&[5, 0, 5]).unwrap();
        assert_eq!(item_ids(&sel), [5, 0, 5]);
        assert_eq!(sel.labels(), [1, 0, 1]);
        assert!(matches!(
            ds.select(&[3, 12]),
            Err(Error::IndexOutOfRange { index: 12, len: 12 })
        ));
        assert_eq!(item_ids(&ds.take(3)), [0, 1, 2]);
        assert_eq!(ds.take(100).len(), 12);
        assert_eq!(ds.take(0).len(), 0);
    }

    #[test]
    fn shuffle_is_seeded_and_a_permutation() {
        let ds = small();
        let a = ds.shuffled(42);
        let b = ds.shuffled(42);
        let c = ds.shuffled(43);
        assert_eq!(a, b);
        assert_ne!(item_ids(&a), item_ids(&c));
        let mut ids = item_ids(&a);
        assert_ne!(ids, (0..12).collect::<Vec<_>>());
        ids.sort_unstable();
        assert_eq!(ids, (0..12).collect::<Vec<_>>());
        // Labels travel with their images.
        for i in 0..a.len() {
            assert_eq!(usize::from(a.labels()[i]), item_ids(&a)[i] % 4);
        }
    }

    #[test]
    fn batches_cover_every_index_once() {
        let ds = small();
        for (batch_size, seed) in [
            (5, None),
            (5, Some(3)),
            (12, Some(1)),
            (1, None),
            (20, None),
        ] {
            let batches: Vec<Batch> = ds.batches(batch_size, seed).unwrap().collect();
            assert_eq!(batches.len(), 12usize.div_ceil(batch_size));
            let mut all: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
            if seed.is_none() {
                assert_eq!(all, (0..12).collect::<Vec<_>>());
            }
            all.sort_unstable();
            assert_eq!(all, (0..12).collect::<Vec<_>>());
            for b in &batches {
                assert!(b.len() <= batch_size && !b.is_empty());
                assert_eq!(b.images.dim(), (b.len(), 2, 3));
                for (k, &i) in b.indices.iter().enumerate() {
                    assert_eq!(b.images.index_axis(Axis(0), k), ds.image(i));
                    assert_eq!(b.labels[k], ds.labels()[i]);
                }
            }
        }
        // Last partial batch kept.
        let sizes: Vec<usize> = ds.batches(5, None).unwrap().map(|b| b.len()).collect();
        assert_eq!(sizes, [5, 5, 2]);
        assert_eq!(ds.batches(5, None).unwrap().len(), 3);
        // Seeded batches follow `shuffled` with the same seed.
        let order: Vec<usize> = ds
            .batches(5, Some(9))
            .unwrap()
            .flat_map(|b| b.indices)
            .collect();
        assert_eq!(ds.select(&order).unwrap(), ds.shuffled(9));
        assert!(matches!(
            ds.batches(0, None),
            Err(Error::InvalidConfig {
                field: "batch_size",
                ..
            })
        ));
    }

    #[test]
    fn class_subset_and_counts() {
        let ds = small();
        assert_eq!(ds.class_counts(), [3, 3, 3, 3, 0, 0, 0, 0, 0, 0]);
        let sub = ds.with_classes(&[1, 3]).unwrap();
        assert_eq!(item_ids(&sub), [1, 3, 5, 7, 9, 11]);
        assert_eq!(sub.labels(), [1, 3, 1, 3, 1, 3]);
        assert!(ds.with_classes(&[7]).unwrap().is_empty());
        assert!(matches!(
            ds.with_classes(&[2, 10]),
            Err(Error::InvalidClass { class: 10 })
        ));
    }

    #[test]
    fn class_mean_matches_hand_computation() {
        let ds = small();
        // Class 2 holds items 2, 6, 10: mean pixel (2 + 6 + 10) / 3 / 20 = 0.3.
        let mean = ds.class_mean(2).unwrap();
        assert_eq!(mean.dim(), (2, 3));
        for &v in &mean {
            assert!((v - 0.3).abs() < 1e-7, "{v}");
        }
        // A non-constant case: two images [[0, 1], [0.5, 0.25]] and [[1, 1], [0, 0.75]].
        let images = Array3::from_shape_vec(
            (3, 2, 2),
            vec![0.0, 1.0, 0.5, 0.25, 1.0, 1.0, 0.0, 0.75, 0.9, 0.9, 0.9, 0.9],
        )
        .unwrap();
        let ds = Dataset::new(images, vec![4, 4, 5]).unwrap();
        let mean = ds.class_mean(4).unwrap();
        assert_eq!(
            mean,
            Array2::from_shape_vec((2, 2), vec![0.5, 1.0, 0.25, 0.5]).unwrap()
        );
        assert!(matches!(
            ds.class_mean(0),
            Err(Error::EmptyClass { class: 0 })
        ));
        assert!(matches!(
            ds.class_mean(11),
            Err(Error::InvalidClass { class: 11 })
        ));
    }

    #[test]
    fn u8_conversion_round_trips() {
        let pixels: Vec<u8> = (0..=255).collect();
        let ds = Dataset::from_u8((1, 16, 16), &pixels, vec![0]).unwrap();
        assert_eq!(ds.image(0)[[0, 1]], 1.0 / 255.0);
        assert_eq!(ds.image(0)[[15, 15]], 1.0);
        assert_eq!(ds.images_u8().into_raw_vec_and_offset().0, pixels);
    }
}
