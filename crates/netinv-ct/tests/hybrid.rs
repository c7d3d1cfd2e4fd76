//! Tests of the hybrid loop and the class-prior solver with a tiny BatchNorm net trained
//! here on a few hundred embedded digits.

use std::cell::RefCell;
use std::sync::OnceLock;

use candle_core::Device;
use candle_nn::VarMap;
use ndarray::Array2;
use netinv_core::{IterState, MaxIterations, Monitor};
use netinv_ct::{
    class_loss, predict_class, scan_operator, ClassPriorConfig, ClassPriorSolver, Error,
    HybridConfig, HybridReconstructor, InversionTerms, LabelMode, StepKind,
};
use netinv_data::Mnist;
use netinv_models::train::{TrainConfig, Trainer};
use netinv_models::{Classifier, ClassifierConfig};
use netinv_tomo::{CsrOperator, LinearOperator, Sirt, SirtConfig};

fn mnist() -> &'static Mnist {
    static DATA: OnceLock<Mnist> = OnceLock::new();
    DATA.get_or_init(|| Mnist::embedded().unwrap())
}

fn tiny(batch_norm: bool) -> ClassifierConfig {
    ClassifierConfig {
        conv_channels: vec![4, 8],
        hidden: 16,
        batch_norm,
        ..ClassifierConfig::netinv_small()
    }
}

/// A tiny BN classifier trained for 3 epochs on 600 digits (shared by the tests).
fn trained() -> &'static Classifier {
    static NET: OnceLock<Classifier> = OnceLock::new();
    NET.get_or_init(|| {
        let varmap = VarMap::new();
        let net = Classifier::init(&tiny(true), &varmap, 1, &Device::Cpu).unwrap();
        let cfg = TrainConfig {
            epochs: 3,
            batch_size: 16,
            seed: 5,
            ..TrainConfig::default()
        };
        let train = mnist().train().take(600);
        Trainer::new(cfg)
            .unwrap()
            .fit(&net, &varmap, &train, None, &mut Monitor::new())
            .unwrap();
        net
    })
}

fn digit(i: usize) -> (Array2<f32>, u32) {
    let test = mnist().test();
    (test.image(i).to_owned(), u32::from(test.labels()[i]))
}

fn plain_sirt(op: &impl LinearOperator, sino: &Array2<f32>, iterations: usize) -> Array2<f32> {
    let cfg = SirtConfig {
        iterations,
        min: Some(0.0),
        max: Some(1.0),
        ..Default::default()
    };
    Sirt::new(cfg)
        .unwrap()
        .reconstruct(op, sino.view())
        .unwrap()
        .image
}

/// Runs the hybrid loop with `cfg` on `sino` (no reference image, a quiet monitor).
fn reconstruct(
    cfg: HybridConfig,
    op: &impl LinearOperator,
    sino: &Array2<f32>,
    label: LabelMode,
) -> netinv_ct::HybridReconstruction {
    HybridReconstructor::new(cfg)
        .unwrap()
        .reconstruct(trained(), op, sino.view(), label, None, &mut Monitor::new())
        .unwrap()
}

fn bits(a: &Array2<f32>) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn one_inversion_step_lowers_the_class_loss_on_a_sirt_image() {
    let net = trained();
    let op = scan_operator(28, 4).unwrap();
    for i in 0..4 {
        let (truth, label) = digit(i);
        let sino = op.apply(truth.view());
        let sirt = plain_sirt(&op, &sino, 50);
        // 50 SIRT iterations, then a single inversion iteration of one Adam step.
        let mut cfg = HybridConfig {
            warmup_sirt: 50,
            alternating: 1,
            sirt_per_cycle: 0,
            inversion_per_cycle: 1,
            terms: InversionTerms::ClassOnly,
            ..Default::default()
        };
        cfg.inversion.steps = 1;
        let rec = reconstruct(cfg, &op, &sino, LabelMode::Oracle(label));
        assert_eq!(rec.records.len(), 51);
        assert_eq!(rec.records[50].kind, StepKind::Inversion);
        assert_eq!(rec.records[50].class, Some(label));
        let before = class_loss(net, sirt.view(), label).unwrap();
        let after = class_loss(net, rec.image.view(), label).unwrap();
        assert!(after < before, "digit {i}: class loss {before} -> {after}");
        // the inversion iteration did change the SIRT image
        assert_ne!(bits(&rec.image), bits(&sirt));
    }
}

