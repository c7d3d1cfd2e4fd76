//! Prints the verdict rows of thesis chapter 5 (and of netinv's generative prior, issue 17)
//! for docs/results.md from the committed results of `ct_study` and `ct_ablation`.
//!
//! ```text
//! cargo run --release --example ct_verdicts -- results/ct_study results/ct_ablation
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use netinv::ct::study::ablation::{summarize_ablation, AblationImage};
use netinv::ct::study::verdicts::{parse_psnr_csv, verdicts};
use netinv::metrics::verdict::VERDICT_TABLE_HEADER;

/// Print chapter 5's verdict rows from ct_study's and ct_ablation's result folders.
#[derive(Parser, Debug)]
struct Args {
    /// ct_study's compact results (holds `per_image_psnr.csv`).
    study: PathBuf,
    /// ct_ablation's output folder (holds `per_image.json`).
    ablation: PathBuf,
}

fn read(path: PathBuf) -> Result<String> {
    std::fs::read_to_string(&path).with_context(|| path.display().to_string())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let records = parse_psnr_csv(&read(args.study.join("per_image_psnr.csv"))?)?;
    let rows: Vec<AblationImage> =
        serde_json::from_str(&read(args.ablation.join("per_image.json"))?)
            .context("ct_ablation per_image.json")?;
    let summary = summarize_ablation(&rows)?;
    println!("{VERDICT_TABLE_HEADER}");
    for row in verdicts(&records, &summary)? {
        println!("{}", row.markdown());
    }
    Ok(())
}
