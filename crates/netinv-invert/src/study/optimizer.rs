//! The optimiser study: an Adam-trained net cannot be inverted, an SGD-trained one can,
//! and FGSM training fixes Adam (the thesis's central claim).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use netinv_models::train::{Adversarial, OptimizerKind, TrainConfig};
use serde::{Deserialize, Serialize};

use netinv_metrics::stats::{mean, min_max};

use super::Task1Run;
use crate::error::invalid;
use crate::{InversionConfig, Result};

/// The reference prior weights `(tv, l2)` of the inversion study.
const REFERENCE_PRIORS: (f64, f64) = (1e-3, 1e-4);

/// The settings of the optimiser study: which nets are trained and how they are inverted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerStudy {
    /// Seeds per recipe (the seed sets the weights and the shuffling); at least 1.
    pub seeds: u64,
    /// Training lengths in epochs, each at least 1, no repeats.
    pub epochs: Vec<usize>,
    /// Inversion steps per Task 1 run, at least 1.
    pub steps: usize,
    /// Invert over the grid TV in {0, 1e-4, 1e-3, 1e-2} x L2 in {0, 1e-4, 1e-3} (12
    /// settings, the reference first) instead of the reference weights only.
    pub grid: bool,
}

/// One job of the optimiser study: one trained net (recipe, length, seed), inverted at
/// every prior setting of the study. Jobs are independent of each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerJob {
    /// The position of the job in [`OptimizerStudy::jobs`] (the merge order).
    pub index: usize,
    /// The training recipe with its epochs and seed.
    pub train: TrainConfig,
    /// The seed of the weights (the same as the shuffling seed).
    pub weight_seed: u64,
    /// The Task 1 settings, one per prior setting.
    pub inversions: Vec<InversionConfig>,
}

/// One Task 1 run of the study: a recipe, a prior setting and what came out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// `sgd` or `adam`.
    pub optimizer: String,
    /// `none`, `fgsm` or `pgd`.
    pub adversarial: String,
    /// The attack radius of adversarial training.
    pub epsilon: Option<f64>,
    /// Training epochs.
    pub epochs: usize,
    /// Training seed.
    pub seed: u64,
    /// Weight of the squared TV prior.
    pub tv: f64,
    /// Weight of the L2 prior.
    pub l2: f64,
    /// Test accuracy of the trained net.
    pub test_accuracy: f64,
    /// Fraction of the 10 images the judge classifies as their targets (NaN without one;
    /// `null` in JSON, read back as NaN).
    #[serde(deserialize_with = "netinv_core::shard::nan_from_null")]
    pub judge_accuracy: f64,
    /// Mean correlation of the images with their class-mean digits.
    pub class_mean_corr: f64,
    /// Mean probability the inverted net gives the targets.
    pub self_confidence: f64,
    /// Milliseconds per inversion step (timing, not a result).
    pub ms_per_step: f64,
}

/// The lower-case name of a training optimiser (`sgd`, `adam`).
fn optimizer_name(kind: OptimizerKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "optimizer".to_string())
}

/// Names a training recipe for tables and folders (`sgd`, `adam`, `adam-fgsm0.1`).
pub fn recipe_name(cfg: &TrainConfig) -> String {
    let opt = optimizer_name(cfg.optimizer);
    match cfg.adversarial {
        Adversarial::Fgsm { epsilon, .. } => format!("{opt}-fgsm{epsilon}"),
        Adversarial::Pgd { epsilon, .. } => format!("{opt}-pgd{epsilon}"),
        _ => opt,
    }
}

impl OptimizerStudy {
    /// Checks every field.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the first invalid field.
    pub fn validate(&self) -> Result<()> {
        if self.seeds == 0 {
            return Err(invalid("seeds", "must be at least 1"));
        }
        if self.epochs.is_empty() {
            return Err(invalid("epochs", "give at least one training length"));
        }
        if self.epochs.contains(&0) {
            return Err(invalid(
                "epochs",
                "every training length must be at least 1",
            ));
        }
        if let Some(e) = self
            .epochs
            .iter()
            .enumerate()
            .find_map(|(i, e)| self.epochs[..i].contains(e).then_some(e))
        {
            return Err(invalid("epochs", format!("{e} is given twice")));
        }
        if self.steps == 0 {
            return Err(invalid("steps", "must be at least 1"));
        }
        Ok(())
    }

    /// SGD (lr 0.05, momentum 0.9), Adam (lr 2e-3), Adam + FGSM eps 0.1 and 0.2.
    pub fn recipes() -> Vec<TrainConfig> {
        vec![
            TrainConfig::sgd(),
            TrainConfig::adam(),
            TrainConfig {
                adversarial: Adversarial::fgsm(0.1),
                ..TrainConfig::adam()
            },
            TrainConfig {
                adversarial: Adversarial::fgsm(0.2),
                ..TrainConfig::adam()
            },
        ]
    }

    /// The prior settings `(tv, l2)`: the reference first, then the rest of the grid.
    pub fn prior_settings(&self) -> Vec<(f64, f64)> {
        let mut settings = vec![REFERENCE_PRIORS];
        if self.grid {
            for tv in [0.0, 1e-4, 1e-3, 1e-2] {
                for l2 in [0.0, 1e-4, 1e-3] {
                    if (tv, l2) != REFERENCE_PRIORS {
                        settings.push((tv, l2));
                    }
                }
            }
        }
        settings
    }

