//! Prints the prototype study's tables of docs/results.md ("Prototypes") from a result
//! folder of `prototype_study` (its `study.json` and `baseline.json`) and, when present,
//! the verdict rows of thesis chapter 4 (docs/results.md's verdict table), and the 2-D
//! hyperspherical search (`gap_search.json` of `prototype_study --gap-search`).
//!
//! ```text
//! cargo run --release --example prototype_tables -- results/prototype_study
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use netinv::prototypes::study::{self, Baseline, GapRow, Row};

/// Print the prototype study's tables from its result files.
#[derive(Parser, Debug)]
struct Args {
    /// Folders holding `study.json` + `baseline.json` and/or `gap_search.json` (each
    /// folder's tables printed under its name).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
}

/// `dir/name` parsed as JSON, `None` when the file does not exist.
fn read<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<Option<T>> {
    let path = dir.join(name);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(Some(
        serde_json::from_str(&text).with_context(|| path.display().to_string())?,
    ))
}

fn main() -> Result<()> {
    let args = Args::parse();
    for dir in &args.dirs {
        anyhow::ensure!(dir.is_dir(), "{} is not a folder", dir.display());
        println!("## {}\n", dir.display());
        let rows: Option<Vec<Row>> = read(dir, "study.json")?;
        let baselines: Option<Vec<Baseline>> = read(dir, "baseline.json")?;
        let gap: Option<Vec<GapRow>> = read(dir, "gap_search.json")?;
        anyhow::ensure!(
            rows.is_some() || gap.is_some(),
            "{} has neither study.json nor gap_search.json",
            dir.display()
        );
        if let Some(rows) = rows {
            let baselines = baselines.context("study.json without baseline.json")?;
            println!("{}", study::tables(&rows, &baselines));
            println!(
                "Verdicts:\n\n{}",
                netinv::metrics::verdict::VERDICT_TABLE_HEADER
            );
            for row in study::verdicts(&rows, &baselines) {
                println!("{}", row.markdown());
            }
            println!();
        }
        if let Some(gap) = gap {
            println!(
                "2-D hyperspherical search (validation split):\n\n{}",
                study::gap_table(&gap)
            );
        }
    }
    Ok(())
}
