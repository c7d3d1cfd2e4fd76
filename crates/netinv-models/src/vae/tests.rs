use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use netinv_core::testing::assert_close;
use netinv_core::{Monitor, Termination};

use super::model::FC_W;
use super::{Vae, VaeConfig, VaeTrainConfig, VaeTrainer, VAE_CONFIG_FILE};
use crate::testing::toy_dataset;
use crate::Error;

fn small_cfg() -> VaeConfig {
    VaeConfig {
        latent_dim: 2,
        conv1_channels: 4,
        conv2_channels: 8,
        image_size: 8,
        ..Default::default()
    }
}

#[test]
fn config_rules() {
    let ok = VaeConfig::default();
    ok.validate().unwrap();
    for (bad, field) in [
        (
            VaeConfig {
                latent_dim: 0,
                ..ok.clone()
            },
            "latent_dim",
        ),
        (
            VaeConfig {
                conv1_channels: 0,
                ..ok.clone()
            },
            "conv1_channels",
        ),
        (
            VaeConfig {
                conv2_channels: 0,
                ..ok.clone()
            },
            "conv2_channels",
        ),
        (
            VaeConfig {
                image_size: 30,
                ..ok.clone()
            },
            "image_size",
        ),
        (
            VaeConfig {
                image_size: 0,
                ..ok.clone()
            },
            "image_size",
        ),
    ] {
        match bad.validate() {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{other:?}"),
        }
        assert!(Vae::init(&bad, &VarMap::new(), 0, &Device::Cpu).is_err());
    }
    let t = VaeTrainConfig::default();
    t.validate().unwrap();
    assert!(VaeTrainConfig {
        epochs: 0,
        ..t.clone()
    }
    .validate()
    .is_err());
    assert!(VaeTrainConfig {
        batch_size: 0,
        ..t.clone()
    }
    .validate()
    .is_err());
    assert!(VaeTrainConfig {
        lr: f64::NAN,
        ..t.clone()
    }
    .validate()
    .is_err());
    assert!(VaeTrainer::new(VaeTrainConfig { lr: -1.0, ..t }).is_err());
}

#[test]
fn shapes_and_bad_inputs() {
    let dev = Device::Cpu;
    let vae = Vae::init(&VaeConfig::default(), &VarMap::new(), 1, &dev).unwrap();
    let x = Tensor::zeros((3, 1, 28, 28), DType::F32, &dev).unwrap();
    let (mu, lv) = vae.encode(&x).unwrap();
    assert_eq!(mu.dims(), &[3, 16]);
    assert_eq!(lv.dims(), &[3, 16]);
    let y = vae.decode(&mu).unwrap();
    assert_eq!(y.dims(), &[3, 1, 28, 28]);
    let v = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(v.iter().all(|&p| p > 0.0 && p < 1.0));
    let wrong = Tensor::zeros((3, 1, 27, 27), DType::F32, &dev).unwrap();
    assert!(matches!(vae.encode(&wrong), Err(Error::Shape { .. })));
    let z = Tensor::zeros((2, 5), DType::F32, &dev).unwrap();
    assert!(matches!(vae.decode(&z), Err(Error::Shape { .. })));
    let eps = Tensor::zeros((2, 16), DType::F32, &dev).unwrap();
    assert!(matches!(vae.loss(&x, &eps), Err(Error::Shape { .. })));
}

#[test]
fn loss_matches_hand_computation_at_zero_weights() {
    // With every weight zero: logits 0 (BCE = s*s*ln 2 per image), mu = logvar = 0
    // (KL = 0) whatever the noise.
    let dev = Device::Cpu;
    let cfg = small_cfg();
    let tensors: HashMap<String, Tensor> = cfg
        .tensor_shapes()
        .into_iter()
        .map(|(n, s)| (n, Tensor::zeros(s, DType::F32, &dev).unwrap()))
        .collect();
    let vae = Vae::from_tensors(&cfg, &tensors).unwrap();
    let x = Tensor::rand(0f32, 1., (5, 1, 8, 8), &dev).unwrap();
    let eps = Tensor::ones((5, 2), DType::F32, &dev).unwrap();
    let l = vae.loss(&x, &eps).unwrap();
    let recon = f64::from(l.recon.to_scalar::<f32>().unwrap());
    let kl = f64::from(l.kl.to_scalar::<f32>().unwrap());
    assert_close(
        &[recon, kl],
        &[64.0 * std::f64::consts::LN_2, 0.0],
        1e-5,
        1e-5,
    );
}

