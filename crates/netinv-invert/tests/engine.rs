//! The inversion engine on real (tiny) classifiers: bad input, determinism, snapshots, stop
//! rules, priors, and that inversion raises the target probability of a trained net.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use netinv_core::{IterState, Monitor, Termination};
use netinv_invert::{
    CrossEntropy, Error, ImageOptimizer, InversionConfig, Inverter, InvertibleNet, Jitter,
    Reduction, TargetProbability,
};
use netinv_models::train::{TrainConfig, Trainer};
use netinv_models::{Classifier, ClassifierConfig};

fn tiny(batch_norm: bool) -> ClassifierConfig {
    ClassifierConfig {
        conv_channels: vec![4, 8],
        hidden: 16,
        batch_norm,
        ..ClassifierConfig::netinv_small()
    }
}

fn untrained(batch_norm: bool) -> Classifier {
    let varmap = VarMap::new();
    Classifier::init(&tiny(batch_norm), &varmap, 3, &Device::Cpu).unwrap()
}

/// A tiny net trained for three epochs on 2,048 embedded digits (once per test binary).
fn trained() -> &'static Classifier {
    static NET: std::sync::OnceLock<Classifier> = std::sync::OnceLock::new();
    NET.get_or_init(|| {
        let mnist = netinv_data::Mnist::embedded().unwrap();
        let varmap = VarMap::new();
        let net = Classifier::init(&tiny(false), &varmap, 11, &Device::Cpu).unwrap();
        let trainer = Trainer::new(TrainConfig {
            epochs: 3,
            ..TrainConfig::sgd()
        })
        .unwrap();
        trainer
            .fit(
                &net,
                &varmap,
                &mnist.train().take(2048),
                None,
                &mut Monitor::new(),
            )
            .unwrap();
        net
    })
}

fn short(steps: usize) -> InversionConfig {
    InversionConfig {
        steps,
        ..Default::default()
    }
}

fn run_classes(
    cfg: InversionConfig,
    net: &Classifier,
    targets: &[u32],
) -> netinv_invert::Result<netinv_invert::Inversion> {
    Inverter::new(cfg)?.invert_classes(net, targets, None, &Device::Cpu, &mut Monitor::new())
}

#[test]
fn target_out_of_range_is_an_error() {
    let err = run_classes(short(2), &untrained(false), &[0, 10]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TargetOutOfRange {
                index: 1,
                class: 10,
                outputs: 10
            }
        ),
        "{err}"
    );
}

#[test]
fn batch_target_mismatch_is_an_error() {
    let net = untrained(false);
    let inverter = Inverter::new(short(2)).unwrap();
    let init = inverter
        .gaussian_init(3, (1, 28, 28), &Device::Cpu)
        .unwrap();
    let err = inverter
        .invert_classes(
            &net,
            &[1, 2],
            Some(&init),
            &Device::Cpu,
            &mut Monitor::new(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let wrong_size = Tensor::zeros((2, 1, 27, 28), DType::F32, &Device::Cpu).unwrap();
    let err = inverter
        .invert_classes(
            &net,
            &[1, 2],
            Some(&wrong_size),
            &Device::Cpu,
            &mut Monitor::new(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
}

#[test]
fn bn_prior_needs_batch_norm() {
    let cfg = InversionConfig {
        bn: 0.01,
        ..short(2)
    };
    let err = run_classes(cfg.clone(), &untrained(false), &[1]).unwrap_err();
    assert!(matches!(err, Error::NoBatchNorm), "{err}");
    // With BatchNorm the term is computed and recorded.
    let out = run_classes(cfg, &untrained(true), &[1, 2]).unwrap();
    let bn = out.history[0]
        .priors
        .iter()
        .find(|(n, _)| n == "bn")
        .unwrap()
        .1;
    assert!(bn.is_finite() && bn > 0.0);
}

#[test]
fn nan_image_and_nan_loss_are_errors() {
    let net = untrained(false);
    let inverter = Inverter::new(short(2)).unwrap();
    let mut data = vec![0.5f32; 28 * 28];
    data[17] = f32::NAN;
    let init = Tensor::from_vec(data, (1, 1, 28, 28), &Device::Cpu).unwrap();
    let err = inverter
        .invert_classes(&net, &[1], Some(&init), &Device::Cpu, &mut Monitor::new())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFinite {
                what: "initial image",
                ..
            }
        ),
        "{err}"
    );

    let nan_objective = |o: &Tensor| o.sum_all()?.affine(f64::NAN, 0.0);
    let start = inverter
        .gaussian_init(1, (1, 28, 28), &Device::Cpu)
        .unwrap();
    let err = inverter
        .run(&net, &nan_objective, &start, &mut Monitor::new())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFinite {
                what: "loss",
                iteration: 0
            }
        ),
        "{err}"
    );
}