    /// The jobs, in merge order: epochs, then seed, then recipe.
    ///
    /// # Errors
    /// As [`OptimizerStudy::validate`].
    pub fn jobs(&self) -> Result<Vec<OptimizerJob>> {
        self.validate()?;
        let inversions: Vec<InversionConfig> = self
            .prior_settings()
            .into_iter()
            .map(|(tv, l2)| InversionConfig {
                tv,
                l2,
                steps: self.steps,
                snapshots: vec![100].into_iter().filter(|&s| s <= self.steps).collect(),
                ..Default::default()
            })
            .collect();
        let mut jobs = Vec::new();
        for &epochs in &self.epochs {
            for seed in 0..self.seeds {
                for recipe in Self::recipes() {
                    jobs.push(OptimizerJob {
                        index: jobs.len(),
                        train: TrainConfig {
                            epochs,
                            seed,
                            ..recipe
                        },
                        weight_seed: seed,
                        inversions: inversions.clone(),
                    });
                }
            }
        }
        Ok(jobs)
    }

    /// The rows of all jobs in job order, whatever order the jobs finished in:
    /// `results` holds `(job index, rows of that job)`.
    pub fn merge(mut results: Vec<(usize, Vec<Row>)>) -> Vec<Row> {
        results.sort_by_key(|(index, _)| *index);
        results.into_iter().flat_map(|(_, rows)| rows).collect()
    }
}

impl OptimizerJob {
    /// The job's estimated cost for balancing shards (only ratios matter): training epochs
    /// (an adversarial epoch counted twice, for its attack pass) plus inversion steps / 100.
    pub fn cost(&self) -> f64 {
        let per_epoch = match self.train.adversarial {
            Adversarial::None => 1.0,
            _ => 2.0,
        };
        per_epoch * self.train.epochs as f64
            + (self.inversions.len() * self.inversions.first().map_or(0, |i| i.steps)) as f64
                / 100.0
    }

    /// The job's name, also its folder: `<recipe>-e<epochs>-s<seed>`.
    pub fn name(&self) -> String {
        format!(
            "{}-e{}-s{}",
            recipe_name(&self.train),
            self.train.epochs,
            self.train.seed
        )
    }

    /// The study's row for one Task 1 run of this job's net: `test_accuracy` of the net,
    /// `judge_accuracy` (if a judge scored the images) and the class-mean correlation
    /// come from the caller.
    pub fn row(
        &self,
        inversion: &InversionConfig,
        test_accuracy: f64,
        run: &Task1Run,
        judge_accuracy: Option<f64>,
        class_mean_corr: f64,
    ) -> Row {
        let (adversarial, epsilon) = match self.train.adversarial {
            Adversarial::Fgsm { epsilon, .. } => ("fgsm".to_string(), Some(epsilon)),
            Adversarial::Pgd { epsilon, .. } => ("pgd".to_string(), Some(epsilon)),
            _ => ("none".to_string(), None),
        };
        Row {
            optimizer: optimizer_name(self.train.optimizer),
            adversarial,
            epsilon,
            epochs: self.train.epochs,
            seed: self.train.seed,
            tv: inversion.tv,
            l2: inversion.l2,
            test_accuracy,
            judge_accuracy: judge_accuracy.unwrap_or(f64::NAN),
            class_mean_corr,
            self_confidence: run.self_confidence(),
            ms_per_step: run.ms_per_step(),
        }
    }
}

impl Row {
    /// A Markdown table of `rows` grouped by recipe, epochs and prior setting: judge
    /// accuracy mean (min-max) over the judged seeds ("no judge" if none was judged),
    /// class-mean correlation, own-network confidence and test accuracy.
    pub fn table(rows: &[Row]) -> String {
        let mut groups: BTreeMap<(String, usize, String, String), Vec<&Row>> = BTreeMap::new();
        for r in rows {
            let recipe = match r.epsilon {
                Some(e) => format!("{} + {} {e}", r.optimizer, r.adversarial),
                None => r.optimizer.clone(),
            };
            let key = (
                recipe,
                r.epochs,
                format!("{:e}", r.tv),
                format!("{:e}", r.l2),
            );
            groups.entry(key).or_default().push(r);
        }
        let mut s = String::from(
            "| recipe | epochs | tv | l2 | seeds | judge acc mean (min-max) | class-mean corr | own confidence | test acc |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        );
        for ((recipe, epochs, tv, l2), g) in &groups {
            let column = |f: fn(&Row) -> f64| g.iter().map(|r| f(r)).collect::<Vec<_>>();
            let judged: Vec<f64> = column(|r| 10.0 * r.judge_accuracy)
                .into_iter()
                .filter(|a| !a.is_nan())
                .collect();
            let judge = if judged.is_empty() {
                "no judge".to_string()
            } else {
                let (jm, (jlo, jhi)) = (mean(&judged), min_max(&judged));
                format!("{jm:.1} / 10 ({jlo:.0}-{jhi:.0})")
            };
            let cm = mean(&column(|r| r.class_mean_corr));
            let sm = mean(&column(|r| r.self_confidence));
            let tm = mean(&column(|r| r.test_accuracy));
            let _ = writeln!(
                s,
                "| {recipe} | {epochs} | {tv} | {l2} | {} | {judge} | {cm:.3} | {sm:.3} | {tm:.4} |",
                g.len()
            );
        }
        s
    }
}
