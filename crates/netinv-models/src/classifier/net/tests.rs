use super::*;

#[test]
fn netinv_small_has_1568_features() {
    let cfg = ClassifierConfig::netinv_small();
    assert_eq!(cfg.feature_size(), 7);
    assert_eq!(cfg.flat_features(), 1568);
    assert_eq!(cfg, ClassifierConfig::default());
    cfg.validate().unwrap();
}

#[test]
fn validate_rejects_each_bad_field() {
    let base = ClassifierConfig::netinv_small();
    let cases: Vec<(ClassifierConfig, &str)> = vec![
        (
            ClassifierConfig {
                in_channels: 0,
                ..base.clone()
            },
            "in_channels",
        ),
        (
            ClassifierConfig {
                image_size: 0,
                ..base.clone()
            },
            "image_size",
        ),
        (
            ClassifierConfig {
                conv_channels: vec![16, 0],
                ..base.clone()
            },
            "conv_channels",
        ),
        (
            ClassifierConfig {
                conv_channels: vec![4; 5],
                ..base.clone()
            },
            "conv_channels",
        ),
        (
            ClassifierConfig {
                hidden: 0,
                ..base.clone()
            },
            "hidden",
        ),
        (
            ClassifierConfig {
                outputs: 0,
                ..base.clone()
            },
            "outputs",
        ),
    ];
    for (cfg, field) in cases {
        match cfg.validate() {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected InvalidConfig, got {other:?}"),
        }
    }
}

#[test]
fn forward_shapes_and_bad_input() {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let net = Classifier::init(&ClassifierConfig::netinv_small(), &varmap, 1, &dev).unwrap();
    let x = Tensor::zeros((3, 1, 28, 28), DType::F32, &dev).unwrap();
    assert_eq!(net.forward(&x).unwrap().dims(), &[3, 10]);
    let (logits, stats) = net.forward_with_bn_stats(&x).unwrap();
    assert_eq!(logits.dims(), &[3, 10]);
    assert!(stats.is_empty());
    let bad = Tensor::zeros((3, 1, 27, 28), DType::F32, &dev).unwrap();
    assert!(matches!(net.forward(&bad), Err(Error::Shape { .. })));
    let bad = Tensor::zeros((3, 1, 28, 28), DType::F64, &dev).unwrap();
    assert!(matches!(net.forward(&bad), Err(Error::Shape { .. })));
}

