//! Studies on many machines: a study's job list split into `N` shards, each run anywhere,
//! and the shards' output folders merged back into the single-machine result.
//!
//! A [`Shard`] (`K/N` on a command line, `K` in `1..=N`) owns a deterministic share of the
//! job list ([`Shard::jobs_of`]: longest-first greedy balancing of estimated costs, ties by
//! job index; with equal costs that is round robin). A shard writes its job outputs with a
//! [`ShardManifest`] to [`SHARD_FILE`] in its folder ([`write_shard`], atomic). [`merge`]
//! reads the folders back and refuses shards of another study, of a different
//! configuration, shard count or shared phase, and missing or duplicated jobs; it returns
//! the outputs in job order, so a study merges them exactly as a single run does.
//!
//! ```
//! use netinv_core::shard::{merge, write_shard, Shard, ShardManifest};
//!
//! let dirs = tempfile::tempdir().unwrap();
//! let costs = [3.0, 1.0, 2.0, 1.0, 1.0];
//! let config = serde_json::json!({ "seeds": 5 });
//! let mut folders = Vec::new();
//! for k in 1..=2 {
//!     let shard: Shard = format!("{k}/2").parse().unwrap();
//!     let jobs = shard.jobs_of(&costs).unwrap();
//!     let outputs: Vec<u64> = jobs.iter().map(|&j| 10 * j as u64).collect();
//!     let dir = dirs.path().join(format!("shard{k}"));
//!     let manifest = ShardManifest::new("demo", config.clone(), shard, costs.len(), jobs);
//!     write_shard(&dir, &manifest, &(), &outputs).unwrap();
//!     folders.push(dir);
//! }
//! let merged = merge::<(), u64>(&folders, "demo", &dirs.path().join("merged")).unwrap();
//! assert_eq!(merged.outputs, vec![0, 10, 20, 30, 40]);
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{atomic_write_bytes, write_json, Error, Result};

/// The file a finished shard writes into its output folder.
pub const SHARD_FILE: &str = "shard.json";

/// The version of the [`SHARD_FILE`] layout.
pub const SHARD_FORMAT: u32 = 1;

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field,
        reason: reason.into(),
    }
}

/// Shard `index` of `count` (both 1-based: `1/1` is the whole study). Written and parsed as
/// `K/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    /// Shard `index` of `count`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] unless `1 <= index <= count`.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 {
            return Err(invalid("shard", "K/N needs N >= 1 shards"));
        }
        if !(1..=count).contains(&index) {
            return Err(invalid(
                "shard",
                format!("{index}/{count}: K must be in 1..={count} (shards count from 1)"),
            ));
        }
        Ok(Self { index, count })
    }

    /// The whole study as one shard (`1/1`).
    pub fn whole() -> Self {
        Self { index: 1, count: 1 }
    }

    /// `K`, in `1..=N`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// `N`, at least 1.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The indices (ascending) of the jobs this shard runs, given every job's estimated
    /// cost (any unit; only the order and sums matter, so equal costs give round robin).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if there are fewer jobs than shards (a shard would have
    /// nothing to do) or a cost is not finite and >= 0.
    pub fn jobs_of(&self, costs: &[f64]) -> Result<Vec<usize>> {
        let owner = assign(costs, self.count)?;
        Ok((0..costs.len())
            .filter(|&j| owner[j] == self.index - 1)
            .collect())
    }
}

