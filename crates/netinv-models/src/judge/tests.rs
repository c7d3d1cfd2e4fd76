//! Tests that train a tiny judge (a small net on a few hundred digits) and check the gate,
//! the cache and the verdicts.

use std::cell::Cell;

use candle_core::Device;
use ndarray::{Array4, Axis};
use netinv_core::{IterState, Monitor};

use super::*;
use crate::train::{Adversarial, Attack, EpochRecord};
use crate::ClassifierConfig;

/// A recipe that trains in a few seconds in a test build (a small net, clean training),
/// with a lenient gate.
fn tiny_recipe() -> JudgeRecipe {
    JudgeRecipe {
        model: ClassifierConfig {
            conv_channels: vec![4, 8],
            hidden: 32,
            ..ClassifierConfig::netinv_small()
        },
        epochs: 3,
        batch_size: 32,
        adversarial: Adversarial::None,
        attack: Attack::Pgd {
            epsilon: 0.1,
            steps: 2,
            step_size: 0.05,
            random_start: true,
            seed: 1,
        },
        min_clean_accuracy: 0.5,
        min_attack_accuracy: 0.0,
        max_noise_hits: 10,
        ..JudgeRecipe::default()
    }
}

fn data() -> (netinv_data::Dataset, netinv_data::Dataset) {
    let mnist = netinv_data::Mnist::embedded().unwrap();
    (mnist.train().take(2000), mnist.test().take(200))
}

/// The first `n` test digits as `[n, 1, 28, 28]` with their labels.
fn digits(test: &netinv_data::Dataset, n: usize) -> (Array4<f32>, Vec<u32>) {
    let images = test.images().slice_axis(Axis(0), (0..n).into()).to_owned();
    let images = images.insert_axis(Axis(1));
    let labels = test.labels()[..n].iter().map(|&l| u32::from(l)).collect();
    (images, labels)
}

#[test]
fn tiny_judge_passes_a_lenient_gate_and_fails_a_strict_one_with_a_clear_error() {
    let (train, test) = data();
    let dev = Device::Cpu;
    let (judge, _) =
        Judge::train(&tiny_recipe(), &train, &test, &dev, &mut Monitor::new()).unwrap();
    let r = judge.report().clone();
    assert!(
        r.clean_accuracy > 0.8,
        "clean accuracy {}",
        r.clean_accuracy
    );
    assert!(r.attack_accuracy <= r.clean_accuracy + 0.05);
    assert!(r.accepted);
    assert!(judge.accepted().is_ok());

    // The same net under a strict clean-accuracy gate.
    let strict = JudgeRecipe {
        min_clean_accuracy: 0.999,
        ..tiny_recipe()
    };
    let (judge, _) =
        Judge::train(&tiny_recipe(), &train, &test, &dev, &mut Monitor::new()).unwrap();
    let report = acceptance(judge.net(), &strict, &test, &dev, 0.0).unwrap();
    assert!(!report.accepted);
    assert_eq!(report.clean_accuracy, r.clean_accuracy, "training repeats");
    let rejected = Judge {
        report,
        ..judge.clone()
    };
    let message = rejected.accepted().unwrap_err().to_string();
    assert!(
        message.starts_with("the judge was rejected: clean accuracy")
            && message.contains("(need 0.999)"),
        "{message}"
    );
    // A noise gate of 0 hits rejects a net that calls some noise image its target, and
    // an attack gate above the clean accuracy can never pass.
    let no_noise = JudgeRecipe {
        max_noise_hits: 0,
        ..tiny_recipe()
    };
    let noise = acceptance(judge.net(), &no_noise, &test, &dev, 0.0).unwrap();
    assert_eq!(noise.accepted, noise.noise_hits == 0);
    let robust = JudgeRecipe {
        min_attack_accuracy: r.clean_accuracy + 0.01,
        ..tiny_recipe()
    };
    assert!(
        !acceptance(judge.net(), &robust, &test, &dev, 0.0)
            .unwrap()
            .accepted
    );
}

#[test]
fn verdicts_on_known_images() {
    let (train, test) = data();
    let dev = Device::Cpu;
    let (judge, _) =
        Judge::train(&tiny_recipe(), &train, &test, &dev, &mut Monitor::new()).unwrap();
    let (images, labels) = digits(&test, 100);

    // Real digits against their labels: mostly right, and the same accuracy the
    // evaluation of the same digits gives.
    let v = judge.verdict(images.view(), &labels).unwrap();
    assert!(v.accuracy > 0.8, "accuracy {}", v.accuracy);
    let eval = evaluate(judge.net(), &test.take(100), &dev).unwrap();
    assert_eq!(v.accuracy, eval.accuracy);
    assert_eq!(
        v.correct.iter().filter(|&&c| c).count(),
        (v.accuracy * 100.0).round() as usize
    );
    for ((p, t), c) in v.predictions.iter().zip(&labels).zip(&v.correct) {
        assert_eq!(p == t, *c);
    }
    // Against its own predictions every image is "correct", with the largest probability.
    let own = judge.verdict(images.view(), &v.predictions).unwrap();
    assert_eq!(own.accuracy, 1.0);
    assert!(own
        .target_probabilities
        .iter()
        .zip(&v.target_probabilities)
        .all(|(own, label)| own >= label));

    // One blank image against each of the 10 classes: judged as exactly one of them, and a
    // blank is no confident digit.
    let blank = Array4::<f32>::zeros((10, 1, 28, 28));
    let targets: Vec<u32> = (0..10).collect();
    let b = judge.verdict(blank.view(), &targets).unwrap();
    assert_eq!(b.correct.iter().filter(|&&c| c).count(), 1);
    assert!(b.predictions.iter().all(|&p| p == b.predictions[0]));
    let total: f32 = b.target_probabilities.iter().sum();
    assert!((total - 1.0).abs() < 1e-5, "probabilities sum to {total}");

    // Pixels outside [0, 1] are clipped, not rescaled.
    let stretched = images.mapv(|x| 3.0 * x - 1.0);
    let clipped = stretched.mapv(|x| x.clamp(0.0, 1.0));
    assert_eq!(
        judge.verdict(stretched.view(), &labels).unwrap(),
        judge.verdict(clipped.view(), &labels).unwrap()
    );

    // Bad input is an error, not a panic.
    assert!(matches!(
        judge.verdict(images.view(), &labels[..99]),
        Err(Error::Shape { .. })
    ));
    let mut wrong = labels.clone();
    wrong[3] = 10;
    assert!(matches!(
        judge.verdict(images.view(), &wrong),
        Err(Error::InvalidConfig {
            field: "targets",
            ..
        })
    ));
    let mut nan = images.clone();
    nan[[5, 0, 3, 3]] = f32::NAN;
    assert!(judge.verdict(nan.view(), &labels).is_err());
}

