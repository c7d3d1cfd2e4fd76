//! The README's main command: train a digit classifier, then invert it.
//!
//! ```text
//! cargo run --release --example quickstart [-- --out runs/quickstart --epochs 4 --judge runs/judge --quick]
//! ```
//!
//! `--quick`: 1 training epoch (unless `--epochs` is given) and 100 inversion steps for
//! Task 1 and Task 2. Every flag is checked before any work starts (epochs >= 1, `--out`
//! and `--judge` not files).
//!
//! 1. Trains netinv-small with SGD (lr 0.05, momentum 0.9, cosine schedule, batch 64,
//!    4 epochs, seed 0) on the 8,000 embedded training digits, with a progress bar, and
//!    saves it to `runs/quickstart/model/`.
//! 2. Task 1: 10 noise images become the digits 0..9 (`runs/quickstart/task1/`).
//! 3. Task 2: a test image of a 9 becomes an 8 (`runs/quickstart/task2/`).
//! 4. Few-angle CT: the first test digit projected at 4 and 8 angles, SIRT-100 beside
//!    SIRT + inversion (label-free: the class is the net's prediction on the current
//!    reconstruction), PSNR / SSIM in the captions (`runs/quickstart/ct/`). The quickstart
//!    net has no BatchNorm, so the inversion steps use the class term with TV + L2 only.
//!
//! Each task writes a PNG grid, JSON, `images.npy` and `targets.json`. When a judge is
//! cached in `--judge` (default `runs/judge`, made by `invert_noise` or
//! `optimizer_study`), its verdicts are included; the quickstart never trains one itself
//! (that takes much longer than the quickstart's few minutes).

#[path = "flag_support/mod.rs"]
mod flag_support;
#[path = "invert_support/mod.rs"]
mod support;

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use ndarray::Array2;
use netinv::core::{write_json, ImageGrid, ImageRef, Monitor};
use netinv::ct::{scan_operator, HybridConfig, HybridReconstructor, LabelMode};
use netinv::data::Dataset;
use netinv::invert::InversionConfig;
use netinv::metrics::{psnr, ssim, SsimConfig};
use netinv::models::train::TrainConfig;
use netinv::models::Classifier;
use netinv::tomo::{LinearOperator, Sirt, SirtConfig};
use serde::Serialize;

/// Train netinv-small with SGD, then run Task 1 and Task 2.
#[derive(Debug, Parser)]
struct Args {
    /// Output folder.
    #[arg(long, default_value = "runs/quickstart")]
    out: PathBuf,
    /// Training epochs [default: 4, 1 with --quick].
    #[arg(long)]
    epochs: Option<usize>,
    /// Folder of a cached judge (used only if present).
    #[arg(long, default_value = "runs/judge")]
    judge: PathBuf,
    /// Smoke-test settings (see the header).
    #[arg(long)]
    quick: bool,
}

impl Args {
    /// Training epochs and inversion steps, checked before any work.
    fn validate(&self) -> Result<(usize, usize)> {
        let epochs = self.epochs.unwrap_or(if self.quick { 1 } else { 4 });
        if epochs == 0 {
            return Err(support::flag_error("epochs", 0, "must be at least 1"));
        }
        flag_support::output_folder("--out", &self.out)?;
        flag_support::output_folder("--judge", &self.judge)?;
        let steps = if self.quick {
            100
        } else {
            InversionConfig::default().steps
        };
        Ok((epochs, steps))
    }
}

