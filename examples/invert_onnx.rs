//! Task 1 on any ONNX image classifier: seeded noise becomes images the model assigns to
//! the target classes.
//!
//! ```text
//! cargo run --release --example invert_onnx -- --model M.onnx --out DIR
//!     [--targets 0,1,...] [--steps N] [--lr F] [--tv F] [--l2 F] [--jitter PX]
//!     [--bn F] [--bn-per-image] [--seed N] [--mean a,b,c --std a,b,c | --no-normalization]
//! ```
//!
//! Defaults: every class of the model's output (at most 10), netinv's reference settings
//! (Adam on the image, lr 0.05, 1,000 steps, clamp to [0, 1], start 0.5 + 0.2 N(0, 1),
//! cross-entropy + 1e-3 squared TV (per channel) + 1e-4 ||x||^2), random jitter of up to
//! 2 px, no BatchNorm prior. `--jitter 0` turns the jitter off. `--bn F` adds
//! DeepInversion's BatchNorm-statistics prior with weight F, from the model's own BN
//! nodes (`torch.onnx.export` in eval mode folds them into the convolutions; export with
//! `do_constant_folding=False` to keep them). The per-channel normalisation in front of
//! the model comes from `--mean` / `--std`, else from the model's metadata (`mean`, `std`),
//! else none; the images themselves stay in [0, 1].
//!
//! Writes to `--out`: `inversion.png` (top row the starting noise, bottom row the result;
//! RGB for 3 channels), `images.npy` (float32 `[n, C, H, W]`, or `[n, H, W]` when C = 1),
//! `targets.json` (the class indices) and `inversion.json` (settings, model facts, loss
//! terms per step, final probabilities and predictions, time per step).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use clap::Parser;
use ndarray::{concatenate, Array4, Axis};
use ndarray_npy::WriteNpyExt;
use netinv::core::{atomic_write_bytes, write_json, Monitor};
use netinv::invert::{InversionConfig, Inverter, InvertibleNet, Jitter};
use netinv::onnx::{write_grid_png, Normalization, OnnxNet};
use serde_json::json;

/// Invert an ONNX image classifier.
#[derive(Debug, Parser)]
struct Args {
    /// The ONNX model.
    #[arg(long)]
    model: PathBuf,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Target classes, comma-separated (default: 0..min(classes, 10)).
    #[arg(long, value_delimiter = ',')]
    targets: Option<Vec<u32>>,
    /// Updates of the images.
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// Weight of the squared-difference TV (summed over channels).
    #[arg(long, default_value_t = 1e-3)]
    tv: f64,
    /// Weight of ||x||^2.
    #[arg(long, default_value_t = 1e-4)]
    l2: f64,
    /// Largest random shift in pixels before each step (0: no jitter).
    #[arg(long, default_value_t = 2)]
    jitter: usize,
    /// Weight of the BatchNorm-statistics prior (0: off; needs BN nodes in the model).
    #[arg(long, default_value_t = 0.0)]
    bn: f64,
    /// BatchNorm statistics per image instead of over the batch.
    #[arg(long)]
    bn_per_image: bool,
    /// Seed of the start and of the jitter.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Per-channel means of the model's input normalisation (one value or one per channel).
    #[arg(long, value_delimiter = ',', requires = "std")]
    mean: Option<Vec<f32>>,
    /// Per-channel standard deviations (one value or one per channel).
    #[arg(long, value_delimiter = ',', requires = "mean")]
    std: Option<Vec<f32>>,
    /// Ignore the normalisation in the model's metadata.
    #[arg(long, conflicts_with = "mean")]
    no_normalization: bool,
}

impl Args {
    fn config(&self) -> InversionConfig {
        InversionConfig {
            steps: self.steps,
            lr: self.lr,
            tv: self.tv,
            l2: self.l2,
            bn: self.bn,
            bn_per_image: self.bn_per_image,
            seed: self.seed,
            jitter: (self.jitter > 0).then_some(Jitter {
                max_shift: self.jitter,
                seed: self.seed,
            }),
            ..Default::default()
        }
    }
}

