//! The optimiser study: an Adam-trained net cannot be inverted, an SGD-trained one can,
//! and FGSM training fixes Adam (the thesis's central claim, sections 2.5, 2.6 and 3.5.1);
//! and the image-optimiser swap (section 2.6: Adam, SGD or L-BFGS on the image, inverting
//! the same nets, "had no influence on the results").
//!
//! One job is one training run (recipe, seed) of the longest length of the epoch axis; the
//! net is inverted at checkpoints saved after each epoch of the axis. The learning rate is
//! constant ([`OptimizerStudy::recipes`]), so the epoch-4 checkpoint of a 20-epoch run is
//! what a 4-epoch run with the same seed would have given.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use netinv_models::train::{Adversarial, LrSchedule, OptimizerKind, TrainConfig};
use serde::{Deserialize, Serialize};

use netinv_metrics::stats::{mean, mean_ci95_t, paired_differences, sign_flip_test, MeanCi};

use crate::error::invalid;
use crate::{ImageOptimizer, InversionConfig, Result};

/// The reference prior weights `(tv, l2)` of the inversion study.
const REFERENCE_PRIORS: (f64, f64) = (1e-3, 1e-4);

/// The image optimisers, by name: Adam lr 0.05 (the reference), SGD lr 1 momentum 0.9,
/// L-BFGS lr 1 (fixed step, 10 pairs). The SGD and L-BFGS rates are common defaults
/// (PyTorch's L-BFGS lr is 1), not tuned.
pub const IMAGE_OPTIMIZERS: [&str; 3] = ["adam", "sgd", "lbfgs"];

/// The `(source class, target class)` pairs of Task 2 in the study: each source is the
/// first test image of its class, every class is a source once and a target once; the
/// thesis's 9 -> 8 comes first.
pub const TASK2_PAIRS: [(u8, u32); 10] = [
    (9, 8),
    (1, 7),
    (3, 5),
    (4, 9),
    (7, 1),
    (5, 6),
    (0, 2),
    (2, 3),
    (6, 0),
    (8, 4),
];

/// A net "can be inverted" in the verdicts when the judges' majority accepts at least
/// this many of its 10 images (mean over seeds).
pub const INVERTIBLE_OF_10: f64 = 5.0;

/// The image optimiser and learning rate of a name of [`IMAGE_OPTIMIZERS`].
///
/// # Errors
/// [`crate::Error::InvalidConfig`] (field `image_optimizers`) for another name.
pub fn image_optimizer(name: &str) -> Result<(ImageOptimizer, f64)> {
    match name {
        "adam" => Ok((ImageOptimizer::adam(), 0.05)),
        "sgd" => Ok((ImageOptimizer::Sgd { momentum: 0.9 }, 1.0)),
        "lbfgs" => Ok((ImageOptimizer::Lbfgs { history: 10 }, 1.0)),
        other => Err(invalid(
            "image_optimizers",
            format!("unknown image optimiser {other:?} (one of adam, sgd, lbfgs)"),
        )),
    }
}

/// The index of the first image of each source class of [`TASK2_PAIRS`] in `labels`.
///
/// # Errors
/// [`crate::Error::InvalidConfig`] (field `labels`) when a source class is missing.
pub fn task2_sources(labels: &[u8]) -> Result<Vec<usize>> {
    TASK2_PAIRS
        .iter()
        .map(|&(from, _)| {
            labels
                .iter()
                .position(|&l| l == from)
                .ok_or_else(|| invalid("labels", format!("no image of class {from}")))
        })
        .collect()
}

/// The targets of [`TASK2_PAIRS`] in order.
pub fn task2_targets() -> Vec<u32> {
    TASK2_PAIRS.iter().map(|&(_, to)| to).collect()
}

/// The settings of the optimiser study: which nets are trained and how they are inverted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerStudy {
    /// Seeds per recipe (the seed sets the weights, the shuffling and the Task 1 start);
    /// at least 1.
    pub seeds: u64,
    /// The epoch axis: checkpoints (after these epochs) of one training run per recipe and
    /// seed, which runs for the largest; strictly increasing, each at least 1.
    pub epochs: Vec<usize>,
    /// Inversion steps per Task 1 and Task 2 run, at least 1.
    pub steps: usize,
    /// Invert with Adam over the grid TV in {0, 1e-4, 1e-3, 1e-2} x L2 in {0, 1e-4, 1e-3}
    /// (12 settings, the reference first) instead of the reference weights only.
    pub grid: bool,
    /// The image-optimiser swap: the checkpoints (a subset of `epochs`) also inverted with
    /// each of `swap_optimizers` (reference priors); empty for no swap.
    pub swap_epochs: Vec<usize>,
    /// The other image optimisers of the swap, names of [`IMAGE_OPTIMIZERS`] other than
    /// `adam`, no repeats.
    pub swap_optimizers: Vec<String>,
}

