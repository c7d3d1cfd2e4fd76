//! The CT study on many machines (`netinv_core::shard`): the shard's share is a set of
//! settings (the [`Job::Run`] list, balanced by [`setting_cost`]). The tuning (phases 1 and
//! 2) is shared: every shard recomputes all of it, deterministically, and the merge checks
//! that every shard's tuning is identical. Why recompute rather than split it: `Job::Run`
//! of a setting needs that setting's tuning, and `pg_class` is tuned per noise level across
//! settings, so splitting the tuning would need a second round of shards and a merge in
//! between; the tuning is a small part of a full study (about 5%: 139 of 2,593 s in the
//! baseline log), which bounds the speed-up of N shards by about 1 / (0.05 + 0.95 / N).

use netinv_core::shard::{Merged, Shard};

use super::{setting_cost, Job, JobOutput, Outcome, Study, StudyConfig, Tuning};
use crate::error::invalid;
use crate::Result;

/// The study's name in shard manifests.
pub const SHARD_STUDY: &str = "ct_study";

/// The settings (indices, ascending) that `shard` runs: the settings balanced over the
/// shards by their estimated cost ([`setting_cost`]).
///
/// # Errors
/// [`crate::Error::Core`] if there are fewer settings than shards.
pub fn shard_settings(cfg: &StudyConfig, shard: Shard) -> Result<Vec<usize>> {
    let costs: Vec<f64> = cfg
        .settings()
        .iter()
        .map(|s| setting_cost(s.n_angles))
        .collect();
    Ok(shard.jobs_of(&costs)?)
}

impl Study<'_> {
    /// The [`Job::Run`] jobs of `shard`, longest first (a subset of
    /// [`Study::run_jobs`]; `1/1` gives all of them).
    ///
    /// # Errors
    /// As [`shard_settings`].
    pub fn shard_run_jobs(&self, shard: Shard) -> Result<Vec<Job>> {
        let mine = shard_settings(self.config(), shard)?;
        Ok(self
            .run_jobs()
            .into_iter()
            .filter(|job| matches!(job, Job::Run { setting } if mine.contains(setting)))
            .collect())
    }

    /// The tuning and the outcome of merged shards (`netinv_core::shard::merge` of the
    /// shards' folders; job `j` is the run of setting `j`), exactly as one run merges them.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] if the shards hold another number of settings, an
    /// output of the wrong kind, or a tuning of another shape; as [`Study::merge_runs`].
    pub fn merge_shards(&self, merged: Merged<Tuning, JobOutput>) -> Result<(Tuning, Outcome)> {
        let n = self.settings().len();
        if merged.outputs.len() != n {
            return Err(invalid(
                "merge",
                format!(
                    "the shards hold {} settings, the study has {n}",
                    merged.outputs.len()
                ),
            ));
        }
        let tuning = merged.shared;
        if tuning.tv.len() != n || tuning.hybrid.len() != n {
            return Err(invalid(
                "merge",
                format!("the shards' tuning is not of this study's {n} settings"),
            ));
        }
        let jobs: Vec<Job> = (0..n).map(|setting| Job::Run { setting }).collect();
        let outcome = self.merge_runs(&jobs, merged.outputs)?;
        Ok((tuning, outcome))
    }
}