#[test]
fn cached_judge_is_reused_only_with_the_same_recipe() {
    let (train, test) = data();
    let dev = Device::Cpu;
    let dir = tempfile::tempdir().unwrap();
    let epochs_trained = Cell::new(0usize);
    let load = |recipe: &JudgeRecipe| {
        let mut monitor: Monitor<EpochRecord> =
            Monitor::new().with_observer(|_: &IterState, _: &EpochRecord| {
                epochs_trained.set(epochs_trained.get() + 1);
                Ok(())
            });
        Judge::load_or_train_on(dir.path(), recipe, &train, &test, &dev, &mut monitor).unwrap()
    };
    let recipe = tiny_recipe();
    assert!(!Judge::is_cached(dir.path(), &recipe));
    let first = load(&recipe);
    assert_eq!(epochs_trained.get(), 3);
    assert!(Judge::is_cached(dir.path(), &recipe));

    // Same recipe: loaded, not trained; the same verdicts bit for bit.
    let again = load(&recipe);
    assert_eq!(epochs_trained.get(), 3);
    assert_eq!(again.report().train_seconds, 0.0);
    let (images, labels) = digits(&test, 20);
    assert_eq!(
        first.verdict(images.view(), &labels).unwrap(),
        again.verdict(images.view(), &labels).unwrap()
    );

    // Another recipe (here only the gate differs): retrained, and the cache now holds it.
    let regated = JudgeRecipe {
        max_noise_hits: 9,
        ..tiny_recipe()
    };
    assert!(!Judge::is_cached(dir.path(), &regated));
    load(&regated);
    assert_eq!(epochs_trained.get(), 6);
    assert!(Judge::is_cached(dir.path(), &regated));
    assert!(!Judge::is_cached(dir.path(), &recipe));

    // A report without a recipe (an old cache) or with a field the recipe lacks is never
    // reused.
    let path = dir.path().join(JUDGE_FILE);
    let mut stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    stored["recipe"]["augment_noise"] = serde_json::json!(0.1);
    netinv_core::write_json(&path, &stored).unwrap();
    assert!(!Judge::is_cached(dir.path(), &regated));
    assert!(Judge::load_matching(dir.path(), &regated, &dev)
        .unwrap()
        .is_none());
    stored.as_object_mut().unwrap().remove("recipe");
    netinv_core::write_json(&path, &stored).unwrap();
    assert!(!Judge::is_cached(dir.path(), &regated));
    load(&regated);
    assert_eq!(epochs_trained.get(), 9);
}

#[test]
fn recipe_rules_and_round_trip() {
    let r = JudgeRecipe::default();
    r.validate().unwrap();
    assert_eq!(r.train_config().shift, 0);
    assert_eq!(r.train_config().epochs, r.epochs);
    let text = serde_json::to_string(&r).unwrap();
    assert_eq!(serde_json::from_str::<JudgeRecipe>(&text).unwrap(), r);
    for bad in [
        JudgeRecipe {
            min_clean_accuracy: 1.5,
            ..r.clone()
        },
        JudgeRecipe {
            epochs: 0,
            ..r.clone()
        },
        JudgeRecipe {
            lr: f64::NAN,
            ..r.clone()
        },
        JudgeRecipe {
            model: ClassifierConfig {
                outputs: 2,
                ..ClassifierConfig::netinv_small()
            },
            ..r.clone()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}

#[test]
fn noise_images_are_seeded_and_clipped() {
    let a = noise_images(3, 1);
    assert_eq!(a, noise_images(3, 1));
    assert_ne!(a, noise_images(3, 2));
    assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn class_mean_image_correlates_perfectly() {
    let mnist = netinv_data::Mnist::embedded().unwrap();
    let train = mnist.train().take(300);
    let mean = train.class_mean(3).unwrap();
    let images = mean.clone().into_shape_with_order((1, 1, 28, 28)).unwrap();
    let r = class_mean_correlation(images.view(), &[3], &train).unwrap();
    assert!((r[0] - 1.0).abs() < 1e-9);
    // Another class's mean correlates less.
    let r4 = class_mean_correlation(images.view(), &[4], &train).unwrap();
    assert!(r4[0] < 0.9, "{}", r4[0]);
    assert!(class_mean_correlation(images.view(), &[3, 4], &train).is_err());
    assert!(class_mean_correlation(images.view(), &[300], &train).is_err());
}
