//! Tests of the training loop on tiny nets and a few hundred embedded digits.

use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor};
use candle_nn::{ModuleT, VarMap};
use netinv_core::{IterState, MaxIterations, Monitor, Termination};
use netinv_data::{Dataset, Mnist};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::{Classifier, ClassifierConfig, Error};

fn mnist() -> &'static Mnist {
    static DATA: OnceLock<Mnist> = OnceLock::new();
    DATA.get_or_init(|| Mnist::embedded().unwrap())
}

fn train_set(n: usize) -> Dataset {
    mnist().train().take(n)
}

fn test_set(n: usize) -> Dataset {
    mnist().test().take(n)
}

fn tiny() -> ClassifierConfig {
    ClassifierConfig {
        conv_channels: vec![4, 8],
        hidden: 16,
        ..ClassifierConfig::netinv_small()
    }
}

fn model(seed: u64) -> (Classifier, VarMap) {
    let varmap = VarMap::new();
    let net = Classifier::init(&tiny(), &varmap, seed, &Device::Cpu).unwrap();
    (net, varmap)
}

/// All weights of a VarMap, sorted by name, as raw f32 bits.
fn weights(varmap: &VarMap) -> Vec<(String, Vec<u32>)> {
    let data = varmap.data().lock().unwrap();
    let mut out: Vec<(String, Vec<u32>)> = data
        .iter()
        .map(|(name, v)| {
            let bits = v
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .into_iter()
                .map(f32::to_bits)
                .collect();
            (name.clone(), bits)
        })
        .collect();
    out.sort();
    out
}

fn quick(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 16,
        shift: 0,
        seed: 5,
        ..TrainConfig::default()
    }
}

#[test]
fn learns_well_above_chance() {
    let (net, varmap) = model(1);
    let train = train_set(600);
    let test = test_set(300);
    let trainer = Trainer::new(quick(3)).unwrap();
    let report = trainer
        .fit(&net, &varmap, &train, Some(&test), &mut Monitor::new())
        .unwrap();
    eprintln!("{:#?}", report.history);
    assert_eq!(report.history.len(), 3);
    assert_eq!(report.state.termination, Some(Termination::MaxIterations));
    let ev = evaluate(&net, &test, &Device::Cpu).unwrap();
    // Chance is 10%; a 3-epoch run on 600 digits gets well past 60%.
    assert!(ev.accuracy >= 0.6, "accuracy {}", ev.accuracy);
    assert_eq!(report.history[2].test_accuracy, Some(ev.accuracy));
    assert!(report.history[2].train_loss < report.history[0].train_loss);
    assert_eq!(ev.confusion.total(), 300);
    assert!(ev.macro_f1 > 0.5 && ev.macro_f1 <= 1.0);
    // Accuracy under attack cannot beat clean accuracy by much, and eps = 0 is clean.
    let fgsm0 = attack_accuracy(&net, &test, &Attack::Fgsm { epsilon: 0.0 }, &Device::Cpu).unwrap();
    assert_eq!(fgsm0, ev.accuracy);
    let fgsm = attack_accuracy(&net, &test, &Attack::Fgsm { epsilon: 0.2 }, &Device::Cpu).unwrap();
    assert!(fgsm < ev.accuracy, "fgsm {fgsm} clean {}", ev.accuracy);
}

