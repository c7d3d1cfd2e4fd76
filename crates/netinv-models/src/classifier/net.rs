//! The CNN classifier family of netinv (`netinv-small` and its variants).
//!
//! A [`Classifier`] is a stack of blocks `conv 3x3 (pad 1) -> [BatchNorm2d] -> ReLU ->
//! max-pool 2x2`, one per entry of [`ClassifierConfig::conv_channels`], followed by
//! `linear -> ReLU -> linear` producing logits. Convolutions and pooling run through the
//! custom CPU ops of [`crate::ops`] (im2col + gemm, first-max pooling with the exact
//! gradient).

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{BatchNorm, BatchNormConfig, Linear, ModuleT, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use crate::{ops, Error, Result};

/// Architecture of a [`Classifier`].
///
/// Defaults (= [`ClassifierConfig::netinv_small`]): `in_channels` 1, `image_size` 28,
/// `conv_channels` `[16, 32]`, `batch_norm` false, `hidden` 128, `outputs` 10.
///
/// Each entry `c` of `conv_channels` adds a block `conv 3x3 pad 1 (-> c channels) ->
/// [BatchNorm2d(c)] -> ReLU -> max-pool 2x2 stride 2`; the spatial size after `k` blocks is
/// `image_size / 2^k` (rounded down at every step, as PyTorch's pooling does), and the first
/// linear layer maps `conv_channels.last() * size^2` features (1568 for netinv-small) to
/// `hidden`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassifierConfig {
    /// Channels of the input image (1 for MNIST).
    pub in_channels: usize,
    /// Height = width of the input image in pixels (28 for MNIST).
    pub image_size: usize,
    /// Output channels of the convolution blocks, in order (`[16, 32]`).
    pub conv_channels: Vec<usize>,
    /// Whether a BatchNorm2d layer follows every convolution (before the ReLU).
    pub batch_norm: bool,
    /// Width of the hidden linear layer (128).
    pub hidden: usize,
    /// Number of outputs: logits of the classes (10), or the dimension of a prototype head.
    pub outputs: usize,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        Self::netinv_small()
    }
}

impl ClassifierConfig {
    /// The reference net of the thesis reproduction: conv 1->16, pool, conv 16->32, pool,
    /// linear 1568->128, linear 128->10, no BatchNorm.
    pub fn netinv_small() -> Self {
        Self {
            in_channels: 1,
            image_size: 28,
            conv_channels: vec![16, 32],
            batch_norm: false,
            hidden: 128,
            outputs: 10,
        }
    }

    /// Spatial size (height = width) after the last pooling layer.
    pub fn feature_size(&self) -> usize {
        self.conv_channels
            .iter()
            .fold(self.image_size, |size, _| size / 2)
    }

    /// Number of features entering the first linear layer
    /// (`conv_channels.last() * feature_size()^2`; `in_channels * image_size^2` without
    /// convolutions).
    pub fn flat_features(&self) -> usize {
        let channels = self
            .conv_channels
            .last()
            .copied()
            .unwrap_or(self.in_channels);
        channels * self.feature_size() * self.feature_size()
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field: a zero size or width, or an image too
    /// small for the number of pooling layers (it must stay at least 1 pixel wide).
    pub fn validate(&self) -> Result<()> {
        let invalid =
            |field: &'static str, reason: String| Err(Error::InvalidConfig { field, reason });
        if self.in_channels == 0 {
            return invalid("in_channels", "must be at least 1".into());
        }
        if self.image_size == 0 {
            return invalid("image_size", "must be at least 1".into());
        }
        if let Some(i) = self.conv_channels.iter().position(|&c| c == 0) {
            return invalid(
                "conv_channels",
                format!("entry {i} is 0; widths must be >= 1"),
            );
        }
        if self.feature_size() == 0 {
            return invalid(
                "conv_channels",
                format!(
                    "{} pooling layers shrink a {}-pixel image to nothing",
                    self.conv_channels.len(),
                    self.image_size
                ),
            );
        }
        if self.hidden == 0 {
            return invalid("hidden", "must be at least 1".into());
        }
        if self.outputs == 0 {
            return invalid("outputs", "must be at least 1".into());
        }
        Ok(())
    }

    /// Names and shapes of every tensor of the net, in the order [`Classifier::init`] draws
    /// them: `convs.{i}.weight` `[out, in, 3, 3]`, `convs.{i}.bias` `[out]`, with BatchNorm
    /// `bns.{i}.weight`, `bns.{i}.bias`, `bns.{i}.running_mean`, `bns.{i}.running_var`
    /// (each `[out]`), then `fc1.weight` `[hidden, flat]`, `fc1.bias`, `fc2.weight`
    /// `[outputs, hidden]`, `fc2.bias`. Names follow PyTorch's `state_dict` layout.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut shapes = Vec::new();
        let mut in_c = self.in_channels;
        for (i, &out_c) in self.conv_channels.iter().enumerate() {
            shapes.push((format!("convs.{i}.weight"), vec![out_c, in_c, 3, 3]));
            shapes.push((format!("convs.{i}.bias"), vec![out_c]));
            if self.batch_norm {
                for name in ["weight", "bias", "running_mean", "running_var"] {
                    shapes.push((format!("bns.{i}.{name}"), vec![out_c]));
                }
            }
            in_c = out_c;
        }
        shapes.push(("fc1.weight".into(), vec![self.hidden, self.flat_features()]));
        shapes.push(("fc1.bias".into(), vec![self.hidden]));
        shapes.push(("fc2.weight".into(), vec![self.outputs, self.hidden]));
        shapes.push(("fc2.bias".into(), vec![self.outputs]));
        shapes
    }
}

