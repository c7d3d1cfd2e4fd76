//! The soft-label study (thesis sections 3.5.2 and 3.5.3) as a job list and its tables.
//!
//! For every training length, seed, optimiser (SGD, Adam) and training data, one
//! classifier is trained and inverted (Task 1 and Task 2). The data arms:
//!
//! ```text
//! real          the real training digits, E epochs                 (E x ceil(n / b) steps)
//! real+interp   the same plus soft-labelled interpolations, E epochs (E x ceil((n + g) / b))
//! real-matched  the real digits for the epochs that give real+interp's step count:
//!               round(E x ceil((n + g) / b) / ceil(n / b)) epochs (6 for E = 4, n = 8,000,
//!               g = 4,000, b = 64: 750 steps against real+interp's 752)
//! ```
//!
//! `real-matched` answers the confound of the first two arms: an epoch of real+interp has
//! 1.5x the optimiser steps of a real epoch, and longer training lowers invertibility. It
//! is the real arm trained longer (the interpolation arm is the treatment and stays as it
//! is; the real arm's epochs stay whole numbers, with the learning-rate schedule stretched
//! over the run exactly as it is for real+interp).
//!
//! Jobs are independent; their rows are merged in job order, so one run or any split into
//! shards (`netinv_core::shard`) gives the same `study.json`. Training and inversion stay
//! with the `soft_label_study` example; the tables of `study.md` and of docs/results.md
//! ([`task1_table`], [`task2_table`], [`paired_table`], [`third_class_table`],
//! [`third_class_pairs_table`]) are printed here from the rows, so the docs' test re-derives
//! them from the committed results. [`third_class`] measures thesis section 3.5.3: how
//! many interpolations between two classes the judge panel assigns to a third class.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use candle_core::Device;
use netinv_metrics::stats::{mean, mean_ci95_t, paired_differences, sign_flip_test, MeanCi};
use netinv_models::bridge::tensor_to_array4;
use netinv_models::judge::JudgePanel;
use netinv_models::train::TrainConfig;
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::{InterpolationSource, Item, Result};

/// The settings that make the job list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftLabelStudy {
    /// Seeds `0..seeds` per setting (weights, order, pairs and the inversions' starts); at
    /// least 1.
    pub seeds: u64,
    /// Training lengths in epochs, each at least 1, no repeats.
    pub epochs: Vec<usize>,
    /// Real training digits per epoch (8,000 embedded); at least 1.
    pub real_len: usize,
    /// Interpolations per epoch of the real+interp arm; at least 1 (with none the arms
    /// would train on the same data).
    pub generated_len: usize,
}

/// The training data of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TrainData {
    /// The real training digits only.
    #[serde(rename = "real")]
    Real,
    /// The real digits plus soft-labelled interpolations.
    #[serde(rename = "real+interp")]
    RealInterp,
    /// The real digits only, for as many optimiser steps as [`TrainData::RealInterp`] (see
    /// the module docs).
    #[serde(rename = "real-matched")]
    RealMatched,
}

impl TrainData {
    /// Every arm, in job order.
    pub const ALL: [TrainData; 3] = [
        TrainData::Real,
        TrainData::RealInterp,
        TrainData::RealMatched,
    ];

    /// `real`, `real+interp` or `real-matched` (the `data` column).
    pub fn name(self) -> &'static str {
        match self {
            TrainData::Real => "real",
            TrainData::RealInterp => "real+interp",
            TrainData::RealMatched => "real-matched",
        }
    }

    /// Whether the arm trains on the interpolation source.
    pub fn uses_interpolations(self) -> bool {
        self == TrainData::RealInterp
    }
}

/// One job: one net to train on `data` with `train` and invert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftLabelJob {
    /// `sgd` or `adam`.
    pub optimizer: String,
    /// The training data.
    pub data: TrainData,
    /// The nominal training length (the study's `epochs` entry; the `epochs` column).
    pub epochs: usize,
    /// Optimiser steps of the training run.
    pub steps: usize,
    /// The training recipe with its epochs (the real-matched arm's own count) and seed
    /// (also the weights' seed).
    pub train: TrainConfig,
}

/// One row of `study.json`: one net, its Task 1 and Task 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// `sgd` or `adam`.
    pub optimizer: String,
    /// `real`, `real+interp` or `real-matched`.
    pub data: String,
    /// The seed (weights, order, pairs, inversion start).
    pub seed: u64,
    /// The nominal training length in epochs.
    pub epochs: usize,
    /// The epochs actually trained (differs from `epochs` in the real-matched arm).
    pub train_epochs: usize,
    /// Optimiser steps of the training run.
    pub train_steps: usize,
    /// Test accuracy of the trained net, in [0, 1].
    pub test_accuracy: f64,
    /// Task 1: the judge panel majority's accuracy on the ten inverted images, the headline
    /// (NaN, `null` in JSON: unjudged).
    #[serde(deserialize_with = "netinv_core::shard::nan_from_null")]
    pub judge_accuracy: f64,
    /// Task 1: each judge's accuracy by name (empty: unjudged).
    pub judges: BTreeMap<String, f64>,
    /// Task 1: fraction of the images every judge puts in the same class (NaN: unjudged).
    #[serde(deserialize_with = "netinv_core::shard::nan_from_null")]
    pub judges_unanimous: f64,
    /// Task 1: mean correlation of the images with their class-mean digits.
    pub class_mean_corr: f64,
    /// Task 1: mean probability the inverted net gives the targets.
    pub self_confidence: f64,
    /// Task 2: the panel majority's accuracy on the ten morphed digits ([`task2_pairs`])
    /// (NaN: unjudged).
    #[serde(deserialize_with = "netinv_core::shard::nan_from_null")]
    pub task2_judge_accuracy: f64,
    /// Task 2: each judge's accuracy by name (empty: unjudged).
    pub task2_judges: BTreeMap<String, f64>,
    /// Task 2: fraction of the morphed digits the inverted net gives their target.
    pub task2_net_accuracy: f64,
    /// Task 2: mean correlation of the morphed digits with their target's class mean.
    pub task2_class_mean_corr: f64,
}

