//! A quantitative judge of "does this image look like class k": an independently trained,
//! adversarially robust classifier ([`Judge`], trained by its own [`JudgeRecipe`]), a panel
//! of such judges that differ in architecture and optimiser with its majority verdict
//! ([`JudgePanel`], [`default_panel`]), plus model-free scores against the training digits:
//! the correlation with the class-mean image ([`class_mean_correlation`]), the nearest class
//! mean and a k-NN vote in pixel space ([`PixelReference`]).
//!
//! A plain classifier is no judge for inversions: it is fooled by the same adversarial
//! patterns the inversion exploits (a plain Adam-trained judge rated Adam-net inversions
//! 99% "correct" in the PyTorch reproduction). A PGD-trained net needs visible,
//! digit-like evidence to change its mind, so it is accepted as a judge only when it is
//! accurate, robust, and not fooled by noise (the gate of [`JudgeRecipe`]).

mod model_free;
mod panel;
mod recipe;
mod table;
mod verdict;

use std::path::Path;

use candle_core::Device;
use candle_nn::VarMap;
use netinv_core::Monitor;
use serde::{Deserialize, Serialize};

pub use model_free::{ModelFreeScores, PixelReference, DEFAULT_KNN_K};
pub use panel::{default_panel, member_dir, JudgePanel, PanelMember, PanelVerdict};
pub use recipe::JudgeRecipe;
pub use table::report_table;
pub use verdict::{class_mean_correlation, noise_images, Verdict};

use crate::train::{attack_accuracy, evaluate, EpochRecord, Trainer};
use crate::{load_frozen, save_checkpoint, Classifier, Error, Result};

/// File name of the judge's report (with its recipe) inside its folder, next to the
/// checkpoint.
pub const JUDGE_FILE: &str = "judge.json";

/// The acceptance test of a judge, with the recipe it was trained by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeReport {
    /// The recipe the judge was trained by.
    pub recipe: JudgeRecipe,
    /// Clean test accuracy.
    pub clean_accuracy: f64,
    /// Test accuracy under `recipe.attack`.
    pub attack_accuracy: f64,
    /// How many of the 10 noise images were judged as their target.
    pub noise_hits: usize,
    /// Whether all three criteria hold.
    pub accepted: bool,
    /// Seconds spent training (0 when loaded from a cache).
    pub train_seconds: f64,
}

/// A robust classifier that scores inverted images (see the module docs).
#[derive(Debug, Clone)]
pub struct Judge {
    net: Classifier,
    report: JudgeReport,
    device: Device,
}

impl Judge {
    /// Trains a judge by `recipe` on `train` and runs the acceptance test on `test`. The
    /// judge is returned even when rejected: check [`JudgeReport::accepted`] or call
    /// [`Judge::accepted`]. The returned [`VarMap`] holds the trained weights (for
    /// [`save_checkpoint`]); the judge itself keeps a frozen copy.
    ///
    /// # Errors
    /// Recipe, training and candle errors.
    pub fn train(
        recipe: &JudgeRecipe,
        train: &netinv_data::Dataset,
        test: &netinv_data::Dataset,
        device: &Device,
        monitor: &mut Monitor<'_, EpochRecord>,
    ) -> Result<(Self, VarMap)> {
        recipe.validate()?;
        let start = std::time::Instant::now();
        let varmap = VarMap::new();
        let net = Classifier::init(&recipe.model, &varmap, recipe.weight_seed, device)?;
        let trainer = Trainer::new(recipe.train_config())?.on_device(device.clone());
        trainer.fit(&net, &varmap, train, None, monitor)?;
        let train_seconds = start.elapsed().as_secs_f64();
        let net = net.freeze(&varmap)?;
        let report = acceptance(&net, recipe, test, device, train_seconds)?;
        let judge = Self {
            net,
            report,
            device: device.clone(),
        };
        Ok((judge, varmap))
    }

    /// Loads the judge cached in `dir` if it was trained by `recipe` (see
    /// [`Judge::load_matching`]); otherwise trains one on `mnist.train()`, tests it on
    /// `mnist.test()` and caches it there (checkpoint plus [`JUDGE_FILE`], which holds the
    /// recipe). Only an accepted judge is returned.
    ///
    /// # Errors
    /// [`Error::JudgeRejected`] when the judge fails its acceptance test (the report is
    /// still written to `dir`); recipe, training, checkpoint and I/O errors.
    pub fn load_or_train(
        dir: &Path,
        recipe: &JudgeRecipe,
        mnist: &netinv_data::Mnist,
        device: &Device,
        monitor: &mut Monitor<'_, EpochRecord>,
    ) -> Result<Self> {
        Self::load_or_train_on(dir, recipe, mnist.train(), mnist.test(), device, monitor)
    }

    /// [`Judge::load_or_train`] with the training and test digits given.
    ///
    /// # Errors
    /// As [`Judge::load_or_train`].
    pub fn load_or_train_on(
        dir: &Path,
        recipe: &JudgeRecipe,
        train: &netinv_data::Dataset,
        test: &netinv_data::Dataset,
        device: &Device,
        monitor: &mut Monitor<'_, EpochRecord>,
    ) -> Result<Self> {
        if let Some(judge) = Self::load_matching(dir, recipe, device)? {
            return judge.accepted();
        }
        let (judge, varmap) = Self::train(recipe, train, test, device, monitor)?;
        save_checkpoint(dir, &varmap, &recipe.model)?;
        netinv_core::write_json(dir.join(JUDGE_FILE), &judge.report)?;
        judge.accepted()
    }

