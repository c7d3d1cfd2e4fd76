//! Runs an ONNX image classifier on a batch of images and writes its logits.
//!
//! ```text
//! cargo run --release --example classify_onnx -- --model M.onnx --images X.npy --out L.npy
//!     [--batch N] [--normalize]
//! ```
//!
//! `--images` is a float32 `.npy` of shape `[n, C, H, W]` (or `[n, H, W]` for a
//! one-channel model), fed to the model as it is (the model's own input space); with
//! `--normalize` the per-channel mean / std from the model's metadata are applied first
//! (images in [0, 1], as `invert_onnx` writes them). Writes float32 logits `[n, classes]`
//! to `--out` (atomically) and prints the arg-max class of each image.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;
use ndarray::{Axis, Ix4};
use ndarray_npy::WriteNpyExt;
use netinv::invert::InvertibleNet;
use netinv::onnx::OnnxNet;

/// Classify a float32 .npy batch with an ONNX model.
#[derive(Debug, Parser)]
struct Args {
    /// The ONNX model.
    #[arg(long)]
    model: PathBuf,
    /// float32 .npy, [n, C, H, W] or [n, H, W] for one channel.
    #[arg(long)]
    images: PathBuf,
    /// Where to write the logits (float32 .npy, [n, classes]).
    #[arg(long)]
    out: PathBuf,
    /// Images per forward pass.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Apply the model's metadata normalisation (mean / std) before the model.
    #[arg(long)]
    normalize: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    // candle allocates a fresh buffer per op: keep freed blocks instead of page-faulting anew
    netinv::core::retain_freed_memory();
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if args.out.is_dir() {
        bail!(
            "--out {} is a folder; give a file name such as logits.npy",
            args.out.display()
        );
    }
    // netinv-tomo's reader checks the header's shape against the file size first: a
    // hostile header cannot ask for a huge allocation
    let images = netinv::tomo::read_npy_f32(&args.images).with_context(|| {
        format!(
            "--images {} is not a float32 .npy array",
            args.images.display()
        )
    })?;
    let mut net =
        OnnxNet::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    if args.normalize {
        match net.metadata_normalization()? {
            Some(norm) => net.set_normalization(Some(norm))?,
            None => bail!("--normalize: the model's metadata has no `mean` / `std` entries"),
        }
    }
    let (c, h, w) = net.input_dims();
    let images = match images.ndim() {
        3 if c == 1 => images.insert_axis(Axis(1)),
        3 => bail!("--images has shape {:?} ([n, H, W]) but the model takes {c} channels: give [n, {c}, {h}, {w}]", images.shape()),
        4 => images,
        _ => bail!("--images has shape {:?}; expected [n, {c}, {h}, {w}]", images.shape()),
    };
    let images = images.into_dimensionality::<Ix4>()?;
    if images.shape()[1..] != [c, h, w] || images.shape()[0] == 0 {
        bail!(
            "--images has shape {:?}; the model takes [n >= 1, {c}, {h}, {w}]",
            images.shape()
        );
    }
    let logits = net.classify(images.view(), args.batch)?;
    let mut bytes = Vec::new();
    logits.write_npy(&mut bytes).context("encoding npy")?;
    netinv::core::atomic_write_bytes(&args.out, &bytes)?;
    let classes: Vec<usize> = logits
        .outer_iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .fold(0, |b, (i, &v)| if v > row[b] { i } else { b })
        })
        .collect();
    println!("classes {classes:?}");
    println!(
        "wrote {} ({} x {})",
        args.out.display(),
        logits.nrows(),
        logits.ncols()
    );
    Ok(())
}
