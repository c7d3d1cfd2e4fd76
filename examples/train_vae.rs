//! Trains the convolutional VAE of netinv-interp on the 8,000 embedded training digits.
//!
//! ```text
//! cargo run --release --example train_vae -- [--out runs/vae --epochs 30 --latent 16
//!     --seed 0 --judge runs/judge]
//! ```
//!
//! Writes into `--out`: the checkpoint (`vae.safetensors`, `vae_config.json`), `elbo.json`
//! (per-epoch train / test ELBO in nats per image), `reconstructions.png` (20 test digits
//! over their reconstructions, captioned with the judge's class), `samples.png` (40 decodes
//! of z ~ N(0, I)), `pairs.png` (interpolations between one digit of each of two classes,
//! the thesis's figure 3.2) and `summary.json` (test ELBO, judge accuracy on the
//! reconstructions of the first 100 test digits, seconds per epoch).

#[path = "flag_support/mod.rs"]
mod flag_support;
#[path = "interp_support/mod.rs"]
mod interp_support;
#[path = "invert_support/mod.rs"]
mod support;

use std::path::PathBuf;

use anyhow::Result;
use candle_core::Device;
use clap::Parser;
use netinv::core::{write_json, ImageGrid, ImageRef};
use netinv::interp::PairGrid;
use netinv::models::bridge::tensor_to_array4;
use netinv::models::{standard_normal, VaeConfig, VaeTrainConfig};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;

/// Train the VAE and write reconstructions, samples and the ELBO.
#[derive(Debug, Parser)]
struct Args {
    /// Output folder (the checkpoint goes here too).
    #[arg(long, default_value = "runs/vae")]
    out: PathBuf,
    /// Training epochs (the other examples train 30 when they find no VAE).
    #[arg(long, default_value_t = 30, value_parser = flag_support::at_least_one)]
    epochs: usize,
    /// Latent dimension.
    #[arg(long, default_value_t = 16, value_parser = flag_support::at_least_one)]
    latent: usize,
    /// Seed of the weights, shuffling and noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3, value_parser = flag_support::positive)]
    lr: f64,
    /// Judge folder (trained there if missing).
    #[arg(long, default_value = "runs/judge")]
    judge: PathBuf,
}

fn main() -> Result<()> {
    netinv::core::install_cleanup_handler()?;
    let args = Args::parse();
    // The VAE is written into --out: refuse a folder that holds something else.
    flag_support::cache_folder("--out", &args.out, netinv::models::VAE_CONFIG_FILE, "VAE")?;
    flag_support::cache_folder("--judge", &args.judge, netinv::models::JUDGE_FILE, "judge")?;
    let device = Device::Cpu;
    let mnist = netinv::data::Mnist::embedded()?;
    let cfg = VaeConfig {
        latent_dim: args.latent,
        ..Default::default()
    };
    let train_cfg = VaeTrainConfig {
        epochs: args.epochs,
        lr: args.lr,
        seed: args.seed,
        ..Default::default()
    };
    let (vae, history) = interp_support::train_vae(&cfg, &train_cfg, args.seed, &mnist, &args.out)?;
    let (test_elbo, test_recon, test_kl) = vae.elbo(mnist.test(), 12_345, &device)?;

    // Reconstructions of the first 100 test digits, judged.
    let judge = support::judge(&args.judge, &mnist)?;
    let first = mnist.test().take(100);
    let (x, labels) = first.to_tensors(&device)?;
    let recon = tensor_to_array4(&vae.reconstruct(&x)?)?;
    let targets: Vec<u32> = labels.to_vec1::<u32>()?;
    let verdict = judge.verdict(recon.view(), &targets)?;
    let originals = tensor_to_array4(&x)?;
    let mut pixels: Vec<f32> = originals.iter().take(20 * 784).copied().collect();
    pixels.extend(recon.iter().take(20 * 784).copied());
    let mut captions: Vec<String> = targets[..20].iter().map(|t| format!("{t}")).collect();
    captions.extend(verdict.predictions[..20].iter().map(|p| format!("j{p}")));
    ImageGrid::new(20)
        .with_row_labels(vec!["test".into(), "recon".into()])
        .with_captions(captions)
        .write_png(
            args.out.join("reconstructions.png"),
            ImageRef::new(&pixels, 40, 28, 28)?,
        )?;

    // Samples from the prior.
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x5A);
    let z = standard_normal(&mut rng, 40, args.latent, &device)?;
    let samples: Vec<f32> = vae.decode(&z)?.flatten_all()?.to_vec1()?;
    ImageGrid::new(10).write_png(
        args.out.join("samples.png"),
        ImageRef::new(&samples, 40, 28, 28)?,
    )?;

    // Figure 3.2: interpolations per class pair.
    let pairs = [
        (0u8, 4u8),
        (0, 5),
        (4, 8),
        (1, 7),
        (3, 5),
        (2, 7),
        (4, 9),
        (6, 8),
    ];
    let alphas = [1.0f32, 0.8, 0.6, 0.5, 0.4, 0.2, 0.0];
    PairGrid::new(&vae, mnist.train(), &pairs, &alphas, args.seed, &device)?
        .write_png(args.out.join("pairs.png"))?;

    let seconds: Vec<f64> = history.iter().map(|e| e.seconds).collect();
    let summary = json!({
        "vae": cfg,
        "train": train_cfg,
        "test_elbo_nats": test_elbo,
        "test_recon_nats": test_recon,
        "test_kl_nats": test_kl,
        "final_train_elbo_nats": history.last().map(|e| e.train_elbo),
        "judge_accuracy_on_100_reconstructions": verdict.accuracy,
        "seconds_per_epoch_mean": seconds.iter().sum::<f64>() / seconds.len().max(1) as f64,
        "threads": std::env::var("RAYON_NUM_THREADS").ok(),
    });
    write_json(args.out.join("summary.json"), &summary)?;
    println!(
        "VAE (latent {}, {} epochs, {:.1} s each): test ELBO {test_elbo:.2} nats per image \
         (reconstruction NLL {test_recon:.2}, KL {test_kl:.2}); the judge recognises {:.0} of 100 \
         reconstructions; wrote {}",
        args.latent,
        args.epochs,
        seconds.iter().sum::<f64>() / seconds.len().max(1) as f64,
        100.0 * verdict.accuracy,
        args.out.display()
    );
    Ok(())
}