    /// Whether `dir` holds a judge trained by exactly `recipe` (so that
    /// [`Judge::load_or_train`] will not train).
    pub fn is_cached(dir: &Path, recipe: &JudgeRecipe) -> bool {
        matches!(stored_recipe_matches(dir, recipe), Ok(true))
    }

    /// The judge cached in `dir` if its stored recipe equals `recipe` field by field (as
    /// JSON: a stored recipe with a field missing, an extra field or any other value does
    /// not match); `None` when `dir` has no [`JUDGE_FILE`], when the file holds no recipe
    /// (a judge from before recipes were stored) or another recipe.
    ///
    /// # Errors
    /// I/O errors other than a missing file; checkpoint errors of a matching judge.
    pub fn load_matching(
        dir: &Path,
        recipe: &JudgeRecipe,
        device: &Device,
    ) -> Result<Option<Self>> {
        if !stored_recipe_matches(dir, recipe)? {
            return Ok(None);
        }
        Self::load(dir, device).map(Some)
    }

    /// Loads a judge saved by [`Judge::load_or_train`], whether accepted or not, whatever
    /// its recipe.
    ///
    /// # Errors
    /// I/O, JSON (also for a report without a recipe) and checkpoint errors.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let text = read_report(dir)?;
        let mut report: JudgeReport = serde_json::from_str(&text)?;
        report.train_seconds = 0.0;
        let net = load_frozen(dir, device)?;
        Ok(Self {
            net,
            report,
            device: device.clone(),
        })
    }

    /// The judge if it passed its acceptance test.
    ///
    /// # Errors
    /// [`Error::JudgeRejected`] with the measured figures and the gate otherwise.
    pub fn accepted(self) -> Result<Self> {
        if self.report.accepted {
            return Ok(self);
        }
        let r = &self.report;
        Err(Error::JudgeRejected {
            clean_accuracy: r.clean_accuracy,
            min_clean_accuracy: r.recipe.min_clean_accuracy,
            attack_accuracy: r.attack_accuracy,
            min_attack_accuracy: r.recipe.min_attack_accuracy,
            noise_hits: r.noise_hits,
            max_noise_hits: r.recipe.max_noise_hits,
        })
    }

    /// The acceptance test of this judge.
    pub fn report(&self) -> &JudgeReport {
        &self.report
    }

    /// The judge's network (frozen).
    pub fn net(&self) -> &Classifier {
        &self.net
    }

    /// Judges `images` `[n, 1, 28, 28]` against one target class each. The images are
    /// clipped to [0, 1] (never rescaled in contrast) before the judge sees them.
    ///
    /// # Errors
    /// [`Error::Shape`] for a target count that is not `n` or no images,
    /// [`Error::InvalidConfig`] for a target the judge does not have or a NaN pixel, and
    /// the network's errors.
    pub fn verdict(
        &self,
        images: ndarray::ArrayView4<'_, f32>,
        targets: &[u32],
    ) -> Result<Verdict> {
        verdict::verdict_of(&self.net, images, targets, &self.device)
    }
}

/// Clean accuracy, attack accuracy and noise hits of `net` against the gate of `recipe`.
fn acceptance(
    net: &Classifier,
    recipe: &JudgeRecipe,
    test: &netinv_data::Dataset,
    device: &Device,
    train_seconds: f64,
) -> Result<JudgeReport> {
    let clean_accuracy = evaluate(net, test, device)?.accuracy;
    let attack_acc = attack_accuracy(net, test, &recipe.attack, device)?;
    let noise = noise_images(10, recipe.noise_seed);
    let targets: Vec<u32> = (0..10).collect();
    let noise_hits = verdict::verdict_of(net, noise.view(), &targets, device)?
        .correct
        .iter()
        .filter(|&&c| c)
        .count();
    let accepted = clean_accuracy >= recipe.min_clean_accuracy
        && attack_acc >= recipe.min_attack_accuracy
        && noise_hits <= recipe.max_noise_hits;
    Ok(JudgeReport {
        recipe: recipe.clone(),
        clean_accuracy,
        attack_accuracy: attack_acc,
        noise_hits,
        accepted,
        train_seconds,
    })
}

fn read_report(dir: &Path) -> Result<String> {
    let path = dir.join(JUDGE_FILE);
    std::fs::read_to_string(&path).map_err(|source| Error::Io { path, source })
}

/// Whether `dir/judge.json` exists and its `recipe` is `recipe` (compared as JSON values,
/// so a missing or extra field is a difference).
fn stored_recipe_matches(dir: &Path, recipe: &JudgeRecipe) -> Result<bool> {
    if !dir.join(JUDGE_FILE).exists() {
        return Ok(false);
    }
    let stored: serde_json::Value = match serde_json::from_str(&read_report(dir)?) {
        Ok(v) => v,
        Err(_) => return Ok(false),
    };
    Ok(stored.get("recipe") == Some(&serde_json::to_value(recipe)?))
}

#[cfg(test)]
mod panel_tests;
#[cfg(test)]
mod tests;
