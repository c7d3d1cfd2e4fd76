//! The soft-label study (thesis section 3.5.2) as a job list: for every training length,
//! seed, optimiser (SGD, Adam) and training data (real digits, or real digits plus
//! soft-labelled VAE interpolations), one classifier is trained and inverted. Jobs are
//! independent; their rows are merged in job order, so one run or any split into shards
//! (`netinv_core::shard`) gives the same `study.json`. Training, inversion and judging stay
//! with the `soft_label_study` example.

use netinv_models::train::TrainConfig;
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::Result;

/// The settings that make the job list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftLabelStudy {
    /// Seeds `0..seeds` per setting (weights and order); at least 1.
    pub seeds: u64,
    /// Training lengths in epochs, each at least 1, no repeats.
    pub epochs: Vec<usize>,
}

/// The training data of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrainData {
    /// The real training digits only.
    #[serde(rename = "real")]
    Real,
    /// The real digits plus soft-labelled interpolations.
    #[serde(rename = "real+interp")]
    RealInterp,
}

impl TrainData {
    /// `real` or `real+interp` (the `data` column).
    pub fn name(self) -> &'static str {
        match self {
            TrainData::Real => "real",
            TrainData::RealInterp => "real+interp",
        }
    }
}

/// One job: one net to train on `data` with `train` and invert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftLabelJob {
    /// `sgd` or `adam`.
    pub optimizer: String,
    /// The training data.
    pub data: TrainData,
    /// The training recipe with its epochs and seed (also the weights' seed).
    pub train: TrainConfig,
}

/// One row of `study.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// `sgd` or `adam`.
    pub optimizer: String,
    /// `real` or `real+interp`.
    pub data: String,
    /// The seed.
    pub seed: u64,
    /// Training epochs.
    pub epochs: usize,
    /// Test accuracy of the trained net, in [0, 1].
    pub test_accuracy: f64,
    /// The judge's accuracy on the ten inverted images (NaN, `null` in JSON, unjudged).
    #[serde(deserialize_with = "netinv_core::shard::nan_from_null")]
    pub judge_accuracy: f64,
    /// Mean correlation of the images with their class-mean digits.
    pub class_mean_corr: f64,
    /// Mean probability the inverted net gives the targets.
    pub self_confidence: f64,
}

impl SoftLabelStudy {
    /// Checks every field.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for zero seeds, no lengths, or a zero or repeated
    /// length.
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
        Ok(())
    }

    /// The jobs in merge order: epochs, then seed, then optimiser (SGD: `TrainConfig::sgd()`,
    /// Adam: `TrainConfig::adam()`), then data (real first).
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
                    for data in [TrainData::Real, TrainData::RealInterp] {
                        jobs.push(SoftLabelJob {
                            optimizer: optimizer.to_string(),
                            data,
                            train: TrainConfig {
                                epochs,
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
    /// `<optimizer>-<real|interp>-e<epochs>-s<seed>`.
    pub fn name(&self) -> String {
        let tag = match self.data {
            TrainData::Real => "real",
            TrainData::RealInterp => "interp",
        };
        format!(
            "{}-{tag}-e{}-s{}",
            self.optimizer, self.train.epochs, self.train.seed
        )
    }

    /// The estimated cost for balancing shards (only ratios matter): training epochs, an
    /// epoch with interpolations counted `1 + generated_per_real` times, plus 1 for the
    /// inversion.
    pub fn cost(&self, generated_per_real: f64) -> f64 {
        let per_epoch = match self.data {
            TrainData::Real => 1.0,
            TrainData::RealInterp => 1.0 + generated_per_real.max(0.0),
        };
        per_epoch * self.train.epochs as f64 + 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_follow_the_single_run_order_and_bad_settings_are_refused() {
        let study = SoftLabelStudy {
            seeds: 2,
            epochs: vec![4, 20],
        };
        let jobs = study.jobs().unwrap();
        assert_eq!(jobs.len(), 16);
        let names: Vec<String> = jobs[..5].iter().map(SoftLabelJob::name).collect();
        assert_eq!(
            names,
            [
                "sgd-real-e4-s0",
                "sgd-interp-e4-s0",
                "adam-real-e4-s0",
                "adam-interp-e4-s0",
                "sgd-real-e4-s1"
            ]
        );
        assert_eq!(jobs[3].data.name(), "real+interp");
        assert_eq!(jobs[8].train.epochs, 20);
        assert_eq!(jobs[1].cost(0.5), 7.0);
        assert_eq!(
            serde_json::to_string(&TrainData::RealInterp).unwrap(),
            "\"real+interp\""
        );
        for bad in [
            SoftLabelStudy {
                seeds: 0,
                epochs: vec![1],
            },
            SoftLabelStudy {
                seeds: 1,
                epochs: vec![],
            },
            SoftLabelStudy {
                seeds: 1,
                epochs: vec![0],
            },
            SoftLabelStudy {
                seeds: 1,
                epochs: vec![3, 3],
            },
        ] {
            assert!(bad.jobs().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_unjudged_row_reads_back_from_json() {
        let row = Row {
            optimizer: "adam".into(),
            data: "real".into(),
            seed: 1,
            epochs: 4,
            test_accuracy: 0.98,
            judge_accuracy: f64::NAN,
            class_mean_corr: 0.25,
            self_confidence: 0.9,
        };
        let text = serde_json::to_string(&row).unwrap();
        assert!(text.contains("\"judge_accuracy\":null"));
        let back: Row = serde_json::from_str(&text).unwrap();
        assert!(back.judge_accuracy.is_nan());
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }
}