#[test]
fn without_effective_inversion_the_loop_is_plain_sirt_bit_for_bit() {
    let op = scan_operator(28, 4).unwrap();
    let (truth, label) = digit(7);
    let sino = op.apply(truth.view());
    let base = HybridConfig::default();
    let n_sirt = base.sirt_iterations();
    assert_eq!(n_sirt, 88);
    let reference = plain_sirt(&op, &sino, n_sirt);
    let mut zero_weights = HybridConfig {
        class_weight: 0.0,
        ..base.clone()
    };
    zero_weights.inversion.tv = 0.0;
    zero_weights.inversion.l2 = 0.0;
    zero_weights.inversion.bn = 0.0;
    let mut no_steps = base.clone();
    no_steps.inversion.steps = 0;
    let arms = [
        (zero_weights.clone(), LabelMode::Oracle(label)),
        (zero_weights, LabelMode::Predicted),
        (no_steps, LabelMode::Predicted),
        (
            HybridConfig {
                inversion_per_cycle: 0,
                ..base.clone()
            },
            LabelMode::Predicted,
        ),
    ];
    for (k, (cfg, label)) in arms.into_iter().enumerate() {
        let rec = reconstruct(cfg.clone(), &op, &sino, label);
        if cfg.inversion_per_cycle == 0 {
            // no inversion iterations at all: 100 SIRT iterations
            assert_eq!(
                bits(&rec.image),
                bits(&plain_sirt(&op, &sino, 100)),
                "arm {k}"
            );
        } else {
            assert_eq!(bits(&rec.image), bits(&reference), "arm {k}");
        }
        assert_eq!(rec.records.len(), 100);
    }
    // and with the default weights the inversion does change the image
    let rec = reconstruct(base, &op, &sino, LabelMode::Oracle(label));
    assert_ne!(bits(&rec.image), bits(&reference));
}

#[test]
fn label_free_mode_uses_the_prediction_on_the_current_image() {
    let net = trained();
    let op = scan_operator(28, 3).unwrap();
    let (truth, _label) = digit(3); // the label is deliberately never passed below
    let sino = op.apply(truth.view());
    let mut cfg = HybridConfig {
        warmup_sirt: 10,
        alternating: 20,
        sirt_per_cycle: 1,
        inversion_per_cycle: 1,
        ..Default::default()
    };
    cfg.inversion.steps = 3;
    cfg.inversion.lr = 0.05;
    let images = RefCell::new(vec![Array2::<f32>::zeros((28, 28))]);
    let mut monitor = Monitor::new().with_observer(|_: &IterState, x: &Array2<f32>| {
        images.borrow_mut().push(x.clone());
        Ok(())
    });
    let rec = HybridReconstructor::new(cfg)
        .unwrap()
        .reconstruct(
            net,
            &op,
            sino.view(),
            LabelMode::Predicted,
            Some(truth.view()),
            &mut monitor,
        )
        .unwrap();
    drop(monitor);
    let images = images.into_inner();
    let mut n_inv = 0;
    for r in &rec.records {
        if r.kind == StepKind::Inversion {
            n_inv += 1;
            let before = &images[r.iteration - 1];
            assert_eq!(r.class, Some(predict_class(net, before.view()).unwrap()));
        } else {
            assert_eq!(r.class, None);
        }
        assert!(r.psnr.unwrap().is_finite());
    }
    assert_eq!(n_inv, 10);
    // Deterministic: the same call gives the same image.
    let again = reconstruct(rec_cfg(), &op, &sino, LabelMode::Predicted);
    let once = reconstruct(rec_cfg(), &op, &sino, LabelMode::Predicted);
    assert_eq!(bits(&again.image), bits(&once.image));
}

/// The largest pixel-wise difference of two images.
fn max_abs_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    a.iter()
        .zip(b.iter())
        .map(|(p, q)| (p - q).abs())
        .fold(0.0f32, f32::max)
}