#[test]
fn same_seed_gives_identical_weights() {
    let train = train_set(128);
    let run = || {
        let (net, varmap) = model(3);
        let cfg = TrainConfig {
            adversarial: Adversarial::pgd(0.1),
            ..quick(1)
        };
        Trainer::new(cfg)
            .unwrap()
            .fit(&net, &varmap, &train, None, &mut Monitor::new())
            .unwrap();
        weights(&varmap)
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
    // A different shuffling seed changes the result.
    let (net, varmap) = model(3);
    Trainer::new(TrainConfig {
        seed: 6,
        adversarial: Adversarial::pgd(0.1),
        ..quick(1)
    })
    .unwrap()
    .fit(&net, &varmap, &train, None, &mut Monitor::new())
    .unwrap();
    assert_ne!(weights(&varmap), a);
}

/// The same images with one-hot soft targets.
fn one_hot(data: &Dataset) -> SoftLabelSet {
    let (x, y) = data.to_tensors(&Device::Cpu).unwrap();
    let labels = y.to_vec1::<u32>().unwrap();
    let mut t = vec![0f32; labels.len() * 10];
    for (i, &l) in labels.iter().enumerate() {
        t[i * 10 + l as usize] = 1.0;
    }
    let t = Tensor::from_vec(t, (labels.len(), 10), &Device::Cpu).unwrap();
    SoftLabelSet::new(x, t).unwrap()
}

#[test]
fn one_hot_soft_labels_equal_hard_labels() {
    let data = train_set(64);
    let soft = one_hot(&data);
    let cfg = TrainConfig {
        batch_size: 64,
        epochs: 1,
        ..Default::default()
    };
    // One full batch: both sources give the same 64 examples (in different orders, which
    // does not change the mean loss or its gradient beyond rounding).
    let (net_a, vm_a) = model(2);
    let (net_b, vm_b) = model(2);
    let ra = Trainer::new(cfg.clone())
        .unwrap()
        .fit(&net_a, &vm_a, &data, None, &mut Monitor::new())
        .unwrap();
    let rb = Trainer::new(cfg)
        .unwrap()
        .fit(&net_b, &vm_b, &soft, None, &mut Monitor::new())
        .unwrap();
    let (la, lb) = (ra.history[0].train_loss, rb.history[0].train_loss);
    assert!((la - lb).abs() < 1e-5, "{la} vs {lb}");
    assert_eq!(ra.history[0].train_accuracy, rb.history[0].train_accuracy);
    for ((na, wa), (nb, wb)) in weights(&vm_a).iter().zip(&weights(&vm_b)) {
        assert_eq!(na, nb);
        for (a, b) in wa.iter().zip(wb) {
            let (a, b) = (f32::from_bits(*a), f32::from_bits(*b));
            assert!((a - b).abs() < 1e-5, "{na}: {a} vs {b}");
        }
    }
}

/// A source that yields one batch whose soft targets are given.
struct FixedSoft {
    images: Tensor,
    targets: Tensor,
}

impl BatchSource for FixedSoft {
    fn len(&self) -> usize {
        self.images.dims()[0]
    }

    fn epoch<'a>(&'a self, _: usize, _: u64, _: &'a Device) -> crate::Result<EpochBatches<'a>> {
        Ok(Box::new(std::iter::once(Ok(TrainBatch {
            images: self.images.clone(),
            targets: Targets::Soft(self.targets.clone()),
        }))))
    }
}

#[test]
fn soft_labels_not_summing_to_one_are_an_error() {
    let (net, varmap) = model(0);
    let images = Tensor::zeros((2, 1, 28, 28), DType::F32, &Device::Cpu).unwrap();
    let mut t = vec![0f32; 20];
    t[3] = 1.0;
    t[12] = 0.6; // row 1 sums to 0.6
    let source = FixedSoft {
        images,
        targets: Tensor::from_vec(t, (2, 10), &Device::Cpu).unwrap(),
    };
    let before = weights(&varmap);
    let err = Trainer::new(quick(1))
        .unwrap()
        .fit(&net, &varmap, &source, None, &mut Monitor::new())
        .unwrap_err();
    match err {
        Error::SoftLabels { row, reason } => {
            assert_eq!(row, 1);
            assert!(reason.contains("0.6"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(weights(&varmap), before, "no step was taken");
}

#[test]
fn fgsm_example_increases_the_loss_and_pgd_stays_in_the_ball() {
    let (net, varmap) = model(4);
    let train = train_set(600);
    Trainer::new(quick(2))
        .unwrap()
        .fit(&net, &varmap, &train, None, &mut Monitor::new())
        .unwrap();
    let (x, y) = test_set(64).to_tensors(&Device::Cpu).unwrap();
    let targets = Targets::Hard(y);
    let loss = |x: &Tensor| {
        loss_for(&net.forward_t(x, false).unwrap(), &targets)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let eps = 0.1;
    let adv = fgsm_example(&net, &x, &targets, eps, false).unwrap();
    assert!(
        loss(&adv) > loss(&x) + 0.05,
        "{} vs {}",
        loss(&adv),
        loss(&x)
    );
    let xs = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let check_ball = |a: &Tensor, eps: f32| {
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (a, x) in a.iter().zip(&xs) {
            assert!((a - x).abs() <= eps + 1e-6, "{a} vs {x}");
            assert!((0.0..=1.0).contains(a));
        }
    };
    check_ball(&adv, eps as f32);
    let mut rng = StdRng::seed_from_u64(9);
    let pgd = pgd_example(&net, &x, &targets, eps, 5, 0.04, Some(&mut rng), false).unwrap();
    check_ball(&pgd, eps as f32);
    // PGD with several steps is at least as strong as FGSM here.
    assert!(loss(&pgd) > loss(&x) + 0.05);
    let pgd_acc = attack_accuracy(
        &net,
        &test_set(64),
        &Attack::Pgd {
            epsilon: eps,
            steps: 5,
            step_size: 0.04,
            random_start: true,
            seed: 1,
        },
        &Device::Cpu,
    )
    .unwrap();
    let clean_acc = evaluate(&net, &test_set(64), &Device::Cpu)
        .unwrap()
        .accuracy;
    assert!(pgd_acc < clean_acc, "pgd {pgd_acc} clean {clean_acc}");
}

#[test]
fn fgsm_training_with_zero_epsilon_is_clean_training() {
    let train = train_set(96);
    let run = |adversarial| {
        let (net, varmap) = model(7);
        let report = Trainer::new(TrainConfig {
            adversarial,
            ..quick(1)
        })
        .unwrap()
        .fit(&net, &varmap, &train, None, &mut Monitor::new())
        .unwrap();
        (weights(&varmap), report.history[0].train_loss)
    };
    let clean = run(Adversarial::None);
    // x' = x, so 0.5 g + 0.5 g = g exactly.
    assert_eq!(run(Adversarial::fgsm(0.0)), clean);
    // alpha = 1 ignores the adversarial term.
    let (w, _) = run(Adversarial::Fgsm {
        epsilon: 0.3,
        alpha: 1.0,
    });
    assert_eq!(w, clean.0);
    // A real perturbation changes the run and raises the training loss.
    let (w, loss) = run(Adversarial::fgsm(0.3));
    assert_ne!(w, clean.0);
    assert!(loss > clean.1);
}

#[test]
fn resume_continues_identically() {
    let train = train_set(128);
    let test = test_set(50);
    let cfg = TrainConfig {
        optimizer: OptimizerKind::Adam,
        lr: 2e-3,
        ..quick(2)
    };
    // Uninterrupted two-epoch run.
    let (net, varmap) = model(8);
    let full = Trainer::new(cfg.clone())
        .unwrap()
        .fit(&net, &varmap, &train, Some(&test), &mut Monitor::new())
        .unwrap();
    // The same run stopped by a stop rule after one epoch, then resumed in a fresh process
    // (fresh net with other initial weights, overwritten by the checkpoint).
    let dir = tempfile::tempdir().unwrap();
    let (net1, vm1) = model(8);
    let first = Trainer::new(cfg.clone())
        .unwrap()
        .with_checkpoints(dir.path(), tiny())
        .fit(
            &net1,
            &vm1,
            &train,
            Some(&test),
            &mut Monitor::new().with_stop_rule(MaxIterations(1)),
        )
        .unwrap();
    assert_eq!(first.history.len(), 1);
    assert_eq!(first.state.termination, Some(Termination::MaxIterations));
    let (net2, vm2) = model(99);
    let resumed = Trainer::new(cfg)
        .unwrap()
        .with_checkpoints(dir.path(), tiny())
        .resume(&net2, &vm2, &train, Some(&test), &mut Monitor::new())
        .unwrap();
    assert_eq!(resumed.history.len(), 2);
    assert_eq!(resumed.state.iteration, 2);
    assert_eq!(weights(&vm2), weights(&varmap));
    assert_eq!(resumed.history[1].train_loss, full.history[1].train_loss);
    assert_eq!(
        resumed.history[1].test_accuracy,
        full.history[1].test_accuracy
    );
    // The checkpoint on disk is the final one and loads as a frozen net.
    let frozen = crate::load_frozen(dir.path(), &Device::Cpu).unwrap();
    let ev_a = evaluate(&frozen, &test, &Device::Cpu).unwrap();
    let ev_b = evaluate(&net, &test, &Device::Cpu).unwrap();
    assert_eq!(ev_a.accuracy, ev_b.accuracy);
}

#[test]
fn resume_with_another_config_is_an_error() {
    let train = train_set(64);
    let dir = tempfile::tempdir().unwrap();
    let (net, vm) = model(1);
    Trainer::new(quick(1))
        .unwrap()
        .with_checkpoints(dir.path(), tiny())
        .fit(&net, &vm, &train, None, &mut Monitor::new())
        .unwrap();
    let err = Trainer::new(TrainConfig {
        lr: 0.01,
        ..quick(2)
    })
    .unwrap()
    .with_checkpoints(dir.path(), tiny())
    .resume(&net, &vm, &train, None, &mut Monitor::new())
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "config",
                ..
            }
        ),
        "{err}"
    );
    let err = Trainer::new(quick(2))
        .unwrap()
        .resume(&net, &vm, &train, None, &mut Monitor::new())
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidConfig {
            field: "checkpoint",
            ..
        }
    ));
}

/// Wraps a dataset and poisons one batch of one epoch with a NaN pixel.
struct Poisoned {
    data: Dataset,
    epoch_seed: u64,
    batch: usize,
}

impl BatchSource for Poisoned {
    fn len(&self) -> usize {
        self.data.len()
    }

    fn epoch<'a>(
        &'a self,
        batch_size: usize,
        seed: u64,
        device: &'a Device,
    ) -> crate::Result<EpochBatches<'a>> {
        let inner = BatchSource::epoch(&self.data, batch_size, seed, device)?;
        let poison = seed == self.epoch_seed;
        let target = self.batch;
        Ok(Box::new(inner.enumerate().map(move |(i, b)| {
            let mut b = b?;
            if poison && i == target {
                let nan = Tensor::full(f32::NAN, b.images.dims(), device)?;
                b.images = nan;
            }
            Ok(b)
        })))
    }
}