/// One inversion setting of a checkpoint: the image optimiser's name and the settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyInversion {
    /// The name of the image optimiser ([`IMAGE_OPTIMIZERS`]).
    pub image_optimizer: String,
    /// The inversion settings (Task 1's; Task 2 uses them from its source images).
    pub config: InversionConfig,
}

/// A checkpoint of a job's training run and how it is inverted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Training epochs done when the net is taken.
    pub epochs: usize,
    /// The inversions of this net (Task 1 and Task 2 each): Adam first (the reference
    /// priors first), then the swap's optimisers.
    pub inversions: Vec<StudyInversion>,
}

/// One job of the optimiser study: one training run (recipe, seed), inverted at each
/// checkpoint of the epoch axis. Jobs are independent of each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerJob {
    /// The position of the job in [`OptimizerStudy::jobs`] (the merge order).
    pub index: usize,
    /// The training recipe with its length (the last checkpoint) and seed.
    pub train: TrainConfig,
    /// The seed of the weights (the same as the shuffling seed).
    pub weight_seed: u64,
    /// The checkpoints, in training order.
    pub checkpoints: Vec<Checkpoint>,
}

/// What scored one inversion (from the caller, which owns the judges).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scores {
    /// The judge panel's majority accuracy (None: not judged).
    pub judge_accuracy: Option<f64>,
    /// Each judge's accuracy by name (empty: not judged).
    pub judges: BTreeMap<String, f64>,
    /// Fraction of images whose nearest class mean (correlation) is the target.
    pub nearest_mean_accuracy: f64,
    /// Fraction of images whose k-NN vote in pixel space is the target.
    pub knn_accuracy: f64,
    /// Mean correlation of the images with their target's class mean.
    pub class_mean_corr: f64,
    /// Fraction of images the inverted net itself classifies as their targets.
    pub net_accuracy: f64,
    /// Mean probability the inverted net gives the targets.
    pub self_confidence: f64,
    /// Milliseconds per inversion step (timing, not a result).
    pub ms_per_step: f64,
}

