//! A quantitative judge of "does this image look like class k": an independently trained,
//! adversarially robust classifier, plus the correlation with the class-mean image.
//!
//! A plain classifier is no judge for inversions: it is fooled by the same adversarial
//! patterns the inversion exploits (a plain Adam-trained judge rated Adam-net inversions
//! 99% "correct" in the PyTorch reproduction). A PGD-trained net needs visible,
//! digit-like evidence to change its mind, so it is accepted as a judge only when it is
//! accurate, robust, and not fooled by noise (see [`JudgeConfig`]).

use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use ndarray::{Array4, ArrayView4, Axis};
use netinv_core::Monitor;
use netinv_models::train::{
    attack_accuracy, evaluate, Adversarial, Attack, EpochRecord, LrSchedule, TrainConfig, Trainer,
};
use netinv_models::{load_frozen, save_checkpoint, Classifier, ClassifierConfig};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::engine::argmax;
use crate::error::invalid;
use crate::objective::{check_targets, softmax_rows};
use crate::{Error, Result};

/// File name of the judge's report inside its folder (next to the checkpoint).
pub const JUDGE_FILE: &str = "judge.json";

/// How the judge is trained and when it is accepted. `Default`:
///
/// ```text
/// model:  netinv-small, weights seed 7919 (other than any inverted net's)
/// train:  SGD lr 0.05, momentum 0.9, cosine schedule, batch 64, 4 epochs, seed 7919,
///         PGD training: eps 0.2, 5 steps of 0.06, random start, alpha 0 (adversarial
///         examples only, as in Madry et al. 2018)
/// accept: clean test accuracy >= 0.95, accuracy under a 10-step eps-0.2 PGD attack
///         (step 0.05, random start) >= 0.75, and at most 2 of 10 noise images
///         (0.5 + 0.2 N(0, 1), clipped to [0, 1], seed 4242) judged as their targets 0..9
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JudgeConfig {
    /// The judge's architecture.
    pub model: ClassifierConfig,
    /// Seed of the judge's initial weights.
    pub weight_seed: u64,
    /// The (adversarial) training run.
    pub train: TrainConfig,
    /// Smallest accepted clean test accuracy, in [0, 1].
    pub min_clean_accuracy: f64,
    /// Smallest accepted accuracy under `attack`, in [0, 1].
    pub min_attack_accuracy: f64,
    /// The attack of the acceptance test.
    pub attack: Attack,
    /// Seed of the noise images of the acceptance test.
    pub noise_seed: u64,
    /// Largest accepted number of the 10 noise images judged as their target.
    pub max_noise_hits: usize,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        Self {
            model: ClassifierConfig::netinv_small(),
            weight_seed: 7919,
            train: TrainConfig {
                epochs: 4,
                schedule: LrSchedule::Cosine { min_lr: 0.0 },
                adversarial: Adversarial::Pgd {
                    epsilon: 0.2,
                    alpha: 0.0,
                    steps: 5,
                    step_size: 0.06,
                    random_start: true,
                },
                seed: 7919,
                ..TrainConfig::sgd()
            },
            min_clean_accuracy: 0.95,
            min_attack_accuracy: 0.75,
            attack: Attack::Pgd {
                epsilon: 0.2,
                steps: 10,
                step_size: 0.05,
                random_start: true,
                seed: 7919,
            },
            noise_seed: 4242,
            max_noise_hits: 2,
        }
    }
}

impl JudgeConfig {
    /// Checks the fields (the model and training configs with their own `validate`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] or the models crate's error naming the field.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.train.validate()?;
        self.attack.validate()?;
        for (field, v) in [
            ("min_clean_accuracy", self.min_clean_accuracy),
            ("min_attack_accuracy", self.min_attack_accuracy),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(invalid(field, format!("{v} is not in [0, 1]")));
            }
        }
        if self.model.outputs < 10 {
            return Err(invalid(
                "model.outputs",
                "the judge needs at least 10 classes",
            ));
        }
        Ok(())
    }
}