fn rec_cfg() -> HybridConfig {
    let mut cfg = HybridConfig {
        warmup_sirt: 5,
        alternating: 8,
        ..Default::default()
    };
    cfg.inversion.steps = 2;
    cfg
}

/// The batched loop (one network batch per inversion iteration, BN statistics per image,
/// class loss summed) gives each image what the one-at-a-time loop gives it.
#[test]
fn a_batch_reconstructs_each_image_as_if_alone() {
    let net = trained();
    let op = scan_operator(28, 4).unwrap();
    let digits: Vec<(Array2<f32>, u32)> = (0..3).map(digit).collect();
    let sinos: Vec<Array2<f32>> = digits.iter().map(|(t, _)| op.apply(t.view())).collect();
    let labels = [
        LabelMode::Predicted,
        LabelMode::Oracle(digits[1].1),
        LabelMode::Predicted,
    ];
    let hybrid = HybridReconstructor::new(rec_cfg()).unwrap();
    let views: Vec<_> = sinos.iter().map(|s| s.view()).collect();
    let batch = hybrid.reconstruct_batch(net, &op, &views, &labels).unwrap();
    assert_eq!(batch.len(), 3);
    for (k, b) in batch.iter().enumerate() {
        let alone = hybrid
            .reconstruct(net, &op, views[k], labels[k], None, &mut Monitor::new())
            .unwrap();
        let diff = max_abs_diff(&alone.image, &b.image);
        assert!(diff < 1e-4, "image {k}: largest difference {diff}");
        assert_eq!(b.records.len(), alone.records.len());
        let classes = |r: &[netinv_ct::IterationRecord]| -> Vec<Option<u32>> {
            r.iter().map(|x| x.class).collect()
        };
        assert_eq!(classes(&b.records), classes(&alone.records));
        // the inversion changed the image: SIRT alone does not give this result
        let sirt = plain_sirt(&op, &sinos[k], rec_cfg().sirt_iterations());
        assert!(b
            .image
            .iter()
            .zip(sirt.iter())
            .any(|(a, c)| (a - c).abs() > 1e-3));
    }
    assert!(hybrid
        .reconstruct_batch(net, &op, &views, &labels[..2])
        .is_err());
}

#[test]
fn records_and_monitor_stop_rule() {
    let net = trained();
    let op = scan_operator(28, 6).unwrap();
    let (truth, label) = digit(1);
    let sino = op.apply(truth.view());
    let mut monitor = Monitor::new().with_stop_rule(MaxIterations(60));
    let rec = HybridReconstructor::new(HybridConfig::default())
        .unwrap()
        .reconstruct(
            net,
            &op,
            sino.view(),
            LabelMode::Oracle(label),
            Some(truth.view()),
            &mut monitor,
        )
        .unwrap();
    assert_eq!(rec.records.len(), 60);
    assert_eq!(rec.state.iteration, 60);
    // During the warm-up SIRT the residual never increases.
    for w in rec.records[..50].windows(2) {
        assert!(w[1].residual <= w[0].residual * (1.0 + 1e-6), "{w:?}");
    }
    let inv: Vec<_> = rec
        .records
        .iter()
        .filter(|r| r.kind == StepKind::Inversion)
        .collect();
    assert_eq!(inv.len(), 2); // iterations 54 and 58
    assert!(inv
        .iter()
        .all(|r| r.objective.is_some() && r.class == Some(label)));
}

#[test]
fn class_prior_solver_lowers_the_class_loss_and_fits_the_data() {
    let net = trained();
    let op = scan_operator(28, 4).unwrap();
    let (truth, label) = digit(2);
    let sino = op.apply(truth.view());
    let run = |class_weight: f64| {
        let cfg = ClassPriorConfig {
            iterations: 150,
            class_weight,
            relative_change: None,
            ..Default::default()
        };
        ClassPriorSolver::new(cfg)
            .unwrap()
            .reconstruct(
                net,
                &op,
                sino.view(),
                LabelMode::Oracle(label),
                None,
                &mut Monitor::new(),
            )
            .unwrap()
    };
    let with = run(1.0);
    let without = run(0.0);
    let lw = class_loss(net, with.image.view(), label).unwrap();
    let lo = class_loss(net, without.image.view(), label).unwrap();
    assert!(lw < lo, "class loss with {lw} without {lo}");
    assert_eq!(with.class, Some(label));
    assert_eq!(without.class, None);
    let r0 = netinv_ct::half_residual(&op, Array2::<f32>::zeros((28, 28)).view(), sino.view());
    let r = *without.state.metrics.get("residual").unwrap();
    assert!(r < 0.05 * r0, "residual {r} from {r0}");
    assert!(with.image.iter().all(|v| (0.0..=1.0).contains(v)));
}