/// One Task 1 or Task 2 run of the study: a net (recipe, seed, checkpoint), a prior
/// setting, an image optimiser and what came out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// `sgd` or `adam`.
    pub optimizer: String,
    /// `none`, `fgsm` or `pgd`.
    pub adversarial: String,
    /// The attack radius of adversarial training.
    pub epsilon: Option<f64>,
    /// Training epochs of the checkpoint.
    pub epochs: usize,
    /// Training seed.
    pub seed: u64,
    /// 1 (noise becomes 0..9) or 2 (the sources of [`TASK2_PAIRS`] become their targets).
    pub task: u8,
    /// The image optimiser's name.
    pub image_optimizer: String,
    /// The seed of the Gaussian start (Task 1; Task 2 starts from its sources).
    pub inversion_seed: u64,
    /// Weight of the squared TV prior.
    pub tv: f64,
    /// Weight of the L2 prior.
    pub l2: f64,
    /// Test accuracy of the net.
    pub test_accuracy: f64,
    /// Fraction of the 10 images the judge panel's majority classifies as their targets
    /// (NaN without judges; `null` in JSON, read back as NaN).
    #[serde(deserialize_with = "netinv_core::shard::nan_from_null")]
    pub judge_accuracy: f64,
    /// Each judge's accuracy by name (empty without judges).
    pub judges: BTreeMap<String, f64>,
    /// Fraction of images whose nearest class mean is the target (model-free).
    pub nearest_mean_accuracy: f64,
    /// Fraction of images whose k-NN vote is the target (model-free).
    pub knn_accuracy: f64,
    /// Mean correlation of the images with their target's class mean.
    pub class_mean_corr: f64,
    /// Fraction of images the inverted net classifies as their targets.
    pub net_accuracy: f64,
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
    /// The study's defaults: 10 seeds, epochs 2, 4, 8, 12, 20, 1,000 steps, no grid, the
    /// swap (SGD and L-BFGS on the image) at epochs 4 and 20.
    pub fn full() -> Self {
        Self {
            seeds: 10,
            epochs: vec![2, 4, 8, 12, 20],
            steps: 1000,
            grid: false,
            swap_epochs: vec![4, 20],
            swap_optimizers: vec!["sgd".to_string(), "lbfgs".to_string()],
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the first invalid field.
    pub fn validate(&self) -> Result<()> {
        if self.seeds == 0 {
            return Err(invalid("seeds", "must be at least 1"));
        }
        if self.seeds > netinv_metrics::stats::SIGN_FLIP_MAX_N as u64 {
            return Err(invalid(
                "seeds",
                format!(
                    "at most {} (the paired sign-flip test enumerates 2^seeds patterns)",
                    netinv_metrics::stats::SIGN_FLIP_MAX_N
                ),
            ));
        }
        if self.epochs.is_empty() {
            return Err(invalid("epochs", "give at least one checkpoint"));
        }
        if self.epochs.contains(&0) {
            return Err(invalid("epochs", "every checkpoint must be at least 1"));
        }
        if self.epochs.windows(2).any(|w| w[0] >= w[1]) {
            return Err(invalid(
                "epochs",
                "checkpoints must be strictly increasing (one run saves them in order)",
            ));
        }
        if self.steps == 0 {
            return Err(invalid("steps", "must be at least 1"));
        }
        if let Some(e) = self.swap_epochs.iter().find(|e| !self.epochs.contains(e)) {
            return Err(invalid(
                "swap_epochs",
                format!("{e} is not a checkpoint of the epoch axis"),
            ));
        }
        if let Some(e) = self
            .swap_epochs
            .iter()
            .enumerate()
            .find_map(|(i, e)| self.swap_epochs[..i].contains(e).then_some(e))
        {
            return Err(invalid("swap_epochs", format!("{e} is given twice")));
        }
        for (i, name) in self.swap_optimizers.iter().enumerate() {
            image_optimizer(name).map_err(|_| {
                invalid(
                    "swap_optimizers",
                    format!("unknown image optimiser {name:?} (sgd or lbfgs)"),
                )
            })?;
            if name == "adam" {
                return Err(invalid(
                    "swap_optimizers",
                    "adam is always run; name the others (sgd, lbfgs)",
                ));
            }
            if self.swap_optimizers[..i].contains(name) {
                return Err(invalid("swap_optimizers", format!("{name} is given twice")));
            }
        }
        if !self.swap_epochs.is_empty() && self.swap_optimizers.is_empty() {
            return Err(invalid(
                "swap_optimizers",
                "the swap needs at least one image optimiser besides adam",
            ));
        }
        Ok(())
    }

    /// SGD (lr 0.05, momentum 0.9), Adam (lr 2e-3), Adam + FGSM eps 0.1 and 0.2 (alpha
    /// 0.5), each with a constant learning rate (so a checkpoint after `e` epochs does not
    /// depend on the run's length), batch 64, shifts of up to 2 pixels.
    pub fn recipes() -> Vec<TrainConfig> {
        let constant = |cfg: TrainConfig| TrainConfig {
            schedule: LrSchedule::Constant,
            ..cfg
        };
        vec![
            constant(TrainConfig::sgd()),
            constant(TrainConfig::adam()),
            constant(TrainConfig {
                adversarial: Adversarial::fgsm(0.1),
                ..TrainConfig::adam()
            }),
            constant(TrainConfig {
                adversarial: Adversarial::fgsm(0.2),
                ..TrainConfig::adam()
            }),
        ]
    }

    /// The prior settings `(tv, l2)` of Adam on the image: the reference first, then the
    /// rest of the grid.
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

    /// The jobs, in merge order: seed, then recipe. Each trains for the last checkpoint
    /// of the epoch axis. The Gaussian start of Task 1 is seeded by the training seed, so
    /// runs of different seeds start from different noise and the arms of one seed
    /// (recipes, checkpoints, image optimisers) share theirs (paired comparisons).
    ///
    /// # Errors
    /// As [`OptimizerStudy::validate`].
    pub fn jobs(&self) -> Result<Vec<OptimizerJob>> {
        self.validate()?;
        let last = *self.epochs.last().unwrap_or(&1);
        let mut jobs = Vec::new();
        for seed in 0..self.seeds {
            let inversion = |name: &str, tv: f64, l2: f64| -> Result<StudyInversion> {
                let (optimizer, lr) = image_optimizer(name)?;
                Ok(StudyInversion {
                    image_optimizer: name.to_string(),
                    config: InversionConfig {
                        optimizer,
                        lr,
                        tv,
                        l2,
                        seed,
                        steps: self.steps,
                        ..Default::default()
                    },
                })
            };
            let mut checkpoints = Vec::new();
            for &epochs in &self.epochs {
                let mut inversions = Vec::new();
                for (tv, l2) in self.prior_settings() {
                    inversions.push(inversion("adam", tv, l2)?);
                }
                if self.swap_epochs.contains(&epochs) {
                    for name in &self.swap_optimizers {
                        let (tv, l2) = REFERENCE_PRIORS;
                        inversions.push(inversion(name, tv, l2)?);
                    }
                }
                checkpoints.push(Checkpoint { epochs, inversions });
            }
            for recipe in Self::recipes() {
                jobs.push(OptimizerJob {
                    index: jobs.len(),
                    train: TrainConfig {
                        epochs: last,
                        seed,
                        ..recipe
                    },
                    weight_seed: seed,
                    checkpoints: checkpoints.clone(),
                });
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
    /// The job's estimated cost for balancing shards (only ratios matter), in seconds of
    /// one thread: one second per training epoch (two for an adversarial epoch, for its
    /// attack pass) plus one second per 1,000 inversion steps (Task 1 and Task 2 each).
    pub fn cost(&self) -> f64 {
        let per_epoch = match self.train.adversarial {
            Adversarial::None => 1.0,
            _ => 2.0,
        };
        let steps: usize = self
            .checkpoints
            .iter()
            .flat_map(|c| &c.inversions)
            .map(|i| 2 * i.config.steps)
            .sum();
        per_epoch * self.train.epochs as f64 + steps as f64 / 1000.0
    }

    /// The job's name, also its folder: `<recipe>-s<seed>`.
    pub fn name(&self) -> String {
        format!("{}-s{}", recipe_name(&self.train), self.train.seed)
    }

    /// The study's row for one run (`task` 1 or 2) of this job's net after `epochs` with
    /// `inversion`; `test_accuracy` of the net and the `scores` come from the caller.
    pub fn row(
        &self,
        epochs: usize,
        inversion: &StudyInversion,
        task: u8,
        test_accuracy: f64,
        scores: &Scores,
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
            epochs,
            seed: self.train.seed,
            task,
            image_optimizer: inversion.image_optimizer.clone(),
            inversion_seed: inversion.config.seed,
            tv: inversion.config.tv,
            l2: inversion.config.l2,
            test_accuracy,
            judge_accuracy: scores.judge_accuracy.unwrap_or(f64::NAN),
            judges: scores.judges.clone(),
            nearest_mean_accuracy: scores.nearest_mean_accuracy,
            knn_accuracy: scores.knn_accuracy,
            class_mean_corr: scores.class_mean_corr,
            net_accuracy: scores.net_accuracy,
            self_confidence: scores.self_confidence,
            ms_per_step: scores.ms_per_step,
        }
    }
}

/// `mean ± half-width` of the Student-t 95% CI of the non-NaN values (`mean` alone for one
/// value, `-` for none).
pub fn mean_ci_text(v: &[f64], decimals: usize) -> String {
    let v: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return "-".to_string();
    }
    let ci = mean_ci95_t(&v);
    if ci.half_width.is_nan() {
        format!("{:.decimals$}", ci.mean)
    } else {
        format!("{:.decimals$} ± {:.decimals$}", ci.mean, ci.half_width)
    }
}

impl Row {
    /// The recipe as the tables name it (`sgd`, `adam`, `adam + fgsm 0.1`).
    pub fn recipe(&self) -> String {
        match self.epsilon {
            Some(e) => format!("{} + {} {e}", self.optimizer, self.adversarial),
            None => self.optimizer.clone(),
        }
    }

    /// Whether the row inverted at the reference prior weights.
    pub fn at_reference_priors(&self) -> bool {
        (self.tv, self.l2) == REFERENCE_PRIORS
    }

    /// A Markdown table of `rows` grouped by task, image optimiser, recipe, epochs and prior
    /// setting: the panel majority's accuracy (of 10) with its Student-t 95% CI over the
    /// seeds ("-" if nothing was judged), nearest-class-mean accuracy (of 10), class-mean
    /// correlation, the inverted net's own accuracy (of 10) and test accuracy (means).
    pub fn table(rows: &[Row]) -> String {
        type Key = (u8, String, String, usize, String, String);
        let mut groups: BTreeMap<Key, Vec<&Row>> = BTreeMap::new();
        for r in rows {
            let key = (
                r.task,
                r.image_optimizer.clone(),
                r.recipe(),
                r.epochs,
                format!("{:e}", r.tv),
                format!("{:e}", r.l2),
            );
            groups.entry(key).or_default().push(r);
        }
        let mut s = String::from(
            "| task | image opt | recipe | epochs | tv | l2 | seeds | judges' majority (of 10) | nearest mean (of 10) | class-mean corr | own net (of 10) | test acc |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        );
        for ((task, image_opt, recipe, epochs, tv, l2), g) in &groups {
            let column = |f: fn(&Row) -> f64| g.iter().map(|r| f(r)).collect::<Vec<_>>();
            let _ = writeln!(
                s,
                "| {task} | {image_opt} | {recipe} | {epochs} | {tv} | {l2} | {} | {} | {} | {:.3} | {:.1} | {:.4} |",
                g.len(),
                mean_ci_text(&column(|r| 10.0 * r.judge_accuracy), 1),
                mean_ci_text(&column(|r| 10.0 * r.nearest_mean_accuracy), 1),
                mean(&column(|r| r.class_mean_corr)),
                mean(&column(|r| 10.0 * r.net_accuracy)),
                mean(&column(|r| r.test_accuracy)),
            );
        }
        s
    }
}

/// The recipes in table order.
pub const RECIPE_ORDER: [&str; 4] = ["sgd", "adam", "adam + fgsm 0.1", "adam + fgsm 0.2"];

/// The reference-prior rows of one cell (task, image optimiser, recipe, epochs), by seed.
fn select<'a>(rows: &[&'a Row], task: u8, opt: &str, recipe: &str, epochs: usize) -> Vec<&'a Row> {
    let mut v: Vec<&Row> = rows
        .iter()
        .copied()
        .filter(|r| {
            r.task == task
                && r.image_optimizer == opt
                && r.recipe() == recipe
                && r.epochs == epochs
                && r.at_reference_priors()
        })
        .collect();
    v.sort_by_key(|r| r.seed);
    v
}

