//! Task 1 of the thesis: a batch of 10 seeded noise images becomes digits 0..9 through a
//! trained classifier.
//!
//! ```text
//! cargo run --release --example invert_noise -- --model DIR --out DIR
//!     [--seed N --steps N --lr F --tv F --l2 F --judge DIR --no-judge]
//! ```
//!
//! Defaults are the reference settings (Adam on the image, lr 0.05, 1,000 steps, clamp to
//! [0, 1], start 0.5 + 0.2 N(0, 1), CE mean + 1e-3 squared TV + 1e-4 ||x||^2). `--model` is
//! a checkpoint folder (`model.safetensors` + `config.json`, e.g. from `train_classifier`
//! or `quickstart`). The judge is loaded from `--judge` (default `runs/judge`), and trained
//! there first if missing (PGD training: long).
//!
//! Writes to `--out`: `task1.png` (rows: initial, iterations 10 / 100 / 500, final; captions
//! `n<net class> j<judge class>`), `task1.json` (losses per step, the net's probabilities,
//! the judge's verdict, class-mean correlations, ms per step), `images.npy` (float32
//! [10, 28, 28]) and `targets.json`.

#[path = "invert_support/mod.rs"]
mod support;

use std::path::PathBuf;

use anyhow::Result;
use candle_core::Device;
use clap::Parser;
use netinv::invert::InversionConfig;

/// Invert a trained classifier: noise -> digits 0..9.
#[derive(Debug, Parser)]
struct Args {
    /// Checkpoint folder of the classifier to invert.
    #[arg(long)]
    model: PathBuf,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Seed of the noise start.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of inversion steps.
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Learning rate of Adam on the image.
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// Weight of the squared TV prior (summed over the batch).
    #[arg(long, default_value_t = 1e-3)]
    tv: f64,
    /// Weight of the L2 prior (summed over the batch).
    #[arg(long, default_value_t = 1e-4)]
    l2: f64,
    /// Judge folder (trained there if missing).
    #[arg(long, default_value = "runs/judge")]
    judge: PathBuf,
    /// Skip the judge.
    #[arg(long)]
    no_judge: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mnist = netinv::data::Mnist::embedded()?;
    let net = netinv::models::load_frozen(&args.model, &Device::Cpu)?;
    let judge = if args.no_judge {
        None
    } else {
        Some(support::judge(&args.judge, &mnist)?)
    };
    let cfg = InversionConfig {
        seed: args.seed,
        steps: args.steps,
        lr: args.lr,
        tv: args.tv,
        l2: args.l2,
        snapshots: [10, 100, 500]
            .into_iter()
            .filter(|&s| s < args.steps)
            .collect(),
        ..Default::default()
    };
    let t1 = support::task1(&net, judge.as_ref(), mnist.train(), &cfg, &args.out, true)?;
    println!("net predictions   {:?}", t1.net_predictions);
    if let Some(p) = &t1.judge_predictions {
        println!(
            "judge predictions {p:?}  (accuracy {:.1} / 10)",
            10.0 * t1.judge_accuracy.unwrap_or(0.0)
        );
    }
    println!(
        "class-mean correlation {:.3}, own confidence {:.3}, {:.2} ms per step",
        t1.class_mean_corr, t1.self_confidence, t1.ms_per_step
    );
    println!(
        "wrote {}/task1.png, task1.json, images.npy, targets.json",
        args.out.display()
    );
    Ok(())
}
