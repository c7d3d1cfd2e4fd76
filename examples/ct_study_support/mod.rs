//! ct_study's generative-prior part (issue 17): the VAE / conditional VAE cache and the
//! outputs of the generative arms (`generative.json`, the failure grid, summary lines).

use std::path::Path;

use anyhow::{ensure, Context, Result};
use candle_core::Device;
use candle_nn::VarMap;
use netinv::core::{write_json, ImageGrid, ImageRef, Monitor, ProgressObserver};
use netinv::ct::study::{noise_name, Outcome};
use netinv::data::Mnist;
use netinv::models::{Vae, VaeConfig, VaeEpoch, VaeTrainConfig, VaeTrainer};
use serde::Serialize;

/// How a VAE of the study is trained; the cache is reused only if its `recipe.json`
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
            conv1_channels: 8,
            conv2_channels: 16,
            n_classes: if conditional { 10 } else { 0 },
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
    let train = mnist.train().take(recipe.train_digits);
    let varmap = VarMap::new();
    let vae = Vae::init(&recipe.vae, &varmap, recipe.init_seed, &Device::Cpu)?;
    let mut monitor: Monitor<VaeEpoch> =
        Monitor::new().with_observer(ProgressObserver::new(recipe.train.epochs, "train VAE"));
    let report =
        VaeTrainer::new(recipe.train.clone())?.fit(&vae, &varmap, &train, None, &mut monitor)?;
    vae.save(dir)?;
    write_json(dir.join("history.json"), &report.history)?;
    write_json(recipe_path, recipe)?;
    load_vae(dir, recipe.conditional)
}

/// Writes `generative.json` (every setting's tuning, timing, class choices and failures)
/// and `failures_<noise>.png` (the worst wrong-class digits: truth, TV, cvae, cvae_dc,
/// cvae_dc oracle), and returns summary lines: per setting, the wrong-class rate of the
/// label-free conditional search and the time per digit.
pub fn write_generative(out: &Path, outcome: &Outcome, n_test: usize) -> Result<String> {
    if outcome.generative.is_empty() {
        return Ok(String::new());
    }
    write_json(out.join("generative.json"), &outcome.generative)?;
    let mut noises: Vec<Option<f64>> = Vec::new();
    for g in &outcome.generative {
        if !noises.contains(&g.noise_i0) {
            noises.push(g.noise_i0);
        }
    }
    for noise in noises {
        failure_grid(out, outcome, noise)?;
    }
    let mut s = String::from(
        "\n| angles | noise | label-free class wrong | median confidence (right / wrong) | vae search / refine s per digit | cvae search / refine s per digit | tuning s (vae + cvae) |\n| --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for g in &outcome.generative {
        let wrong: Vec<f64> = g
            .digits
            .iter()
            .filter(|d| d.class != d.label)
            .map(|d| d.confidence)
            .collect();
        let right: Vec<f64> = g
            .digits
            .iter()
            .filter(|d| d.class == d.label)
            .map(|d| d.confidence)
            .collect();
        let per =
            |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.3}", v / n_test as f64));
        let tune = g.vae.as_ref().map_or(0.0, |m| m.tune_seconds)
            + g.cvae.as_ref().map_or(0.0, |m| m.tune_seconds);
        s.push_str(&format!(
            "| {} | {} | {}/{} | {} / {} | {} / {} | {} / {} | {tune:.1} |\n",
            g.n_angles,
            noise_name(g.noise_i0),
            wrong.len(),
            g.digits.len(),
            median(&right),
            median(&wrong),
            per(g.vae.as_ref().map(|m| m.search_seconds)),
            per(g.vae.as_ref().map(|m| m.refine_seconds)),
            per(g.cvae.as_ref().map(|m| m.search_seconds)),
            per(g.cvae.as_ref().map(|m| m.refine_seconds)),
        ));
    }
    Ok(s)
}

fn median(v: &[f64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    format!("{:.3}", v[v.len() / 2])
}

/// The failure grid of one noise level (nothing when no digit was misclassified).
fn failure_grid(out: &Path, outcome: &Outcome, noise: Option<f64>) -> Result<()> {
    let mut data = Vec::new();
    let (mut rows, mut captions) = (Vec::new(), Vec::new());
    for g in outcome.generative.iter().filter(|g| g.noise_i0 == noise) {
        for f in &g.failures {
            for img in &f.images {
                data.extend(img.iter().copied());
            }
            rows.push(format!("{} ang #{}", g.n_angles, f.digit));
            captions.extend([
                format!("{} as {}", f.label, f.class),
                "tv".into(),
                format!("conf {:.2}", f.confidence),
                format!("{:+.1} dB", f.psnr_vs_tv),
                "oracle".into(),
            ]);
        }
    }
    let n = data.len() / (28 * 28);
    if n == 0 {
        return Ok(());
    }
    let labels = ["truth", "tv", "cvae", "cvae+dc", "cvae+dc-orc"]
        .map(String::from)
        .to_vec();
    let grid = ImageGrid::new(5)
        .with_column_labels(labels)
        .with_row_labels(rows)
        .with_captions(captions)
        .with_scale(3);
    grid.write_png(
        out.join(format!("failures_{}.png", noise_name(noise))),
        ImageRef::new(&data, n, 28, 28)?,
    )?;
    Ok(())
}
