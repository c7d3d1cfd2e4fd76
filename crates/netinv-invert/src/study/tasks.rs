//! Task 1 and Task 2 of the thesis.

use candle_core::{Device, Tensor};
use ndarray::{Array4, ArrayView2, Axis};
use netinv_core::Monitor;
use netinv_metrics::stats::mean;
use netinv_models::bridge::array4_to_tensor;
use serde::{Deserialize, Serialize};

use crate::{Error, Inversion, InversionConfig, Inverter, InvertibleNet, Result};

/// Task 1: a batch of 10 seeded noise images (`InversionConfig::seed`) becomes the
/// digits 0..9 through a trained classifier.
#[derive(Debug)]
pub struct Task1 {
    inverter: Inverter,
}

/// The outcome of a [`Task1`] run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task1Run {
    /// The target class of each image (0..9).
    pub targets: Vec<u32>,
    /// The inversion (images, start, snapshots, losses per step, probabilities, state).
    pub inversion: Inversion,
    /// The inverted net's class for each final image.
    pub net_predictions: Vec<u32>,
    /// The inverted net's probability of each image's target.
    pub self_confidence_per_image: Vec<f64>,
}

impl Task1 {
    /// Task 1 with the inversion settings `cfg` (validated).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] from [`InversionConfig::validate`].
    pub fn new(cfg: InversionConfig) -> Result<Self> {
        Ok(Self {
            inverter: Inverter::new(cfg)?,
        })
    }

    /// The inversion settings.
    pub fn config(&self) -> &InversionConfig {
        self.inverter.config()
    }

    /// Inverts `net` from the seeded Gaussian start towards 0..9, reporting every step
    /// to `monitor`.
    ///
    /// # Errors
    /// As [`Inverter::invert_classes`] (a net with fewer than 10 outputs, a non-finite
    /// loss, observer errors).
    pub fn run<N: InvertibleNet + ?Sized>(
        &self,
        net: &N,
        monitor: &mut Monitor<'_, Tensor>,
    ) -> Result<Task1Run> {
        let targets: Vec<u32> = (0..10).collect();
        let inversion = self
            .inverter
            .invert_classes(net, &targets, None, &Device::Cpu, monitor)?;
        let net_predictions = inversion.predictions();
        let self_confidence_per_image = inversion
            .probabilities
            .iter()
            .zip(&targets)
            .map(|(p, &t)| f64::from(p[t as usize]))
            .collect();
        Ok(Task1Run {
            targets,
            inversion,
            net_predictions,
            self_confidence_per_image,
        })
    }
}

impl Task1Run {
    /// Mean probability the inverted net gives each image's target.
    pub fn self_confidence(&self) -> f64 {
        mean(&self.self_confidence_per_image)
    }

    /// Milliseconds per inversion step (wall clock).
    pub fn ms_per_step(&self) -> f64 {
        ms_per_step(&self.inversion)
    }
}

/// Milliseconds per step of `inversion` (wall clock).
fn ms_per_step(inversion: &Inversion) -> f64 {
    1000.0 * inversion.state.elapsed_seconds / inversion.state.iteration as f64
}

/// The first iteration (1-based) whose prediction is `class`, if any.
pub fn first_iteration_of(predictions: &[u32], class: u32) -> Option<usize> {
    predictions.iter().position(|&p| p == class).map(|i| i + 1)
}

/// Task 2: a real image of the digit `from` becomes the digit `to` (9 -> 8 in the
/// thesis); the images after every iteration are kept.
#[derive(Debug)]
pub struct Task2 {
    inverter: Inverter,
    /// The class of the source image.
    pub from: u8,
    /// The target class.
    pub to: u32,
}

/// The outcome of a [`Task2`] run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task2Run {
    /// The inversion; its snapshots are the images after every iteration.
    pub inversion: Inversion,
    /// The inverted net's class after every iteration (index 0 = iteration 1).
    pub net_predictions: Vec<u32>,
    /// The first iteration at which the inverted net says `to`.
    pub net_first: Option<usize>,
}

impl Task2 {
    /// 9 -> 8 with the inversion settings `cfg` (validated); its `snapshots` are replaced
    /// by every iteration.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] from [`InversionConfig::validate`].
    pub fn new(cfg: &InversionConfig) -> Result<Self> {
        let cfg = InversionConfig {
            snapshots: (1..=cfg.steps).collect(),
            ..cfg.clone()
        };
        Ok(Self {
            inverter: Inverter::new(cfg)?,
            from: 9,
            to: 8,
        })
    }

    /// The inversion settings (snapshots at every iteration).
    pub fn config(&self) -> &InversionConfig {
        self.inverter.config()
    }