/// Statistics of the input of one BatchNorm layer, for the DeepInversion prior
/// (Yin et al. 2020). Every field has shape `[C]` (channels of the layer), except
/// `batch_mean` and `batch_var` from [`Classifier::forward_with_image_bn_stats`]: `[b, C]`.
#[derive(Debug, Clone)]
pub struct BnStats {
    /// Mean of the layer's input over (batch, height, width); differentiable w.r.t. the
    /// network input.
    pub batch_mean: Tensor,
    /// Biased variance (divided by `b * h * w`) of the layer's input over (batch, height,
    /// width); differentiable w.r.t. the network input.
    pub batch_var: Tensor,
    /// The layer's running mean (constant, detached).
    pub running_mean: Tensor,
    /// The layer's running variance (constant, detached).
    pub running_var: Tensor,
}

/// One `conv -> [BN] -> ReLU -> pool` block.
#[derive(Debug, Clone)]
struct ConvBlock {
    weight: Tensor,
    bias: Tensor,
    bn: Option<BatchNorm>,
}

impl ConvBlock {
    /// Convolution plus bias: `[b, in, h, w] -> [b, out, h, w]` (one fused op).
    fn conv(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        ops::conv2d_bias(x, &self.weight, &self.bias, 1)
    }

    /// ReLU and 2x2 max-pooling in one op (pooling first is exact: the max commutes with
    /// the non-decreasing ReLU, also in the gradient).
    fn relu_pool(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        ops::max_pool2x2_relu(z)
    }

    /// The BatchNorm of this block in eval mode as a per-channel affine map of the
    /// convolution's output `z`: `BN(z) = z * scale + shift` with
    /// `scale = gamma / sqrt(running_var + eps)`, `shift = beta - running_mean * scale`
    /// (both `[C]`); `None` without BatchNorm.
    fn bn_affine(&self) -> candle_core::Result<Option<(Tensor, Tensor)>> {
        let Some(bn) = &self.bn else {
            return Ok(None);
        };
        let c = bn.running_mean().dim(0)?;
        let (gamma, beta) = match bn.weight_and_bias() {
            Some((g, b)) => (g.clone(), b.clone()),
            None => (
                Tensor::ones(c, bn.running_mean().dtype(), bn.running_mean().device())?,
                Tensor::zeros(c, bn.running_mean().dtype(), bn.running_mean().device())?,
            ),
        };
        // candle-nn keeps the running statistics as `Var`s (training updates them in
        // place). They are never trained by gradient, so detach them: otherwise the folded
        // kernel and bias of a frozen net would track ops, and every backward pass would
        // compute a kernel and bias gradient nobody reads.
        let (running_mean, running_var) = (bn.running_mean().detach(), bn.running_var().detach());
        let scale = (gamma / running_var.affine(1.0, bn.eps())?.sqrt()?)?;
        let shift = (beta - (running_mean * &scale)?)?;
        Ok(Some((scale, shift)))
    }

    /// `BN(conv(x))` in eval mode, with the BatchNorm folded into the convolution
    /// (`kernel * scale`, `bias * scale + shift`), so it costs one convolution and no
    /// full-size broadcast ops; plain `conv(x)` without BatchNorm. Also returns the
    /// `(scale, shift)` of [`bn_affine`](Self::bn_affine), from which statistics of `z`
    /// follow from those of the output: `z = (y - shift) / scale`.
    #[allow(clippy::type_complexity)]
    fn conv_bn_eval(&self, x: &Tensor) -> candle_core::Result<(Tensor, Option<(Tensor, Tensor)>)> {
        match self.bn_affine()? {
            None => Ok((self.conv(x)?, None)),
            Some((scale, shift)) => {
                let c = scale.dim(0)?;
                let kernel = self.weight.broadcast_mul(&scale.reshape((c, 1, 1, 1))?)?;
                let bias = ((&self.bias * &scale)? + &shift)?;
                let y = ops::conv2d_bias(x, &kernel, &bias, 1)?;
                Ok((y, Some((scale, shift))))
            }
        }
    }
}