/// The acceptance test of a judge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeReport {
    /// The configuration the judge was trained with.
    pub config: JudgeConfig,
    /// Clean test accuracy.
    pub clean_accuracy: f64,
    /// Test accuracy under `config.attack`.
    pub attack_accuracy: f64,
    /// How many of the 10 noise images were judged as their target.
    pub noise_hits: usize,
    /// Whether all three criteria hold.
    pub accepted: bool,
    /// Seconds spent training (0 when loaded from a cache).
    pub train_seconds: f64,
}

/// The judge's verdict on a batch of images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The judge's class for each image.
    pub predictions: Vec<u32>,
    /// The judge's probability of each image's target.
    pub target_probabilities: Vec<f32>,
    /// Whether each image was judged as its target.
    pub correct: Vec<bool>,
    /// Fraction judged as their target.
    pub accuracy: f64,
}

/// A robust classifier that scores inverted images (see the module docs).
#[derive(Debug, Clone)]
pub struct Judge {
    net: Classifier,
    report: JudgeReport,
    device: Device,
}

impl Judge {
    /// Trains a judge on `mnist.train()` and runs the acceptance test on `mnist.test()`.
    /// The judge is returned even when rejected: check [`JudgeReport::accepted`].
    ///
    /// # Errors
    /// Configuration, training and candle errors.
    pub fn train(
        cfg: &JudgeConfig,
        mnist: &netinv_data::Mnist,
        device: &Device,
        monitor: &mut Monitor<'_, EpochRecord>,
    ) -> Result<(Self, VarMap)> {
        cfg.validate()?;
        let start = std::time::Instant::now();
        let varmap = VarMap::new();
        let net = Classifier::init(&cfg.model, &varmap, cfg.weight_seed, device)?;
        let trainer = Trainer::new(cfg.train.clone())?.on_device(device.clone());
        trainer.fit(&net, &varmap, mnist.train(), None, monitor)?;
        let train_seconds = start.elapsed().as_secs_f64();
        let report = Self::acceptance(&net, cfg, mnist.test(), device, train_seconds)?;
        Ok((
            Self {
                net,
                report,
                device: device.clone(),
            },
            varmap,
        ))
    }

    fn acceptance(
        net: &Classifier,
        cfg: &JudgeConfig,
        test: &netinv_data::Dataset,
        device: &Device,
        train_seconds: f64,
    ) -> Result<JudgeReport> {
        let clean_accuracy = evaluate(net, test, device)?.accuracy;
        let attack_acc = attack_accuracy(net, test, &cfg.attack, device)?;
        let noise = noise_images(10, cfg.noise_seed);
        let targets: Vec<u32> = (0..10).collect();
        let noise_hits = verdict_of(net, noise.view(), &targets, device)?
            .correct
            .iter()
            .filter(|&&c| c)
            .count();
        let accepted = clean_accuracy >= cfg.min_clean_accuracy
            && attack_acc >= cfg.min_attack_accuracy
            && noise_hits <= cfg.max_noise_hits;
        Ok(JudgeReport {
            config: cfg.clone(),
            clean_accuracy,
            attack_accuracy: attack_acc,
            noise_hits,
            accepted,
            train_seconds,
        })
    }

    /// Loads the judge cached in `dir` if it was trained with `cfg`; otherwise trains one
    /// and caches it there (checkpoint plus [`JUDGE_FILE`]). Only an accepted judge is
    /// returned.
    ///
    /// # Errors
    /// [`Error::JudgeRejected`] when the judge fails its acceptance test (the report is
    /// still written to `dir`); configuration, training, checkpoint and I/O errors.
    pub fn load_or_train(
        dir: &Path,
        cfg: &JudgeConfig,
        mnist: &netinv_data::Mnist,
        device: &Device,
        monitor: &mut Monitor<'_, EpochRecord>,
    ) -> Result<Self> {
        if let Ok(judge) = Self::load(dir, device) {
            if &judge.report.config == cfg {
                return judge.accepted();
            }
        }
        let (judge, varmap) = Self::train(cfg, mnist, device, monitor)?;
        save_checkpoint(dir, &varmap, &cfg.model)?;
        netinv_core::write_json(dir.join(JUDGE_FILE), &judge.report)?;
        judge.accepted()
    }

