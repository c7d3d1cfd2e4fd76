//! Parity with onnxruntime (logits) and PyTorch (input gradients) on the committed
//! fixtures written by `tools/onnx/make_fixtures.py`.

use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use candle_core::{Device, Tensor, Var};
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::ReadNpyExt;
use netinv_invert::InvertibleNet;
use netinv_onnx::OnnxNet;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn npy_f32(name: &str) -> Result<ArrayD<f32>> {
    let file = std::fs::File::open(fixture(name)).with_context(|| name.to_string())?;
    Ok(ArrayD::<f32>::read_npy(file)?)
}

fn npy_i64(name: &str) -> Result<ArrayD<i64>> {
    let file = std::fs::File::open(fixture(name)).with_context(|| name.to_string())?;
    Ok(ArrayD::<i64>::read_npy(file)?)
}

fn tensor(a: &ArrayD<f32>) -> Result<Tensor> {
    Ok(Tensor::from_vec(
        a.iter().copied().collect::<Vec<_>>(),
        a.shape(),
        &Device::Cpu,
    )?)
}

/// `max |a - b| / max |b|`: the error relative to the reference's scale.
fn relative(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().fold(0f64, |m, v| m.max(f64::from(v.abs())));
    let diff = a
        .iter()
        .zip(b)
        .fold(0f64, |m, (x, y)| m.max(f64::from((x - y).abs())));
    diff / scale.max(1e-30)
}

/// Logits vs onnxruntime (1e-4 relative) and the gradient of the target logits vs
/// PyTorch (1e-3 relative); returns the two errors.
fn check(name: &str) -> Result<(f64, f64)> {
    let net = OnnxNet::load(fixture(&format!("{name}.onnx")))?;
    let input = npy_f32(&format!("{name}.input.npy"))?;
    let want_logits = npy_f32(&format!("{name}.logits.npy"))?;
    let want_grad = npy_f32(&format!("{name}.grad.npy"))?;
    let targets = npy_i64(&format!("{name}.target.npy"))?;
    ensure!(net.outputs() == want_logits.shape()[1], "classes");
    let x = Var::from_tensor(&tensor(&input)?)?;
    let logits = net.forward(x.as_tensor())?;
    let got: Vec<f32> = logits.flatten_all()?.to_vec1()?;
    let logit_err = relative(&got, want_logits.as_slice().context("contiguous")?);
    let ids: Vec<u32> = targets.iter().map(|&t| t as u32).collect();
    let ids = Tensor::from_vec(ids, (targets.len(), 1), &Device::Cpu)?;
    let picked = logits.gather(&ids, 1)?.sum_all()?;
    let grads = picked.backward()?;
    let grad: Vec<f32> = grads
        .get(x.as_tensor())
        .context("no input gradient")?
        .flatten_all()?
        .to_vec1()?;
    let grad_err = relative(&grad, want_grad.as_slice().context("contiguous")?);
    println!("{name}: logits rel. err {logit_err:.2e}, gradient rel. err {grad_err:.2e}");
    ensure!(
        logit_err <= 1e-4,
        "{name}: logits differ from onnxruntime by {logit_err:e} (relative)"
    );
    ensure!(
        grad_err <= 1e-3,
        "{name}: gradient differs from PyTorch by {grad_err:e} (relative)"
    );
    Ok((logit_err, grad_err))
}

#[test]
fn lenet_matches_onnxruntime_and_pytorch() -> Result<()> {
    check("lenet")?;
    let net = OnnxNet::load(fixture("lenet.onnx"))?;
    assert_eq!(
        (net.input_dims(), net.outputs(), net.info().opset),
        ((1, 28, 28), 10, 13)
    );
    assert!(!net.has_batch_norm());
    Ok(())
}

#[test]
fn residual_net_with_batch_norm_nodes_matches() -> Result<()> {
    check("resnet_bn")?;
    let net = OnnxNet::load(fixture("resnet_bn.onnx"))?;
    assert!(net.has_batch_norm());
    assert_eq!(net.info().batch_norm_layers, 6);
    Ok(())
}

#[test]
fn residual_net_with_batch_norm_folded_by_the_exporter_matches() -> Result<()> {
    check("resnet")?;
    let net = OnnxNet::load(fixture("resnet.onnx"))?;
    assert!(!net.has_batch_norm(), "the exporter folded every BatchNorm");
    Ok(())
}

#[test]
fn colour_net_matches_and_carries_its_normalisation() -> Result<()> {
    check("color32")?;
    let net = OnnxNet::load(fixture("color32.onnx"))?;
    assert_eq!(net.input_dims(), (3, 32, 32));
    let norm = net
        .metadata_normalization()?
        .context("metadata mean / std")?;
    assert_eq!(norm.mean, vec![0.45, 0.40, 0.35]);
    assert_eq!(norm.std, vec![0.30, 0.30, 0.30]);
    Ok(())
}

#[test]
fn operator_mix_matches() -> Result<()> {
    check("opzoo")?;
    Ok(())
}

/// The statistics that feed the BN prior equal PyTorch's batch statistics of every
/// BatchNorm input (folded into the conv or not).
#[test]
fn batch_norm_statistics_match_pytorch() -> Result<()> {
    let net = OnnxNet::load(fixture("resnet_bn.onnx"))?;
    let x = tensor(&npy_f32("resnet_bn.input.npy")?)?;
    let (_, stats) = net.forward_with_bn_stats(&x)?;
    let cat = |f: &dyn Fn(&netinv_invert::BnLayerStats) -> Tensor| -> Result<Vec<f32>> {
        let parts: Vec<Tensor> = stats.iter().map(f).collect();
        Ok(Tensor::cat(&parts, 0)?.to_vec1()?)
    };
    let mean = cat(&|s| s.batch_mean.clone())?;
    let var = cat(&|s| s.batch_var.clone())?;
    let want_mean = npy_f32("resnet_bn.bn_mean.npy")?;
    let want_var = npy_f32("resnet_bn.bn_var.npy")?;
    assert!(relative(&mean, want_mean.as_slice().context("c")?) < 1e-4);
    assert!(relative(&var, want_var.as_slice().context("c")?) < 1e-4);
    // per image: [b, C] rows whose mean over the batch is the batch mean
    let (_, per_image) = net.forward_with_image_bn_stats(&x)?;
    assert_eq!(per_image[0].batch_mean.dims(), &[4, 16]);
    let avg: Vec<f32> = per_image[0].batch_mean.mean(0)?.to_vec1()?;
    assert!(relative(&avg, &mean[..16]) < 1e-4);
    Ok(())
}

#[test]
fn batches_of_any_size_give_each_images_logits() -> Result<()> {
    let net = OnnxNet::load(fixture("lenet.onnx"))?;
    let input = npy_f32("lenet.input.npy")?;
    let want = npy_f32("lenet.logits.npy")?;
    let images = input.into_dimensionality::<ndarray::Ix4>()?;
    let logits = net.classify(images.view(), 3)?; // batches of 3 and 1
    let got: Vec<f32> = logits.iter().copied().collect();
    assert!(relative(&got, want.as_slice().context("c")?) <= 1e-4);
    let _ = IxDyn(&[0]);
    Ok(())
}