fn main() -> Result<()> {
    netinv::core::install_cleanup_handler()?;
    netinv::core::retain_freed_memory();
    let args = Args::parse();
    let (epochs, steps) = args.validate()?;
    let start = std::time::Instant::now();
    let mnist = netinv::data::Mnist::embedded()?;
    let train_cfg = TrainConfig {
        epochs,
        ..TrainConfig::sgd()
    };
    let model_dir = args.out.join("model");
    let (net, test_accuracy) = support::train_net(&train_cfg, 0, &mnist, &model_dir, "train SGD")?;
    println!("trained netinv-small (SGD, {epochs} epochs): test accuracy {test_accuracy:.4}");

    let judge = support::cached_judge(&args.judge)?;
    let cfg = InversionConfig {
        steps,
        snapshots: [10, 100, 500].into_iter().filter(|&s| s < steps).collect(),
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
        mnist.train(),
        mnist.test(),
        &InversionConfig {
            steps,
            ..Default::default()
        },
        &args.out.join("task2"),
        true,
    )?;

    println!();
    println!(
        "Task 1 (noise -> 0..9): net says {}",
        support::classes_text(&t1.net_predictions)
    );
    match (&t1.judge_predictions, t1.judge_accuracy) {
        (Some(p), Some(accuracy)) => println!(
            "  judge says {}: {:.0} / 10 correct",
            support::classes_text(p),
            10.0 * accuracy
        ),
        _ => println!(
            "  (no judge in {}: run invert_noise once to train and cache it)",
            args.judge.display()
        ),
    }
    println!(
        "  correlation with the class-mean digits {:.3}",
        t1.class_mean_corr
    );
    let judge_first = if judge.is_some() {
        support::iteration_text(t2.judge_first_8)
    } else {
        "(no judge)".to_string()
    };
    println!(
        "Task 2 (9 -> 8): the net says 8 from {}, the judge from {judge_first}",
        support::iteration_text(t2.net_first_8)
    );
    println!("  {:.2} ms per inversion step (batch 10)", t1.ms_per_step);
    let ct = ct_panel(&net, mnist.test(), &args.out.join("ct"))?;
    for r in &ct {
        println!(
            "CT, {} angles: SIRT-100 {:.2} dB / SSIM {:.3}, SIRT + inversion {:.2} dB / SSIM {:.3}",
            r.n_angles, r.sirt_psnr, r.sirt_ssim, r.hybrid_psnr, r.hybrid_ssim
        );
    }
    println!("done in {:.0} s. Look at:", start.elapsed().as_secs_f64());
    for p in [
        "task1/task1.png",
        "task2/task2.png",
        "task1/task1.json",
        "task2/task2.json",
        "ct/ct.png",
        "ct/ct.json",
        "model/",
    ] {
        println!("  {}", args.out.join(p).display());
    }
    Ok(())
}

/// One row of the CT panel.
#[derive(Debug, Serialize)]
struct CtRow {
    n_angles: usize,
    digit: u8,
    sirt_psnr: f64,
    sirt_ssim: f64,
    hybrid_psnr: f64,
    hybrid_ssim: f64,
}

/// PSNR (data range 1) and Gaussian SSIM of `rec` against `truth`.
fn scores(truth: &Array2<f32>, rec: &Array2<f32>) -> Result<(f64, f64)> {
    Ok((
        psnr(truth.view(), rec.view(), 1.0)?,
        ssim(truth.view(), rec.view(), &SsimConfig::gaussian())?,
    ))
}

/// The first test digit at 4 and 8 angles: SIRT-100 beside the label-free hybrid; writes
/// `ct.png` (rows: angle counts; columns: truth, SIRT-100, SIRT + inversion) and `ct.json`.
fn ct_panel(net: &Classifier, test: &Dataset, out: &std::path::Path) -> Result<Vec<CtRow>> {
    let truth = test.image(0).to_owned();
    let (rows, cols) = truth.dim();
    let sirt = Sirt::new(SirtConfig {
        iterations: 100,
        min: Some(0.0),
        max: Some(1.0),
        ..Default::default()
    })?;
    let mut hybrid_cfg = HybridConfig::default();
    hybrid_cfg.inversion.bn = 0.0;
    let hybrid = HybridReconstructor::new(hybrid_cfg)?;
    let mut data = Vec::new();
    let mut captions = Vec::new();
    let mut table = Vec::new();
    for n_angles in [4, 8] {
        let op = scan_operator(rows, n_angles)?;
        let sino = op.apply(truth.view());
        let plain = sirt.reconstruct(&op, sino.view())?.image;
        let mixed = hybrid
            .reconstruct(
                net,
                &op,
                sino.view(),
                LabelMode::Predicted,
                None,
                &mut Monitor::new(),
            )?
            .image;
        let (sirt_psnr, sirt_ssim) = scores(&truth, &plain)?;
        let (hybrid_psnr, hybrid_ssim) = scores(&truth, &mixed)?;
        for img in [&truth, &plain, &mixed] {
            data.extend(img.iter().copied());
        }
        captions.push(format!("digit {}", test.labels()[0]));
        captions.push(format!("{sirt_psnr:.1}dB {sirt_ssim:.2}"));
        captions.push(format!("{hybrid_psnr:.1}dB {hybrid_ssim:.2}"));
        table.push(CtRow {
            n_angles,
            digit: test.labels()[0],
            sirt_psnr,
            sirt_ssim,
            hybrid_psnr,
            hybrid_ssim,
        });
    }
    ImageGrid::new(3)
        .with_scale(4)
        .with_column_labels(vec!["truth".into(), "SIRT-100".into(), "SIRT+inv".into()])
        .with_row_labels(
            table
                .iter()
                .map(|r| format!("{} ang", r.n_angles))
                .collect(),
        )
        .with_captions(captions)
        .write_png(out.join("ct.png"), ImageRef::new(&data, 6, rows, cols)?)?;
    write_json(out.join("ct.json"), &table)?;
    Ok(table)
}