/// The source and target classes of Task 2 here: the first embedded test digit of each
/// class `d` becomes `d - 1` (a 0 becomes a 9), so the thesis's 9 -> 8 is one of ten.
pub fn task2_pairs() -> Vec<(u8, u32)> {
    (0..10u8).map(|d| (d, u32::from((d + 9) % 10))).collect()
}

impl SoftLabelStudy {
    /// Checks every field.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for zero seeds, no lengths, a zero or repeated
    /// length, or no real or generated digits.
    pub fn validate(&self) -> Result<()> {
        if self.seeds == 0 {
            return Err(invalid("seeds", "must be at least 1"));
        }
        if self.epochs.is_empty() || self.epochs.contains(&0) {
            return Err(invalid(
                "epochs",
                "give at least one training length, each at least 1",
            ));
        }
        if let Some(i) =
            (0..self.epochs.len()).find(|&i| self.epochs[..i].contains(&self.epochs[i]))
        {
            return Err(invalid(
                "epochs",
                format!("{} is given twice", self.epochs[i]),
            ));
        }
        if self.real_len == 0 {
            return Err(invalid("real_len", "needs at least one real digit"));
        }
        if self.generated_len == 0 {
            return Err(invalid(
                "generated_len",
                "needs at least one interpolation per epoch (else the arms train alike)",
            ));
        }
        Ok(())
    }

    /// Optimiser steps of one epoch of `data` at batch size `batch` (the last batch of an
    /// epoch may be short): `ceil(n / batch)`, `n` the real digits, plus the interpolations
    /// for real+interp.
    pub fn steps_per_epoch(&self, data: TrainData, batch: usize) -> usize {
        let n = if data.uses_interpolations() {
            self.real_len + self.generated_len
        } else {
            self.real_len
        };
        n.div_ceil(batch.max(1))
    }

    /// The epochs `data` trains for at the nominal length `epochs`: `epochs` itself, or
    /// for real-matched the whole number of real epochs nearest to real+interp's step
    /// count (at least 1).
    pub fn train_epochs(&self, data: TrainData, epochs: usize, batch: usize) -> usize {
        match data {
            TrainData::Real | TrainData::RealInterp => epochs,
            TrainData::RealMatched => {
                let target = epochs * self.steps_per_epoch(TrainData::RealInterp, batch);
                let per = self.steps_per_epoch(TrainData::Real, batch);
                ((target + per / 2) / per).max(1)
            }
        }
    }

    /// The jobs in merge order: epochs, then seed, then optimiser (SGD: `TrainConfig::sgd()`,
    /// Adam: `TrainConfig::adam()`), then data (real, real+interp, real-matched).
    ///
    /// # Errors
    /// As [`SoftLabelStudy::validate`].
    pub fn jobs(&self) -> Result<Vec<SoftLabelJob>> {
        self.validate()?;
        let mut jobs = Vec::new();
        for &epochs in &self.epochs {
            for seed in 0..self.seeds {
                for (optimizer, recipe) in
                    [("sgd", TrainConfig::sgd()), ("adam", TrainConfig::adam())]
                {
                    for data in TrainData::ALL {
                        let train_epochs = self.train_epochs(data, epochs, recipe.batch_size);
                        jobs.push(SoftLabelJob {
                            optimizer: optimizer.to_string(),
                            data,
                            epochs,
                            steps: train_epochs * self.steps_per_epoch(data, recipe.batch_size),
                            train: TrainConfig {
                                epochs: train_epochs,
                                seed,
                                ..recipe.clone()
                            },
                        });
                    }
                }
            }
        }
        Ok(jobs)
    }
}

impl SoftLabelJob {
    /// The job's name, also its folder under `nets/` and `runs/`:
    /// `<optimizer>-<real|interp|matched>-e<epochs>-s<seed>` (`epochs` nominal).
    pub fn name(&self) -> String {
        let tag = match self.data {
            TrainData::Real => "real",
            TrainData::RealInterp => "interp",
            TrainData::RealMatched => "matched",
        };
        format!(
            "{}-{tag}-e{}-s{}",
            self.optimizer, self.epochs, self.train.seed
        )
    }

    /// The estimated cost for balancing shards (only ratios matter): training steps in
    /// units of 100, a step on interpolations counted 1.3 times (the decoding), plus 4 for
    /// the two inversions.
    pub fn cost(&self) -> f64 {
        let per_step = if self.data.uses_interpolations() {
            1.3
        } else {
            1.0
        };
        per_step * self.steps as f64 / 100.0 + 4.0
    }
}

// ----------------------------------------------------------------------------------------
// Tables

/// `mean +- half-width` of a [`MeanCi`] scaled by `scale`, with `digits` decimals (`-` for
/// the half-width of a single value).
fn ci_text(ci: MeanCi, scale: f64, digits: usize, signed: bool) -> String {
    let m = ci.mean * scale;
    let m = if signed {
        format!("{m:+.digits$}")
    } else {
        format!("{m:.digits$}")
    };
    if ci.half_width.is_finite() {
        format!("{m} ± {:.digits$}", ci.half_width * scale)
    } else {
        format!("{m} ± -")
    }
}

/// A Markdown table's header and rule for `columns`.
fn header(columns: &[String]) -> String {
    format!(
        "| {} |\n{}|\n",
        columns.join(" | "),
        "| --- ".repeat(columns.len())
    )
}