/// The classifier plus `0 * mean(x)`: the same logits, but a NaN pixel reaches the loss
/// (ReLU and max-pool map NaN to a number).
struct NanPropagating(Classifier);

impl ModuleT for NanPropagating {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let zero = (x.mean_all()? * 0.0)?;
        self.0.forward_t(x, train)?.broadcast_add(&zero)
    }
}

#[test]
fn nan_loss_stops_with_epoch_and_step_and_keeps_last_checkpoint() {
    let cfg = quick(3);
    let source = Poisoned {
        data: train_set(128),
        epoch_seed: derive_seed(cfg.seed, 1, 1),
        batch: 2,
    };
    let dir = tempfile::tempdir().unwrap();
    let (net, vm) = model(2);
    let net = NanPropagating(net);
    let err = Trainer::new(cfg)
        .unwrap()
        .with_checkpoints(dir.path(), tiny())
        .fit(&net, &vm, &source, None, &mut Monitor::new())
        .unwrap_err();
    match err {
        Error::NonFiniteLoss { epoch, step, loss } => {
            assert_eq!((epoch, step), (2, 3));
            assert!(loss.is_nan());
        }
        other => panic!("{other:?}"),
    }
    assert!(err_message_names_epoch(2, 3));
    let text = std::fs::read_to_string(dir.path().join(TRAINER_STATE_FILE)).unwrap();
    let state: TrainerState = serde_json::from_str(&text).unwrap();
    assert_eq!(state.epochs_done, 1);
    // The weights in memory are still finite (the bad step was never applied) and the
    // checkpoint loads.
    for (_, w) in weights(&vm) {
        assert!(w.iter().all(|b| f32::from_bits(*b).is_finite()));
    }
    crate::load_frozen(dir.path(), &Device::Cpu).unwrap();
}

