//! The prototype study (thesis chapter 4) as a job list: per seed a cross-entropy baseline
//! net, and per seed, embedding dimension D and geometry a prototype net. Each job trains
//! one net (and inverts it if it is a baseline or its D is the inverted one) and yields one
//! row; rows are merged in job order, so one run or any split into shards
//! (`netinv_core::shard`) gives the same `study.json` and `baseline.json`. Training,
//! inversion and judging stay with the `prototype_study` example.

use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::{PrototypeKind, Result};

/// The settings that make the job list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrototypeStudy {
    /// Seeds `0..seeds` (weights, shuffling and prototype placement); at least 1.
    pub seeds: u64,
    /// Embedding dimensions D, each at least 1, no repeats.
    pub dims: Vec<usize>,
    /// The D whose prototype nets are inverted (one of `dims`).
    pub invert_dim: usize,
}

/// One job: one net to train (and maybe invert).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum PrototypeJob {
    /// The cross-entropy net of `seed` (10 outputs), always inverted.
    CrossEntropy {
        /// The seed.
        seed: u64,
    },
    /// A prototype net of geometry `kind` with `dim` outputs.
    Prototype {
        /// The geometry.
        kind: PrototypeKind,
        /// D, the number of outputs.
        dim: usize,
        /// The seed.
        seed: u64,
    },
}

/// A prototype net's row of `study.json` (fractions in [0, 1]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// `hyperspherical` or `busemann`.
    pub kind: String,
    /// D.
    pub dim: usize,
    /// The seed.
    pub seed: u64,
    /// Macro precision on the test split.
    pub precision: f64,
    /// Macro recall.
    pub recall: f64,
    /// Macro F1.
    pub f1: f64,
    /// The judge's accuracy on the inverted images (`None`: not inverted or not judged).
    pub judge_accuracy: Option<f64>,
}

/// A cross-entropy net's row of `baseline.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// The seed.
    pub seed: u64,
    /// Macro precision on the test split.
    pub precision: f64,
    /// Macro recall.
    pub recall: f64,
    /// Macro F1.
    pub f1: f64,
    /// The judge's accuracy on the inverted images (`None`: not judged).
    pub judge_accuracy: Option<f64>,
}

/// What a job produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrototypeOutput {
    /// Of [`PrototypeJob::CrossEntropy`].
    CrossEntropy(Baseline),
    /// Of [`PrototypeJob::Prototype`].
    Prototype(Row),
}

impl PrototypeStudy {
    /// Checks every field.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for zero seeds, no dims, a zero or repeated D, or
    /// `invert_dim` not among `dims`.
    pub fn validate(&self) -> Result<()> {
        if self.seeds == 0 {
            return Err(invalid("seeds", "must be at least 1"));
        }
        if self.dims.is_empty() || self.dims.contains(&0) {
            return Err(invalid("dims", "give at least one D, each at least 1"));
        }
        if let Some(d) = (0..self.dims.len()).find(|&i| self.dims[..i].contains(&self.dims[i])) {
            return Err(invalid("dims", format!("{} is given twice", self.dims[d])));
        }
        if !self.dims.contains(&self.invert_dim) {
            return Err(invalid(
                "invert_dim",
                format!("{} is not one of the dims", self.invert_dim),
            ));
        }
        Ok(())
    }

    /// The jobs in merge order: per seed, the cross-entropy net, then per D (in the order
    /// of `dims`) the hyperspherical and the Busemann net.
    ///
    /// # Errors
    /// As [`PrototypeStudy::validate`].
    pub fn jobs(&self) -> Result<Vec<PrototypeJob>> {
        self.validate()?;
        let mut jobs = Vec::new();
        for seed in 0..self.seeds {
            jobs.push(PrototypeJob::CrossEntropy { seed });
            for &dim in &self.dims {
                for kind in [PrototypeKind::Hyperspherical, PrototypeKind::Busemann] {
                    jobs.push(PrototypeJob::Prototype { kind, dim, seed });
                }
            }
        }
        Ok(jobs)
    }

