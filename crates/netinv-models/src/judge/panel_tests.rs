//! Tests of the panel (tiny judges of three architectures trained on a few thousand digits:
//! the cache layout, the gate, the majority) and of the model-free scores on known inputs.

use std::collections::BTreeMap;

use candle_core::Device;
use ndarray::{Array4, Axis};
use netinv_core::Monitor;

use super::*;
use crate::train::{Adversarial, Attack, OptimizerKind};
use crate::ClassifierConfig;

/// A tiny recipe: `conv` channels (empty for an MLP), clean training, a lenient gate.
fn tiny(conv: Vec<usize>, optimizer: OptimizerKind, lr: f64, seed: u64) -> JudgeRecipe {
    JudgeRecipe {
        model: ClassifierConfig {
            conv_channels: conv,
            hidden: 32,
            ..ClassifierConfig::netinv_small()
        },
        weight_seed: seed,
        seed,
        optimizer,
        lr,
        epochs: 2,
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

/// Three tiny judges differing in architecture and optimiser, like the default panel.
fn tiny_panel() -> Vec<PanelMember> {
    vec![
        PanelMember::new("cnn", tiny(vec![4, 8], OptimizerKind::Sgd, 0.05, 3)),
        PanelMember::new("wide", tiny(vec![8, 8], OptimizerKind::Adam, 2e-3, 5)),
        PanelMember::new("mlp", tiny(Vec::new(), OptimizerKind::Adam, 2e-3, 7)),
    ]
}

fn data() -> (netinv_data::Dataset, netinv_data::Dataset) {
    let mnist = netinv_data::Mnist::embedded().unwrap();
    (mnist.train().take(2000), mnist.test().take(200))
}

/// The first `n` digits of `set` as `[n, 1, 28, 28]` with their labels.
fn digits(set: &netinv_data::Dataset, n: usize) -> (Array4<f32>, Vec<u32>) {
    let images = set.images().slice_axis(Axis(0), (0..n).into()).to_owned();
    let labels = set.labels()[..n].iter().map(|&l| u32::from(l)).collect();
    (images.insert_axis(Axis(1)), labels)
}

fn verdict_with(predictions: Vec<u32>, targets: &[u32]) -> Verdict {
    let correct: Vec<bool> = predictions
        .iter()
        .zip(targets)
        .map(|(p, t)| p == t)
        .collect();
    let hits = correct.iter().filter(|&&c| c).count();
    Verdict {
        target_probabilities: vec![0.5; predictions.len()],
        predictions,
        accuracy: hits as f64 / targets.len() as f64,
        correct,
    }
}

#[test]
fn majority_needs_more_than_half_of_the_judges() {
    let targets = [1, 2, 3, 4];
    let mut judges = BTreeMap::new();
    judges.insert("a".to_string(), verdict_with(vec![1, 2, 3, 5], &targets));
    judges.insert("b".to_string(), verdict_with(vec![1, 7, 3, 6], &targets));
    judges.insert("c".to_string(), verdict_with(vec![1, 7, 9, 7], &targets));
    let v = PanelVerdict::from_verdicts(judges, &targets);
    assert_eq!(v.majority, vec![Some(1), Some(7), Some(3), None]);
    assert_eq!(v.majority_correct, vec![true, false, true, false]);
    assert_eq!(v.accuracy, 0.5);
    assert_eq!(v.unanimous, 0.25);
    let acc = v.accuracies();
    assert_eq!((acc["a"], acc["b"], acc["c"]), (0.75, 0.5, 0.25));

    // Two judges: a tie is no majority.
    let mut two = BTreeMap::new();
    two.insert("a".to_string(), verdict_with(vec![1, 2], &targets[..2]));
    two.insert("b".to_string(), verdict_with(vec![1, 3], &targets[..2]));
    let v = PanelVerdict::from_verdicts(two, &targets[..2]);
    assert_eq!(v.majority, vec![Some(1), None]);
}

#[test]
fn panel_trains_caches_and_judges_known_images() {
    let (train, test) = data();
    let dev = Device::Cpu;
    let dir = tempfile::tempdir().unwrap();
    let members = tiny_panel();
    assert!(!JudgePanel::is_cached(dir.path(), &members));
    let mut trained = Vec::new();
    let panel = JudgePanel::load_or_train(dir.path(), &members, &train, &test, &dev, |m| {
        trained.push(m.name.clone());
        Monitor::new()
    })
    .unwrap();
    assert_eq!(trained, ["cnn", "wide", "mlp"]);
    assert_eq!(panel.names(), ["cnn", "wide", "mlp"]);
    // The first member at the folder's root, the others in subfolders.
    assert!(dir.path().join(JUDGE_FILE).exists());
    assert!(dir.path().join("wide").join(JUDGE_FILE).exists());
    assert!(dir.path().join("mlp").join(JUDGE_FILE).exists());
    assert!(JudgePanel::is_cached(dir.path(), &members));
    let reports = panel.reports();
    assert!(reports
        .values()
        .all(|r| r.accepted && r.train_seconds > 0.0));
    assert_eq!(
        reports["mlp"].recipe.model.conv_channels,
        Vec::<usize>::new()
    );

    // Test digits of known class: every judge and the majority mostly right, and the
    // majority is right exactly where more than half of the judges are.
    let (images, labels) = digits(&test, 100);
    let v = panel.verdict(images.view(), &labels).unwrap();
    for (name, acc) in v.accuracies() {
        assert!(acc > 0.8, "{name}: {acc}");
    }
    assert!(v.accuracy > 0.8, "majority {}", v.accuracy);
    for i in 0..100 {
        let votes = v.judges.values().filter(|j| j.correct[i]).count();
        assert_eq!(v.majority_correct[i], 2 * votes > 3, "image {i}");
    }
    // Blank images against targets 0..9: each judge gives all ten the same class, so the
    // majority is one class (or none) for all ten and at most one blank is "correct".
    let blank = Array4::<f32>::zeros((10, 1, 28, 28));
    let targets: Vec<u32> = (0..10).collect();
    let b = panel.verdict(blank.view(), &targets).unwrap();
    assert!(b.majority.iter().all(|m| *m == b.majority[0]));
    assert!(b.majority_correct.iter().filter(|&&c| c).count() <= 1);

    // Cached: loaded without training, the same verdicts bit for bit.
    let cached = JudgePanel::load_cached(dir.path(), &members, &dev)
        .unwrap()
        .unwrap();
    assert_eq!(cached.verdict(images.view(), &labels).unwrap(), v);
    let mut again = 0;
    JudgePanel::load_or_train(dir.path(), &members, &train, &test, &dev, |_| {
        again += 1;
        Monitor::new()
    })
    .unwrap();
    assert_eq!(again, 3, "a monitor per member, but no epoch trained");
    assert!(cached.reports().values().all(|r| r.train_seconds == 0.0));

    // One member with a gate it cannot pass: the panel fails naming it, the member is
    // cached as rejected (not retrained next time), and no cached panel is offered.
    let mut strict = members.clone();
    strict[2].recipe.min_clean_accuracy = 0.999;
    let err =
        JudgePanel::load_or_train(dir.path(), &strict, &train, &test, &dev, |_| Monitor::new())
            .unwrap_err();
    assert!(
        matches!(&err, Error::PanelJudge { name, source } if name == "mlp"
            && matches!(**source, Error::JudgeRejected { .. })),
        "{err}"
    );
    assert!(err
        .to_string()
        .starts_with("judge mlp: the judge was rejected"));
    assert!(JudgePanel::is_cached(dir.path(), &strict));
    assert!(JudgePanel::load_cached(dir.path(), &strict, &dev)
        .unwrap()
        .is_none());
}

#[test]
fn bad_members_are_refused() {
    let (train, test) = data();
    let dev = Device::Cpu;
    let dir = tempfile::tempdir().unwrap();
    let one = tiny_panel()[0].clone();
    for members in [
        Vec::new(),
        vec![one.clone(), one.clone()],
        vec![PanelMember::new("a/b", one.recipe.clone())],
        vec![PanelMember::new("", one.recipe.clone())],
        vec![PanelMember::new(
            "x",
            JudgeRecipe {
                epochs: 0,
                ..one.recipe.clone()
            },
        )],
    ] {
        let out = JudgePanel::load_or_train(dir.path(), &members, &train, &test, &dev, |_| {
            Monitor::new()
        });
        assert!(
            matches!(out, Err(Error::InvalidConfig { .. })),
            "{members:?}"
        );
    }
    // Nothing was trained or written.
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn default_panel_differs_in_architecture_and_optimiser() {
    let panel = default_panel();
    assert_eq!(panel.len(), 3);
    assert_eq!(panel[0].recipe, JudgeRecipe::default());
    for m in &panel {
        m.recipe.validate().unwrap();
        assert!(
            matches!(m.recipe.adversarial, Adversarial::Pgd { .. }),
            "{}",
            m.name
        );
        assert_eq!(m.recipe.shift, 0);
    }
    let convs: Vec<_> = panel
        .iter()
        .map(|m| m.recipe.model.conv_channels.clone())
        .collect();
    assert_eq!(convs, [vec![16, 32], vec![32, 64], vec![]]);
    assert!(panel
        .iter()
        .any(|m| m.recipe.optimizer == OptimizerKind::Adam));
    assert!(panel
        .iter()
        .any(|m| m.recipe.optimizer == OptimizerKind::Sgd));
    let seeds: Vec<u64> = panel.iter().map(|m| m.recipe.weight_seed).collect();
    assert!(seeds[0] != seeds[1] && seeds[1] != seeds[2] && seeds[0] != seeds[2]);
    let dir = std::path::Path::new("runs/judge");
    assert_eq!(member_dir(dir, &panel, 0), dir);
    assert_eq!(member_dir(dir, &panel, 2), dir.join("mlp"));
}

#[test]
fn class_means_score_their_class_and_training_digits_their_label() {
    let mnist = netinv_data::Mnist::embedded().unwrap();
    let train = mnist.train().take(1000);
    let reference = PixelReference::new(&train).unwrap();

    // Each class mean is its own nearest mean, with correlation 1, and the correlation
    // is the one of class_mean_correlation.
    let means: Vec<_> = (0..10u8).map(|c| train.class_mean(c).unwrap()).collect();
    let views: Vec<_> = means.iter().map(|m| m.view()).collect();
    let images = ndarray::stack(Axis(0), &views)
        .unwrap()
        .insert_axis(Axis(1));
    let targets: Vec<u32> = (0..10).collect();
    let s = reference.scores(images.view(), &targets, 3).unwrap();
    assert_eq!(s.nearest_mean_predictions, targets);
    assert_eq!(s.nearest_mean_accuracy, 1.0);
    assert!(
        s.class_mean_corr.iter().all(|r| (r - 1.0).abs() < 1e-6),
        "{:?}",
        s.class_mean_corr
    );
    let (queries, labels) = digits(&mnist.test().take(30), 30);
    let r = reference.scores(queries.view(), &labels, 1).unwrap();
    let direct = class_mean_correlation(queries.view(), &labels, &train).unwrap();
    for (a, b) in r.class_mean_corr.iter().zip(&direct) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }

    // The 1-NN of a training digit is the digit itself, so its own label.
    let (own, own_labels) = digits(&train, 50);
    assert_eq!(reference.knn(own.view(), 1).unwrap(), own_labels);
    let s = reference.scores(own.view(), &own_labels, 1).unwrap();
    assert_eq!((s.knn_accuracy, s.knn_k), (1.0, 1));

    // k = 3 against a brute-force vote over exact distances.
    let knn = reference.knn(queries.view(), 3).unwrap();
    for (i, &got) in knn.iter().enumerate() {
        let mut d: Vec<(f64, usize)> = (0..train.len())
            .map(|j| {
                let dist = queries
                    .index_axis(Axis(0), i)
                    .iter()
                    .zip(train.image(j).iter())
                    .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                    .sum::<f64>();
                (dist, j)
            })
            .collect();
        d.sort_by(|a, b| a.0.total_cmp(&b.0));
        let labels3: Vec<u8> = d[..3].iter().map(|&(_, j)| train.labels()[j]).collect();
        let expected = if labels3[1] == labels3[2] {
            labels3[1]
        } else {
            labels3[0]
        };
        assert_eq!(got, u32::from(expected), "image {i}: {labels3:?}");
    }

    // A blank image correlates with nothing.
    let blank = Array4::<f32>::zeros((1, 1, 28, 28));
    let b = reference.scores(blank.view(), &[3], 5).unwrap();
    assert_eq!(b.class_mean_corr, vec![0.0]);

    // Bad input is an error.
    assert!(reference.knn(own.view(), 0).is_err());
    assert!(reference.knn(own.view(), 1001).is_err());
    assert!(reference.scores(own.view(), &own_labels[..3], 1).is_err());
    assert!(reference.scores(blank.view(), &[10], 1).is_err());
    let mut nan = blank.clone();
    nan[[0, 0, 1, 1]] = f32::NAN;
    assert!(reference.knn(nan.view(), 1).is_err());
    assert!(reference
        .knn(Array4::<f32>::zeros((1, 1, 27, 28)).view(), 1)
        .is_err());
    assert!(PixelReference::new(&train.take(0)).is_err());
}