/// The shard (0-based) of every job: jobs in decreasing cost (ties by index) each go to the
/// shard with the least total cost so far (ties to the lowest shard). Deterministic.
///
/// # Errors
/// [`Error::InvalidConfig`] if `count` is 0 or larger than the number of jobs, or a cost is
/// not finite and >= 0.
pub fn assign(costs: &[f64], count: usize) -> Result<Vec<usize>> {
    if count == 0 {
        return Err(invalid("shard", "K/N needs N >= 1 shards"));
    }
    if count > costs.len() {
        return Err(invalid(
            "shard",
            format!(
                "N = {count} shards but the study has only {} jobs: use N <= {}",
                costs.len(),
                costs.len()
            ),
        ));
    }
    if let Some(c) = costs.iter().find(|c| !(c.is_finite() && **c >= 0.0)) {
        return Err(invalid(
            "costs",
            format!("job costs must be finite and >= 0, got {c}"),
        ));
    }
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by(|&a, &b| costs[b].total_cmp(&costs[a]));
    let mut load = vec![0.0f64; count];
    let mut owner = vec![0usize; costs.len()];
    for j in order {
        let lightest = (0..count)
            .min_by(|&a, &b| load[a].total_cmp(&load[b]))
            .unwrap_or(0);
        load[lightest] += costs[j];
        owner[j] = lightest;
    }
    Ok(owner)
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = Error;

    /// Parses `K/N` (`2/8`).
    fn from_str(s: &str) -> Result<Self> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| invalid("shard", format!("{s:?}: expected K/N, e.g. 2/8")))?;
        let number = |v: &str, what: &str| {
            v.trim().parse::<usize>().map_err(|_| {
                invalid(
                    "shard",
                    format!("{s:?}: {what} must be a whole number (K/N, e.g. 2/8)"),
                )
            })
        };
        Self::new(number(k, "K")?, number(n, "N")?)
    }
}

impl Serialize for Shard {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Shard {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a shard ran: recorded in its [`SHARD_FILE`] beside the outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardManifest {
    /// [`SHARD_FORMAT`] of the writer.
    pub format: u32,
    /// The study's name (`ct_study`): shards of different studies never merge.
    pub study: String,
    /// Everything that determines the study's results (flags, settings, model); shards
    /// merge only if theirs are equal. Leave out what does not change results (output
    /// folder, thread count, timings).
    pub config: serde_json::Value,
    /// Which shard this is.
    pub shard: Shard,
    /// The number of jobs of the whole study.
    pub jobs: usize,
    /// The indices of the jobs this shard ran, in the order of its outputs.
    pub done: Vec<usize>,
}

impl ShardManifest {
    /// The manifest of `shard` of the study `study` with `jobs` jobs in all, which ran the
    /// jobs `done`.
    pub fn new(
        study: &str,
        config: serde_json::Value,
        shard: Shard,
        jobs: usize,
        done: Vec<usize>,
    ) -> Self {
        Self {
            format: SHARD_FORMAT,
            study: study.to_string(),
            config,
            shard,
            jobs,
            done,
        }
    }
}

/// The contents of a [`SHARD_FILE`]: the manifest, the output of the phase every shard
/// shares (`()` if none), and one output per job of `manifest.done`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardFile<S, T> {
    /// What the shard ran.
    pub manifest: ShardManifest,
    /// The shared phase's output (the same in every shard; checked on merge).
    pub shared: S,
    /// `outputs[k]` is the output of job `manifest.done[k]`.
    pub outputs: Vec<T>,
}

/// Writes a finished shard's [`SHARD_FILE`] into `dir` (created if missing), atomically.
///
/// # Errors
/// [`Error::Shape`] if `outputs` and `manifest.done` differ in length; [`Error::Json`] /
/// [`Error::Io`] if serialising or writing fails.
pub fn write_shard<S: Serialize, T: Serialize>(
    dir: &Path,
    manifest: &ShardManifest,
    shared: &S,
    outputs: &[T],
) -> Result<()> {
    if outputs.len() != manifest.done.len() {
        return Err(Error::Shape {
            expected: format!("{} job outputs (one per job done)", manifest.done.len()),
            got: format!("{}", outputs.len()),
        });
    }
    #[derive(Serialize)]
    struct View<'a, S, T> {
        manifest: &'a ShardManifest,
        shared: &'a S,
        outputs: &'a [T],
    }
    write_json(
        dir.join(SHARD_FILE),
        &View {
            manifest,
            shared,
            outputs,
        },
    )
}

