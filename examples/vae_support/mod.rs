//! The VAE / conditional VAE of the CT generative prior (issue 17), shared by ct_study
//! and quickstart: its recipe, training on the embedded training digits, and a cache
//! reused only when its `recipe.json` equals the recipe.

// shared by several examples, each using a part
#![allow(dead_code)]

use std::path::Path;

use anyhow::{ensure, Context, Result};
use candle_core::Device;
use candle_nn::VarMap;
use netinv::core::{write_json, Monitor, ProgressObserver};
use netinv::data::Mnist;
use netinv::models::{DecoderKind, Vae, VaeConfig, VaeEpoch, VaeTrainConfig, VaeTrainer};
use serde::Serialize;

/// How a VAE of the CT prior is trained; the cache is reused only if its `recipe.json`
/// equals this.
#[derive(Serialize, Clone)]
pub struct VaeRecipe {
    pub vae: VaeConfig,
    pub train: VaeTrainConfig,
    /// The first `train_digits` training digits (never the validation reserve at the end
    /// of the training split, never test digits).
    pub train_digits: usize,
    pub init_seed: u64,
    pub conditional: bool,
}

/// The recipe of the study's unconditional (or, with `conditional`, class-conditional:
/// 10 classes) VAE: the same architecture and training for both, so that the two differ
/// by the class conditioning only.
pub fn vae_recipe(quick: bool, epochs: usize, train_digits: usize, conditional: bool) -> VaeRecipe {
    VaeRecipe {
        vae: VaeConfig {
            latent_dim: 16,
            conv1_channels: 16,
            conv2_channels: 32,
            n_classes: if conditional { 10 } else { 0 },
            // the latent searches decode thousands of images per digit: the MLP decoder
            // with its hand-written pullback is ~25x the conv decoder's throughput
            decoder: DecoderKind::Mlp,
            mlp_hidden: 512,
            ..VaeConfig::default()
        },
        train: VaeTrainConfig {
            epochs: if quick { 1 } else { epochs },
            ..VaeTrainConfig::default()
        },
        train_digits: if quick { 2000 } else { train_digits },
        init_seed: 0,
        conditional,
    }
}

/// Loads a frozen VAE from `dir`, checking that it is (un)conditional as expected.
pub fn load_vae(dir: &Path, conditional: bool) -> Result<Vae> {
    let vae = Vae::load(dir, &Device::Cpu).with_context(|| format!("VAE in {}", dir.display()))?;
    ensure!(
        (vae.n_classes() > 0) == conditional,
        "the VAE in {} has {} classes; the {} arms need {}",
        dir.display(),
        vae.n_classes(),
        if conditional { "cvae" } else { "vae" },
        if conditional { "some" } else { "none" }
    );
    Ok(vae)
}

/// The cached VAE of `recipe` in `dir`, or a freshly trained one (then cached).
pub fn train_or_reuse_vae(dir: &Path, recipe: &VaeRecipe, mnist: &Mnist) -> Result<Vae> {
    let recipe_path = dir.join("recipe.json");
    let cached = std::fs::read(&recipe_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    if cached == Some(serde_json::to_value(recipe)?)
        && dir.join(netinv::models::VAE_WEIGHTS_FILE).exists()
    {
        return load_vae(dir, recipe.conditional);
    }
    train_vae(dir, recipe, mnist)
}

/// Trains the VAE of `recipe` (with a progress bar) and saves it with its recipe in `dir`.
pub fn train_vae(dir: &Path, recipe: &VaeRecipe, mnist: &Mnist) -> Result<Vae> {
    let train = mnist.train().take(recipe.train_digits);
    let varmap = VarMap::new();
    let vae = Vae::init(&recipe.vae, &varmap, recipe.init_seed, &Device::Cpu)?;
    let mut monitor: Monitor<VaeEpoch> =
        Monitor::new().with_observer(ProgressObserver::new(recipe.train.epochs, "train VAE"));
    let report =
        VaeTrainer::new(recipe.train.clone())?.fit(&vae, &varmap, &train, None, &mut monitor)?;
    vae.save(dir)?;
    write_json(dir.join("history.json"), &report.history)?;
    write_json(dir.join("recipe.json"), recipe)?;
    load_vae(dir, recipe.conditional)
}