/// A Markdown table row of `cells`.
fn line(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

/// `names` as strings, each with `suffix`.
fn named(names: &[&str], suffix: &str) -> Vec<String> {
    names.iter().map(|n| format!("{n}{suffix}")).collect()
}

/// An interpolation's class pair and the third class the panel gave it.
type PairOutcome = ((u8, u8), u32);

/// The judges named in any row (sorted), by `field`.
fn judge_names(rows: &[Row], field: JudgeField) -> Vec<&str> {
    let mut names: Vec<&str> = rows
        .iter()
        .flat_map(|r| field(r).keys().map(String::as_str))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Rows grouped by (epochs, optimizer in the order sgd, adam, data in arm order).
fn groups(rows: &[Row]) -> BTreeMap<(usize, u8, u8), Vec<&Row>> {
    let mut out: BTreeMap<(usize, u8, u8), Vec<&Row>> = BTreeMap::new();
    for r in rows {
        out.entry((r.epochs, optimizer_rank(&r.optimizer), data_rank(&r.data)))
            .or_default()
            .push(r);
    }
    out
}

fn optimizer_rank(name: &str) -> u8 {
    match name {
        "sgd" => 0,
        "adam" => 1,
        _ => 2,
    }
}

fn data_rank(name: &str) -> u8 {
    TrainData::ALL
        .iter()
        .position(|d| d.name() == name)
        .map_or(3, |i| i as u8)
}

/// A judge's accuracies over a group in hits of 10 with its 95% t interval (`-` when a row
/// lacks the judge).
fn judge_cell(g: &[&Row], name: &str, field: fn(&Row) -> &BTreeMap<String, f64>) -> String {
    let v: Option<Vec<f64>> = g.iter().map(|r| field(r).get(name).copied()).collect();
    v.map_or("-".to_string(), |v| {
        ci_text(mean_ci95_t(&v), 10.0, 1, false)
    })
}

fn column<F: Fn(&Row) -> f64>(g: &[&Row], f: F) -> Vec<f64> {
    g.iter().map(|r| f(r)).collect()
}

/// Task 1 per arm: the panel majority's hits of 10 (mean ± 95% t half-width over seeds,
/// the headline), each judge's, the judges' unanimity, the class-mean correlation, the
/// nets' test accuracy and training steps.
pub fn task1_table(rows: &[Row]) -> String {
    let names = judge_names(rows, |r| &r.judges);
    let mut cols: Vec<String> = ["epochs", "optimizer", "data", "steps", "seeds"]
        .map(String::from)
        .to_vec();
    cols.push("Task 1 majority / 10".into());
    cols.extend(named(&names, ""));
    cols.extend(["unanimous", "class-mean corr", "test acc"].map(String::from));
    let mut s = header(&cols);
    for ((epochs, _, _), g) in groups(rows) {
        let mut cells = vec![
            epochs.to_string(),
            g[0].optimizer.clone(),
            g[0].data.clone(),
            g[0].train_steps.to_string(),
            g.len().to_string(),
            format!(
                "**{}**",
                ci_text(
                    mean_ci95_t(&column(&g, |r| r.judge_accuracy)),
                    10.0,
                    1,
                    false
                )
            ),
        ];
        cells.extend(names.iter().map(|n| judge_cell(&g, n, |r| &r.judges)));
        cells.push(format!("{:.2}", mean(&column(&g, |r| r.judges_unanimous))));
        cells.push(ci_text(
            mean_ci95_t(&column(&g, |r| r.class_mean_corr)),
            1.0,
            3,
            false,
        ));
        cells.push(ci_text(
            mean_ci95_t(&column(&g, |r| r.test_accuracy)),
            1.0,
            4,
            false,
        ));
        s.push_str(&line(&cells));
    }
    s
}

/// Task 2 per arm: the panel majority's hits of 10 morphs (mean ± 95% t half-width), each
/// judge's, the inverted net's own, and the correlation with the target's class mean.
pub fn task2_table(rows: &[Row]) -> String {
    let names = judge_names(rows, |r| &r.task2_judges);
    let mut cols: Vec<String> = [
        "epochs",
        "optimizer",
        "data",
        "seeds",
        "Task 2 majority / 10",
    ]
    .map(String::from)
    .to_vec();
    cols.extend(named(&names, ""));
    cols.extend(["net / 10", "target class-mean corr"].map(String::from));
    let mut s = header(&cols);
    for ((epochs, _, _), g) in groups(rows) {
        let mut cells = vec![
            epochs.to_string(),
            g[0].optimizer.clone(),
            g[0].data.clone(),
            g.len().to_string(),
            format!(
                "**{}**",
                ci_text(
                    mean_ci95_t(&column(&g, |r| r.task2_judge_accuracy)),
                    10.0,
                    1,
                    false
                )
            ),
        ];
        cells.extend(names.iter().map(|n| judge_cell(&g, n, |r| &r.task2_judges)));
        cells.push(ci_text(
            mean_ci95_t(&column(&g, |r| r.task2_net_accuracy)),
            10.0,
            1,
            false,
        ));
        cells.push(ci_text(
            mean_ci95_t(&column(&g, |r| r.task2_class_mean_corr)),
            1.0,
            3,
            false,
        ));
        s.push_str(&line(&cells));
    }
    s
}

/// The arm pairs compared seed by seed: (treatment, control).
const COMPARISONS: [(TrainData, TrainData); 3] = [
    (TrainData::RealInterp, TrainData::Real),
    (TrainData::RealInterp, TrainData::RealMatched),
    (TrainData::RealMatched, TrainData::Real),
];

/// Paired comparisons at equal seed (real+interp − real, real+interp − real-matched,
/// real-matched − real) for Task 1 and Task 2, in hits of 10: the panel majority's mean
/// difference with its 95% t interval, seeds up / down, the two-sided exact sign-flip p
/// (`-` beyond 24 pairs), and each judge's mean difference. Seeds present in only one arm
/// are left out.
pub fn paired_table(rows: &[Row]) -> String {
    let names = judge_names(rows, |r| &r.judges);
    let mut cols: Vec<String> = [
        "epochs",
        "optimizer",
        "task",
        "difference",
        "pairs",
        "majority Δ / 10",
        "up / down",
        "p",
    ]
    .map(String::from)
    .to_vec();
    cols.extend(named(&names, " Δ"));
    let mut s = header(&cols);
    let mut keys: Vec<(usize, u8, &str)> = rows
        .iter()
        .map(|r| (r.epochs, optimizer_rank(&r.optimizer), r.optimizer.as_str()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    type Metric = (fn(&Row) -> f64, fn(&Row) -> &BTreeMap<String, f64>);
    let tasks: [(&str, Metric); 2] = [
        ("1", (|r| r.judge_accuracy, |r| &r.judges)),
        ("2", (|r| r.task2_judge_accuracy, |r| &r.task2_judges)),
    ];
    for (epochs, _, optimizer) in keys {
        for (task, (headline, judges)) in &tasks {
            for (a, b) in COMPARISONS {
                let pairs = seed_pairs(rows, epochs, optimizer, a, b);
                if pairs.is_empty() {
                    continue;
                }
                let diff = |f: &dyn Fn(&Row) -> Option<f64>| -> Option<Vec<f64>> {
                    let xa: Option<Vec<f64>> = pairs.iter().map(|(x, _)| f(x)).collect();
                    let xb: Option<Vec<f64>> = pairs.iter().map(|(_, y)| f(y)).collect();
                    paired_differences(&xa?, &xb?).ok()
                };
                let d = diff(&|r| Some(10.0 * headline(r))).unwrap_or_default();
                let up = d.iter().filter(|&&x| x > 0.0).count();
                let down = d.iter().filter(|&&x| x < 0.0).count();
                let p = sign_flip_test(&d).map_or("-".to_string(), |p| format!("{p:.3}"));
                let each: Vec<String> = names
                    .iter()
                    .map(|n| {
                        diff(&|r| judges(r).get(*n).map(|v| 10.0 * v))
                            .map_or("-".to_string(), |v| format!("{:+.1}", mean(&v)))
                    })
                    .collect();
                let mut cells = vec![
                    epochs.to_string(),
                    optimizer.to_string(),
                    task.to_string(),
                    format!("{} − {}", a.name(), b.name()),
                    d.len().to_string(),
                    format!("**{}**", ci_text(mean_ci95_t(&d), 1.0, 1, true)),
                    format!("{up} / {down}"),
                    p,
                ];
                cells.extend(each);
                s.push_str(&line(&cells));
            }
        }
    }
    s
}

/// How many (pair, third class) outcomes [`tables`] lists.
pub const TOP_THIRD_CLASSES: usize = 10;

/// Every table of the study as `study.md`, `--tables DIR` and docs/results/soft_labels.md
/// give them: Task 1, Task 2, the paired comparisons, (when judged) the third-class counts,
/// and the verdict rows ([`verdict_rows`]).
pub fn tables(rows: &[Row], third: Option<&ThirdClass>) -> String {
    let mut s = format!(
        "Task 1 (panel majority and each judge, hits of 10, mean ± 95% t half-width over seeds)\n\n{}\nTask 2 (ten source / target pairs)\n\n{}\nPaired by seed (hits of 10; p: exact two-sided sign-flip test)\n\n{}",
        task1_table(rows),
        task2_table(rows),
        paired_table(rows)
    );
    if let Some(tc) = third {
        let _ = write!(
            s,
            "\nThird class (epoch {} of the real+interp source: {} interpolations, {} between two different classes)\n\n{}\nMost frequent third classes\n\n{}",
            tc.seed,
            tc.generated,
            tc.items.len(),
            third_class_table(tc),
            third_class_pairs_table(tc, TOP_THIRD_CLASSES)
        );
    }
    let _ = write!(s, "\nVerdicts\n\n{}", verdict_rows(rows, third));
    s
}

// ----------------------------------------------------------------------------------------
// Third class (thesis section 3.5.3)

/// One interpolation between digits of two different classes and how the judges see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThirdClassItem {
    /// The class of the digit weighted `a`.
    pub first: u8,
    /// The class of the digit weighted `1 - a`.
    pub second: u8,
    /// The weight `a` of the first digit's latent code.
    pub a: f32,
    /// The panel majority's class (`None`: no majority).
    pub majority: Option<u32>,
    /// Each judge's class, in the order of [`ThirdClass::judges`].
    pub judges: Vec<u32>,
}

/// The judges' view of one epoch's interpolations between two different classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThirdClass {
    /// The epoch seed of the interpolation source's plan.
    pub seed: u64,
    /// Interpolations of the epoch in all (pairs of the same class included).
    pub generated: usize,
    /// The judges' names.
    pub judges: Vec<String>,
    /// Every interpolation of the epoch between two different classes, in plan order.
    pub items: Vec<ThirdClassItem>,
}

/// Decodes the interpolations of `source`'s epoch `seed` whose two digits are of different
/// classes (in batches of 500) and records each judge's class and the panel majority's.
///
/// # Errors
/// As [`InterpolationSource::materialise`] and [`JudgePanel::verdict`].
pub fn third_class(
    source: &InterpolationSource,
    panel: &JudgePanel,
    seed: u64,
    device: &Device,
) -> Result<ThirdClass> {
    let labels = source.data().labels();
    let plan = source.plan(seed);
    let generated = plan
        .iter()
        .filter(|i| matches!(i, Item::Generated(_)))
        .count();
    let mixed: Vec<Item> = plan
        .into_iter()
        .filter(|i| matches!(i, Item::Generated(p) if labels[p.first] != labels[p.second]))
        .collect();
    let mut items = Vec::with_capacity(mixed.len());
    for chunk in mixed.chunks(500) {
        let (images, _) = source.materialise(chunk, device)?;
        let images = tensor_to_array4(&images)?;
        let firsts: Vec<u32> = chunk
            .iter()
            .map(|i| match i {
                Item::Generated(p) => u32::from(labels[p.first]),
                Item::Real(r) => u32::from(labels[*r]),
            })
            .collect();
        let verdict = panel.verdict(images.view(), &firsts)?;
        let per_judge: Vec<&Vec<u32>> = panel
            .names()
            .iter()
            .map(|n| &verdict.judges[n].predictions)
            .collect();
        for (k, item) in chunk.iter().enumerate() {
            if let Item::Generated(p) = item {
                items.push(ThirdClassItem {
                    first: labels[p.first],
                    second: labels[p.second],
                    a: p.a,
                    majority: verdict.majority[k],
                    judges: per_judge.iter().map(|v| v[k]).collect(),
                });
            }
        }
    }
    Ok(ThirdClass {
        seed,
        generated,
        judges: panel.names().to_vec(),
        items,
    })
}

/// The bins of `min(a, 1 - a)` (how far an interpolation is from the nearer real digit).
const MIX_BINS: [(f32, f32); 5] = [(0.0, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5)];

impl ThirdClassItem {
    /// Whether `class` is neither of the two classes mixed.
    fn is_third(&self, class: u32) -> bool {
        class != u32::from(self.first) && class != u32::from(self.second)
    }

    fn mix(&self) -> f32 {
        self.a.min(1.0 - self.a)
    }
}

/// One row of the third-class table over `items`.
fn third_class_row(label: &str, items: &[&ThirdClassItem], judges: usize) -> String {
    let n = items.len();
    let frac = |f: &dyn Fn(&ThirdClassItem) -> bool| -> Vec<f64> {
        items.iter().map(|i| f64::from(u8::from(f(i)))).collect()
    };
    let pct = |v: &[f64]| format!("{:.1}%", 100.0 * mean(v));
    let third = frac(&|i| i.majority.is_some_and(|c| i.is_third(c)));
    let nearer = frac(&|i| {
        let near = if i.a >= 0.5 { i.first } else { i.second };
        i.majority == Some(u32::from(near))
    });
    let farther = frac(&|i| {
        let far = if i.a >= 0.5 { i.second } else { i.first };
        i.majority == Some(u32::from(far))
    });
    let none = frac(&|i| i.majority.is_none());
    let each: Vec<String> = (0..judges)
        .map(|j| pct(&frac(&|i| i.is_third(i.judges[j]))))
        .collect();
    let third_ci = mean_ci95_t(&third);
    let mut cells = vec![
        label.to_string(),
        n.to_string(),
        pct(&nearer),
        pct(&farther),
        format!(
            "**{:.1}% ± {:.1}**",
            100.0 * third_ci.mean,
            100.0 * third_ci.half_width
        ),
        pct(&none),
    ];
    cells.extend(each);
    line(&cells)
}

/// Thesis section 3.5.3 by `min(a, 1 - a)` bin and overall: of the interpolations between
/// two different classes, the fractions the panel majority assigns to the nearer digit's
/// class (weight >= 0.5), the farther one's, a third class (with its 95% t interval, the
/// headline), no class (no majority), and each judge's third-class fraction.
pub fn third_class_table(tc: &ThirdClass) -> String {
    let mut cols: Vec<String> = [
        "min(a, 1 − a)",
        "interpolations",
        "nearer class",
        "farther class",
        "third class",
        "no majority",
    ]
    .map(String::from)
    .to_vec();
    let names: Vec<&str> = tc.judges.iter().map(String::as_str).collect();
    cols.extend(named(&names, ": third"));
    let mut s = header(&cols);
    for (i, &(lo, hi)) in MIX_BINS.iter().enumerate() {
        let last = i + 1 == MIX_BINS.len();
        let bin: Vec<&ThirdClassItem> = tc
            .items
            .iter()
            .filter(|it| it.mix() >= lo && (it.mix() < hi || last))
            .collect();
        let close = if last { "]" } else { ")" };
        let label = format!("[{lo:.1}, {hi:.1}{close}");
        s.push_str(&third_class_row(&label, &bin, tc.judges.len()));
    }
    let all: Vec<&ThirdClassItem> = tc.items.iter().collect();
    s.push_str(&third_class_row("all", &all, tc.judges.len()));
    s
}

/// The `top` most frequent (class pair, third class) outcomes of the panel majority, the
/// pair unordered: how often, and out of how many interpolations of that pair.
pub fn third_class_pairs_table(tc: &ThirdClass, top: usize) -> String {
    let pair_of = |i: &ThirdClassItem| (i.first.min(i.second), i.first.max(i.second));
    let mut per_pair: BTreeMap<(u8, u8), usize> = BTreeMap::new();
    let mut outcomes: BTreeMap<((u8, u8), u32), usize> = BTreeMap::new();
    for it in &tc.items {
        *per_pair.entry(pair_of(it)).or_default() += 1;
        if let Some(c) = it.majority.filter(|&c| it.is_third(c)) {
            *outcomes.entry((pair_of(it), c)).or_default() += 1;
        }
    }
    let mut ranked: Vec<(PairOutcome, usize)> = outcomes.into_iter().collect();
    ranked.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    let mut s = String::from(
        "| pair | third class | interpolations judged so | of the pair's |\n| --- | --- | --- | --- |\n",
    );
    for (((a, b), c), count) in ranked.into_iter().take(top) {
        let _ = writeln!(s, "| {a} – {b} | {c} | {count} | {} |", per_pair[&(a, b)]);
    }
    s
}

// ----------------------------------------------------------------------------------------
// Verdicts

/// Where the verdict rows point: this study's file under docs/results/.
pub const DOCS_LINK: &str = "[soft_labels](results/soft_labels.md)";

/// The header of [`verdict_rows`]' table.
const VERDICT_HEADER: &str =
    "| claim | verdict | figure (95% CI) | judges | study |\n| --- | --- | --- | --- | --- |\n";

/// Whether `ci` lies wholly on the side of zero that `sign` (+1 or -1) names.
fn beyond_zero(ci: MeanCi, sign: f64) -> bool {
    if sign > 0.0 {
        ci.low() > 0.0
    } else {
        ci.high() < 0.0
    }
}

/// The rows of arms `a` and `b` at (`epochs`, `optimizer`) paired by seed, in seed order.
fn seed_pairs<'a>(
    rows: &'a [Row],
    epochs: usize,
    optimizer: &str,
    a: TrainData,
    b: TrainData,
) -> Vec<(&'a Row, &'a Row)> {
    let arm = |d: TrainData| -> BTreeMap<u64, &'a Row> {
        rows.iter()
            .filter(|r| r.epochs == epochs && r.optimizer == optimizer && r.data == d.name())
            .map(|r| (r.seed, r))
            .collect()
    };
    let (ra, rb) = (arm(a), arm(b));
    ra.iter()
        .filter_map(|(seed, x)| rb.get(seed).map(|y| (*x, *y)))
        .collect()
}