/// The batched projected-gradient solver (one network batch, per-image BN statistics and
/// stops) gives each image what it gets alone, with its own stopping iteration.
#[test]
fn class_prior_batch_reconstructs_each_image_as_if_alone() {
    let net = trained();
    let op = CsrOperator::new(&scan_operator(28, 4).unwrap());
    let digits: Vec<(Array2<f32>, u32)> = (0..3).map(digit).collect();
    let sinos: Vec<Array2<f32>> = digits.iter().map(|(t, _)| op.apply(t.view())).collect();
    let views: Vec<_> = sinos.iter().map(|s| s.view()).collect();
    let starts: Vec<Array2<f32>> = sinos.iter().map(|s| plain_sirt(&op, s, 20)).collect();
    let start_views: Vec<_> = starts.iter().map(|x| x.view()).collect();
    let labels = [
        LabelMode::Predicted,
        LabelMode::Oracle(digits[1].1),
        LabelMode::Predicted,
    ];
    let solver = ClassPriorSolver::new(ClassPriorConfig {
        iterations: 60,
        bn: 0.01,
        l2: 1e-3,
        relative_change: Some(2e-3),
        ..Default::default()
    })
    .unwrap();
    let batch = solver
        .reconstruct_batch(net, &op, &views, &labels, Some(&start_views))
        .unwrap();
    let mut stops = Vec::new();
    for (k, b) in batch.iter().enumerate() {
        let alone = solver
            .reconstruct(
                net,
                &op,
                views[k],
                labels[k],
                Some(start_views[k]),
                &mut Monitor::new(),
            )
            .unwrap();
        let diff = max_abs_diff(&alone.image, &b.image);
        assert!(diff < 1e-4, "image {k}: largest difference {diff}");
        assert_eq!(b.state.iteration, alone.state.iteration);
        assert_eq!(b.state.termination, alone.state.termination);
        assert_eq!(b.class, alone.class);
        let (cb, ca) = (b.state.cost.unwrap(), alone.state.cost.unwrap());
        assert!((cb - ca).abs() <= 1e-4 * ca.abs(), "cost {cb} vs {ca}");
        stops.push(b.state.iteration);
    }
    assert_eq!(batch[1].class, Some(digits[1].1));
    assert!(
        stops.iter().any(|&s| s < 60),
        "no image stopped early: {stops:?}"
    );
    assert!(solver
        .reconstruct_batch(net, &op, &views, &labels[..2], None)
        .is_err());
}

