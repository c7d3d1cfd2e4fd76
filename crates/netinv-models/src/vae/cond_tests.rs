//! Tests of the class-conditional VAE and of the MLP decoder (and that neither changes the
//! unconditional convolutional VAE).

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use netinv_core::Monitor;

use super::model::FC_W;
use super::{DecoderKind, Vae, VaeConfig, VaeTrainConfig, VaeTrainer, VAE_CONFIG_FILE};
use crate::ops::{conv2d_bias, upsample2};
use crate::testing::toy_dataset;
use crate::Error;

/// The JSON form of `VaeConfig::default()` before `n_classes` / `decoder` / `mlp_hidden`
/// existed (what every saved `vae_config.json` of an unconditional VAE holds).
const OLD_DEFAULT_JSON: &str =
    r#"{"latent_dim":16,"conv1_channels":16,"conv2_channels":32,"image_size":28}"#;

fn tiny(n_classes: usize, decoder: DecoderKind) -> VaeConfig {
    VaeConfig {
        latent_dim: 3,
        conv1_channels: 4,
        conv2_channels: 8,
        image_size: 8,
        n_classes,
        decoder,
        mlp_hidden: if decoder == DecoderKind::Mlp { 16 } else { 512 },
    }
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn seeded(rows: usize, cols: usize, seed: u64) -> Tensor {
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    super::standard_normal(&mut rng, rows, cols, &Device::Cpu).unwrap()
}

#[test]
fn old_configs_load_and_the_default_serialises_as_before() {
    let parsed: VaeConfig = serde_json::from_str(OLD_DEFAULT_JSON).unwrap();
    assert_eq!(parsed, VaeConfig::default());
    assert_eq!(parsed.n_classes, 0);
    assert_eq!(parsed.decoder, DecoderKind::Conv);
    assert_eq!(
        serde_json::to_string(&VaeConfig::default()).unwrap(),
        OLD_DEFAULT_JSON
    );
    // A conditional MLP configuration keeps its fields through JSON.
    let cond = tiny(4, DecoderKind::Mlp);
    let text = serde_json::to_string(&cond).unwrap();
    assert!(text.contains(r#""n_classes":4"#) && text.contains(r#""decoder":"mlp""#));
    assert_eq!(serde_json::from_str::<VaeConfig>(&text).unwrap(), cond);
    // The unconditional tensor list is the original one.
    let names: Vec<String> = VaeConfig::default()
        .tensor_shapes()
        .into_iter()
        .map(|(n, s)| format!("{n}{s:?}"))
        .collect();
    assert_eq!(
        names.join(" "),
        "enc.conv1.weight[16, 1, 3, 3] enc.conv1.bias[16] enc.conv2.weight[32, 16, 3, 3] \
         enc.conv2.bias[32] enc.mu.weight[16, 1568] enc.mu.bias[16] enc.logvar.weight[16, 1568] \
         enc.logvar.bias[16] dec.fc.weight[1568, 16] dec.fc.bias[1568] \
         dec.conv1.weight[16, 32, 3, 3] dec.conv1.bias[16] dec.conv2.weight[1, 16, 3, 3] \
         dec.conv2.bias[1]"
    );
}

#[test]
fn an_old_format_checkpoint_loads() {
    let dev = Device::Cpu;
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny(0, DecoderKind::Conv);
    let vae = Vae::init(&cfg, &VarMap::new(), 2, &dev).unwrap();
    vae.save(dir.path()).unwrap();
    let old = r#"{"latent_dim":3,"conv1_channels":4,"conv2_channels":8,"image_size":8}"#;
    let saved = std::fs::read_to_string(dir.path().join(VAE_CONFIG_FILE)).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&saved).unwrap(),
        serde_json::from_str::<serde_json::Value>(old).unwrap()
    );
    std::fs::write(dir.path().join(VAE_CONFIG_FILE), old).unwrap();
    let back = Vae::load_expecting(dir.path(), &cfg, &dev).unwrap();
    let z = seeded(2, 3, 1);
    assert_eq!(
        values(&vae.decode(&z).unwrap()),
        values(&back.decode(&z).unwrap())
    );
}

#[test]
fn the_unconditional_conv_decoder_is_the_original_formula() {
    // The decoder as it was written before conditioning existed, op by op: the new code
    // must give the same bits.
    let dev = Device::Cpu;
    let cfg = tiny(0, DecoderKind::Conv);
    let vae = Vae::init(&cfg, &VarMap::new(), 4, &dev).unwrap();
    let z = seeded(3, 3, 9);
    let t = &vae.t;
    let h = z
        .matmul(&t[8].t().unwrap())
        .unwrap()
        .broadcast_add(&t[9])
        .unwrap()
        .relu()
        .unwrap()
        .reshape((3, 8, 2, 2))
        .unwrap();
    let h = conv2d_bias(&upsample2(&h).unwrap(), &t[10], &t[11], 1)
        .unwrap()
        .relu()
        .unwrap();
    let logits = conv2d_bias(&upsample2(&h).unwrap(), &t[12], &t[13], 1).unwrap();
    assert_eq!(
        values(&vae.decode_logits(&z).unwrap()),
        values(&logits),
        "bit-identical logits"
    );
}

#[test]
fn conditional_decoding_depends_on_the_label() {
    let dev = Device::Cpu;
    for decoder in [DecoderKind::Conv, DecoderKind::Mlp] {
        let vae = Vae::init(&tiny(4, decoder), &VarMap::new(), 3, &dev).unwrap();
        assert_eq!((vae.n_classes(), vae.latent_dim()), (4, 3));
        let z = seeded(1, 3, 5).repeat((4, 1)).unwrap();
        let labels = vae.one_hot(&[0, 1, 2, 3], &dev).unwrap();
        assert_eq!(
            values(&labels),
            [1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1.]
        );
        let x = vae.decode_conditional(&z, &labels).unwrap();
        assert_eq!(x.dims(), &[4, 1, 8, 8]);
        let v = values(&x);
        assert!(v.iter().all(|&p| p > 0.0 && p < 1.0));
        for a in 0..4 {
            for b in a + 1..4 {
                assert_ne!(
                    v[a * 64..(a + 1) * 64],
                    v[b * 64..(b + 1) * 64],
                    "{decoder:?}"
                );
            }
        }
        // The same label gives the same image; logits and images agree.
        let again = vae
            .decode_conditional(&z, &vae.one_hot(&[2, 2, 2, 2], &dev).unwrap())
            .unwrap();
        assert!(values(&again).iter().all(|p| v[128..192].contains(p)));
        let logits = vae.decode_logits_conditional(&z, &labels).unwrap();
        let sig = candle_nn::ops::sigmoid(&logits).unwrap();
        assert_eq!(values(&sig), v);
        // The encoder depends on the label too.
        let img = x.narrow(0, 0, 1).unwrap().repeat((4, 1, 1, 1)).unwrap();
        let (mu, lv) = vae.encode_conditional(&img, &labels).unwrap();
        assert_eq!((mu.dims(), lv.dims()), (&[4, 3][..], &[4, 3][..]));
        let m = values(&mu);
        assert_ne!(m[0..3], m[3..6]);
        assert_eq!(
            vae.reconstruct_conditional(&img, &labels).unwrap().dims(),
            &[4, 1, 8, 8]
        );
    }
}

/// `sum(decode_conditional(z, c) * g)` and its gradient in z by candle's backward pass.
fn weighted_sum_and_grad(vae: &Vae, z: &[f32], c: &Tensor, g: &Tensor) -> (f64, Vec<f32>) {
    let zv = Var::from_vec(z.to_vec(), (c.dim(0).unwrap(), 3), &Device::Cpu).unwrap();
    let x = vae.decode_conditional(zv.as_tensor(), c).unwrap();
    let loss = (x * g).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let gz = grads.get(zv.as_tensor()).unwrap();
    (f64::from(loss.to_scalar::<f32>().unwrap()), values(gz))
}

#[test]
fn conditional_decoder_gradient_matches_finite_differences() {
    let dev = Device::Cpu;
    for decoder in [DecoderKind::Conv, DecoderKind::Mlp] {
        let vae = Vae::init(&tiny(3, decoder), &VarMap::new(), 8, &dev)
            .unwrap()
            .frozen()
            .unwrap();
        let c = vae.one_hot(&[2, 0], &dev).unwrap();
        let g = seeded(2, 64, 11).reshape((2, 1, 8, 8)).unwrap();
        let z = values(&seeded(2, 3, 12));
        let (_, grad) = weighted_sum_and_grad(&vae, &z, &c, &g);
        let h = 1e-2f32;
        for i in 0..z.len() {
            let (mut up, mut down) = (z.clone(), z.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (weighted_sum_and_grad(&vae, &up, &c, &g).0
                - weighted_sum_and_grad(&vae, &down, &c, &g).0)
                / (2.0 * f64::from(h));
            let got = f64::from(grad[i]);
            assert!(
                (got - fd).abs() <= 2e-3 + 2e-2 * fd.abs(),
                "{decoder:?} dL/dz[{i}]: backward {got}, finite difference {fd}"
            );
        }
    }
}

#[test]
fn conditional_checkpoints_round_trip() {
    let dev = Device::Cpu;
    for decoder in [DecoderKind::Conv, DecoderKind::Mlp] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = tiny(4, decoder);
        let vae = Vae::init(&cfg, &VarMap::new(), 6, &dev).unwrap();
        vae.save(dir.path()).unwrap();
        let back = Vae::load_expecting(dir.path(), &cfg, &dev).unwrap();
        assert_eq!(back.config(), &cfg);
        let z = seeded(4, 3, 2);
        let c = vae.one_hot(&[3, 1, 0, 2], &dev).unwrap();
        assert_eq!(
            values(&vae.decode_conditional(&z, &c).unwrap()),
            values(&back.decode_conditional(&z, &c).unwrap())
        );
        // The unconditional architecture is another architecture.
        let uncond = VaeConfig {
            n_classes: 0,
            ..cfg.clone()
        };
        assert!(matches!(
            Vae::load_expecting(dir.path(), &uncond, &dev),
            Err(Error::Checkpoint { .. })
        ));
    }
}

#[test]
fn training_a_conditional_vae_lowers_its_loss_deterministically() {
    let dev = Device::Cpu;
    let data = toy_dataset(64);
    for decoder in [DecoderKind::Conv, DecoderKind::Mlp] {
        let cfg = tiny(4, decoder);
        let train = VaeTrainConfig {
            epochs: 4,
            batch_size: 16,
            lr: 5e-3,
            seed: 1,
        };
        let run = || {
            let varmap = VarMap::new();
            let vae = Vae::init(&cfg, &varmap, 7, &dev).unwrap();
            let before = vae.elbo(&data, 1, &dev).unwrap().0;
            let report = VaeTrainer::new(train.clone())
                .unwrap()
                .fit(&vae, &varmap, &data, Some(&data), &mut Monitor::new())
                .unwrap();
            let after = vae.elbo(&data, 1, &dev).unwrap().0;
            (before, after, report, values(&vae.t[FC_W]))
        };
        let (before, after, report, weights) = run();
        assert!(
            after > before + 5.0,
            "{decoder:?}: ELBO {before} -> {after}"
        );
        assert!(report.history[3].train_elbo > report.history[0].train_elbo);
        let (_, after2, _, weights2) = run();
        assert_eq!((after, weights), (after2, weights2));
    }
}

#[test]
fn wrong_kinds_shapes_and_labels_are_errors() {
    let dev = Device::Cpu;
    let cond = Vae::init(&tiny(4, DecoderKind::Mlp), &VarMap::new(), 1, &dev).unwrap();
    let uncond = Vae::init(&tiny(0, DecoderKind::Mlp), &VarMap::new(), 1, &dev).unwrap();
    let z = Tensor::zeros((2, 3), DType::F32, &dev).unwrap();
    let x = Tensor::zeros((2, 1, 8, 8), DType::F32, &dev).unwrap();
    let c = cond.one_hot(&[0, 3], &dev).unwrap();
    let kind = |r: crate::Result<Tensor>| matches!(r, Err(Error::InvalidConfig { .. }));
    assert!(kind(cond.decode(&z)));
    assert!(kind(cond.decode_logits(&z)));
    assert!(kind(cond.reconstruct(&x)));
    assert!(matches!(cond.encode(&x), Err(Error::InvalidConfig { .. })));
    assert!(kind(uncond.decode_conditional(&z, &c)));
    assert!(kind(uncond.reconstruct_conditional(&x, &c)));
    assert!(kind(uncond.one_hot(&[0], &dev)));
    assert!(kind(cond.one_hot(&[4], &dev)));
    assert!(kind(cond.one_hot(&[], &dev)));
    // One-hot rows of the wrong count, width or dtype.
    let shape = |r: crate::Result<Tensor>| matches!(r, Err(Error::Shape { .. }));
    assert!(shape(
        cond.decode_conditional(&z, &cond.one_hot(&[1], &dev).unwrap())
    ));
    assert!(shape(cond.decode_conditional(
        &z,
        &Tensor::zeros((2, 5), DType::F32, &dev).unwrap()
    )));
    assert!(shape(cond.decode_conditional(
        &z,
        &Tensor::zeros((2, 4), DType::F64, &dev).unwrap()
    )));
    assert!(shape(cond.decode_conditional(
        &Tensor::zeros((2, 4), DType::F32, &dev).unwrap(),
        &c
    )));
    let eps = Tensor::zeros((2, 3), DType::F32, &dev).unwrap();
    assert!(matches!(
        cond.loss(&x, &eps),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        uncond.loss_conditional(&x, &c, &eps),
        Err(Error::InvalidConfig { .. })
    ));
    // A dataset whose labels exceed n_classes cannot train or evaluate a conditional VAE.
    let varmap = VarMap::new();
    let two = Vae::init(&tiny(2, DecoderKind::Conv), &varmap, 1, &dev).unwrap();
    let data = toy_dataset(8);
    assert!(matches!(
        two.elbo(&data, 0, &dev),
        Err(Error::InvalidConfig { .. })
    ));
    let trainer = VaeTrainer::new(VaeTrainConfig {
        epochs: 1,
        batch_size: 8,
        ..Default::default()
    })
    .unwrap();
    assert!(trainer
        .fit(&two, &varmap, &data, None, &mut Monitor::new())
        .is_err());
    // Configuration rules of the new fields.
    for (bad, field) in [
        (tiny(1001, DecoderKind::Conv), "n_classes"),
        (
            VaeConfig {
                mlp_hidden: 0,
                ..tiny(0, DecoderKind::Mlp)
            },
            "mlp_hidden",
        ),
    ] {
        match bad.validate() {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn decoder_pass_pullback_is_the_autograd_gradient() {
    let dev = Device::Cpu;
    for (n, decoder) in [
        (0, DecoderKind::Mlp),
        (3, DecoderKind::Mlp),
        (0, DecoderKind::Conv),
        (3, DecoderKind::Conv),
    ] {
        let vae = Vae::init(&tiny(n, decoder), &VarMap::new(), 5, &dev)
            .unwrap()
            .frozen()
            .unwrap();
        let z = seeded(4, 3, 21);
        let c = (n > 0).then(|| vae.one_hot(&[0, 2, 1, 2], &dev).unwrap());
        let g = seeded(4, 64, 22).reshape((4, 1, 8, 8)).unwrap();
        let pass = vae.decoder_pass(&z, c.as_ref()).unwrap();
        // The images are decode's, bit for bit.
        let zv = Var::from_tensor(&z).unwrap();
        let x = match &c {
            Some(c) => vae.decode_conditional(zv.as_tensor(), c).unwrap(),
            None => vae.decode(zv.as_tensor()).unwrap(),
        };
        assert_eq!(values(pass.images()), values(&x), "{n} {decoder:?}");
        let grads = (x * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let want = values(grads.get(zv.as_tensor()).unwrap());
        let got = values(&pass.pullback(&g).unwrap());
        assert_eq!(got.len(), 12);
        for (a, b) in got.iter().zip(&want) {
            assert!(
                (a - b).abs() <= 1e-5 + 1e-4 * b.abs(),
                "{n} {decoder:?}: {a} vs {b}"
            );
        }
        // Bad shapes and kinds.
        assert!(matches!(
            pass.pullback(&g.narrow(0, 0, 2).unwrap()),
            Err(Error::Shape { .. })
        ));
        let other = if n > 0 {
            None
        } else {
            Some(Tensor::ones((4, 3), DType::F32, &dev).unwrap())
        };
        assert!(vae.decoder_pass(&z, other.as_ref()).is_err());
    }
}