/// The seed-paired differences of `metric` between `a` and `b`; `None` when there are no
/// pairs or a row lacks the metric (unjudged, or a judge missing).
fn paired_metric(
    rows: &[Row],
    epochs: usize,
    optimizer: &str,
    (a, b): (TrainData, TrainData),
    metric: &dyn Fn(&Row) -> Option<f64>,
) -> Option<Vec<f64>> {
    let pairs = seed_pairs(rows, epochs, optimizer, a, b);
    if pairs.is_empty() {
        return None;
    }
    pairs
        .iter()
        .map(|(x, y)| Some(metric(x)? - metric(y)?).filter(|d| d.is_finite()))
        .collect()
}

/// A thesis claim about the interpolation arm tested against both controls.
struct ArmClaim {
    /// `sgd` or `adam`.
    optimizer: &'static str,
    /// The direction the thesis claims for real+interp: +1 better, -1 worse.
    sign: f64,
    /// The claim's text without the training length.
    text: &'static str,
    /// The measure and the factor and decimals it is shown with.
    metric: fn(&Row) -> f64,
    scale: f64,
    digits: usize,
    /// What one unit of the shown figure is.
    unit: &'static str,
    /// Each judge's score of the measure (`None`: model-free).
    judges: Option<JudgeField>,
}

