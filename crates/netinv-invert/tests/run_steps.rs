//! The step API of the inversion engine: start + steps + finish is `Inverter::run`, bit for
//! bit, and a held run with replaced images and a reset optimiser is a fresh run.

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use netinv_core::{Monitor, Termination};
use netinv_invert::{
    CrossEntropy, Error, ImageOptimizer, Inversion, InversionConfig, Inverter, Jitter, Reduction,
};
use netinv_models::{Classifier, ClassifierConfig};

fn net(batch_norm: bool) -> Classifier {
    let cfg = ClassifierConfig {
        conv_channels: vec![4, 8],
        hidden: 16,
        batch_norm,
        ..ClassifierConfig::netinv_small()
    };
    Classifier::init(&cfg, &VarMap::new(), 5, &Device::Cpu).unwrap()
}

/// Every field of two inversions is the same (bits, via `PartialEq` on floats; the
/// histories have no NaN since the objective has targets). Timing aside.
fn assert_same(a: &Inversion, b: &Inversion) {
    assert_eq!(a.images, b.images);
    assert_eq!(a.initial, b.initial);
    assert_eq!(a.snapshots, b.snapshots);
    assert_eq!(a.history, b.history);
    assert_eq!(a.probabilities, b.probabilities);
    assert_eq!(a.state.iteration, b.state.iteration);
    assert_eq!(a.state.cost, b.state.cost);
    assert_eq!(a.state.best_cost, b.state.best_cost);
    assert_eq!(a.state.metrics, b.state.metrics);
    assert_eq!(a.state.termination, b.state.termination);
}

fn stepped(inverter: &Inverter, net: &Classifier, targets: &[u32], steps: usize) -> Inversion {
    let objective = CrossEntropy::new(targets.to_vec(), Reduction::Mean);
    let init = inverter
        .gaussian_init(targets.len(), (1, 28, 28), &Device::Cpu)
        .unwrap();
    let mut monitor = Monitor::new();
    let mut run = inverter.start(net, objective, &init).unwrap();
    let mut reasons = Vec::new();
    for _ in 0..steps {
        reasons.push(run.step(&mut monitor).unwrap());
    }
    // only the last step reports the budget
    assert!(reasons[..steps - 1].iter().all(Option::is_none));
    assert_eq!(reasons[steps - 1], Some(Termination::MaxIterations));
    run.finish(&mut monitor).unwrap()
}

#[test]
fn start_steps_finish_is_run_bit_for_bit() {
    let settings = [
        (
            false,
            InversionConfig {
                steps: 5,
                snapshots: vec![2, 5],
                ..Default::default()
            },
        ),
        (
            true,
            InversionConfig {
                steps: 4,
                bn: 0.01,
                tv_l1: 1e-3,
                tv_isotropic: 1e-3,
                jitter: Some(Jitter {
                    max_shift: 1,
                    seed: 3,
                }),
                snapshots: vec![1],
                ..Default::default()
            },
        ),
        (
            false,
            InversionConfig {
                steps: 3,
                optimizer: ImageOptimizer::Sgd { momentum: 0.9 },
                lr: 0.1,
                ..Default::default()
            },
        ),
    ];
    for (batch_norm, cfg) in settings {
        let net = net(batch_norm);
        let inverter = Inverter::new(cfg.clone()).unwrap();
        let targets = [1, 4, 7];
        let whole = inverter
            .invert_classes(&net, &targets, None, &Device::Cpu, &mut Monitor::new())
            .unwrap();
        let steps = stepped(&inverter, &net, &targets, cfg.steps);
        assert_same(&whole, &steps);
    }
}

#[test]
fn held_run_with_new_images_and_reset_optimizer_is_a_fresh_run() {
    let net = net(false);
    let inverter = Inverter::new(InversionConfig {
        steps: 4,
        ..Default::default()
    })
    .unwrap();
    let first = CrossEntropy::new(vec![2, 3], Reduction::Sum);
    let init = inverter
        .gaussian_init(2, (1, 28, 28), &Device::Cpu)
        .unwrap();
    let mut monitor = Monitor::new();
    let mut run = inverter.start(&net, first, &init).unwrap();
    for _ in 0..3 {
        run.step(&mut monitor).unwrap();
    }
    // another solver's turn: darker images, and new classes
    let moved = (run.images() * 0.5).unwrap();
    run.set_images(&moved).unwrap();
    assert_eq!(
        run.images()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
        moved.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );
    let second = CrossEntropy::new(vec![8, 0], Reduction::Sum);
    run.set_objective(second.clone()).unwrap();
    run.reset_optimizer();
    for _ in 0..4 {
        run.step(&mut monitor).unwrap();
    }
    let held = run.finish(&mut monitor).unwrap();

    let fresh = inverter
        .run(&net, &second, &moved, &mut Monitor::new())
        .unwrap();
    assert_eq!(held.images, fresh.images);
    assert_eq!(held.probabilities, fresh.probabilities);
    assert_eq!(held.history.len(), 7);
    for (h, f) in held.history[3..].iter().zip(&fresh.history) {
        assert_eq!((h.total, h.objective), (f.total, f.objective));
        assert_eq!(h.priors, f.priors);
        assert_eq!(h.target_prob_min, f.target_prob_min);
    }
    // stepping past the budget goes on and keeps reporting it
    assert_eq!(held.state.iteration, 7);
    assert_eq!(held.state.termination, Some(Termination::MaxIterations));
}

#[test]
fn bad_replacements_are_errors_and_early_finish_says_so() {
    let net = net(false);
    let inverter = Inverter::new(InversionConfig {
        steps: 10,
        ..Default::default()
    })
    .unwrap();
    let objective = CrossEntropy::new(vec![1], Reduction::Mean);
    let init = Tensor::full(0.5f32, (1, 1, 28, 28), &Device::Cpu).unwrap();
    let mut monitor = Monitor::new();
    let mut run = inverter.start(&net, objective, &init).unwrap();
    let wrong = Tensor::zeros((2, 1, 28, 28), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(run.set_images(&wrong), Err(Error::Shape { .. })));
    let nan = Tensor::full(f32::NAN, (1, 1, 28, 28), &Device::Cpu).unwrap();
    assert!(matches!(run.set_images(&nan), Err(Error::NonFinite { .. })));
    let two = CrossEntropy::new(vec![1, 2], Reduction::Mean);
    assert!(matches!(run.set_objective(two), Err(Error::Shape { .. })));
    let out_of_range = CrossEntropy::new(vec![10], Reduction::Mean);
    assert!(matches!(
        run.set_objective(out_of_range),
        Err(Error::TargetOutOfRange { .. })
    ));
    // the failed replacements left the run as it was
    assert_eq!(run.step(&mut monitor).unwrap(), None);
    assert_eq!(run.state().iteration, 1);
    let out = run.finish(&mut monitor).unwrap();
    assert_eq!(out.history.len(), 1);
    assert!(matches!(
        out.state.termination,
        Some(Termination::Other(ref why)) if why.contains("caller")
    ));
}
