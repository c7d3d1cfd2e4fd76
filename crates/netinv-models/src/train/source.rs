//! Where training batches come from: the [`BatchSource`] trait, hard and soft targets.

use candle_core::{DType, Device, Tensor};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::{Error, Result};

/// Largest allowed deviation of a soft-label row sum from 1.
pub const SOFT_LABEL_TOLERANCE: f32 = 1e-4;

/// The targets of one batch.
#[derive(Debug, Clone)]
pub enum Targets {
    /// Class indices, u32 `[b]`.
    Hard(Tensor),
    /// Class distributions, f32 `[b, classes]`: every row non-negative and summing to 1
    /// (within [`SOFT_LABEL_TOLERANCE`]).
    Soft(Tensor),
}

/// One training batch: images f32 `[b, 1, 28, 28]` in [0, 1] (any `[b, c, h, w]` the model
/// accepts) and their targets.
#[derive(Debug, Clone)]
pub struct TrainBatch {
    /// Images `[b, c, h, w]`, f32 in [0, 1].
    pub images: Tensor,
    /// Hard or soft targets for the `b` images.
    pub targets: Targets,
}

/// The batches of one epoch, in order.
pub type EpochBatches<'a> = Box<dyn Iterator<Item = Result<TrainBatch>> + 'a>;

/// A supplier of training batches, one pass ("epoch") at a time.
///
/// The order and any randomness of an epoch must depend only on `seed` (the trainer derives
/// it from its configured seed and the epoch number), so that runs repeat and a resumed run
/// continues exactly. Sources may generate their examples on the fly (for example soft-
/// labelled interpolations between classes).
pub trait BatchSource {
    /// Number of examples in one epoch.
    fn len(&self) -> usize;

    /// Whether an epoch is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The batches of one epoch, each of `batch_size` examples except possibly the last.
    ///
    /// # Errors
    /// Whatever prevents the source from producing its batches.
    fn epoch<'a>(
        &'a self,
        batch_size: usize,
        seed: u64,
        device: &'a Device,
    ) -> Result<EpochBatches<'a>>;
}

/// A labelled dataset, shuffled with `seed` every epoch; hard targets.
impl BatchSource for netinv_data::Dataset {
    fn len(&self) -> usize {
        netinv_data::Dataset::len(self)
    }

    fn epoch<'a>(
        &'a self,
        batch_size: usize,
        seed: u64,
        device: &'a Device,
    ) -> Result<EpochBatches<'a>> {
        let batches = self.batches(batch_size, Some(seed))?;
        Ok(Box::new(batches.map(move |b| {
            let (images, labels) = b.to_tensors(device)?;
            Ok(TrainBatch {
                images,
                targets: Targets::Hard(labels),
            })
        })))
    }
}

/// Checks that `targets` is f32-convertible `[b, classes]` with non-negative rows summing to
/// 1 within [`SOFT_LABEL_TOLERANCE`].
///
/// # Errors
/// [`Error::Shape`] if `targets` is not 2-D, [`Error::SoftLabels`] naming the first bad row.
pub fn validate_soft_labels(targets: &Tensor) -> Result<()> {
    let rows = match targets.dims() {
        [_, _] => targets.to_dtype(DType::F32)?.to_vec2::<f32>()?,
        dims => {
            return Err(Error::Shape {
                expected: "soft labels [batch, classes]".into(),
                got: format!("{dims:?}"),
            })
        }
    };
    for (row, values) in rows.iter().enumerate() {
        if let Some(v) = values.iter().find(|v| !v.is_finite() || **v < 0.0) {
            return Err(Error::SoftLabels {
                row,
                reason: format!("entry {v} is negative or not finite"),
            });
        }
        let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
        if (sum - 1.0).abs() > f64::from(SOFT_LABEL_TOLERANCE) {
            return Err(Error::SoftLabels {
                row,
                reason: format!("sums to {sum}, not 1 (tolerance {SOFT_LABEL_TOLERANCE})"),
            });
        }
    }
    Ok(())
}

/// Images with soft targets held in memory, shuffled with `seed` every epoch.
#[derive(Debug, Clone)]
pub struct SoftLabelSet {
    images: Tensor,
    targets: Tensor,
}

impl SoftLabelSet {
    /// Images f32 `[n, c, h, w]` and distributions f32 `[n, classes]`.
    ///
    /// # Errors
    /// [`Error::Shape`] if the ranks or counts disagree, [`Error::SoftLabels`] for a row that
    /// is negative or does not sum to 1.
    pub fn new(images: Tensor, targets: Tensor) -> Result<Self> {
        if images.rank() != 4 {
            return Err(Error::Shape {
                expected: "images [n, channels, height, width]".into(),
                got: format!("{:?}", images.dims()),
            });
        }
        validate_soft_labels(&targets)?;
        if targets.dim(0)? != images.dim(0)? {
            return Err(Error::Shape {
                expected: format!("{} target rows (one per image)", images.dim(0)?),
                got: format!("{}", targets.dim(0)?),
            });
        }
        Ok(Self {
            images: images.to_dtype(DType::F32)?,
            targets: targets.to_dtype(DType::F32)?,
        })
    }

