//! Trains the convolutional VAE of netinv-interp on the 8,000 embedded training digits, or
//! (`--conditional`) a class-conditional VAE (the generative prior of the few-angle CT
//! method, issue 17), never on test digits (they only evaluate).
//!
//! ```text
//! cargo run --release --example train_vae -- [--out runs/vae --epochs 30 --latent 16
//!     --seed 0 --judge runs/judge --conditional --decoder conv|mlp --mlp-hidden 512
//!     --projection-digits 200]
//! ```
//!
//! Writes into `--out`: the checkpoint (`vae.safetensors`, `vae_config.json`), `elbo.json`
//! (per-epoch train / test ELBO in nats per image), `reconstructions.png` (20 test digits
//! over their reconstructions, captioned with the judge's class), `samples.png` (40 decodes
//! of z ~ N(0, I); a conditional VAE: rows of classes 0..9), `pairs.png` (unconditional VAE
//! only: interpolations between one digit of each of two classes, the thesis's figure 3.2)
//! and `summary.json` (test ELBO, reconstruction PSNR over all test digits, the range
//! projection PSNR of the first `--projection-digits` test digits (min_z ||D(z) - x||^2 by
//! Adam from the encoder mean: the best any latent search can reach), judge accuracy on the
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
use netinv::models::{standard_normal, DecoderKind, VaeConfig, VaeTrainConfig};
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
    /// Train a class-conditional VAE (one-hot labels of the 10 digit classes in the encoder
    /// and the decoder).
    #[arg(long)]
    conditional: bool,
    /// Decoder: `conv` (upsampling + 3x3 convolutions) or `mlp` (one hidden layer; the
    /// cheap decoder for latent searches).
    #[arg(long, default_value = "conv", value_parser = parse_decoder)]
    decoder: DecoderKind,
    /// Hidden units of the MLP decoder.
    #[arg(long, default_value_t = 512, value_parser = flag_support::at_least_one)]
    mlp_hidden: usize,
    /// Test digits whose range projection PSNR is measured (0: skip).
    #[arg(long, default_value_t = 200)]
    projection_digits: usize,
}

fn parse_decoder(s: &str) -> Result<DecoderKind, String> {
    match s {
        "conv" => Ok(DecoderKind::Conv),
        "mlp" => Ok(DecoderKind::Mlp),
        _ => Err(format!("expected `conv` or `mlp`, got `{s}`")),
    }
}