/// Reads each judge's score of a measure from a row.
type JudgeField = fn(&Row) -> &BTreeMap<String, f64>;

/// The claims of thesis section 3.5.2 (and the SGD drop-off that 3.5.3 repeats).
fn arm_claims() -> [ArmClaim; 6] {
    let t1 = |r: &Row| r.judge_accuracy;
    let t2 = |r: &Row| r.task2_judge_accuracy;
    let corr = |r: &Row| r.class_mean_corr;
    fn j1(r: &Row) -> &BTreeMap<String, f64> {
        &r.judges
    }
    fn j2(r: &Row) -> &BTreeMap<String, f64> {
        &r.task2_judges
    }
    let judged = |optimizer, sign, text, metric: fn(&Row) -> f64, judges: JudgeField| ArmClaim {
        optimizer,
        sign,
        text,
        metric,
        scale: 10.0,
        digits: 1,
        unit: "hits of 10",
        judges: Some(judges),
    };
    let model_free = |optimizer, sign, text| ArmClaim {
        optimizer,
        sign,
        text,
        metric: corr,
        scale: 1.0,
        digits: 3,
        unit: "class-mean correlation",
        judges: None,
    };
    [
        judged("adam", 1.0, "Adam nets trained with soft-labelled VAE interpolations invert better: Task 1", t1, j1),
        judged("adam", 1.0, "Adam nets trained with soft-labelled VAE interpolations invert better: Task 2", t2, j2),
        model_free("adam", 1.0, "Adam nets trained with soft-labelled VAE interpolations give more digit-like Task 1 inversions (class-mean correlation)"),
        judged("sgd", -1.0, "SGD nets trained with soft-labelled VAE interpolations invert worse: Task 1", t1, j1),
        judged("sgd", -1.0, "SGD nets trained with soft-labelled VAE interpolations invert worse: Task 2", t2, j2),
        model_free("sgd", -1.0, "SGD nets trained with soft-labelled VAE interpolations give less digit-like Task 1 inversions (class-mean correlation)"),
    ]
}