#[test]
fn kl_and_bce_match_closed_forms() {
    // Decoder bias b gives logits b everywhere: BCE per pixel = softplus(b) - b x.
    // Encoder biases give mu = m, logvar = v for every image: KL = k/2 (e^v + m^2 - 1 - v).
    let dev = Device::Cpu;
    let cfg = small_cfg();
    let mut tensors: HashMap<String, Tensor> = cfg
        .tensor_shapes()
        .into_iter()
        .map(|(n, s)| (n, Tensor::zeros(s, DType::F32, &dev).unwrap()))
        .collect();
    let (b, m, v) = (0.7f32, 0.3f32, -0.5f32);
    tensors.insert("dec.conv2.bias".into(), Tensor::new(&[b], &dev).unwrap());
    tensors.insert("enc.mu.bias".into(), Tensor::new(&[m, m], &dev).unwrap());
    tensors.insert(
        "enc.logvar.bias".into(),
        Tensor::new(&[v, v], &dev).unwrap(),
    );
    let vae = Vae::from_tensors(&cfg, &tensors).unwrap();
    let xs: Vec<f32> = (0..128).map(|i| (i % 7) as f32 / 6.0).collect();
    let x = Tensor::from_vec(xs.clone(), (2, 1, 8, 8), &dev).unwrap();
    let eps = Tensor::new(&[[0.5f32, -1.0], [2.0, 0.1]], &dev).unwrap();
    let l = vae.loss(&x, &eps).unwrap();
    let (b, m, v) = (f64::from(b), f64::from(m), f64::from(v));
    let softplus = (1.0 + b.exp()).ln();
    let bce: f64 = xs.iter().map(|&x| softplus - b * f64::from(x)).sum::<f64>() / 2.0;
    let kl = 2.0 * 0.5 * (v.exp() + m * m - 1.0 - v);
    let got = [
        f64::from(l.recon.to_scalar::<f32>().unwrap()),
        f64::from(l.kl.to_scalar::<f32>().unwrap()),
    ];
    assert_close(&got, &[bce, kl], 1e-5, 1e-5);
}

#[test]
fn elbo_increases_on_a_small_run_and_is_deterministic() {
    let dev = Device::Cpu;
    let data = toy_dataset(64);
    let cfg = small_cfg();
    let train = VaeTrainConfig {
        epochs: 6,
        batch_size: 16,
        lr: 5e-3,
        seed: 3,
    };
    let run = || {
        let varmap = VarMap::new();
        let vae = Vae::init(&cfg, &varmap, 7, &dev).unwrap();
        let before = vae.elbo(&data, 1, &dev).unwrap().0;
        let mut monitor = Monitor::new();
        let report = VaeTrainer::new(train.clone())
            .unwrap()
            .fit(&vae, &varmap, &data, Some(&data), &mut monitor)
            .unwrap();
        (before, report, vae)
    };
    let (before, report, vae) = run();
    assert_eq!(report.history.len(), 6);
    assert_eq!(report.state.termination, Some(Termination::MaxIterations));
    let first = report.history[0].train_elbo;
    let last = report.history[5].train_elbo;
    let after = vae.elbo(&data, 1, &dev).unwrap().0;
    assert!(last > first + 5.0, "train ELBO {first} -> {last}");
    assert!(after > before + 5.0, "ELBO {before} -> {after}");
    // The same seeds give the same weights.
    let (_, report2, vae2) = run();
    assert_eq!(report.history[5].train_elbo, report2.history[5].train_elbo);
    let a = vae.t[FC_W].flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = vae2.t[FC_W]
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn checkpoint_round_trip_and_mismatch_errors() {
    let dev = Device::Cpu;
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_cfg();
    let vae = Vae::init(&cfg, &VarMap::new(), 5, &dev).unwrap();
    vae.save(dir.path()).unwrap();
    let back = Vae::load_expecting(dir.path(), &cfg, &dev).unwrap();
    let x = Tensor::rand(0f32, 1., (2, 1, 8, 8), &dev).unwrap();
    let a = vae
        .reconstruct(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let b = back
        .reconstruct(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(a, b);
    // Expecting another architecture.
    let other = VaeConfig {
        latent_dim: 3,
        ..cfg.clone()
    };
    match Vae::load_expecting(dir.path(), &other, &dev) {
        Err(Error::Checkpoint { reason, .. }) => {
            assert!(reason.contains("differs"), "{reason}")
        }
        r => panic!("{r:?}"),
    }
    // A config file that does not match the weights.
    netinv_core::write_json(dir.path().join(VAE_CONFIG_FILE), &other).unwrap();
    match Vae::load(dir.path(), &dev) {
        Err(Error::Checkpoint { reason, .. }) => {
            assert!(reason.contains("enc.mu.weight"), "{reason}")
        }
        r => panic!("{r:?}"),
    }
    // Missing files.
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Vae::load(empty.path(), &dev),
        Err(Error::Io { .. })
    ));
}