fn main() -> Result<()> {
    netinv::core::install_cleanup_handler()?;
    let args = Args::parse();
    // The VAE is written into --out: refuse a folder that holds something else.
    flag_support::cache_folder("--out", &args.out, netinv::models::VAE_CONFIG_FILE, "VAE")?;
    flag_support::cache_folder("--judge", &args.judge, netinv::models::JUDGE_FILE, "judge")?;
    let device = Device::Cpu;
    let mnist = netinv::data::Mnist::embedded()?;
    if args.projection_digits > mnist.test().len() {
        anyhow::bail!(
            "--projection-digits {} exceeds the {} test digits",
            args.projection_digits,
            mnist.test().len()
        );
    }
    let cfg = VaeConfig {
        latent_dim: args.latent,
        n_classes: if args.conditional { 10 } else { 0 },
        decoder: args.decoder,
        mlp_hidden: args.mlp_hidden,
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
    let targets: Vec<u32> = labels.to_vec1::<u32>()?;
    let recon = tensor_to_array4(&quality::reconstruct(&vae, &x, &targets)?)?;
    let recon_psnr = quality::reconstruction_psnr(&vae, mnist.test())?;
    let projection =
        quality::range_projection_psnr(&vae, &mnist.test().take(args.projection_digits))?;
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
    let samples: Vec<f32> = quality::samples(&vae, &z)?.flatten_all()?.to_vec1()?;
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
    if !args.conditional {
        PairGrid::new(&vae, mnist.train(), &pairs, &alphas, args.seed, &device)?
            .write_png(args.out.join("pairs.png"))?;
    }

    let seconds: Vec<f64> = history.iter().map(|e| e.seconds).collect();
    let summary = json!({
        "vae": cfg,
        "train": train_cfg,
        "test_elbo_nats": test_elbo,
        "test_recon_nats": test_recon,
        "test_kl_nats": test_kl,
        "test_recon_psnr_db_mean_ci95": recon_psnr,
        "range_projection_psnr_db_mean_ci95": projection,
        "range_projection_digits": args.projection_digits,
        "final_train_elbo_nats": history.last().map(|e| e.train_elbo),
        "judge_accuracy_on_100_reconstructions": verdict.accuracy,
        "seconds_per_epoch_mean": seconds.iter().sum::<f64>() / seconds.len().max(1) as f64,
        "threads": std::env::var("RAYON_NUM_THREADS").ok(),
    });
    write_json(args.out.join("summary.json"), &summary)?;
    println!(
        "{}VAE (latent {}, {:?} decoder, {} epochs, {:.1} s each): test ELBO {test_elbo:.2} nats \
         per image (reconstruction NLL {test_recon:.2}, KL {test_kl:.2}); test reconstruction \
         PSNR {:.2} +- {:.2} dB; range projection PSNR {} ({} digits); the judge recognises \
         {:.0} of 100 reconstructions; wrote {}",
        if args.conditional { "conditional " } else { "" },
        args.latent,
        args.decoder,
        args.epochs,
        seconds.iter().sum::<f64>() / seconds.len().max(1) as f64,
        recon_psnr.0,
        recon_psnr.1,
        projection.map_or("skipped".into(), |(m, h)| format!("{m:.2} +- {h:.2} dB")),
        args.projection_digits,
        100.0 * verdict.accuracy,
        args.out.display()
    );
    Ok(())
}

/// Reconstructions, samples and the PSNR figures of a VAE, unconditional or conditional
/// (labels from the data).
mod quality {
    use anyhow::Result;
    use candle_core::{Device, Tensor};
    use netinv::data::Dataset;
    use netinv::metrics::psnr;
    use netinv::metrics::stats::mean_ci95_normal;
    use netinv::models::bridge::tensor_to_array4;
    use netinv::models::Vae;

    /// Adam steps and step size of the range projection.
    const PROJECTION_STEPS: usize = 300;
    const PROJECTION_LR: f64 = 0.05;

    /// Decoder-mean reconstructions of `x` (with `labels` for a conditional VAE).
    pub fn reconstruct(vae: &Vae, x: &Tensor, labels: &[u32]) -> Result<Tensor> {
        Ok(if vae.n_classes() > 0 {
            vae.reconstruct_conditional(x, &vae.one_hot(labels, x.device())?)?
        } else {
            vae.reconstruct(x)?
        })
    }

    /// Decodes of `z` (a conditional VAE: row i with class i mod 10, so a 10-wide grid shows
    /// one class per column).
    pub fn samples(vae: &Vae, z: &Tensor) -> Result<Tensor> {
        Ok(if vae.n_classes() > 0 {
            let labels: Vec<u32> = (0..z.dim(0)?)
                .map(|i| (i % vae.n_classes()) as u32)
                .collect();
            vae.decode_conditional(z, &vae.one_hot(&labels, z.device())?)?
        } else {
            vae.decode(z)?
        })
    }

    fn psnr_per_image(reference: &Tensor, estimate: &Tensor) -> Result<Vec<f64>> {
        let (a, b) = (tensor_to_array4(reference)?, tensor_to_array4(estimate)?);
        (0..a.shape()[0])
            .map(|i| {
                let (ra, rb) = (
                    a.slice(ndarray::s![i, 0, .., ..]),
                    b.slice(ndarray::s![i, 0, .., ..]),
                );
                Ok(psnr(ra, rb, 1.0)?)
            })
            .collect()
    }

    /// Mean and 95% CI half-width of the PSNR (dB) of the reconstructions of all of `data`.
    pub fn reconstruction_psnr(vae: &Vae, data: &Dataset) -> Result<(f64, f64)> {
        let mut all = Vec::new();
        for batch in data.batches(500, None)? {
            let (x, labels) = batch.to_tensors(&Device::Cpu)?;
            let r = reconstruct(vae, &x, &labels.to_vec1()?)?;
            all.extend(psnr_per_image(&x, &r)?);
        }
        let ci = mean_ci95_normal(&all);
        Ok((ci.mean, ci.half_width))
    }

    /// Mean and 95% CI half-width of the PSNR (dB) of `D(z*)`, z* = argmin ||D(z) - x||^2
    /// (the true label for a conditional VAE) by Adam from the encoder mean, the best
    /// iterate of each digit kept; `None` for no digits.
    pub fn range_projection_psnr(vae: &Vae, data: &Dataset) -> Result<Option<(f64, f64)>> {
        if data.is_empty() {
            return Ok(None);
        }
        let (x, labels) = data.to_tensors(&Device::Cpu)?;
        let labels: Vec<u32> = labels.to_vec1()?;
        let one_hot = (vae.n_classes() > 0)
            .then(|| vae.one_hot(&labels, &Device::Cpu))
            .transpose()?;
        let (mu, _) = match &one_hot {
            Some(c) => vae.encode_conditional(&x, c)?,
            None => vae.encode(&x)?,
        };
        let (b, k) = mu.dims2()?;
        let mut z: Vec<f32> = mu.flatten_all()?.to_vec1()?;
        let (mut m, mut v) = (vec![0f64; b * k], vec![0f64; b * k]);
        let mut best = vec![f64::NEG_INFINITY; b];
        for step in 1..=PROJECTION_STEPS {
            let pass = vae.decoder_pass(
                &Tensor::from_vec(z.clone(), (b, k), &Device::Cpu)?,
                one_hot.as_ref(),
            )?;
            for (i, p) in psnr_per_image(&x, pass.images())?.into_iter().enumerate() {
                best[i] = best[i].max(p);
            }
            let residual = ((pass.images() - &x)? * 2.0)?;
            let grad: Vec<f32> = pass.pullback(&residual)?.flatten_all()?.to_vec1()?;
            let (c1, c2) = (
                1.0 - 0.9f64.powi(step as i32),
                1.0 - 0.999f64.powi(step as i32),
            );
            for j in 0..b * k {
                let g = f64::from(grad[j]);
                m[j] = 0.9 * m[j] + 0.1 * g;
                v[j] = 0.999 * v[j] + 0.001 * g * g;
                z[j] -= (PROJECTION_LR * (m[j] / c1) / ((v[j] / c2).sqrt() + 1e-8)) as f32;
            }
        }
        let ci = mean_ci95_normal(&best);
        Ok(Some((ci.mean, ci.half_width)))
    }
}