#[test]
fn config_rules_are_checked() {
    let bad = [
        InversionConfig {
            lr: 0.0,
            ..Default::default()
        },
        InversionConfig {
            steps: 0,
            ..Default::default()
        },
        InversionConfig {
            clamp: Some([1.0, 0.0]),
            ..Default::default()
        },
        InversionConfig {
            init_std: -1.0,
            ..Default::default()
        },
        InversionConfig {
            tv: -1.0,
            ..Default::default()
        },
        InversionConfig {
            tv_l1: f64::NAN,
            ..Default::default()
        },
        InversionConfig {
            tv_isotropic: 1.0,
            tv_isotropic_eps: 0.0,
            ..Default::default()
        },
        InversionConfig {
            l2: -1e-4,
            ..Default::default()
        },
        InversionConfig {
            bn: -1.0,
            ..Default::default()
        },
        InversionConfig {
            jitter: Some(Jitter {
                max_shift: 0,
                seed: 0,
            }),
            ..Default::default()
        },
        InversionConfig {
            snapshots: vec![0],
            ..Default::default()
        },
        InversionConfig {
            snapshots: vec![1001],
            ..Default::default()
        },
        InversionConfig {
            optimizer: ImageOptimizer::Sgd { momentum: 1.0 },
            ..Default::default()
        },
        InversionConfig {
            optimizer: ImageOptimizer::Adam {
                beta1: 0.9,
                beta2: 1.0,
                eps: 1e-8,
            },
            ..Default::default()
        },
    ];
    for cfg in bad {
        assert!(Inverter::new(cfg.clone()).is_err(), "{cfg:?}");
    }
    let json = serde_json::to_string(&InversionConfig::default()).unwrap();
    let back: InversionConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, InversionConfig::default());
    // Missing fields take their defaults.
    let partial: InversionConfig = serde_json::from_str(r#"{"steps": 5}"#).unwrap();
    assert_eq!(partial.steps, 5);
    assert_eq!(partial.lr, 0.05);
}