/// A CNN classifier (see [`ClassifierConfig`]): `forward` maps images
/// `[b, in_channels, image_size, image_size]` (f32, values typically in [0, 1]) to logits
/// `[b, outputs]`.
///
/// Built from a [`VarBuilder`]: over a [`VarMap`] the weights are trainable variables;
/// over plain tensors ([`crate::load_frozen`]) they are constants, and gradients flow only
/// to the input, which is what network inversion needs.
#[derive(Debug, Clone)]
pub struct Classifier {
    cfg: ClassifierConfig,
    blocks: Vec<ConvBlock>,
    fc1: Linear,
    fc2: Linear,
}

/// Epsilon of the BatchNorm layers (PyTorch's default).
pub const BN_EPS: f64 = 1e-5;
/// Momentum of the BatchNorm running statistics (PyTorch's default).
pub const BN_MOMENTUM: f64 = 0.1;

impl Classifier {
    /// Builds the net from a [`VarBuilder`], reading the tensors named by
    /// [`ClassifierConfig::tensor_shapes`] (weights from a [`VarMap`] for training, or
    /// plain tensors for a frozen net).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `cfg` is invalid; [`Error::Candle`] if a tensor is
    /// missing or has the wrong shape (a `VarMap` creates missing tensors with candle's
    /// default initialiser: use [`Classifier::init`] for a seeded PyTorch-style one).
    pub fn new(cfg: &ClassifierConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        let mut blocks = Vec::with_capacity(cfg.conv_channels.len());
        let mut in_c = cfg.in_channels;
        for (i, &out_c) in cfg.conv_channels.iter().enumerate() {
            let cvb = vb.pp(format!("convs.{i}"));
            let weight = cvb.get((out_c, in_c, 3, 3), "weight")?;
            let bias = cvb.get(out_c, "bias")?;
            let bn = if cfg.batch_norm {
                let bn_cfg = BatchNormConfig {
                    eps: BN_EPS,
                    remove_mean: true,
                    affine: true,
                    momentum: BN_MOMENTUM,
                };
                Some(candle_nn::batch_norm(
                    out_c,
                    bn_cfg,
                    vb.pp(format!("bns.{i}")),
                )?)
            } else {
                None
            };
            blocks.push(ConvBlock { weight, bias, bn });
            in_c = out_c;
        }
        let fc1 = candle_nn::linear(cfg.flat_features(), cfg.hidden, vb.pp("fc1"))?;
        let fc2 = candle_nn::linear(cfg.hidden, cfg.outputs, vb.pp("fc2"))?;
        Ok(Self {
            cfg: cfg.clone(),
            blocks,
            fc1,
            fc2,
        })
    }

    /// A fresh trainable net whose tensors are created in `varmap`, drawn from a host RNG
    /// seeded with `seed` (PyTorch's default initialisation, see [`crate::init`]): conv and
    /// linear weights and biases `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, BatchNorm weight 1,
    /// bias 0, running mean 0, running variance 1. The same seed gives the same weights on
    /// every machine and thread count.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `cfg` is invalid; [`Error::Candle`] if `varmap` already
    /// holds a tensor of the same name with another shape.
    ///
    /// # Examples
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use netinv_models::{Classifier, ClassifierConfig};
    /// let varmap = candle_nn::VarMap::new();
    /// let net = Classifier::init(&ClassifierConfig::netinv_small(), &varmap, 7, &Device::Cpu)?;
    /// let logits = net.forward(&Tensor::zeros((2, 1, 28, 28), candle_core::DType::F32, &Device::Cpu)?)?;
    /// assert_eq!(logits.dims(), &[2, 10]);
    /// # Ok::<(), netinv_models::Error>(())
    /// ```
    pub fn init(
        cfg: &ClassifierConfig,
        varmap: &VarMap,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        cfg.validate()?;
        crate::init::init_varmap(cfg, varmap, seed, device)?;
        Self::new(cfg, VarBuilder::from_varmap(varmap, DType::F32, device))
    }

    /// Every weight tensor of the net (conv weights and biases, BatchNorm affine
    /// parameters, linear weights and biases), for tests.
    #[cfg(test)]
    pub(crate) fn weight_tensors(&self) -> Vec<Tensor> {
        let mut out = Vec::new();
        for b in &self.blocks {
            out.push(b.weight.clone());
            out.push(b.bias.clone());
            if let Some((w, bias)) = b.bn.as_ref().and_then(|bn| bn.weight_and_bias()) {
                out.push(w.clone());
                out.push(bias.clone());
            }
        }
        out.push(self.fc1.weight().clone());
        out.extend(self.fc1.bias().cloned());
        out.push(self.fc2.weight().clone());
        out.extend(self.fc2.bias().cloned());
        out
    }