#[test]
fn bad_input_is_a_clear_error() {
    let net = trained();
    let op = scan_operator(28, 4).unwrap();
    let (truth, _) = digit(0);
    let sino = op.apply(truth.view());
    let hybrid = HybridReconstructor::new(HybridConfig::default()).unwrap();
    let run = |net: &Classifier, op: &netinv_tomo::RayTransform, sino: &Array2<f32>, label| {
        hybrid.reconstruct(net, op, sino.view(), label, None, &mut Monitor::new())
    };
    assert!(matches!(scan_operator(28, 0), Err(Error::NoAngles)));
    // BN prior on, classifier without BatchNorm
    let plain = Classifier::init(&tiny(false), &VarMap::new(), 0, &Device::Cpu).unwrap();
    let err = run(&plain, &op, &sino, LabelMode::Predicted).unwrap_err();
    assert!(matches!(err, Error::NoBatchNorm { .. }), "{err}");
    assert!(err.to_string().contains("BatchNorm"));
    // ... which is fine with bn = 0, or in the class-only arm
    let mut no_bn_cfg = HybridConfig {
        warmup_sirt: 2,
        alternating: 4,
        ..Default::default()
    };
    no_bn_cfg.inversion.bn = 0.0;
    let no_bn = HybridReconstructor::new(no_bn_cfg).unwrap();
    no_bn
        .reconstruct(
            &plain,
            &op,
            sino.view(),
            LabelMode::Predicted,
            None,
            &mut Monitor::new(),
        )
        .unwrap();
    // image size not matching the classifier
    let op32 = scan_operator(32, 4).unwrap();
    let sino32 = op32.apply(Array2::<f32>::zeros((32, 32)).view());
    let err = run(net, &op32, &sino32, LabelMode::Predicted).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    // class out of range, wrong sinogram, NaN data, bad reference
    assert!(matches!(
        run(net, &op, &sino, LabelMode::Oracle(10)),
        Err(Error::ClassOutOfRange {
            class: 10,
            outputs: 10
        })
    ));
    let wrong = Array2::<f32>::zeros((5, 42));
    assert!(matches!(
        run(net, &op, &wrong, LabelMode::Predicted),
        Err(Error::Tomo(_))
    ));
    let mut nan = sino.clone();
    nan[[0, 3]] = f32::NAN;
    assert!(matches!(
        run(net, &op, &nan, LabelMode::Predicted),
        Err(Error::Tomo(_))
    ));
    let bad_ref = Array2::<f32>::zeros((27, 28));
    assert!(matches!(
        hybrid.reconstruct(
            net,
            &op,
            sino.view(),
            LabelMode::Predicted,
            Some(bad_ref.view()),
            &mut Monitor::new()
        ),
        Err(Error::Shape { .. })
    ));
    // the converged solver checks the same things
    let solver = ClassPriorSolver::new(ClassPriorConfig {
        bn: 1e-2,
        iterations: 2,
        ..Default::default()
    })
    .unwrap();
    assert!(matches!(
        solver.reconstruct(
            &plain,
            &op,
            sino.view(),
            LabelMode::Predicted,
            None,
            &mut Monitor::new()
        ),
        Err(Error::NoBatchNorm { .. })
    ));
    assert!(matches!(
        solver.reconstruct(
            net,
            &op32,
            sino32.view(),
            LabelMode::Predicted,
            None,
            &mut Monitor::new()
        ),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        ClassPriorSolver::new(ClassPriorConfig {
            step_scale: 2.5,
            ..Default::default()
        }),
        Err(Error::InvalidConfig {
            field: "step_scale",
            ..
        })
    ));
}

/// Stepping a `HybridRun` by hand is the batch reconstruction, bit for bit, and the run
/// refuses a step past the schedule.
#[test]
fn a_stepped_run_is_the_batch_reconstruction() {
    let net = trained();
    let op = scan_operator(28, 4).unwrap();
    let sinos: Vec<Array2<f32>> = (0..2).map(|i| op.apply(digit(i).0.view())).collect();
    let views: Vec<_> = sinos.iter().map(|s| s.view()).collect();
    let labels = [LabelMode::Predicted, LabelMode::Oracle(digit(1).1)];
    let hybrid = HybridReconstructor::new(rec_cfg()).unwrap();
    let mut run = hybrid.start_batch(net, &op, &views, &labels).unwrap();
    let mut kinds = Vec::new();
    while !run.done() {
        let records = run.step().unwrap();
        assert_eq!(records.len(), 2);
        kinds.push(records[0].kind);
    }
    assert!(run.step().is_err());
    assert_eq!(kinds.len(), rec_cfg().total_iterations());
    let n_inv = kinds.iter().filter(|k| **k == StepKind::Inversion).count();
    assert_eq!(n_inv, 2);
    let stepped: Vec<Vec<u32>> = (0..2).map(|k| bits(&run.image(k).to_owned())).collect();
    let batch = hybrid.reconstruct_batch(net, &op, &views, &labels).unwrap();
    for (k, rec) in batch.iter().enumerate() {
        assert_eq!(bits(&rec.image), stepped[k], "image {k}");
    }
}
