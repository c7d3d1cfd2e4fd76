//! The README's main command: train a digit classifier, then invert it.
//!
//! ```text
//! cargo run --release --example quickstart [-- --out runs/quickstart --epochs 4 --judge runs/judge]
//! ```
//!
//! 1. Trains netinv-small with SGD (lr 0.05, momentum 0.9, cosine schedule, batch 64,
//!    4 epochs, seed 0) on the 8,000 embedded training digits, with a progress bar, and
//!    saves it to `runs/quickstart/model/`.
//! 2. Task 1: 10 noise images become the digits 0..9 (`runs/quickstart/task1/`).
//! 3. Task 2: a test image of a 9 becomes an 8 (`runs/quickstart/task2/`).
//!
//! Each task writes a PNG grid, JSON, `images.npy` and `targets.json`. When a judge is
//! cached in `--judge` (default `runs/judge`, made by `invert_noise` or
//! `optimizer_study`), its verdicts are included; the quickstart never trains one itself
//! (that takes much longer than the quickstart's few minutes).

#[path = "invert_support/mod.rs"]
mod support;

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use netinv::invert::{InversionConfig, Judge, JUDGE_FILE};
use netinv::models::train::TrainConfig;

/// Train netinv-small with SGD, then run Task 1 and Task 2.
#[derive(Debug, Parser)]
struct Args {
    /// Output folder.
    #[arg(long, default_value = "runs/quickstart")]
    out: PathBuf,
    /// Training epochs.
    #[arg(long, default_value_t = 4)]
    epochs: usize,
    /// Folder of a cached judge (used only if present).
    #[arg(long, default_value = "runs/judge")]
    judge: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let start = std::time::Instant::now();
    let mnist = netinv::data::Mnist::embedded()?;
    let train_cfg = TrainConfig {
        epochs: args.epochs,
        ..TrainConfig::sgd()
    };
    let model_dir = args.out.join("model");
    let (net, test_accuracy) = support::train_net(&train_cfg, 0, &mnist, &model_dir, "train SGD")?;
    println!(
        "trained netinv-small (SGD, {} epochs): test accuracy {:.4}",
        args.epochs, test_accuracy
    );

    let judge = if args.judge.join(JUDGE_FILE).exists() {
        let j = Judge::load(&args.judge, &candle_core::Device::Cpu)?;
        if j.report().accepted {
            Some(j)
        } else {
            None
        }
    } else {
        None
    };
    let cfg = InversionConfig {
        snapshots: vec![10, 100, 500],
        ..Default::default()
    };
    let t1 = support::task1(
        &net,
        judge.as_ref(),
        mnist.train(),
        &cfg,
        &args.out.join("task1"),
        true,
    )?;
    let t2 = support::task2(
        &net,
        judge.as_ref(),
        mnist.test(),
        &InversionConfig::default(),
        &args.out.join("task2"),
        true,
    )?;

    println!();
    println!("Task 1 (noise -> 0..9): net says {:?}", t1.net_predictions);
    match &t1.judge_predictions {
        Some(p) => println!(
            "  judge says {p:?}: {:.0} / 10 correct",
            10.0 * t1.judge_accuracy.unwrap_or(0.0)
        ),
        None => println!(
            "  (no judge in {}: run invert_noise once to train and cache it)",
            args.judge.display()
        ),
    }
    println!(
        "  correlation with the class-mean digits {:.3}",
        t1.class_mean_corr
    );
    println!(
        "Task 2 (9 -> 8): the net says 8 from iteration {:?}, the judge from {:?}",
        t2.net_first_8, t2.judge_first_8
    );
    println!("  {:.2} ms per inversion step (batch 10)", t1.ms_per_step);
    println!("done in {:.0} s. Look at:", start.elapsed().as_secs_f64());
    for p in [
        "task1/task1.png",
        "task2/task2.png",
        "task1/task1.json",
        "task2/task2.json",
        "model/",
    ] {
        println!("  {}", args.out.join(p).display());
    }
    Ok(())
}
