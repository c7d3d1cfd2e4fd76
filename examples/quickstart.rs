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
//! 4. Few-angle CT: trains the conditional VAE of ct_study's generative prior (40 epochs,
//!    1 with `--quick`; `runs/quickstart/cvae/`), then reconstructs the first test digit
//!    from 2, 3 and 4 noiseless projections by SIRT-100, SIRT + inversion (label-free: the
//!    class is the net's prediction on the current reconstruction; the quickstart net has
//!    no BatchNorm, so the inversion steps use the class term with TV + L2 only), TV-PDHG,
//!    and the generative prior (label-free latent search through the conditional VAE,
//!    then data-consistency refinement). TV's weight and the prior's settings are tuned
//!    per angle count on 8 validation digits (the last training digits, which the VAE
//!    never sees). PSNR / SSIM in the captions (`runs/quickstart/ct/`).
//!
//! Each task writes a PNG grid, JSON, `images.npy` and `targets.json`. When a judge is
//! cached in `--judge` (default `runs/judge`, made by `invert_noise` or
//! `optimizer_study`), its verdicts are included; the quickstart never trains one itself
//! (that takes much longer than the quickstart's few minutes).

#[path = "flag_support/mod.rs"]
mod flag_support;
#[path = "invert_support/mod.rs"]
mod support;
#[path = "vae_support/mod.rs"]
mod vae_support;

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use ndarray::Array2;
use netinv::core::{write_json, ImageGrid, ImageRef, Monitor};
use netinv::ct::generative::{ClassChoice, ConditionalVae};
use netinv::ct::study::{
    sinogram, tune_generative, tune_tv, tv_config, GenerativeConfig, GenerativeTuning,
    ValidationSet,
};
use netinv::ct::{scan_operator, HybridConfig, HybridReconstructor, LabelMode};
use netinv::data::Mnist;
use netinv::invert::InversionConfig;
use netinv::metrics::{psnr, ssim, SsimConfig};
use netinv::models::train::TrainConfig;
use netinv::models::{Classifier, Vae};
use netinv::tomo::{CsrOperator, Sirt, SirtConfig, TvPdhg};
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
    let cvae = train_cvae(&mnist, args.quick, &args.out.join("cvae"))?;
    let ct = ct_panel(&net, &cvae, &mnist, &args.out.join("ct"))?;
    println!("CT of test digit 0 (noiseless; PSNR dB / SSIM):");
    for r in &ct {
        println!(
            "  {} angles: SIRT-100 {:.2} / {:.3}, SIRT + inversion {:.2} / {:.3}, TV {:.2} / {:.3}, CVAE + DC {:.2} / {:.3} (class {}, confidence {:.3})",
            r.n_angles,
            r.sirt_psnr,
            r.sirt_ssim,
            r.hybrid_psnr,
            r.hybrid_ssim,
            r.tv_psnr,
            r.tv_ssim,
            r.cvae_dc_psnr,
            r.cvae_dc_ssim,
            r.cvae_class,
            r.cvae_confidence
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
        "cvae/",
    ] {
        println!("  {}", args.out.join(p).display());
    }
    Ok(())
}

/// The CT panel's angle counts: few angles, where a class prior matters most.
const CT_ANGLES: [usize; 3] = [2, 3, 4];
/// Validation digits (the last training digits, never seen by the conditional VAE) that
/// tune TV's weight and the generative prior's settings per angle count, as in ct_study.
const CT_VAL_DIGITS: usize = 8;
/// Training digits at the end of the training split kept from the conditional VAE
/// (ct_study's reserve: both train the same model from the same recipe).
const VAE_RESERVE: usize = 500;
/// PDHG iterations of the TV baseline (ct_study's default).
const PDHG_ITERATIONS: usize = 1000;
/// Conditional-VAE training epochs (ct_study's default; 1 with `--quick`).
const VAE_EPOCHS: usize = 40;

/// One row of the CT panel (noiseless data, PSNR in dB, data range 1).
#[derive(Debug, Serialize)]
struct CtRow {
    n_angles: usize,
    digit: u8,
    sirt_psnr: f64,
    sirt_ssim: f64,
    hybrid_psnr: f64,
    hybrid_ssim: f64,
    tv_psnr: f64,
    tv_ssim: f64,
    /// TV weight tuned on the validation digits.
    tv_weight: f32,
    /// The generative prior: label-free latent search + data-consistency refinement.
    cvae_dc_psnr: f64,
    cvae_dc_ssim: f64,
    /// The class the label-free search chose.
    cvae_class: u32,
    /// Second-best over best class objective (near 1: unsure).
    cvae_confidence: f64,
    /// The prior's settings tuned on the validation digits.
    cvae_tuning: GenerativeTuning,
}

/// PSNR (data range 1) and Gaussian SSIM of `rec` against `truth`.
fn scores(truth: &Array2<f32>, rec: &Array2<f32>) -> Result<(f64, f64)> {
    Ok((
        psnr(truth.view(), rec.view(), 1.0)?,
        ssim(truth.view(), rec.view(), &SsimConfig::gaussian())?,
    ))
}