    /// The architecture of this net.
    pub fn config(&self) -> &ClassifierConfig {
        &self.cfg
    }

    /// Checks that `x` is `[b, in_channels, image_size, image_size]` with `b >= 1`, f32.
    fn check_input(&self, x: &Tensor) -> Result<()> {
        let s = self.cfg.image_size;
        let ok = matches!(x.dims(), &[b, c, h, w] if b >= 1 && c == self.cfg.in_channels && h == s && w == s);
        if !ok {
            return Err(Error::Shape {
                expected: format!("[b >= 1, {}, {s}, {s}]", self.cfg.in_channels),
                got: format!("{:?}", x.dims()),
            });
        }
        if x.dtype() != DType::F32 {
            return Err(Error::Shape {
                expected: "dtype f32".into(),
                got: format!("dtype {:?}", x.dtype()),
            });
        }
        Ok(())
    }

    /// The linear head: flattened features `[b, flat]` -> logits `[b, outputs]`.
    fn head(&self, h: &Tensor) -> candle_core::Result<Tensor> {
        let h = h.flatten_from(1)?;
        let h = self.fc1.forward(&h)?.relu()?;
        self.fc2.forward(&h)
    }

    /// Eval-mode logits `[b, outputs]` for `x` `[b, in_channels, image_size, image_size]`
    /// (BatchNorm uses its running statistics).
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` has the wrong shape or dtype; [`Error::Candle`] on a
    /// failing tensor operation.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.check_input(x)?;
        Ok(self.forward_t(x, false)?)
    }

    /// Eval-mode logits `[b, outputs]` plus, for every BatchNorm layer in order, the
    /// statistics of its input over (batch, height, width), differentiable w.r.t. `x`, and
    /// its running statistics; the Vec is empty when `batch_norm` is false.
    ///
    /// ```text
    /// batch_mean_c = mean_{b,h,w} z_{b,c,h,w}
    /// batch_var_c  = mean_{b,h,w} (z_{b,c,h,w} - batch_mean_c)^2     (biased)
    /// ```
    ///
    /// # Errors
    /// As [`Classifier::forward`].
    pub fn forward_with_bn_stats(&self, x: &Tensor) -> Result<(Tensor, Vec<BnStats>)> {
        self.forward_collecting_bn_stats(x, false)
    }

    /// As [`Classifier::forward_with_bn_stats`], but the statistics are taken per image,
    /// over (height, width) only: `batch_mean` and `batch_var` have shape `[b, C]`. The
    /// statistics of one image then do not depend on the other images of the batch, so a
    /// batch behaves like its images inverted one at a time.
    ///
    /// # Errors
    /// As [`Classifier::forward`].
    pub fn forward_with_image_bn_stats(&self, x: &Tensor) -> Result<(Tensor, Vec<BnStats>)> {
        self.forward_collecting_bn_stats(x, true)
    }

    fn forward_collecting_bn_stats(
        &self,
        x: &Tensor,
        per_image: bool,
    ) -> Result<(Tensor, Vec<BnStats>)> {
        self.check_input(x)?;
        let mut stats = Vec::new();
        let mut h = x.clone();
        for block in &self.blocks {
            let (y, affine) = block.conv_bn_eval(&h)?;
            if let (Some(bn), Some((scale, shift))) = (&block.bn, affine) {
                // statistics of the output y = z * scale + shift, mapped back to z
                let c = y.dim(1)?;
                let (mean_y, var_y) = if per_image {
                    ops::plane_moments(&y)?
                } else {
                    ops::row_moments(&y.transpose(0, 1)?.flatten_from(1)?)? // [c]
                };
                let (scale, shift) = if per_image {
                    (scale.reshape((1, c))?, shift.reshape((1, c))?)
                } else {
                    (scale, shift)
                };
                stats.push(BnStats {
                    batch_mean: mean_y.broadcast_sub(&shift)?.broadcast_div(&scale)?,
                    batch_var: var_y.broadcast_div(&scale.sqr()?)?,
                    running_mean: bn.running_mean().detach(),
                    running_var: bn.running_var().detach(),
                });
            }
            h = block.relu_pool(&y)?;
        }
        Ok((self.head(&h)?, stats))
    }
}

impl ModuleT for Classifier {
    /// Logits `[b, outputs]` for `x` `[b, in_channels, image_size, image_size]`; with
    /// `train` true, BatchNorm normalises with batch statistics and updates its running
    /// statistics (momentum 0.1).
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for block in &self.blocks {
            let z = match &block.bn {
                Some(bn) if train => bn.forward_t(&block.conv(&h)?, true)?,
                _ => block.conv_bn_eval(&h)?.0,
            };
            h = block.relu_pool(&z)?;
        }
        self.head(&h)
    }
}

#[cfg(test)]
mod tests {
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
}