/// A score of a row, of 10: the panel's majority (`None`) or one judge's (by name).
fn score(r: &Row, judge: Option<&str>) -> f64 {
    match judge {
        None => 10.0 * r.judge_accuracy,
        Some(j) => r.judges.get(j).map_or(f64::NAN, |a| 10.0 * a),
    }
}

/// A paired comparison `a - b` by seed of one score: the differences' mean and t CI and
/// the exact sign-flip p (None when no seed is judged in both).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    /// Number of pairs.
    pub n: usize,
    /// Mean of `a`, of `b` (of 10).
    pub means: (f64, f64),
    /// The mean difference with its Student-t 95% CI.
    pub diff: MeanCi,
    /// The two-sided sign-flip p-value.
    pub p: f64,
}

/// `a - b` paired by seed on the score of `judge` (None: the majority).
fn paired(a: &[&Row], b: &[&Row], judge: Option<&str>) -> Result<Option<Paired>> {
    let (mut xa, mut xb) = (Vec::new(), Vec::new());
    for ra in a {
        if let Some(rb) = b.iter().find(|rb| rb.seed == ra.seed) {
            let (sa, sb) = (score(ra, judge), score(rb, judge));
            if !sa.is_nan() && !sb.is_nan() {
                xa.push(sa);
                xb.push(sb);
            }
        }
    }
    if xa.is_empty() {
        return Ok(None);
    }
    let d = paired_differences(&xa, &xb).map_err(|e| invalid("rows", e.to_string()))?;
    let p = sign_flip_test(&d).map_err(|e| invalid("rows", e.to_string()))?;
    Ok(Some(Paired {
        n: d.len(),
        means: (mean(&xa), mean(&xb)),
        diff: mean_ci95_t(&d),
        p,
    }))
}