/// Trains the conditional VAE of the CT prior (ct_study's recipe) into `dir`.
fn train_cvae(mnist: &Mnist, quick: bool, dir: &std::path::Path) -> Result<Vae> {
    let n_fit = mnist.train().len().saturating_sub(VAE_RESERVE);
    let recipe = vae_support::vae_recipe(quick, VAE_EPOCHS, n_fit, true);
    vae_support::train_vae(dir, &recipe, mnist)
}

/// The first test digit from 2, 3 and 4 noiseless projections: SIRT-100, the label-free
/// hybrid (SIRT + inversion steps), TV-PDHG and the conditional-VAE prior (label-free
/// latent search + data-consistency refinement), TV and the prior tuned per angle count
/// on validation digits; writes `ct.png` (rows: angle counts) and `ct.json`.
fn ct_panel(
    net: &Classifier,
    cvae: &Vae,
    mnist: &Mnist,
    out: &std::path::Path,
) -> Result<Vec<CtRow>> {
    let test = mnist.test();
    let truth = test.image(0).to_owned();
    let (rows, cols) = truth.dim();
    let n_train = mnist.train().len();
    let val_idx: Vec<usize> = (n_train - CT_VAL_DIGITS..n_train).collect();
    let val_set = mnist.train().select(&val_idx)?;
    let val: Vec<Array2<f32>> = (0..val_set.len())
        .map(|i| val_set.image(i).to_owned())
        .collect();
    let sirt = Sirt::new(SirtConfig {
        iterations: 100,
        min: Some(0.0),
        max: Some(1.0),
        ..Default::default()
    })?;
    let mut hybrid_cfg = HybridConfig::default();
    hybrid_cfg.inversion.bn = 0.0;
    let hybrid = HybridReconstructor::new(hybrid_cfg)?;
    let prior = GenerativeConfig::default();
    let decoder = ConditionalVae(cvae);
    let mut data = Vec::new();
    let mut captions = Vec::new();
    let mut table = Vec::new();
    for n_angles in CT_ANGLES {
        let op = CsrOperator::new(&scan_operator(rows, n_angles)?);
        let sino = sinogram(&op, truth.view(), None, 0)?;
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
        let tv_weight = tune_tv(&val, &op, None, PDHG_ITERATIONS, 0)?.weight;
        let tv = TvPdhg::new(tv_config(tv_weight, PDHG_ITERATIONS))?
            .reconstruct_batch(&op, &[sino.view()])?
            .remove(0)
            .image;
        let val_set = ValidationSet::new(&op, &val, None, 0, tv_weight, PDHG_ITERATIONS)?;
        let tuning = tune_generative(&decoder, &prior.search, &prior, &val_set)?;
        let fit = tuning
            .search()?
            .run(&decoder, &op, &[sino.view()], ClassChoice::Free)?
            .remove(0);
        let refined = tuning
            .refinement()?
            .run(&op, &[sino.view()], &[fit.image.view()])?
            .remove(0);
        let (sirt_psnr, sirt_ssim) = scores(&truth, &plain)?;
        let (hybrid_psnr, hybrid_ssim) = scores(&truth, &mixed)?;
        let (tv_psnr, tv_ssim) = scores(&truth, &tv)?;
        let (cvae_dc_psnr, cvae_dc_ssim) = scores(&truth, &refined)?;
        for img in [&truth, &plain, &mixed, &tv, &refined] {
            data.extend(img.iter().copied());
        }
        captions.push(format!("digit {}", test.labels()[0]));
        for (p, s) in [
            (sirt_psnr, sirt_ssim),
            (hybrid_psnr, hybrid_ssim),
            (tv_psnr, tv_ssim),
            (cvae_dc_psnr, cvae_dc_ssim),
        ] {
            captions.push(format!("{p:.1}dB {s:.2}"));
        }
        table.push(CtRow {
            n_angles,
            digit: test.labels()[0],
            sirt_psnr,
            sirt_ssim,
            hybrid_psnr,
            hybrid_ssim,
            tv_psnr,
            tv_ssim,
            tv_weight,
            cvae_dc_psnr,
            cvae_dc_ssim,
            cvae_class: fit.class.unwrap_or(u32::MAX),
            cvae_confidence: fit.confidence.unwrap_or(f64::NAN),
            cvae_tuning: tuning,
        });
    }
    ImageGrid::new(5)
        .with_scale(4)
        .with_column_labels(
            ["truth", "SIRT-100", "SIRT+inv", "TV", "CVAE+DC"]
                .map(String::from)
                .to_vec(),
        )
        .with_row_labels(
            table
                .iter()
                .map(|r| format!("{} ang", r.n_angles))
                .collect(),
        )
        .with_captions(captions)
        .write_png(
            out.join("ct.png"),
            ImageRef::new(&data, 5 * CT_ANGLES.len(), rows, cols)?,
        )?;
    write_json(out.join("ct.json"), &table)?;
    Ok(table)
}