#[test]
fn runs_are_deterministic_clamped_and_snapshotted() {
    let net = untrained(false);
    let cfg = InversionConfig {
        snapshots: vec![1, 3],
        jitter: Some(Jitter {
            max_shift: 2,
            seed: 9,
        }),
        ..short(4)
    };
    let a = run_classes(cfg.clone(), &net, &[0, 5]).unwrap();
    let b = run_classes(cfg, &net, &[0, 5]).unwrap();
    assert_eq!(a.images, b.images);
    assert_eq!(a.history.len(), 4);
    assert_eq!(a.state.iteration, 4);
    assert_eq!(a.state.termination, Some(Termination::MaxIterations));
    assert_eq!(
        a.snapshots.iter().map(|s| s.iteration).collect::<Vec<_>>(),
        vec![1, 3]
    );
    assert!(a.images.iter().all(|v| (0.0..=1.0).contains(v)));
    // The initial images are the seeded Gaussian start 0.5 + 0.2 N(0, 1) drawn from
    // StdRng(seed 0), value for value, and not clamped (1,568 draws: some fall outside
    // [0, 1], and their mean and spread are those of the formula).
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    let normal = rand_distr::Normal::new(0.0f32, 1.0).unwrap();
    let expected: Vec<f32> = (0..a.initial.len())
        .map(|_| 0.5 + 0.2 * rand_distr::Distribution::sample(&normal, &mut rng))
        .collect();
    assert_eq!(a.initial.iter().copied().collect::<Vec<f32>>(), expected);
    assert!(a.initial.iter().any(|&v| !(0.0..=1.0).contains(&v)));
    let n = a.initial.len() as f64;
    let mean = a.initial.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = a
        .initial
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    assert!(
        (mean - 0.5).abs() < 0.02 && (var.sqrt() - 0.2).abs() < 0.02,
        "{mean} {var}"
    );
    let c = run_classes(
        InversionConfig {
            seed: 1,
            ..short(4)
        },
        &net,
        &[0, 5],
    )
    .unwrap();
    assert_ne!(a.initial, c.initial);
    // The history's cost is the sum of its terms.
    for r in &a.history {
        let sum = r.objective + r.priors.iter().map(|(_, v)| v).sum::<f64>();
        assert!((sum - r.total).abs() <= 1e-4 * r.total.abs().max(1.0));
    }
}

#[test]
fn stop_rule_and_observer_see_every_step() {
    let net = trained();
    let inverter = Inverter::new(InversionConfig {
        lr: 0.1,
        ..short(500)
    })
    .unwrap();
    let mut seen = 0usize;
    let out = {
        let mut monitor = Monitor::new()
            .with_observer(|_: &IterState, _: &Tensor| {
                seen += 1;
                Ok(())
            })
            .with_stop_rule(TargetProbability { threshold: 0.9 });
        inverter
            .invert_classes(net, &[4], None, &Device::Cpu, &mut monitor)
            .unwrap()
    };
    assert_eq!(out.state.termination, Some(Termination::TargetReached));
    assert!(out.state.iteration < 500);
    assert_eq!(seen, out.state.iteration);
    assert!(out.history.last().unwrap().target_prob_min >= 0.9);
}

#[test]
fn sum_reduction_weighs_the_class_loss_by_the_batch() {
    let net = untrained(false);
    let targets = [0u32, 1, 2, 3];
    let mean = run_classes(short(1), &net, &targets).unwrap();
    let sum = run_classes(
        InversionConfig {
            reduction: Reduction::Sum,
            ..short(1)
        },
        &net,
        &targets,
    )
    .unwrap();
    let (m, s) = (mean.history[0].objective, sum.history[0].objective);
    assert!((s - 4.0 * m).abs() < 1e-4 * s.abs(), "{s} vs 4 * {m}");
}

#[test]
fn inversion_raises_the_target_probability_of_a_trained_net() {
    let net = trained();
    let targets: Vec<u32> = (0..10).collect();
    let inverter = Inverter::new(short(60)).unwrap();
    let out = inverter
        .invert_classes(net, &targets, None, &Device::Cpu, &mut Monitor::new())
        .unwrap();
    let before = out.history[0].target_prob_mean;
    let after: f64 = out
        .probabilities
        .iter()
        .zip(&targets)
        .map(|(p, &t)| f64::from(p[t as usize]))
        .sum::<f64>()
        / 10.0;
    assert!(
        after > before + 0.3,
        "mean target probability {before} -> {after}"
    );
    assert!(
        out.predictions()
            .iter()
            .zip(&targets)
            .filter(|(p, t)| p == t)
            .count()
            >= 8
    );
    // The net's own objective fell.
    let first = out.history.first().unwrap().objective;
    let last = out.history.last().unwrap().objective;
    assert!(last < first);
    let _ = CrossEntropy::new(targets, Reduction::Mean);
    assert_eq!(net.input_dims(), (1, 28, 28));
}