/// `+1.2 ± 0.8` (signed mean difference with its CI half-width; no CI for one pair).
fn signed_ci(ci: &MeanCi) -> String {
    if ci.half_width.is_nan() {
        format!("{:+.1}", ci.mean)
    } else {
        format!("{:+.1} ± {:.1}", ci.mean, ci.half_width)
    }
}

/// The sorted distinct values of a field of the rows.
fn distinct<T: Ord + Clone>(rows: &[&Row], f: impl Fn(&Row) -> T) -> Vec<T> {
    let mut v: Vec<T> = rows.iter().map(|r| f(r)).collect();
    v.sort();
    v.dedup();
    v
}

/// The docs' tables of the study from its rows (reference prior weights only): for each
/// task, the headline table (Adam on the image: per length and recipe, the panel
/// majority, each judge, the two model-free scores, the class-mean correlation, the net's
/// own accuracy and the test accuracy, each a mean ± Student-t 95% CI over the seeds), the
/// paired table (SGD - Adam, Adam + FGSM - Adam at equal length and seed: mean difference
/// of the majority ± CI, exact sign-flip p), and, when the rows hold other image
/// optimisers, the swap table (per length, recipe and image optimiser: the majority, and
/// the paired difference to Adam on the image with its p).
///
/// # Errors
/// [`crate::Error::InvalidConfig`] from the sign-flip test for more than 24 pairs in a
/// cell.
pub fn docs_tables(rows: &[Row]) -> Result<String> {
    let rows: Vec<&Row> = rows.iter().filter(|r| r.at_reference_priors()).collect();
    let judges = distinct(&rows, |r| r.judges.keys().cloned().collect::<Vec<_>>())
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    let judges: Vec<String> = {
        let mut j = judges;
        j.sort();
        j.dedup();
        j
    };
    let epochs = distinct(&rows, |r| r.epochs);
    let swap_opts: Vec<&str> = IMAGE_OPTIMIZERS
        .into_iter()
        .filter(|&o| o != "adam" && rows.iter().any(|r| r.image_optimizer == o))
        .collect();
    let mut s = String::new();
    for task in [1u8, 2] {
        if !rows.iter().any(|r| r.task == task) {
            continue;
        }
        let _ = writeln!(
            s,
            "Task {task}, Adam on the image: judges' majority and each judge (of 10), model-free scores (of 10), mean ± 95% CI (t) over seeds\n"
        );
        let mut header = "| recipe | epochs | seeds | majority |".to_string();
        for j in &judges {
            let _ = write!(header, " {j} |");
        }
        header.push_str(" nearest mean | k-NN | class-mean corr | own net | test acc |");
        let _ = writeln!(s, "{header}");
        let _ = writeln!(s, "|{}", " --- |".repeat(9 + judges.len()));
        for &e in &epochs {
            for recipe in RECIPE_ORDER {
                let g = select(&rows, task, "adam", recipe, e);
                if g.is_empty() {
                    continue;
                }
                let col = |f: &dyn Fn(&Row) -> f64| g.iter().map(|r| f(r)).collect::<Vec<_>>();
                let mut line = format!(
                    "| {recipe} | {e} | {} | **{}** |",
                    g.len(),
                    mean_ci_text(&col(&|r| score(r, None)), 1)
                );
                for j in &judges {
                    let _ = write!(line, " {} |", mean_ci_text(&col(&|r| score(r, Some(j))), 1));
                }
                let _ = writeln!(
                    s,
                    "{line} {} | {} | {} | {} | {} |",
                    mean_ci_text(&col(&|r| 10.0 * r.nearest_mean_accuracy), 1),
                    mean_ci_text(&col(&|r| 10.0 * r.knn_accuracy), 1),
                    mean_ci_text(&col(&|r| r.class_mean_corr), 3),
                    mean_ci_text(&col(&|r| 10.0 * r.net_accuracy), 1),
                    mean_ci_text(&col(&|r| r.test_accuracy), 4),
                );
            }
        }
        let _ = writeln!(
            s,
            "\nTask {task}, paired by seed (Adam on the image): difference of the judges' majority (of 10), mean ± 95% CI (t), exact sign-flip p\n"
        );
        let _ = writeln!(
            s,
            "| comparison | epochs | pairs | means | difference | p |\n| --- | --- | --- | --- | --- | --- |"
        );
        for &e in &epochs {
            for (a, b) in COMPARISONS {
                let pa = select(&rows, task, "adam", a, e);
                let pb = select(&rows, task, "adam", b, e);
                if let Some(p) = paired(&pa, &pb, None)? {
                    let _ = writeln!(
                        s,
                        "| {a} - {b} | {e} | {} | {:.1} vs {:.1} | {} | {:.3} |",
                        p.n,
                        p.means.0,
                        p.means.1,
                        signed_ci(&p.diff),
                        p.p
                    );
                }
            }
        }
        if !swap_opts.is_empty() {
            let _ = writeln!(
                s,
                "\nTask {task}, image-optimiser swap (the same nets): judges' majority (of 10), mean ± 95% CI (t); difference to Adam on the image, paired by net, with its sign-flip p\n"
            );
            let _ = writeln!(
                s,
                "| recipe | epochs | image optimiser | nets | majority | nearest mean | own net | minus adam | p |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
            );
            for &e in &epochs {
                for recipe in RECIPE_ORDER {
                    let adam = select(&rows, task, "adam", recipe, e);
                    if !swap_opts
                        .iter()
                        .any(|o| !select(&rows, task, o, recipe, e).is_empty())
                    {
                        continue;
                    }
                    for opt in std::iter::once("adam").chain(swap_opts.iter().copied()) {
                        let g = select(&rows, task, opt, recipe, e);
                        if g.is_empty() {
                            continue;
                        }
                        let col =
                            |f: &dyn Fn(&Row) -> f64| g.iter().map(|r| f(r)).collect::<Vec<_>>();
                        let (diff, p) = match (opt != "adam")
                            .then(|| paired(&g, &adam, None))
                            .transpose()?
                            .flatten()
                        {
                            Some(p) => (signed_ci(&p.diff), format!("{:.3}", p.p)),
                            None => ("-".to_string(), "-".to_string()),
                        };
                        let _ = writeln!(
                            s,
                            "| {recipe} | {e} | {opt} | {} | {} | {} | {} | {diff} | {p} |",
                            g.len(),
                            mean_ci_text(&col(&|r| score(r, None)), 1),
                            mean_ci_text(&col(&|r| 10.0 * r.nearest_mean_accuracy), 1),
                            mean_ci_text(&col(&|r| 10.0 * r.net_accuracy), 1),
                        );
                    }
                }
            }
        }
        s.push('\n');
    }
    Ok(s)
}

