//! The BatchNorm classifier of the CT examples (`ct_study`, `ct_ablation`): its recipe,
//! the cache that reuses a trained net only when its recorded recipe is this one, and the
//! test and validation digits.

use std::path::Path;

use anyhow::Result;
use candle_core::Device;
use candle_nn::VarMap;
use ndarray::Array2;
use netinv::core::{write_json, Monitor, ProgressObserver};
use netinv::ct::study::Digits;
use netinv::data::{Dataset, Mnist};
use netinv::models::train::{EpochRecord, TrainConfig, Trainer};
use netinv::models::{load_frozen, save_checkpoint, Classifier, ClassifierConfig};
use serde::Serialize;

/// Training digits held back from every classifier and generative model: the validation
/// digits of the tuning come from the end of the training split.
pub const VAL_RESERVE: usize = 500;

/// How a CT example's classifier is trained; a cached net is reused only if its
/// `recipe.json` equals this.
#[derive(Serialize)]
pub struct Recipe {
    /// The net: netinv-small with BatchNorm.
    pub classifier: ClassifierConfig,
    /// SGD with the example's epochs and the seed.
    pub train: TrainConfig,
    /// The first `train_digits` training digits are used.
    pub train_digits: usize,
    /// The seed of the initial weights.
    pub init_seed: u64,
}

/// The recipe: netinv-small with BatchNorm, `TrainConfig::sgd()` for `epochs` epochs with
/// `seed` for the weights and the shuffling, on every training digit but the reserve
/// (`--quick`: 1 epoch on 2,000 digits).
pub fn bn_recipe(mnist: &Mnist, epochs: usize, quick: bool, seed: u64) -> Recipe {
    let n_fit = mnist.train().len().saturating_sub(VAL_RESERVE);
    Recipe {
        classifier: ClassifierConfig {
            batch_norm: true,
            ..ClassifierConfig::netinv_small()
        },
        train: TrainConfig {
            epochs: if quick { 1 } else { epochs },
            seed,
            ..TrainConfig::sgd()
        },
        train_digits: if quick { 2000 } else { n_fit },
        init_seed: seed,
    }
}

/// The cached classifier of `recipe` in `dir` (frozen), or a freshly trained one, then
/// cached; `label` names the progress bar.
pub fn train_or_reuse(
    dir: &Path,
    recipe: &Recipe,
    mnist: &Mnist,
    label: &str,
) -> Result<Classifier> {
    let recipe_path = dir.join("recipe.json");
    let cached = std::fs::read(&recipe_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    if cached == Some(serde_json::to_value(recipe)?)
        && dir.join(netinv::models::WEIGHTS_FILE).exists()
    {
        return Ok(load_frozen(dir, &Device::Cpu)?);
    }
    let train = mnist.train().take(recipe.train_digits);
    let varmap = VarMap::new();
    let net = Classifier::init(&recipe.classifier, &varmap, recipe.init_seed, &Device::Cpu)?;
    let mut monitor: Monitor<EpochRecord> =
        Monitor::new().with_observer(ProgressObserver::new(recipe.train.epochs, label));
    Trainer::new(recipe.train.clone())?.fit(&net, &varmap, &train, None, &mut monitor)?;
    save_checkpoint(dir, &varmap, &recipe.classifier)?;
    write_json(dir.join("train_config.json"), &recipe.train)?;
    write_json(recipe_path, recipe)?;
    Ok(load_frozen(dir, &Device::Cpu)?)
}

/// A dataset's images and labels as the CT study takes them.
pub fn digits(set: &Dataset) -> Digits {
    Digits {
        images: (0..set.len()).map(|i| set.image(i).to_owned()).collect(),
        labels: set.labels().iter().map(|&c| u32::from(c)).collect(),
    }
}

/// The `n` validation digits: the last `n` of the training split (in the reserve no
/// classifier trains on).
pub fn val_digits(mnist: &Mnist, n: usize) -> Result<Vec<Array2<f32>>> {
    let n_train = mnist.train().len();
    let idx: Vec<usize> = (n_train - n..n_train).collect();
    Ok(digits(&mnist.train().select(&idx)?).images)
}