    /// The estimated cost of `job` for balancing shards (only ratios matter): one unit per
    /// trained net, one more if it is inverted.
    pub fn cost(&self, job: &PrototypeJob) -> f64 {
        match *job {
            PrototypeJob::CrossEntropy { .. } => 2.0,
            PrototypeJob::Prototype { dim, .. } if dim == self.invert_dim => 2.0,
            PrototypeJob::Prototype { .. } => 1.0,
        }
    }

    /// The rows of `study.json` and `baseline.json` from the outputs in job order.
    pub fn merge(outputs: Vec<PrototypeOutput>) -> (Vec<Row>, Vec<Baseline>) {
        let (mut rows, mut baselines) = (Vec::new(), Vec::new());
        for out in outputs {
            match out {
                PrototypeOutput::CrossEntropy(b) => baselines.push(b),
                PrototypeOutput::Prototype(r) => rows.push(r),
            }
        }
        (rows, baselines)
    }
}

impl PrototypeJob {
    /// The job's folder under the output folder (`cross_entropy_s0`, `busemann_d5_s0`).
    pub fn folder(&self) -> String {
        match self {
            PrototypeJob::CrossEntropy { seed } => format!("cross_entropy_s{seed}"),
            PrototypeJob::Prototype { kind, dim, seed } => {
                format!("{}_d{dim}_s{seed}", kind.name())
            }
        }
    }

    /// Every file or folder the job writes under the output folder: its folder and, for
    /// D = 2 or 3, its embedding plot.
    pub fn files(&self) -> Vec<String> {
        let mut files = vec![self.folder()];
        if let PrototypeJob::Prototype { kind, dim, seed } = self {
            if *dim == 2 || *dim == 3 {
                files.push(format!("embedding_{}_d{dim}_s{seed}.png", kind.name()));
            }
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_follow_seed_then_dim_then_kind_and_bad_settings_are_refused() {
        let study = PrototypeStudy {
            seeds: 2,
            dims: vec![2, 5],
            invert_dim: 5,
        };
        let jobs = study.jobs().unwrap();
        assert_eq!(jobs.len(), 10);
        assert_eq!(jobs[0], PrototypeJob::CrossEntropy { seed: 0 });
        assert_eq!(
            jobs[4],
            PrototypeJob::Prototype {
                kind: PrototypeKind::Busemann,
                dim: 5,
                seed: 0
            }
        );
        assert_eq!(jobs[5].folder(), "cross_entropy_s1");
        assert_eq!(
            jobs[1].files(),
            vec!["hyperspherical_d2_s0", "embedding_hyperspherical_d2_s0.png"]
        );
        assert_eq!(study.cost(&jobs[1]), 1.0);
        assert_eq!(study.cost(&jobs[3]), 2.0);
        for bad in [
            PrototypeStudy {
                seeds: 0,
                ..study.clone()
            },
            PrototypeStudy {
                dims: vec![],
                ..study.clone()
            },
            PrototypeStudy {
                dims: vec![5, 5],
                ..study.clone()
            },
            PrototypeStudy {
                invert_dim: 3,
                ..study.clone()
            },
        ] {
            assert!(bad.jobs().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn merge_splits_rows_and_baselines_in_job_order() {
        let b = |seed| Baseline {
            seed,
            precision: 0.9,
            recall: 0.8,
            f1: 0.85,
            judge_accuracy: None,
        };
        let r = |seed| Row {
            kind: "busemann".into(),
            dim: 2,
            seed,
            precision: 0.5,
            recall: 0.5,
            f1: 0.5,
            judge_accuracy: Some(0.7),
        };
        let outs = vec![
            PrototypeOutput::CrossEntropy(b(0)),
            PrototypeOutput::Prototype(r(0)),
            PrototypeOutput::CrossEntropy(b(1)),
            PrototypeOutput::Prototype(r(1)),
        ];
        let text = serde_json::to_string(&outs).unwrap();
        let back: Vec<PrototypeOutput> = serde_json::from_str(&text).unwrap();
        let (rows, baselines) = PrototypeStudy::merge(back);
        assert_eq!(rows, vec![r(0), r(1)]);
        assert_eq!(baselines, vec![b(0), b(1)]);
    }
}