/// The paired comparisons of the study, `(a, b)` for `a - b`.
const COMPARISONS: [(&str, &str); 3] = [
    ("sgd", "adam"),
    ("adam + fgsm 0.1", "adam"),
    ("adam + fgsm 0.2", "adam"),
];

/// A verdict on one claim at one length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// The claim holds.
    Holds,
    /// Part of it holds.
    HoldsPartly,
    /// It does not hold.
    DoesNotHold,
}

impl Verdict {
    /// As the verdict rows write it.
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::HoldsPartly => "holds partly",
            Verdict::DoesNotHold => "does not hold",
        }
    }
}

/// The verdict on "`a` can be inverted and `b` cannot" (or "`a` makes `b` invertible")
/// from a paired comparison `a - b`: holds when the difference's 95% CI lies above 0 and
/// `a`'s mean reaches [`INVERTIBLE_OF_10`] while `b`'s does not; holds partly when the CI
/// lies above 0 but the threshold part fails; does not hold otherwise.
pub fn invertibility_verdict(p: &Paired) -> Verdict {
    let better = p.diff.low() > 0.0;
    let threshold = p.means.0 >= INVERTIBLE_OF_10 && p.means.1 < INVERTIBLE_OF_10;
    match (better, threshold) {
        (true, true) => Verdict::Holds,
        (true, false) => Verdict::HoldsPartly,
        _ => Verdict::DoesNotHold,
    }
}

