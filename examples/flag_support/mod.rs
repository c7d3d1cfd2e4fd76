//! Flag checks shared by the examples, so that a bad value is refused before any work starts
//! and before any file is written: clap value parsers (`#[arg(value_parser = ...)]`) that
//! refuse NaN, infinite, negative and zero values where they make no sense, and checks of
//! the folders a run reads from or writes to.
#![allow(dead_code)]

use std::path::Path;

use anyhow::{bail, Result};

/// A count of at least 1 (`usize`).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| "expected a whole number >= 1".to_string())?;
    if n == 0 {
        return Err("must be at least 1".into());
    }
    Ok(n)
}

/// A count of at least 1 (`u64`).
pub fn at_least_one_u64(s: &str) -> Result<u64, String> {
    at_least_one(s).map(|n| n as u64)
}

fn number(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| "expected a number".to_string())?;
    if !v.is_finite() {
        return Err("must be a finite number".into());
    }
    Ok(v)
}

/// A finite number > 0.
pub fn positive(s: &str) -> Result<f64, String> {
    let v = number(s)?;
    if v <= 0.0 {
        return Err("must be a finite number > 0".into());
    }
    Ok(v)
}

/// A finite number in (0, 1].
pub fn in_unit_interval(s: &str) -> Result<f64, String> {
    let v = number(s)?;
    if !(v > 0.0 && v <= 1.0) {
        return Err("must be a number in (0, 1]".into());
    }
    Ok(v)
}

/// Refuses a list with a repeated value (its runs would overwrite each other).
pub fn distinct<T: PartialEq + std::fmt::Display>(flag: &str, values: &[T]) -> Result<()> {
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            bail!("{flag}: {v} is given twice");
        }
    }
    Ok(())
}

/// An output folder: missing (it is created) or a folder, never a file.
pub fn output_folder(flag: &str, dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("{flag} {}: is a file, not a folder", dir.display());
    }
    Ok(())
}

/// A folder that caches one kind of artefact (`what`, recognised by the file `marker`): it
/// may be missing or empty (the artefact is made there) or hold `marker`; a folder holding
/// something else is refused, so that a mistyped path never trains into, say, a
/// classifier's folder.
pub fn cache_folder(flag: &str, dir: &Path, marker: &str, what: &str) -> Result<()> {
    output_folder(flag, dir)?;
    if !dir.is_dir() || dir.join(marker).is_file() {
        return Ok(());
    }
    if std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{flag} {}: holds something other than a {what} (no {marker}); give a {what} \
             folder, or a missing or empty folder to make one there",
            dir.display()
        );
    }
    Ok(())
}

/// An input folder that must exist.
pub fn input_folder(flag: &str, dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        bail!("{flag} {}: no such folder", dir.display());
    }
    Ok(())
}

/// `--shard K/N` (K in 1..=N): which share of a study's job list this run computes.
pub fn shard(s: &str) -> Result<netinv::core::shard::Shard, String> {
    s.parse().map_err(|e: netinv::core::Error| e.to_string())
}