    /// Loads a judge saved by [`Judge::load_or_train`] (whether accepted or not).
    ///
    /// # Errors
    /// I/O, JSON and checkpoint errors.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let path = dir.join(JUDGE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| {
            Error::Core(netinv_core::Error::Io {
                path: path.clone(),
                source,
            })
        })?;
        let mut report: JudgeReport =
            serde_json::from_str(&text).map_err(|e| Error::Core(netinv_core::Error::Json(e)))?;
        report.train_seconds = 0.0;
        let net = load_frozen(dir, device)?;
        Ok(Self {
            net,
            report,
            device: device.clone(),
        })
    }

    fn accepted(self) -> Result<Self> {
        if self.report.accepted {
            Ok(self)
        } else {
            let r = &self.report;
            Err(Error::JudgeRejected(format!(
                "clean accuracy {:.4} (need {}), attack accuracy {:.4} (need {}), noise hits {} (at most {})",
                r.clean_accuracy,
                r.config.min_clean_accuracy,
                r.attack_accuracy,
                r.config.min_attack_accuracy,
                r.noise_hits,
                r.config.max_noise_hits
            )))
        }
    }

    /// The acceptance test of this judge.
    pub fn report(&self) -> &JudgeReport {
        &self.report
    }

    /// The judge's network.
    pub fn net(&self) -> &Classifier {
        &self.net
    }

    /// Judges `images` `[n, 1, 28, 28]` against one target class each. The images are
    /// clipped to [0, 1] (never rescaled in contrast) before the judge sees them.
    ///
    /// # Errors
    /// [`Error::Shape`] for a target count that is not `n`, [`Error::TargetOutOfRange`],
    /// [`Error::NonFinite`] for NaN pixels, and the network's errors.
    pub fn verdict(&self, images: ArrayView4<'_, f32>, targets: &[u32]) -> Result<Verdict> {
        verdict_of(&self.net, images, targets, &self.device)
    }
}

fn verdict_of(
    net: &Classifier,
    images: ArrayView4<'_, f32>,
    targets: &[u32],
    device: &Device,
) -> Result<Verdict> {
    let (n, c, h, w) = images.dim();
    if targets.len() != n || n == 0 {
        return Err(Error::Shape {
            expected: format!("{n} >= 1 targets"),
            got: format!("{} targets", targets.len()),
        });
    }
    check_targets(targets, net.config().outputs)?;
    if images.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "image to judge",
            iteration: 0,
        });
    }
    let data: Vec<f32> = images.iter().map(|v| v.clamp(0.0, 1.0)).collect();
    let x = Tensor::from_vec(data, (n, c, h, w), device)?;
    let probs = softmax_rows(&net.forward(&x)?)?;
    let predictions: Vec<u32> = probs.iter().map(|p| argmax(p) as u32).collect();
    let correct: Vec<bool> = predictions
        .iter()
        .zip(targets)
        .map(|(p, t)| p == t)
        .collect();
    let hits = correct.iter().filter(|&&c| c).count();
    Ok(Verdict {
        target_probabilities: probs
            .iter()
            .zip(targets)
            .map(|(p, &t)| p[t as usize])
            .collect(),
        predictions,
        correct,
        accuracy: hits as f64 / n as f64,
    })
}

/// `n` seeded noise images `[n, 1, 28, 28]`: `0.5 + 0.2 N(0, 1)` clipped to [0, 1].
pub fn noise_images(n: usize, seed: u64) -> Array4<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let normal =
        Normal::new(0.5f32, 0.2).unwrap_or_else(|_| unreachable!("constant parameters are valid"));
    Array4::from_shape_fn((n, 1, 28, 28), |_| normal.sample(&mut rng).clamp(0.0, 1.0))
}