/// The verdict rows of the study (the index's format, linking `link`): per task, the
/// thesis's three claims, with the lengths that share a verdict in one row.
///
/// - "Adam-trained nets cannot be inverted, SGD-trained ones can" (sections 2.5-2.6):
///   SGD - Adam, [`invertibility_verdict`].
/// - "FGSM training makes the Adam net invertible" (section 3.5.1), per epsilon: FGSM -
///   Adam, [`invertibility_verdict`].
/// - "The image optimiser had no influence" (section 2.6): holds when no paired
///   difference to Adam on the image (any recipe, any other image optimiser) has a 95% CI
///   that excludes 0; holds partly when some do but the SGD - Adam training verdict is
///   the same with every image optimiser; does not hold otherwise.
///
/// The figure is each length's difference (of 10, mean ± 95% CI); the agreement counts the
/// judges whose own scores give the same verdict at every length of the row.
///
/// # Errors
/// As [`docs_tables`].
pub fn verdict_rows(rows: &[Row], link: &str) -> Result<String> {
    let rows: Vec<&Row> = rows.iter().filter(|r| r.at_reference_priors()).collect();
    let judges: Vec<String> = {
        let mut j: Vec<String> = rows.iter().flat_map(|r| r.judges.keys().cloned()).collect();
        j.sort();
        j.dedup();
        j
    };
    let epochs = distinct(&rows, |r| r.epochs);
    let mut out = String::new();
    for task in [1u8, 2] {
        let task_name = if task == 1 {
            "Task 1, noise to digits"
        } else {
            "Task 2, digit to digit"
        };
        // training-optimiser claims
        let claims: [(&str, &str, String); 3] = [
            ("sgd", "adam", format!("An Adam-trained net cannot be inverted, an SGD-trained one can ({task_name}; thesis 2.5-2.6)")),
            ("adam + fgsm 0.1", "adam", format!("FGSM training (eps 0.1) makes the Adam net invertible ({task_name}; thesis 3.5.1)")),
            ("adam + fgsm 0.2", "adam", format!("FGSM training (eps 0.2) makes the Adam net invertible ({task_name}; thesis 3.5.1)")),
        ];
        for (a, b, claim) in &claims {
            let mut per_length: Vec<(usize, Verdict, String, usize)> = Vec::new();
            for &e in &epochs {
                let ra = select(&rows, task, "adam", a, e);
                let rb = select(&rows, task, "adam", b, e);
                let Some(p) = paired(&ra, &rb, None)? else {
                    continue;
                };
                let v = invertibility_verdict(&p);
                let mut agree = 0;
                for j in &judges {
                    if let Some(pj) = paired(&ra, &rb, Some(j))? {
                        if invertibility_verdict(&pj) == v {
                            agree += 1;
                        }
                    }
                }
                let fig = format!(
                    "{e} ep: {:.1} vs {:.1}, {}",
                    p.means.0,
                    p.means.1,
                    signed_ci(&p.diff)
                );
                per_length.push((e, v, fig, agree));
            }
            write_grouped(
                &mut out,
                claim,
                &per_length,
                judges.len(),
                link,
                &format!("{a} - {b} (judges' majority, of 10)"),
            );
        }
        // the swap
        let swap_opts: Vec<&str> = IMAGE_OPTIMIZERS
            .into_iter()
            .filter(|&o| {
                o != "adam"
                    && rows
                        .iter()
                        .any(|r| r.image_optimizer == o && r.task == task)
            })
            .collect();
        if swap_opts.is_empty() {
            continue;
        }
        let mut per_length = Vec::new();
        for &e in &epochs {
            if !rows
                .iter()
                .any(|r| r.task == task && r.epochs == e && r.image_optimizer != "adam")
            {
                continue;
            }
            let judge_sets: Vec<Option<&str>> = std::iter::once(None)
                .chain(judges.iter().map(|j| Some(j.as_str())))
                .collect();
            let mut verdicts = Vec::new();
            let mut fig = String::new();
            for judge in &judge_sets {
                let mut any_diff = false;
                let mut largest: Option<(f64, String)> = None;
                for recipe in RECIPE_ORDER {
                    let adam = select(&rows, task, "adam", recipe, e);
                    for opt in &swap_opts {
                        let g = select(&rows, task, opt, recipe, e);
                        if let Some(p) = paired(&g, &adam, *judge)? {
                            if p.diff.low() > 0.0 || p.diff.high() < 0.0 {
                                any_diff = true;
                            }
                            let text =
                                format!("{opt} - adam on {recipe} nets {}", signed_ci(&p.diff));
                            if largest.as_ref().is_none_or(|(m, _)| p.diff.mean.abs() > *m) {
                                largest = Some((p.diff.mean.abs(), text));
                            }
                        }
                    }
                }
                // the training claim's verdict with each image optimiser
                let mut training = Vec::new();
                for opt in std::iter::once("adam").chain(swap_opts.iter().copied()) {
                    let ra = select(&rows, task, opt, "sgd", e);
                    let rb = select(&rows, task, opt, "adam", e);
                    if let Some(p) = paired(&ra, &rb, *judge)? {
                        training.push(invertibility_verdict(&p));
                    }
                }
                let same_training = training.windows(2).all(|w| w[0] == w[1]);
                let v = if !any_diff {
                    Verdict::Holds
                } else if same_training {
                    Verdict::HoldsPartly
                } else {
                    Verdict::DoesNotHold
                };
                if judge.is_none() {
                    fig = format!(
                        "{e} ep: largest {}",
                        largest.map_or_else(|| "-".to_string(), |(_, t)| t)
                    );
                }
                verdicts.push(v);
            }
            let v = verdicts[0];
            let agree = verdicts[1..].iter().filter(|&&x| x == v).count();
            per_length.push((e, v, fig, agree));
        }
        let claim = format!(
            "The image optimiser (Adam, SGD, L-BFGS) has no influence on the result ({task_name}; thesis 2.6)"
        );
        write_grouped(
            &mut out,
            &claim,
            &per_length,
            judges.len(),
            link,
            "paired by net (judges' majority, of 10)",
        );
    }
    Ok(out)
}

/// Writes one verdict row per run of consecutive lengths with the same verdict.
fn write_grouped(
    out: &mut String,
    claim: &str,
    per_length: &[(usize, Verdict, String, usize)],
    judges: usize,
    link: &str,
    what: &str,
) {
    let mut i = 0;
    while i < per_length.len() {
        let v = per_length[i].1;
        let mut k = i;
        while k + 1 < per_length.len() && per_length[k + 1].1 == v {
            k += 1;
        }
        let group = &per_length[i..=k];
        let lengths = if i == k {
            format!("{} epochs", group[0].0)
        } else {
            format!("{}-{} epochs", group[0].0, group[k - i].0)
        };
        let figures: Vec<&str> = group.iter().map(|g| g.2.as_str()).collect();
        let agreement = if judges == 0 {
            "n/a".to_string()
        } else {
            let min = group.iter().map(|g| g.3).min().unwrap_or(0);
            format!("{min} of {judges} judges")
        };
        let _ = writeln!(
            out,
            "| {claim}, {lengths} | {} | {what}: {} | {agreement} | {link} |",
            v.text(),
            figures.join("; ")
        );
        i = k + 1;
    }
}
