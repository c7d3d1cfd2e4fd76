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
                let (kernel, bias) = Self::fold(&self.weight, &self.bias, &scale, &shift)?;
                let y = ops::conv2d_bias(x, &kernel, &bias, 1)?;
                Ok((y, Some((scale, shift))))
            }
        }
    }

    /// The kernel and bias of `BN(conv(x))` in eval mode: `kernel * scale`,
    /// `bias * scale + shift`.
    fn fold(
        weight: &Tensor,
        bias: &Tensor,
        scale: &Tensor,
        shift: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let c = scale.dim(0)?;
        let kernel = weight.broadcast_mul(&scale.reshape((c, 1, 1, 1))?)?;
        let bias = ((bias * scale)? + shift)?;
        Ok((kernel, bias))
    }

    /// The whole block in eval mode, `pool(relu(BN(conv(x))))` (BatchNorm folded into the
    /// convolution), as one op ([`ops::conv2d_bias_relu_pool`]): the same bits as
    /// [`conv_bn_eval`](Self::conv_bn_eval) then [`relu_pool`](Self::relu_pool), without the
    /// full-size convolution output in the graph.
    fn block_eval(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self.bn_affine()? {
            None => ops::conv2d_bias_relu_pool(x, &self.weight, &self.bias, 1),
            Some((scale, shift)) => {
                let (kernel, bias) = Self::fold(&self.weight, &self.bias, &scale, &shift)?;
                ops::conv2d_bias_relu_pool(x, &kernel, &bias, 1)
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
        // the allocator setting every network run profits from (page faults otherwise)
        netinv_core::retain_freed_memory_once();
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
            if block.bn.is_none() {
                h = block.block_eval(&h)?;
                continue;
            }
            if per_image {
                // the whole block and the per-image statistics of its output in one op
                if let (Some(bn), Some((scale, shift))) = (&block.bn, block.bn_affine()?) {
                    let (kernel, bias) =
                        ConvBlock::fold(&block.weight, &block.bias, &scale, &shift)?;
                    let (next, mean_y, var_y) =
                        ops::conv2d_bias_moments_relu_pool(&h, &kernel, &bias, 1)?;
                    let c = scale.dim(0)?;
                    let (scale, shift) = (scale.reshape((1, c))?, shift.reshape((1, c))?);
                    stats.push(BnStats {
                        batch_mean: mean_y.broadcast_sub(&shift)?.broadcast_div(&scale)?,
                        batch_var: var_y.broadcast_div(&scale.sqr()?)?,
                        running_mean: bn.running_mean().detach(),
                        running_var: bn.running_var().detach(),
                    });
                    h = next;
                    continue;
                }
            }
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
            h = match &block.bn {
                Some(bn) if train => block.relu_pool(&bn.forward_t(&block.conv(&h)?, true)?)?,
                _ => block.block_eval(&h)?,
            };
        }
        self.head(&h)
    }
}

#[cfg(test)]
mod tests;