    /// The index of the first image of class `from` in `labels`.
    pub fn source_index(&self, labels: &[u8]) -> Option<usize> {
        labels.iter().position(|&l| l == self.from)
    }

    /// Inverts `net` from `source` `[h, w]` (one channel) towards `to`, reporting every
    /// step to `monitor`, and classifies the images after every iteration.
    ///
    /// # Errors
    /// [`Error::Shape`] if `source` is not one `net` input; as
    /// [`Inverter::invert_classes`] otherwise.
    pub fn run<N: InvertibleNet + ?Sized>(
        &self,
        net: &N,
        source: ArrayView2<'_, f32>,
        monitor: &mut Monitor<'_, Tensor>,
    ) -> Result<Task2Run> {
        let (h, w) = source.dim();
        let pixels: Vec<f32> = source.iter().copied().collect();
        let init = Tensor::from_vec(pixels, (1, 1, h, w), &Device::Cpu)?;
        let inversion =
            self.inverter
                .invert_classes(net, &[self.to], Some(&init), &Device::Cpu, monitor)?;
        let all = Task2Run::stack(&inversion)?;
        let x = array4_to_tensor(all.view(), &Device::Cpu)?;
        let net_predictions = net.predict(&x)?;
        let net_first = first_iteration_of(&net_predictions, self.to);
        Ok(Task2Run {
            inversion,
            net_predictions,
            net_first,
        })
    }
}

impl Task2Run {
    /// The images after every iteration, stacked `[iterations, c, h, w]`.
    ///
    /// # Errors
    /// [`Error::Shape`] if the run kept no snapshots.
    pub fn snapshot_images(&self) -> Result<Array4<f32>> {
        Self::stack(&self.inversion)
    }

    fn stack(inversion: &Inversion) -> Result<Array4<f32>> {
        let views: Vec<_> = inversion
            .snapshots
            .iter()
            .map(|s| s.images.view())
            .collect();
        ndarray::concatenate(Axis(0), &views).map_err(|e| Error::Shape {
            expected: "at least one snapshot of equal shape".to_string(),
            got: e.to_string(),
        })
    }

    /// Milliseconds per inversion step (wall clock).
    pub fn ms_per_step(&self) -> f64 {
        ms_per_step(&self.inversion)
    }
}

/// Task 2 on several pairs at once: real images (`sources` `[n, 1, h, w]`) become their
/// `targets`, one target per image, in one batched inversion.
///
/// The class loss is summed over the batch ([`crate::Reduction::Sum`]) and the priors are
/// summed too, so with Adam or SGD on the image (per-pixel updates) each image follows the
/// path a one-image Task 2 run would take; L-BFGS couples the images through its curvature
/// pairs. No snapshots are kept; the result is the final images and the net's view of them.
#[derive(Debug)]
pub struct Task2Pairs {
    inverter: Inverter,
}

impl Task2Pairs {
    /// Task 2 with the inversion settings `cfg` (validated); its `reduction` is set to
    /// `Sum` and its `snapshots` are dropped.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] from [`InversionConfig::validate`].
    pub fn new(cfg: &InversionConfig) -> Result<Self> {
        let cfg = InversionConfig {
            reduction: crate::Reduction::Sum,
            snapshots: Vec::new(),
            ..cfg.clone()
        };
        Ok(Self {
            inverter: Inverter::new(cfg)?,
        })
    }

    /// The inversion settings (sum reduction, no snapshots).
    pub fn config(&self) -> &InversionConfig {
        self.inverter.config()
    }

    /// Inverts `net` from `sources` `[n, 1, h, w]` towards `targets` (one per source).
    ///
    /// # Errors
    /// [`Error::Shape`] when the number of targets is not `n`; as
    /// [`Inverter::invert_classes`] otherwise.
    pub fn run<N: InvertibleNet + ?Sized>(
        &self,
        net: &N,
        sources: ndarray::ArrayView4<'_, f32>,
        targets: &[u32],
        monitor: &mut Monitor<'_, Tensor>,
    ) -> Result<Task1Run> {
        if sources.dim().0 != targets.len() {
            return Err(Error::Shape {
                expected: format!("{} targets, one per source image", sources.dim().0),
                got: targets.len().to_string(),
            });
        }
        let init = array4_to_tensor(sources, &Device::Cpu)?;
        let inversion =
            self.inverter
                .invert_classes(net, targets, Some(&init), &Device::Cpu, monitor)?;
        let net_predictions = inversion.predictions();
        let self_confidence_per_image = inversion
            .probabilities
            .iter()
            .zip(targets)
            .map(|(p, &t)| f64::from(p[t as usize]))
            .collect();
        Ok(Task1Run {
            targets: targets.to_vec(),
            inversion,
            net_predictions,
            self_confidence_per_image,
        })
    }
}
