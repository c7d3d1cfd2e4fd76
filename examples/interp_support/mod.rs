//! Shared code of the VAE / interpolation examples (`train_vae`, `tsne`,
//! `soft_label_study`): loading or training the VAE, a font for plots.
#![allow(dead_code)]

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::Device;
use candle_nn::VarMap;
use netinv::core::{write_json, Monitor, ProgressObserver};
use netinv::data::Mnist;
use netinv::models::{Vae, VaeConfig, VaeEpoch, VaeTrainConfig, VaeTrainer, VAE_CONFIG_FILE};
use serde_json::json;

/// File (in the VAE folder) with the per-epoch ELBO history and the training config.
pub const ELBO_FILE: &str = "elbo.json";

/// Trains a VAE on the training digits (evaluating on the test digits every epoch), saves
/// it to `dir` with `elbo.json`; returns the frozen VAE and its history.
pub fn train_vae(
    cfg: &VaeConfig,
    train_cfg: &VaeTrainConfig,
    weight_seed: u64,
    mnist: &Mnist,
    dir: &Path,
) -> Result<(Vae, Vec<VaeEpoch>)> {
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let vae = Vae::init(cfg, &varmap, weight_seed, &device)?;
    let mut monitor: Monitor<VaeEpoch> = Monitor::new()
        .with_observer(ProgressObserver::new(train_cfg.epochs, "vae"))
        .with_observer(|_: &netinv::core::IterState, e: &VaeEpoch| {
            eprintln!(
                "epoch {:>2}: train ELBO {:.2}, test ELBO {:.2} nats/image, {:.1} s",
                e.epoch,
                e.train_elbo,
                e.test_elbo.unwrap_or(f64::NAN),
                e.seconds
            );
            Ok(())
        });
    let report = VaeTrainer::new(train_cfg.clone())?.fit(
        &vae,
        &varmap,
        mnist.train(),
        Some(mnist.test()),
        &mut monitor,
    )?;
    vae.save(dir)?;
    write_json(
        dir.join(ELBO_FILE),
        &json!({
            "vae": cfg,
            "train": train_cfg,
            "weight_seed": weight_seed,
            "epochs": report.history,
            "threads": std::env::var("RAYON_NUM_THREADS").ok(),
        }),
    )?;
    Ok((vae.frozen()?, report.history))
}

/// The VAE saved in `dir` (checked against `cfg`), trained there first if missing.
pub fn load_or_train_vae(
    cfg: &VaeConfig,
    train_cfg: &VaeTrainConfig,
    weight_seed: u64,
    mnist: &Mnist,
    dir: &Path,
) -> Result<Vae> {
    if dir.join(VAE_CONFIG_FILE).exists() {
        return Vae::load_expecting(dir, cfg, &Device::Cpu)
            .with_context(|| format!("VAE in {}", dir.display()));
    }
    eprintln!(
        "training the VAE ({} epochs) into {}",
        train_cfg.epochs,
        dir.display()
    );
    Ok(train_vae(cfg, train_cfg, weight_seed, mnist, dir)?.0)
}