fn err_message_names_epoch(epoch: usize, step: usize) -> bool {
    let msg = Error::NonFiniteLoss {
        epoch,
        step,
        loss: f64::NAN,
    }
    .to_string();
    msg.contains(&format!("epoch {epoch}")) && msg.contains(&format!("step {step}"))
}

#[test]
fn monitor_sees_every_epoch() {
    let (net, vm) = model(1);
    let train = train_set(64);
    let mut seen = Vec::new();
    {
        let mut monitor = Monitor::new().with_observer(|s: &IterState, r: &EpochRecord| {
            seen.push((s.iteration, r.epoch, s.cost));
            Ok(())
        });
        Trainer::new(quick(3))
            .unwrap()
            .fit(&net, &vm, &train, None, &mut monitor)
            .unwrap();
    }
    assert_eq!(seen.len(), 3);
    for (i, (iteration, epoch, cost)) in seen.iter().enumerate() {
        assert_eq!((*iteration, *epoch), (i + 1, i + 1));
        assert!(cost.is_some_and(f64::is_finite));
    }
}

#[test]
fn step_schedule_and_nesterov_run() {
    let (net, vm) = model(1);
    let train = train_set(64);
    let cfg = TrainConfig {
        nesterov: true,
        weight_decay: 1e-4,
        schedule: LrSchedule::Step {
            every_epochs: 1,
            gamma: 0.5,
        },
        ..quick(2)
    };
    let report = Trainer::new(cfg.clone())
        .unwrap()
        .fit(&net, &vm, &train, None, &mut Monitor::new())
        .unwrap();
    // It learns: the second epoch's loss is below the first's (which starts near ln 10).
    let losses: Vec<f64> = report.history.iter().map(|r| r.train_loss).collect();
    assert!(losses[1] < losses[0], "{losses:?}");
    // Nesterov is applied: the same run with plain momentum follows another path.
    let (plain_net, plain_vm) = model(1);
    let plain = Trainer::new(TrainConfig {
        nesterov: false,
        ..cfg
    })
    .unwrap()
    .fit(&plain_net, &plain_vm, &train, None, &mut Monitor::new())
    .unwrap();
    assert_ne!(plain.history[1].train_loss, losses[1]);
}