/// Pearson correlation of each image `[n, 1, h, w]` with the mean training image of its
/// target class (from `train`):
///
/// ```text
/// r = sum (x - mean x)(m - mean m) / sqrt(sum (x - mean x)^2 * sum (m - mean m)^2)
/// ```
///
/// accumulated in f64; a constant image (zero variance) scores 0. Images are clipped to
/// [0, 1] first, as for the judge.
///
/// # Errors
/// [`Error::Shape`] for a target count that is not `n` or images that are not `[n, 1, h, w]`
/// with the data set's `h, w`; data errors (a class without examples).
pub fn class_mean_correlation(
    images: ArrayView4<'_, f32>,
    targets: &[u32],
    train: &netinv_data::Dataset,
) -> Result<Vec<f64>> {
    let (n, c, h, w) = images.dim();
    if targets.len() != n || c != 1 || (h, w) != train.image_dim() {
        return Err(Error::Shape {
            expected: format!("[{} targets], images [n, 1, {:?}]", n, train.image_dim()),
            got: format!("{} targets, images {:?}", targets.len(), images.dim()),
        });
    }
    let mut out = Vec::with_capacity(n);
    for (i, &t) in targets.iter().enumerate() {
        let class = u8::try_from(t).map_err(|_| Error::TargetOutOfRange {
            index: i,
            class: t,
            outputs: netinv_data::NUM_CLASSES,
        })?;
        let mean = train.class_mean(class)?;
        let image = images.index_axis(Axis(0), i);
        let x: Vec<f64> = image
            .iter()
            .map(|&v| f64::from(v.clamp(0.0, 1.0)))
            .collect();
        let m: Vec<f64> = mean.iter().map(|&v| f64::from(v)).collect();
        out.push(pearson(&x, &m));
    }
    Ok(out)
}

/// Pearson correlation of two equally long slices; 0 when either has zero variance.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    if n == 0.0 {
        return 0.0;
    }
    let ma = a.iter().sum::<f64>() / n;
    let mb = b.iter().sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa <= 0.0 || sbb <= 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_known_values() {
        assert!((pearson(&[1., 2., 3.], &[2., 4., 6.]) - 1.0).abs() < 1e-12);
        assert!((pearson(&[1., 2., 3.], &[3., 2., 1.]) + 1.0).abs() < 1e-12);
        assert_eq!(pearson(&[1., 1., 1.], &[1., 2., 3.]), 0.0);
        // x = (1, 2, 3, 4), y = (1, 3, 2, 4): cov 1.0 * 4 / ..., r = 0.8
        assert!((pearson(&[1., 2., 3., 4.], &[1., 3., 2., 4.]) - 0.8).abs() < 1e-12);
    }

    #[test]
    fn noise_images_are_seeded_and_clipped() {
        let a = noise_images(3, 1);
        assert_eq!(a, noise_images(3, 1));
        assert_ne!(a, noise_images(3, 2));
        assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn class_mean_image_correlates_perfectly() {
        let mnist = netinv_data::Mnist::embedded().unwrap();
        let train = mnist.train().take(300);
        let mean = train.class_mean(3).unwrap();
        let images = mean.clone().into_shape_with_order((1, 1, 28, 28)).unwrap();
        let r = class_mean_correlation(images.view(), &[3], &train).unwrap();
        assert!((r[0] - 1.0).abs() < 1e-9);
        assert!(class_mean_correlation(images.view(), &[3, 4], &train).is_err());
        assert!(class_mean_correlation(images.view(), &[300], &train).is_err());
    }

    #[test]
    fn bad_judge_configs_are_errors() {
        assert!(JudgeConfig::default().validate().is_ok());
        let bad = JudgeConfig {
            min_clean_accuracy: 1.5,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }
}