fn load(args: &Args) -> Result<(OnnxNet, Vec<u32>)> {
    let mut net =
        OnnxNet::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let norm = match (&args.mean, &args.std) {
        (Some(mean), Some(std)) => Some(Normalization {
            mean: mean.clone(),
            std: std.clone(),
        }),
        _ if args.no_normalization => None,
        _ => net.metadata_normalization()?,
    };
    net.set_normalization(norm).context("--mean / --std")?;
    let classes = net.outputs();
    let targets = match &args.targets {
        Some(t) if t.is_empty() => bail!("--targets is empty"),
        Some(t) => t.clone(),
        None => (0..classes.min(10) as u32).collect(),
    };
    if let Some(bad) = targets.iter().find(|&&t| t as usize >= classes) {
        bail!(
            "--targets: class {bad} does not exist; the model has {classes} outputs (0..{})",
            classes - 1
        );
    }
    if args.bn > 0.0 && !net.has_batch_norm() {
        bail!(
            "--bn needs BatchNorm statistics, but {} has no BatchNormalization node (torch.onnx.export \
             in eval mode folds BatchNorm into the convolutions; export with do_constant_folding=False \
             to keep them), so the BN prior is unavailable for this model",
            args.model.display()
        );
    }
    Ok((net, targets))
}

fn main() -> Result<()> {
    let args = Args::parse();
    // candle allocates a fresh buffer per op: keep freed blocks instead of page-faulting anew
    netinv::core::retain_freed_memory();
    let cfg = args.config();
    cfg.validate().context("invalid settings")?;
    if args.out.is_file() {
        bail!("--out {} is a file; give a folder", args.out.display());
    }
    let (net, targets) = load(&args)?;
    let (c, h, w) = net.input_dims();
    println!(
        "{}: input [{c}, {h}, {w}], {} classes, {} BatchNorm layers, normalisation {:?}",
        args.model.display(),
        net.outputs(),
        net.info().batch_norm_layers,
        net.normalization()
    );
    let inverter = Inverter::new(cfg.clone())?;
    let (wall, cpu) = (Instant::now(), netinv::core::process_cpu_seconds());
    let result =
        inverter.invert_classes(&net, &targets, None, &Device::Cpu, &mut Monitor::new())?;
    let steps = result.history.len().max(1) as f64;
    let ms_per_step = 1e3 * wall.elapsed().as_secs_f64() / steps;
    let cpu_ms_per_step = cpu
        .zip(netinv::core::process_cpu_seconds())
        .map(|(a, b)| 1e3 * (b - a) / steps);
    let predictions = result.predictions();
    let hits = predictions
        .iter()
        .zip(&targets)
        .filter(|(p, t)| p == t)
        .count();
    write_outputs(
        &args,
        &net,
        &targets,
        &result,
        &cfg,
        ms_per_step,
        cpu_ms_per_step,
    )?;
    println!(
        "targets     {targets:?}\npredictions {predictions:?}  ({hits} / {} on target)",
        targets.len()
    );
    println!(
        "{ms_per_step:.2} ms per step (wall){}",
        cpu_ms_per_step
            .map(|v| format!(", {v:.2} ms CPU"))
            .unwrap_or_default()
    );
    println!(
        "wrote {}/inversion.png, images.npy, targets.json, inversion.json",
        args.out.display()
    );
    Ok(())
}

fn write_outputs(
    args: &Args,
    net: &OnnxNet,
    targets: &[u32],
    result: &netinv::invert::Inversion,
    cfg: &InversionConfig,
    ms_per_step: f64,
    cpu_ms_per_step: Option<f64>,
) -> Result<()> {
    let out = &args.out;
    let images: &Array4<f32> = &result.images;
    let n = images.dim().0;
    let both = concatenate(Axis(0), &[result.initial.view(), images.view()])?;
    let scale = if images.dim().2 <= 32 { 3 } else { 1 };
    write_grid_png(out.join("inversion.png"), both.view(), n, scale)?;
    let mut bytes = Vec::new();
    if images.dim().1 == 1 {
        images
            .index_axis(Axis(1), 0)
            .to_owned()
            .write_npy(&mut bytes)?;
    } else {
        images.write_npy(&mut bytes)?;
    }
    atomic_write_bytes(out.join("images.npy"), &bytes)?;
    write_json(out.join("targets.json"), &targets)?;
    let predictions = result.predictions();
    let target_probability: Vec<f32> = result
        .probabilities
        .iter()
        .zip(targets)
        .map(|(p, &t)| p[t as usize])
        .collect();
    let report = json!({
        "model": args.model.display().to_string(),
        "info": net.info(),
        "normalization": net.normalization(),
        "config": cfg,
        "targets": targets,
        "predictions": predictions,
        "on_target": predictions.iter().zip(targets).filter(|(p, t)| p == t).count(),
        "target_probability": target_probability,
        "probabilities": result.probabilities,
        "steps": result.history.len(),
        "termination": format!("{:?}", result.state.termination),
        "ms_per_step_wall": ms_per_step,
        "ms_per_step_cpu": cpu_ms_per_step,
        "history": result.history,
    });
    write_json(out.join("inversion.json"), &report)?;
    Ok(())
}