/// Reads the [`SHARD_FILE`] of `dir`.
///
/// # Errors
/// [`Error::InvalidConfig`] (field `merge`) naming the folder if it has no shard file (the
/// shard did not finish, or this is not a shard's folder) or the file is not a shard of
/// this kind; [`Error::Io`] if reading fails.
pub fn read_shard<S: DeserializeOwned, T: DeserializeOwned>(dir: &Path) -> Result<ShardFile<S, T>> {
    let path = dir.join(SHARD_FILE);
    if !path.is_file() {
        return Err(invalid(
            "merge",
            format!(
                "{} has no {SHARD_FILE}: not a shard's output folder, or its shard has not finished",
                dir.display()
            ),
        ));
    }
    let text = std::fs::read(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|e| {
        invalid(
            "merge",
            format!("{}: not a readable shard file ({e})", path.display()),
        )
    })
}

/// Merged shards: the configuration they share and every job's output in job order.
#[derive(Debug, Clone)]
pub struct Merged<S, T> {
    /// The configuration every shard recorded.
    pub config: serde_json::Value,
    /// The shared phase's output (equal in every shard).
    pub shared: S,
    /// `outputs[j]` is the output of job `j`.
    pub outputs: Vec<T>,
    /// `sources[j]` is the folder of the shard that ran job `j` (for its per-job files).
    pub sources: Vec<PathBuf>,
}

/// Reads the shard folders `dirs` of the study `study` and merges their outputs in job
/// order. `out` is the merge's output folder, which must not be one of the shard folders.
///
/// # Errors
/// [`Error::InvalidConfig`] (field `merge`) if no folder is given, `out` is a shard folder,
/// a folder holds no finished shard or a shard of another study or format, the shards
/// differ in configuration, shard count, job count or shared phase, or a job is missing or
/// produced by two shards; the errors of [`read_shard`].
pub fn merge<S, T>(dirs: &[PathBuf], study: &str, out: &Path) -> Result<Merged<S, T>>
where
    S: DeserializeOwned + Serialize,
    T: DeserializeOwned,
{
    let Some(first_dir) = dirs.first() else {
        return Err(invalid("merge", "give at least one shard folder"));
    };
    let out_real = std::fs::canonicalize(out).ok();
    let mut first: Option<(ShardManifest, S)> = None;
    let mut slots: Vec<Option<(T, PathBuf)>> = Vec::new();
    for dir in dirs {
        if out_real.is_some() && std::fs::canonicalize(dir).ok() == out_real {
            return Err(invalid(
                "merge",
                format!(
                    "{}: the merge's output folder is one of the shard folders",
                    dir.display()
                ),
            ));
        }
        let file: ShardFile<S, T> = read_shard(dir)?;
        let m = &file.manifest;
        if m.format != SHARD_FORMAT || m.study != study {
            return Err(invalid(
                "merge",
                format!(
                    "{} holds a shard of {:?} (format {}), not of {study:?} (format {SHARD_FORMAT})",
                    dir.display(),
                    m.study,
                    m.format
                ),
            ));
        }
        match &first {
            None => {
                slots = (0..m.jobs).map(|_| None).collect();
                first = Some((m.clone(), file.shared));
            }
            Some((m0, shared0)) => {
                same_study(m0, first_dir, m, dir)?;
                if serde_json::to_value(shared0)? != serde_json::to_value(&file.shared)? {
                    return Err(invalid(
                        "merge",
                        format!(
                            "{} and {} computed different shared phases (tuning) from the same configuration: not the same code or machine arithmetic",
                            first_dir.display(),
                            dir.display()
                        ),
                    ));
                }
            }
        }
        put_outputs(&mut slots, file.manifest, file.outputs, dir)?;
    }
    let (manifest, shared) = first.ok_or_else(|| invalid("merge", "no shard read"))?;
    let missing: Vec<usize> = (0..slots.len()).filter(|&j| slots[j].is_none()).collect();
    if !missing.is_empty() {
        return Err(invalid(
            "merge",
            format!(
                "jobs {missing:?} of {} are in none of the shard folders (a shard of {} missing?)",
                slots.len(),
                manifest.shard.count
            ),
        ));
    }
    let (outputs, sources) = slots.into_iter().flatten().unzip();
    Ok(Merged {
        config: manifest.config,
        shared,
        outputs,
        sources,
    })
}

