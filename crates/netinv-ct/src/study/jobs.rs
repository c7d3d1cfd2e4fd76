//! The study as independent jobs and the scheduler that runs them on the rayon pool.
//!
//! A job's output depends only on the study's settings and the outputs of the jobs of the
//! phases before it (never on the order jobs run in, nor on the thread or machine), and
//! outputs are merged by job index, so one thread, several threads or several machines
//! give the same result.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::setting::SettingResult;
use super::tuning::{HybridTuning, PgClassTuning, TvTuning};
use crate::{Error, Result};

/// One unit of work of the study. Jobs of one phase are independent of each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// Phase 1 (no network): tune the TV weight of setting `setting`.
    TuneTv {
        /// The setting's index.
        setting: usize,
    },
    /// Phase 2: tune the class weight of `pg_class` at the noise level `noise` (an index
    /// into the study's noise levels).
    TunePgClass {
        /// The noise level's index.
        noise: usize,
    },
    /// Phase 2: tune the hybrid's inversion optimiser of setting `setting`.
    TuneHybrid {
        /// The setting's index.
        setting: usize,
    },
    /// Phase 3: every arm on every test digit of setting `setting`, with the choices of
    /// phases 1 and 2.
    Run {
        /// The setting's index.
        setting: usize,
    },
}

/// What a job produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobOutput {
    /// Of [`Job::TuneTv`].
    TuneTv(TvTuning),
    /// Of [`Job::TunePgClass`].
    TunePgClass(PgClassTuning),
    /// Of [`Job::TuneHybrid`].
    TuneHybrid(HybridTuning),
    /// Of [`Job::Run`].
    Run(SettingResult),
}

/// Estimated seconds of one setting of the study at `n_angles` angles (200 digits,
/// defaults): from the per-setting times of a full run (about 25 s at 2 angles, 45 s at
/// 45, 75 s at 90); only the order it gives matters.
pub fn setting_cost(n_angles: usize) -> f64 {
    24.0 + 0.6 * n_angles as f64
}

/// The indices of `costs` from the highest estimated cost to the lowest (ties in index
/// order).
pub fn longest_first(costs: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by(|&a, &b| costs[b].total_cmp(&costs[a]));
    order
}

/// Runs `task(i)` for every index of `order` (a permutation of `0..order.len()`) on the
/// current rayon pool: every worker takes the next index of `order` when it is free, so
/// listing the longest tasks first keeps the threads busy to the end. Returns the results
/// by index (`out[i] = task(i)`), whatever the order they ran in; after a failure no new
/// task starts and the first failure (by index) is returned.
///
/// # Errors
/// The first failing task's error (by index); [`Error::InvalidConfig`] if `order` is not a
/// permutation.
pub fn par_longest_first<R: Send>(
    order: &[usize],
    task: impl Fn(usize) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let n = order.len();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Vec<Mutex<Option<Result<R>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let worker = || {
        while !failed.load(Ordering::Relaxed) {
            let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            let out = task(i);
            failed.fetch_or(out.is_err(), Ordering::Relaxed);
            if let Some(slot) = slots.get(i) {
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(out);
            }
        }
    };
    rayon::scope(|scope| {
        for _ in 0..rayon::current_num_threads().min(n) {
            scope.spawn(|_| worker());
        }
    });
    let (mut results, mut failure, mut missing) = (Vec::with_capacity(n), None, None);
    for (i, slot) in slots.into_iter().enumerate() {
        match slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(Ok(out)) => results.push(out),
            Some(Err(e)) => {
                failure.get_or_insert(e);
            }
            None => {
                missing.get_or_insert(i);
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some(i) = missing {
        return Err(crate::error::invalid(
            "order",
            format!("task {i} did not run (the order is not a permutation)"),
        ));
    }
    Ok(results)
}

/// The error of a job output of the wrong kind for its job (a merge of mismatched files).
pub(crate) fn wrong_output(job: &Job) -> Error {
    Error::Shape {
        what: "job output",
        expected: format!("the output of {job:?}"),
        got: "another job's output".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_by_index_whatever_the_order() {
        let order = longest_first(&[1.0, 3.0, 2.0, 3.0]);
        assert_eq!(order, vec![1, 3, 2, 0]);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let out = pool
            .install(|| par_longest_first(&order, |i| Ok(i * 10)))
            .unwrap();
        assert_eq!(out, vec![0, 10, 20, 30]);
    }

    #[test]
    fn the_first_failure_by_index_is_returned() {
        let order = [0, 1, 2];
        let out = par_longest_first(&order, |i| {
            if i >= 1 {
                Err(crate::error::invalid("task", format!("{i}")))
            } else {
                Ok(i)
            }
        });
        match out {
            Err(Error::InvalidConfig { reason, .. }) => assert_eq!(reason, "1"),
            other => panic!("{other:?}"),
        }
        assert!(par_longest_first(&[0, 0], Ok).is_err());
    }

    #[test]
    fn jobs_round_trip_through_json() {
        let job = Job::Run { setting: 3 };
        let text = serde_json::to_string(&job).unwrap();
        assert_eq!(text, r#"{"job":"run","setting":3}"#);
        assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), job);
    }
}