/// The verdict row of `claim` at `epochs`: it holds when real+interp differs from both
/// real-matched (same optimiser steps) and real (same epochs) in the claimed direction with
/// the 95% t interval of the seed-paired difference clear of zero, holds partly when
/// against one of them, and does not hold otherwise. The judges column counts the judges
/// whose own mean differences against both controls point the claimed way. `None` when
/// the rows lack an arm or the measure (unjudged).
fn arm_verdict(rows: &[Row], epochs: usize, claim: &ArmClaim) -> Option<String> {
    let metric = claim.metric;
    let controls = [TrainData::RealMatched, TrainData::Real];
    let diffs: Vec<Vec<f64>> = controls
        .iter()
        .map(|&c| {
            paired_metric(
                rows,
                epochs,
                claim.optimizer,
                (TrainData::RealInterp, c),
                &|r| Some(claim.scale * metric(r)),
            )
        })
        .collect::<Option<_>>()?;
    let cis: Vec<MeanCi> = diffs.iter().map(|d| mean_ci95_t(d)).collect();
    let passed = cis
        .iter()
        .filter(|ci| beyond_zero(**ci, claim.sign))
        .count();
    let verdict = match passed {
        2 => "holds",
        1 => "holds partly",
        _ => "does not hold",
    };
    let shown: Vec<String> = controls
        .iter()
        .zip(&cis)
        .map(|(c, ci)| {
            format!(
                "real+interp − {} {}",
                c.name(),
                ci_text(*ci, 1.0, claim.digits, true)
            )
        })
        .collect();
    let figure = format!(
        "{} ({}, {} seeds)",
        shown.join("; "),
        claim.unit,
        diffs[0].len()
    );
    let judges = match claim.judges {
        None => "n/a".to_string(),
        Some(field) => {
            let names = judge_names(rows, field);
            let agree = names
                .iter()
                .filter(|n| {
                    controls.iter().all(|&c| {
                        paired_metric(
                            rows,
                            epochs,
                            claim.optimizer,
                            (TrainData::RealInterp, c),
                            &|r| field(r).get(**n).copied(),
                        )
                        .is_some_and(|d| claim.sign * mean(&d) > 0.0)
                    })
                })
                .count();
            format!("{agree} of {} judges", names.len())
        }
    };
    Some(line(&[
        format!("{} ({epochs} epochs; thesis 3.5.2)", claim.text),
        verdict.to_string(),
        figure,
        judges,
        DOCS_LINK.to_string(),
    ]))
}

/// The verdict row of thesis section 3.5.3's observation that interpolations between two
/// classes often decode to a third class: it holds when the panel majority's third-class
/// fraction at even mixes (`min(a, 1 − a)` in [0.4, 0.5]) lies above the one near a real
/// digit (below 0.1, the judges' own error rate on near-real digits) with the two 95%
/// intervals apart, holds partly when only its mean is higher, and does not hold
/// otherwise. The judges column counts the judges whose own third-class fraction is
/// higher at even mixes.
fn third_class_verdict(tc: &ThirdClass) -> String {
    let (near_bin, even_bin) = (MIX_BINS[0], MIX_BINS[MIX_BINS.len() - 1]);
    let near: Vec<&ThirdClassItem> = tc.items.iter().filter(|i| i.mix() < near_bin.1).collect();
    let even: Vec<&ThirdClassItem> = tc.items.iter().filter(|i| i.mix() >= even_bin.0).collect();
    let rate = |items: &[&ThirdClassItem], judge: Option<usize>| -> MeanCi {
        let v: Vec<f64> = items
            .iter()
            .map(|i| {
                let class = match judge {
                    Some(j) => Some(i.judges[j]),
                    None => i.majority,
                };
                f64::from(u8::from(class.is_some_and(|c| i.is_third(c))))
            })
            .collect();
        mean_ci95_t(&v)
    };
    let all: Vec<&ThirdClassItem> = tc.items.iter().collect();
    let (n, e, a) = (rate(&near, None), rate(&even, None), rate(&all, None));
    let verdict = if e.low() > n.high() {
        "holds"
    } else if e.mean > n.mean {
        "holds partly"
    } else {
        "does not hold"
    };
    let agree = (0..tc.judges.len())
        .filter(|&j| rate(&even, Some(j)).mean > rate(&near, Some(j)).mean)
        .count();
    let pct = |ci: MeanCi| format!("{:.1}% ± {:.1}", 100.0 * ci.mean, 100.0 * ci.half_width);
    line(&[
        "Linear interpolations between the VAE codes of two different digits often decode to a third class (thesis 3.5.3)".to_string(),
        verdict.to_string(),
        format!(
            "panel majority: {} of {} even mixes (min(a, 1 − a) ≥ {:.1}) vs {} of {} near a real digit (< {:.1}); {} of all {}",
            pct(e),
            even.len(),
            even_bin.0,
            pct(n),
            near.len(),
            near_bin.1,
            pct(a),
            all.len()
        ),
        format!("{agree} of {} judges", tc.judges.len()),
        DOCS_LINK.to_string(),
    ])
}