/// Refuses a shard `m` (from `dir`) that does not belong with the first one, `m0`.
fn same_study(m0: &ShardManifest, dir0: &Path, m: &ShardManifest, dir: &Path) -> Result<()> {
    let (a, b) = (dir0.display(), dir.display());
    if m.config != m0.config {
        let key = first_difference(&m0.config, &m.config);
        return Err(invalid(
            "merge",
            format!("{a} and {b} ran different configurations (first difference: {key})"),
        ));
    }
    if m.shard.count != m0.shard.count || m.jobs != m0.jobs {
        return Err(invalid(
            "merge",
            format!(
                "{a} is shard {} of a {}-job split, {b} shard {} of a {}-job split",
                m0.shard, m0.jobs, m.shard, m.jobs
            ),
        ));
    }
    Ok(())
}

/// Files the outputs of one shard into `slots` by job index.
fn put_outputs<T>(
    slots: &mut [Option<(T, PathBuf)>],
    manifest: ShardManifest,
    outputs: Vec<T>,
    dir: &Path,
) -> Result<()> {
    if outputs.len() != manifest.done.len() {
        return Err(invalid(
            "merge",
            format!(
                "{}: {} outputs for {} jobs",
                dir.display(),
                outputs.len(),
                manifest.done.len()
            ),
        ));
    }
    for (j, out) in manifest.done.into_iter().zip(outputs) {
        match slots.get_mut(j) {
            Some(slot @ None) => *slot = Some((out, dir.to_path_buf())),
            Some(Some((_, other))) => {
                return Err(invalid(
                    "merge",
                    format!(
                        "job {j} is in both {} and {} (the same shard given twice?)",
                        other.display(),
                        dir.display()
                    ),
                ))
            }
            None => {
                return Err(invalid(
                    "merge",
                    format!("{}: job {j} is out of range", dir.display()),
                ))
            }
        }
    }
    Ok(())
}

/// The path of the first difference between two JSON values (`angles`, `args.seed`).
fn first_difference(a: &serde_json::Value, b: &serde_json::Value) -> String {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys = x.keys().chain(y.keys().filter(|k| !x.contains_key(*k)));
            for k in keys {
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) if u == v => {}
                    (Some(u), Some(v)) => {
                        let inner = first_difference(u, v);
                        return if inner.is_empty() {
                            k.clone()
                        } else {
                            format!("{k}.{inner}")
                        };
                    }
                    _ => return k.clone(),
                }
            }
            String::new()
        }
        _ => String::new(),
    }
}

/// Copies the file or folder `rel` from the shard folder `from` into `to` (recursively,
/// each file atomically), so a merged folder holds a job's files as a single run would.
/// A missing `rel` is skipped (jobs that wrote nothing there).
///
/// # Errors
/// [`Error::Io`] if reading or writing fails.
pub fn copy_job_files(from: &Path, to: &Path, rel: &Path) -> Result<()> {
    let src = from.join(rel);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    if src.is_dir() {
        for entry in std::fs::read_dir(&src).map_err(io(&src))? {
            let entry = entry.map_err(io(&src))?;
            copy_job_files(from, to, &rel.join(entry.file_name()))?;
        }
    } else if src.is_file() {
        let bytes = std::fs::read(&src).map_err(io(&src))?;
        atomic_write_bytes(to.join(rel), &bytes)?;
    }
    Ok(())
}

/// For `#[serde(deserialize_with = "netinv_core::shard::nan_from_null")]` on an `f64` that
/// may be NaN: serde_json writes NaN as `null`, which reads back as NaN, so outputs with
/// "no value" NaNs survive a shard file.
///
/// # Errors
/// The deserializer's error for anything but a number or `null`.
pub fn nan_from_null<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests;