#[test]
fn same_seed_same_weights_other_seed_other_weights() {
    let dev = Device::Cpu;
    let cfg = ClassifierConfig {
        batch_norm: true,
        ..Default::default()
    };
    let x = Tensor::ones((1, 1, 28, 28), DType::F32, &dev).unwrap();
    let logits = |seed| {
        let vm = VarMap::new();
        let net = Classifier::init(&cfg, &vm, seed, &dev).unwrap();
        net.forward(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert_eq!(logits(3), logits(3));
    assert_ne!(logits(3), logits(4));
}

/// Cross-entropy of the whole net in f64 (weights from `tensors`), and its gradient
/// w.r.t. every weight by autograd, against central differences.
#[test]
fn whole_net_gradient_matches_central_differences_f64() {
    use netinv_core::testing::{assert_close, central_diff};
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let dev = Device::Cpu;
    for (bn, train) in [(false, false), (true, true), (true, false)] {
        let cfg = ClassifierConfig {
            conv_channels: vec![2, 3],
            batch_norm: bn,
            hidden: 5,
            outputs: 4,
            image_size: 9,
            ..Default::default()
        };
        let mut rng = StdRng::seed_from_u64(9);
        let named: Vec<(String, Tensor)> = crate::init::initial_tensors(&cfg, 3, &dev)
            .unwrap()
            .into_iter()
            .map(|(n, t)| {
                // Random BN affine parameters and running stats so they matter.
                let t = if n.starts_with("bns.") {
                    let k = t.elem_count();
                    let v: Vec<f32> = (0..k).map(|_| rng.random_range(0.5..1.5)).collect();
                    Tensor::from_vec(v, k, &dev).unwrap()
                } else {
                    t
                };
                (n, t.to_dtype(DType::F64).unwrap())
            })
            .collect();
        let x: Vec<f64> = (0..2 * 81).map(|_| rng.random_range(0.0..1.0)).collect();
        let x = Tensor::from_vec(x, (2, 1, 9, 9), &dev).unwrap();
        let y = Tensor::from_vec(vec![1u32, 3], 2, &dev).unwrap();
        let loss = |tensors: Vec<(String, Tensor)>| {
            let vb = VarBuilder::from_tensors(tensors.into_iter().collect(), DType::F64, &dev);
            let net = Classifier::new(&cfg, vb).unwrap();
            let logits = net.forward_t(&x, train).unwrap();
            (net, candle_nn::loss::cross_entropy(&logits, &y).unwrap())
        };
        // Autograd: make every trainable weight a variable.
        let vars: Vec<(String, Tensor)> = named
            .iter()
            .map(|(n, t)| {
                let trainable = !n.contains("running");
                let t = if trainable {
                    candle_core::Var::from_tensor(t)
                        .unwrap()
                        .as_tensor()
                        .clone()
                } else {
                    t.clone()
                };
                (n.clone(), t)
            })
            .collect();
        let (net, l) = loss(vars);
        let grads = l.backward().unwrap();
        for (i, w) in net.weight_tensors().iter().enumerate() {
            let name = &named
                .iter()
                .filter(|(n, _)| !n.contains("running"))
                .nth(i)
                .unwrap()
                .0;
            let g = grads
                .get(w)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            let w0 = w.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let numeric = central_diff(
                |v| {
                    let mut ts = named.clone();
                    let slot = ts.iter_mut().find(|(n, _)| n == name).unwrap();
                    slot.1 = Tensor::from_vec(v.to_vec(), w.shape(), &dev).unwrap();
                    loss(ts).1.to_scalar::<f64>().unwrap()
                },
                &w0,
                1e-6,
            );
            if let Err(e) = netinv_core::testing::check_close(&g, &numeric, 1e-5, 1e-8) {
                panic!("bn {bn} train {train} {name}: {e}");
            }
        }
        let _ = assert_close;
    }
}

/// A tiny BatchNorm net (conv 4 / 6, hidden 8, 12x12 input) and a batch of `n`
/// deterministic images in [0, 1) with pattern `(i * step % modulus) / modulus`.
fn tiny_bn_net_and_images(
    seed: u64,
    n: usize,
    step: usize,
    modulus: usize,
) -> (Classifier, Tensor) {
    let dev = Device::Cpu;
    let cfg = ClassifierConfig {
        conv_channels: vec![4, 6],
        batch_norm: true,
        hidden: 8,
        image_size: 12,
        ..Default::default()
    };
    let vm = VarMap::new();
    let net = Classifier::init(&cfg, &vm, seed, &dev).unwrap();
    let vals: Vec<f32> = (0..n * 144)
        .map(|i| ((i * step % modulus) as f32) / modulus as f32)
        .collect();
    let x = Tensor::from_vec(vals, (n, 1, 12, 12), &dev).unwrap();
    (net, x)
}

/// The eval-mode forward folds BatchNorm into the convolution; it must equal conv then
/// candle's BatchNorm with the running statistics, also for non-trivial statistics.
#[test]
fn folded_batch_norm_equals_conv_then_batch_norm() {
    let (net, x) = tiny_bn_net_and_images(4, 5, 29, 89);
    // a few training-mode passes move the running statistics away from (0, 1)
    for _ in 0..5 {
        net.forward_t(&(&x * 3.0).unwrap(), true).unwrap();
    }
    let mut h = x.clone();
    for block in &net.blocks {
        let z = block.conv(&h).unwrap();
        let z = block.bn.as_ref().unwrap().forward_t(&z, false).unwrap();
        h = block.relu_pool(&z).unwrap();
    }
    let expected = net
        .head(&h)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let got = net
        .forward(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let running = net.blocks[0].bn.as_ref().unwrap().running_mean();
    assert!(
        running
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            > 1e-3
    );
    for (g, e) in got.iter().zip(&expected) {
        assert!((g - e).abs() <= 1e-5 * (1.0 + e.abs()), "{g} vs {e}");
    }
}

/// Inverting a frozen BatchNorm net must differentiate to the input only: candle-nn
/// keeps the running statistics as `Var`s, and a folded kernel built from them would
/// make every backward pass compute kernel and bias gradients (and reach the `Var`s).
#[test]
fn eval_backward_never_reaches_the_running_statistics() {
    let cfg = ClassifierConfig {
        batch_norm: true,
        ..ClassifierConfig::netinv_small()
    };
    let tensors = crate::init::initial_tensors(&cfg, 4, &Device::Cpu)
        .unwrap()
        .into_iter()
        .collect();
    let net = Classifier::new(
        &cfg,
        VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu),
    )
    .unwrap();
    // a fixed ramp of pixel values in [0, 1)
    let pixels: Vec<f32> = (0..2 * 784).map(|i| (i % 97) as f32 / 97.0).collect();
    let x = candle_core::Var::from_vec(pixels, (2, 1, 28, 28), &Device::Cpu).unwrap();
    let (logits, stats) = net.forward_with_image_bn_stats(x.as_tensor()).unwrap();
    let loss = (logits.sum_all().unwrap() + stats[1].batch_var.sum_all().unwrap()).unwrap();
    let grads = loss.backward().unwrap();
    assert!(grads.get(x.as_tensor()).is_some());
    for block in &net.blocks {
        let bn = block.bn.as_ref().unwrap();
        assert!(grads.get(bn.running_mean()).is_none());
        assert!(grads.get(bn.running_var()).is_none());
    }
}

#[test]
fn image_bn_stats_are_each_images_own_batch_stats() {
    let (net, x) = tiny_bn_net_and_images(3, 3, 53, 97);
    let (logits, per_image) = net.forward_with_image_bn_stats(&x).unwrap();
    assert_eq!(per_image.len(), 2);
    assert_eq!(per_image[1].batch_mean.dims(), &[3, 6]);
    assert_eq!(per_image[1].batch_var.dims(), &[3, 6]);
    let batch_logits = net.forward(&x).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(logits.to_vec2::<f32>().unwrap(), batch_logits);
    for b in 0..3 {
        let (_, alone) = net
            .forward_with_bn_stats(&x.narrow(0, b, 1).unwrap())
            .unwrap();
        for (layer, single) in per_image.iter().zip(&alone) {
            for (ours, theirs) in [
                (&layer.batch_mean, &single.batch_mean),
                (&layer.batch_var, &single.batch_var),
            ] {
                let ours = ours.get(b).unwrap().to_vec1::<f32>().unwrap();
                let theirs = theirs.to_vec1::<f32>().unwrap();
                for (a, t) in ours.iter().zip(&theirs) {
                    assert!((a - t).abs() <= 1e-5 * (1.0 + t.abs()), "{a} vs {t}");
                }
            }
        }
    }
}

#[test]
fn bn_stats_match_training_mode_statistics() {
    let (net, x) = tiny_bn_net_and_images(5, 2, 37, 101);
    let (_, stats) = net.forward_with_bn_stats(&x).unwrap();
    assert_eq!(stats.len(), 2);
    // Direct computation for the first layer.
    let z = net.blocks[0].conv(&x).unwrap();
    let z = z
        .transpose(0, 1)
        .unwrap()
        .flatten_from(1)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let mean: Vec<f64> = z
        .iter()
        .map(|r| r.iter().map(|&v| v as f64).sum::<f64>() / r.len() as f64)
        .collect();
    let var: Vec<f64> = z
        .iter()
        .zip(&mean)
        .map(|(r, m)| r.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / r.len() as f64)
        .collect();
    let got_m: Vec<f64> = stats[0]
        .batch_mean
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|&v| v as f64)
        .collect();
    let got_v: Vec<f64> = stats[0]
        .batch_var
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|&v| v as f64)
        .collect();
    netinv_core::testing::assert_close(&got_m, &mean, 1e-4, 1e-6);
    netinv_core::testing::assert_close(&got_v, &var, 1e-4, 1e-6);
    assert_eq!(
        stats[0].running_mean.to_vec1::<f32>().unwrap(),
        vec![0.0; 4]
    );
    assert_eq!(stats[1].running_var.to_vec1::<f32>().unwrap(), vec![1.0; 6]);
}