/// The verdict table: one row per thesis claim the study tests and training length (see
/// `arm_verdict` and `third_class_verdict` for the rules), in the format of the
/// docs' index. Claims whose arms or judges are missing from `rows` are left out.
pub fn verdict_rows(rows: &[Row], third: Option<&ThirdClass>) -> String {
    let mut epochs: Vec<usize> = rows.iter().map(|r| r.epochs).collect();
    epochs.sort_unstable();
    epochs.dedup();
    let mut s = VERDICT_HEADER.to_string();
    for &e in &epochs {
        for claim in arm_claims() {
            if let Some(row) = arm_verdict(rows, e, &claim) {
                s.push_str(&row);
            }
        }
    }
    if let Some(tc) = third {
        s.push_str(&third_class_verdict(tc));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn study(seeds: u64, epochs: Vec<usize>) -> SoftLabelStudy {
        SoftLabelStudy {
            seeds,
            epochs,
            real_len: 8000,
            generated_len: 4000,
        }
    }

    #[test]
    fn jobs_follow_the_single_run_order_and_bad_settings_are_refused() {
        let jobs = study(2, vec![4, 20]).jobs().unwrap();
        assert_eq!(jobs.len(), 24);
        let names: Vec<String> = jobs[..7].iter().map(SoftLabelJob::name).collect();
        assert_eq!(
            names,
            [
                "sgd-real-e4-s0",
                "sgd-interp-e4-s0",
                "sgd-matched-e4-s0",
                "adam-real-e4-s0",
                "adam-interp-e4-s0",
                "adam-matched-e4-s0",
                "sgd-real-e4-s1"
            ]
        );
        assert_eq!(jobs[4].data.name(), "real+interp");
        assert_eq!(jobs[12].train.epochs, 20);
        assert_eq!(jobs[1].cost(), 1.3 * 752.0 / 100.0 + 4.0);
        assert_eq!(
            serde_json::to_string(&TrainData::RealMatched).unwrap(),
            "\"real-matched\""
        );
        for bad in [
            study(0, vec![1]),
            study(1, vec![]),
            study(1, vec![0]),
            study(1, vec![3, 3]),
            SoftLabelStudy {
                generated_len: 0,
                ..study(1, vec![1])
            },
            SoftLabelStudy {
                real_len: 0,
                ..study(1, vec![1])
            },
        ] {
            assert!(bad.jobs().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_matched_arm_takes_the_interpolation_arms_step_count() {
        let s = study(1, vec![4, 20]);
        // 8,000 real digits: 125 steps of 64; with 4,000 interpolations: 188.
        assert_eq!(s.steps_per_epoch(TrainData::Real, 64), 125);
        assert_eq!(s.steps_per_epoch(TrainData::RealInterp, 64), 188);
        assert_eq!(s.steps_per_epoch(TrainData::RealMatched, 64), 125);
        let jobs = s.jobs().unwrap();
        let by = |epochs: usize, data: TrainData| {
            jobs.iter()
                .find(|j| j.epochs == epochs && j.data == data && j.optimizer == "adam")
                .unwrap()
        };
        for (epochs, matched_epochs) in [(4, 6), (20, 30)] {
            let (real, interp, matched) = (
                by(epochs, TrainData::Real),
                by(epochs, TrainData::RealInterp),
                by(epochs, TrainData::RealMatched),
            );
            assert_eq!(real.steps, 125 * epochs);
            assert_eq!(interp.steps, 188 * epochs);
            assert_eq!(matched.train.epochs, matched_epochs);
            assert_eq!(matched.steps, 125 * matched_epochs);
            // Within one real epoch of the interpolation arm's steps.
            assert!(matched.steps.abs_diff(interp.steps) <= 62);
        }
        // Few interpolations still round to at least the real arm's length.
        let few = SoftLabelStudy {
            generated_len: 800,
            ..study(1, vec![1])
        };
        assert_eq!(few.train_epochs(TrainData::RealMatched, 1, 64), 1);
        assert_eq!(few.train_epochs(TrainData::RealMatched, 10, 64), 11);
    }

    fn row(optimizer: &str, data: &str, seed: u64, hits: f64, task2: f64) -> Row {
        Row {
            optimizer: optimizer.into(),
            data: data.into(),
            seed,
            epochs: 4,
            train_epochs: 4,
            train_steps: 500,
            test_accuracy: 0.97,
            judge_accuracy: hits / 10.0,
            judges: [("a".to_string(), hits / 10.0), ("b".to_string(), 0.5)].into(),
            judges_unanimous: 0.8,
            class_mean_corr: 0.3,
            self_confidence: 0.99,
            task2_judge_accuracy: task2 / 10.0,
            task2_judges: [("a".to_string(), task2 / 10.0)].into(),
            task2_net_accuracy: 1.0,
            task2_class_mean_corr: 0.4,
        }
    }

    #[test]
    fn an_unjudged_row_reads_back_from_json() {
        let mut r = row("adam", "real", 1, 8.0, 7.0);
        r.judge_accuracy = f64::NAN;
        r.judges_unanimous = f64::NAN;
        r.task2_judge_accuracy = f64::NAN;
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"judge_accuracy\":null"));
        assert!(text.contains("\"task2_judge_accuracy\":null"));
        let back: Row = serde_json::from_str(&text).unwrap();
        assert!(back.judge_accuracy.is_nan() && back.task2_judge_accuracy.is_nan());
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }

    #[test]
    fn tables_hold_known_means_intervals_and_paired_tests() {
        // Three seeds: interp scores 1 more than real on seeds 0 and 1, 2 more on seed 2.
        let mut rows = Vec::new();
        for (seed, real, interp) in [(0, 6.0, 7.0), (1, 8.0, 9.0), (2, 7.0, 9.0)] {
            rows.push(row("sgd", "real", seed, real, 5.0));
            rows.push(row("sgd", "real+interp", seed, interp, 5.0));
        }
        let t1 = task1_table(&rows);
        // real: mean 7, s = 1, t_{0.975, 2} = 4.303 -> half-width 4.303 / sqrt(3) = 2.48.
        assert!(
            t1.contains("| 4 | sgd | real | 500 | 3 | **7.0 ± 2.5** | 7.0 ± 2.5 | 5.0 ± 0.0 |"),
            "{t1}"
        );
        let p = paired_table(&rows);
        // Differences 1, 1, 2: mean 4/3; all up; sign flip p = 2 / 8.
        assert!(
            p.contains("| 4 | sgd | 1 | real+interp − real | 3 | **+1.3 ± 1.4** | 3 / 0 | 0.250 | +1.3 | +0.0 |"),
            "{p}"
        );
        assert!(
            p.contains("| 4 | sgd | 2 | real+interp − real | 3 | **+0.0 ± 0.0** | 0 / 0 | 1.000 | +0.0 | - |"),
            "{p}"
        );
        // No real-matched rows: no such comparison.
        assert!(!p.contains("real-matched"), "{p}");
        let v = verdict_rows(&rows, None);
        // Only real and real+interp: no verdict (each needs both controls).
        assert_eq!(v.lines().count(), 2, "{v}");
        for (seed, real, interp, matched) in
            [(0, 6.0, 8.0, 8.0), (1, 8.0, 9.0, 9.0), (2, 7.0, 9.0, 7.0)]
        {
            rows.push(row("adam", "real", seed, real, 5.0));
            rows.push(row("adam", "real+interp", seed, interp, 5.0));
            rows.push(row("adam", "real-matched", seed, matched, 5.0));
        }
        let v = verdict_rows(&rows, None);
        // interp − real: 2, 1, 2 (+1.7 ± 1.4, clear of zero); interp − matched: 0, 0, 2
        // (+0.7 ± 2.9): holds against one control only. Judge a follows the hits, judge b
        // stays at 5 of 10.
        assert!(
            v.contains("| Adam nets trained with soft-labelled VAE interpolations invert better: Task 1 (4 epochs; thesis 3.5.2) | holds partly | real+interp − real-matched +0.7 ± 2.9; real+interp − real +1.7 ± 1.4 (hits of 10, 3 seeds) | 1 of 2 judges | [soft_labels](results/soft_labels.md) |"),
            "{v}"
        );
        assert!(
            v.contains("invert better: Task 2 (4 epochs; thesis 3.5.2) | does not hold | real+interp − real-matched +0.0 ± 0.0; real+interp − real +0.0 ± 0.0 (hits of 10, 3 seeds) | 0 of 1 judges |"),
            "{v}"
        );
        assert!(v.contains("(class-mean correlation) (4 epochs; thesis 3.5.2) | does not hold | real+interp − real-matched +0.000 ± 0.000;"), "{v}");
        // three Adam claims; the SGD ones lack the matched arm
        assert_eq!(v.lines().count(), 5, "{v}");
        let t2 = task2_table(&rows);
        assert!(t2.contains("| 4 | sgd | real+interp | 3 | **5.0 ± 0.0** | 5.0 ± 0.0 | 10.0 ± 0.0 | 0.400 ± 0.000 |"), "{t2}");
    }

    #[test]
    fn third_class_counts_follow_the_majority() {
        let item = |first: u8, second: u8, a: f32, majority: Option<u32>| ThirdClassItem {
            first,
            second,
            a,
            majority,
            judges: vec![majority.unwrap_or(first.into()), 8],
        };
        let tc = ThirdClass {
            seed: 0,
            generated: 5,
            judges: vec!["x".into(), "y".into()],
            items: vec![
                item(0, 4, 0.5, Some(9)),  // third class, even mix
                item(0, 4, 0.45, Some(4)), // nearer (the 4 weighs 0.55)
                item(3, 5, 0.95, Some(3)), // nearer
                item(3, 5, 0.05, None),    // no majority
            ],
        };
        let t = third_class_table(&tc);
        assert!(
            t.contains(
                "| [0.0, 0.1) | 2 | 50.0% | 0.0% | **0.0% ± 0.0** | 50.0% | 0.0% | 100.0% |"
            ),
            "{t}"
        );
        assert!(
            t.contains(
                "| [0.4, 0.5] | 2 | 50.0% | 0.0% | **50.0% ± 635.3** | 0.0% | 50.0% | 100.0% |"
            ),
            "{t}"
        );
        assert!(t.contains("| all | 4 | 50.0% | 0.0% | **25.0%"), "{t}");
        let pairs = third_class_pairs_table(&tc, 5);
        assert!(pairs.contains("| 0 – 4 | 9 | 1 | 2 |"), "{pairs}");
        assert_eq!(pairs.lines().count(), 3);
        let v = verdict_rows(&[], Some(&tc));
        // Even mixes 1 of 2 third (50% ± 635.3), near-real 0 of 2: apart only in the mean.
        assert!(
            v.contains("| holds partly | panel majority: 50.0% ± 635.3 of 2 even mixes (min(a, 1 − a) ≥ 0.4) vs 0.0% ± 0.0 of 2 near a real digit (< 0.1); 25.0% ± "),
            "{v}"
        );
        // Judge x: 1 of 2 even mixes third, 0 near; judge y (always 8): all third in both.
        assert!(
            v.contains("| 1 of 2 judges | [soft_labels](results/soft_labels.md) |"),
            "{v}"
        );
        assert_eq!(v.lines().count(), 3);
    }
}
