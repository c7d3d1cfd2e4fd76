//! Prints the judge panel's table (docs/results/judges.md) from the judges' reports: a
//! panel folder as `invert_noise --judge DIR` leaves it (`judge.json` there and in every
//! member's subfolder), or a folder of `<name>.json` reports (the committed
//! `results/judges/`).
//!
//! ```text
//! cargo run --release --example judge_table -- results/judges
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use netinv::models::judge::{default_panel, member_dir, report_table, JudgeReport, JUDGE_FILE};

/// Print the judge panel's table from its reports.
#[derive(Parser, Debug)]
struct Args {
    /// A panel folder, or a folder of `<judge name>.json` reports.
    dir: PathBuf,
}

/// The report of panel member `name`: `dir/<name>.json` if present, else the member's
/// `judge.json` inside the panel folder.
fn report(dir: &Path, index: usize) -> Result<(String, JudgeReport)> {
    let members = default_panel();
    let name = members[index].name.clone();
    let flat = dir.join(format!("{name}.json"));
    let path = if flat.exists() {
        flat
    } else {
        member_dir(dir, &members, index).join(JUDGE_FILE)
    };
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let report = serde_json::from_str(&text).with_context(|| path.display().to_string())?;
    Ok((name, report))
}

fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.dir.is_dir(), "{} is not a folder", args.dir.display());
    let reports = (0..default_panel().len())
        .map(|i| report(&args.dir, i))
        .collect::<Result<Vec<_>>>()?;
    print!("{}", report_table(&reports));
    Ok(())
}