#[test]
fn random_shift_moves_each_image_rigidly() {
    use super::trainer::random_shift;
    // Image k has one bright pixel at (10 + k, 12); a shift moves it by (dy, dx) in [-2, 2].
    let (b, h, w) = (6, 28, 28);
    let mut x = vec![0f32; b * h * w];
    for k in 0..b {
        x[k * h * w + (10 + k) * w + 12] = 1.0;
    }
    let x = Tensor::from_vec(x, (b, 1, h, w), &Device::Cpu).unwrap();
    let mut rng = StdRng::seed_from_u64(4);
    let y = random_shift(&x, 2, &mut rng).unwrap();
    let y = y.flatten_from(1).unwrap().to_vec2::<f32>().unwrap();
    let mut moved = false;
    for (k, img) in y.iter().enumerate() {
        let ones: Vec<usize> = (0..h * w).filter(|&p| img[p] == 1.0).collect();
        assert_eq!(ones.len(), 1, "image {k}");
        assert_eq!(img.iter().filter(|&&v| v != 0.0).count(), 1);
        let (i, j) = ((ones[0] / w) as i64, (ones[0] % w) as i64);
        let (dy, dx) = (i - (10 + k as i64), j - 12);
        assert!(dy.abs() <= 2 && dx.abs() <= 2);
        moved |= (dy, dx) != (0, 0);
    }
    assert!(moved);
    // Shift 0 is the identity; the same seed repeats.
    let same = random_shift(&x, 0, &mut rng).unwrap();
    assert_eq!(
        same.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        x.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );
    let a = random_shift(&x, 2, &mut StdRng::seed_from_u64(1)).unwrap();
    let c = random_shift(&x, 2, &mut StdRng::seed_from_u64(1)).unwrap();
    assert_eq!(
        a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        c.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );
}
