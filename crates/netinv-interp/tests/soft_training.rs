//! netinv-models' trainer trains on an `InterpolationSource` directly (soft-label mode).

use candle_core::Device;
use candle_nn::VarMap;
use netinv_core::Monitor;
use netinv_interp::{InterpConfig, InterpolationSource};
use netinv_models::train::{BatchSource, TrainConfig, Trainer};
use netinv_models::{Classifier, ClassifierConfig, Vae, VaeConfig};

#[test]
fn trainer_fits_on_interpolations_and_repeats() {
    let dev = Device::Cpu;
    let mnist = netinv_data::Mnist::embedded().unwrap();
    let train = mnist.train().take(96);
    let vae = Vae::init(
        &VaeConfig {
            latent_dim: 4,
            ..Default::default()
        },
        &VarMap::new(),
        0,
        &dev,
    )
    .unwrap();
    let source = InterpolationSource::new(
        &vae,
        &train,
        InterpConfig {
            generated_per_real: 1.0 / 3.0,
            ..Default::default()
        },
        &dev,
    )
    .unwrap();
    assert_eq!(source.len(), 128);
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 32,
        seed: 5,
        ..TrainConfig::adam()
    };
    let run = || {
        let varmap = VarMap::new();
        let net = Classifier::init(&ClassifierConfig::netinv_small(), &varmap, 1, &dev).unwrap();
        let report = Trainer::new(cfg.clone())
            .unwrap()
            .fit(&net, &varmap, &source, None, &mut Monitor::new())
            .unwrap();
        report.history
    };
    let a = run();
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|e| e.train_loss.is_finite()));
    // Same seeds, same epochs: identical losses.
    let b = run();
    assert_eq!(
        a,
        b.iter()
            .map(|e| netinv_models::train::EpochRecord {
                seconds: a[e.epoch - 1].seconds,
                ..e.clone()
            })
            .collect::<Vec<_>>()
    );
}