    /// The images `[n, c, h, w]`.
    pub fn images(&self) -> &Tensor {
        &self.images
    }

    /// The targets `[n, classes]`.
    pub fn targets(&self) -> &Tensor {
        &self.targets
    }
}

impl BatchSource for SoftLabelSet {
    fn len(&self) -> usize {
        self.images.dims()[0]
    }

    fn epoch<'a>(
        &'a self,
        batch_size: usize,
        seed: u64,
        device: &'a Device,
    ) -> Result<EpochBatches<'a>> {
        if batch_size == 0 {
            return Err(Error::InvalidConfig {
                field: "batch_size",
                reason: "must be > 0".into(),
            });
        }
        let mut order: Vec<u32> = (0..self.len() as u32).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        let chunks: Vec<Vec<u32>> = order.chunks(batch_size).map(<[u32]>::to_vec).collect();
        Ok(Box::new(chunks.into_iter().map(move |idx| {
            let n = idx.len();
            let idx = Tensor::from_vec(idx, n, self.images.device())?;
            Ok(TrainBatch {
                images: self.images.index_select(&idx, 0)?.to_device(device)?,
                targets: Targets::Soft(self.targets.index_select(&idx, 0)?.to_device(device)?),
            })
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_label_validation() {
        let dev = Device::Cpu;
        let good = Tensor::new(&[[0.25f32, 0.75], [1.0, 0.0]], &dev).unwrap();
        validate_soft_labels(&good).unwrap();
        let short = Tensor::new(&[[0.5f32, 0.5], [0.4, 0.5]], &dev).unwrap();
        match validate_soft_labels(&short) {
            Err(Error::SoftLabels { row, .. }) => assert_eq!(row, 1),
            other => panic!("{other:?}"),
        }
        let negative = Tensor::new(&[[1.5f32, -0.5]], &dev).unwrap();
        assert!(matches!(
            validate_soft_labels(&negative),
            Err(Error::SoftLabels { row: 0, .. })
        ));
        let nan = Tensor::new(&[[f32::NAN, 1.0]], &dev).unwrap();
        assert!(validate_soft_labels(&nan).is_err());
        let flat = Tensor::new(&[1.0f32], &dev).unwrap();
        assert!(matches!(
            validate_soft_labels(&flat),
            Err(Error::Shape { .. })
        ));
    }

    #[test]
    fn soft_set_batches_cover_every_example_once() {
        let dev = Device::Cpu;
        let n = 10;
        // Image i is filled with i / n; its target puts weight i/n on class 1.
        let images: Vec<f32> = (0..n).flat_map(|i| vec![i as f32 / n as f32; 4]).collect();
        let targets: Vec<f32> = (0..n)
            .flat_map(|i| [1.0 - i as f32 / n as f32, i as f32 / n as f32])
            .collect();
        let set = SoftLabelSet::new(
            Tensor::from_vec(images, (n, 1, 2, 2), &dev).unwrap(),
            Tensor::from_vec(targets, (n, 2), &dev).unwrap(),
        )
        .unwrap();
        let mut seen = Vec::new();
        for batch in set.epoch(4, 3, &dev).unwrap() {
            let batch = batch.unwrap();
            let Targets::Soft(t) = batch.targets else {
                panic!("soft")
            };
            let x = batch
                .images
                .flatten_from(1)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            let t = t.to_vec2::<f32>().unwrap();
            for (x, t) in x.iter().zip(&t) {
                // Images and targets stay paired.
                assert!((x[0] - t[1]).abs() < 1e-6);
                seen.push((x[0] * n as f32).round() as usize);
            }
        }
        let order = seen.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..n).collect::<Vec<_>>());
        assert_ne!(order, (0..n).collect::<Vec<_>>(), "shuffled");
    }

    #[test]
    fn soft_set_rejects_mismatched_counts() {
        let dev = Device::Cpu;
        let images = Tensor::zeros((3, 1, 2, 2), DType::F32, &dev).unwrap();
        let targets = Tensor::new(&[[1.0f32, 0.0], [0.0, 1.0]], &dev).unwrap();
        assert!(matches!(
            SoftLabelSet::new(images, targets),
            Err(Error::Shape { .. })
        ));
    }
}
