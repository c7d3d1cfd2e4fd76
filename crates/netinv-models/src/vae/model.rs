//! The VAE's weights and forward passes ([`Vae`]), unconditional and class-conditional.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::{DecoderKind, VaeConfig};
use crate::error::invalid;
use crate::ops::{conv2d_bias, conv2d_bias_relu_pool, upsample2};
use crate::{Error, Result};

/// A VAE with its weights: trainable ([`Vae::init`], weights are variables of a
/// [`VarMap`]) or frozen ([`Vae::load`], plain tensors).
#[derive(Debug, Clone)]
pub struct Vae {
    pub(super) cfg: VaeConfig,
    /// Tensors in the order of [`VaeConfig::tensor_shapes`].
    pub(super) t: Vec<Tensor>,
}

// Indices into `Vae::t`.
const ENC1_W: usize = 0;
const ENC1_B: usize = 1;
const ENC2_W: usize = 2;
const ENC2_B: usize = 3;
const MU_W: usize = 4;
const MU_B: usize = 5;
const LV_W: usize = 6;
const LV_B: usize = 7;
/// The decoder's first weight (`dec.fc.weight` or `dec.hidden.weight`).
pub(super) const FC_W: usize = 8;
const FC_B: usize = 9;
// Convolutional decoder.
const DEC1_W: usize = 10;
const DEC1_B: usize = 11;
const DEC2_W: usize = 12;
const DEC2_B: usize = 13;
// MLP decoder.
pub(super) const OUT_W: usize = 10;
pub(super) const OUT_B: usize = 11;

fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    x.matmul(&w.t()?)?.broadcast_add(b)
}

impl Vae {
    /// A trainable VAE whose weights are fresh variables in `varmap`, initialised as
    /// PyTorch initialises `Conv2d` / `Linear` (`U(-1/sqrt(fan_in), 1/sqrt(fan_in))` for
    /// weights and biases) from `StdRng::seed_from_u64(seed)`: the same seed gives the same
    /// weights on any machine and thread count.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an invalid `cfg`, [`Error::Candle`] if a tensor cannot
    /// be created.
    pub fn init(cfg: &VaeConfig, varmap: &VarMap, seed: u64, device: &Device) -> Result<Self> {
        cfg.validate()?;
        // the allocator setting every network run profits from (page faults otherwise)
        netinv_core::retain_freed_memory_once();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut data = varmap
            .data()
            .lock()
            .map_err(|_| invalid("varmap", "the VarMap's lock is poisoned"))?;
        let mut t = Vec::new();
        let mut fan_in = 1usize;
        for (name, shape) in cfg.tensor_shapes() {
            if name.ends_with(".weight") {
                fan_in = shape[1..].iter().product();
            }
            let n: usize = shape.iter().product();
            let values = crate::init::uniform(&mut rng, n, 1.0 / (fan_in as f32).sqrt());
            let var = Var::from_vec(values, shape.as_slice(), device)?;
            t.push(var.as_tensor().clone());
            data.insert(name, var);
        }
        Ok(Self {
            cfg: cfg.clone(),
            t,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &VaeConfig {
        &self.cfg
    }

    /// A frozen copy (plain tensors holding the current values; no gradients).
    ///
    /// # Errors
    /// [`Error::Candle`] if a copy fails.
    pub fn frozen(&self) -> Result<Self> {
        Ok(Self {
            cfg: self.cfg.clone(),
            t: self
                .t
                .iter()
                .map(|t| t.detach().copy())
                .collect::<candle_core::Result<_>>()?,
        })
    }

    /// Number of classes the VAE is conditioned on (0: unconditional).
    pub fn n_classes(&self) -> usize {
        self.cfg.n_classes
    }

    /// Dimension k of the latent space.
    pub fn latent_dim(&self) -> usize {
        self.cfg.latent_dim
    }

    pub(super) fn check_images(&self, x: &Tensor) -> Result<()> {
        let s = self.cfg.image_size;
        let ok = matches!(x.dims(), &[b, 1, h, w] if b >= 1 && h == s && w == s);
        if !ok || x.dtype() != DType::F32 {
            return Err(Error::Shape {
                expected: format!("f32 images [b >= 1, 1, {s}, {s}]"),
                got: format!("{:?} {:?}", x.dtype(), x.dims()),
            });
        }
        Ok(())
    }

    pub(super) fn check_latent(&self, z: &Tensor) -> Result<()> {
        let k = self.cfg.latent_dim;
        let ok = matches!(z.dims(), &[b, kk] if b >= 1 && kk == k);
        if !ok || z.dtype() != DType::F32 {
            return Err(Error::Shape {
                expected: format!("f32 latent codes [b >= 1, {k}]"),
                got: format!("{:?} {:?}", z.dtype(), z.dims()),
            });
        }
        Ok(())
    }

    /// Checks that the VAE is of the kind a call needs (`conditional` or not) and, for a
    /// conditional call, that `one_hot` is f32 `[rows, n_classes]`.
    pub(super) fn check_condition(&self, one_hot: Option<&Tensor>, rows: usize) -> Result<()> {
        let n = self.cfg.n_classes;
        match (one_hot, n) {
            (None, 0) => Ok(()),
            (None, _) => Err(invalid(
                "n_classes",
                format!(
                    "this VAE is conditional on {n} classes: use the *_conditional method \
                     with a one-hot label"
                ),
            )),
            (Some(_), 0) => Err(invalid(
                "n_classes",
                "this VAE is unconditional: use the method without a label",
            )),
            (Some(c), _) => {
                if c.dims() != [rows, n] || c.dtype() != DType::F32 {
                    return Err(Error::Shape {
                        expected: format!("f32 one-hot labels [{rows}, {n}]"),
                        got: format!("{:?} {:?}", c.dtype(), c.dims()),
                    });
                }
                Ok(())
            }
        }
    }

    /// The one-hot rows `[labels.len(), n_classes]` (f32, 1 at each label) of class labels,
    /// ready for the `*_conditional` methods.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unconditional VAE, an empty `labels` or a label
    /// `>= n_classes`; [`Error::Candle`] if the tensor cannot be created.
    pub fn one_hot(&self, labels: &[u32], device: &Device) -> Result<Tensor> {
        one_hot(labels, self.cfg.n_classes, device)
    }

    /// The posterior parameters `(mu, logvar)`, each `[b, k]`, of images `x`
    /// `[b, 1, s, s]` in [0, 1] (unconditional VAE).
    ///
    /// # Errors
    /// [`Error::Shape`] for a wrong shape or dtype; [`Error::InvalidConfig`] for a
    /// conditional VAE; [`Error::Candle`] otherwise.
    pub fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        self.check_images(x)?;
        self.check_condition(None, x.dim(0)?)?;
        Ok(self.encode_unchecked(x, None)?)
    }

    /// The posterior parameters `(mu, logvar)`, each `[b, k]`, of images `x`
    /// `[b, 1, s, s]` in [0, 1] with their labels `one_hot` `[b, n_classes]` (see
    /// [`Vae::one_hot`]) (conditional VAE).
    ///
    /// # Errors
    /// [`Error::Shape`] for a wrong shape or dtype; [`Error::InvalidConfig`] for an
    /// unconditional VAE; [`Error::Candle`] otherwise.
    pub fn encode_conditional(&self, x: &Tensor, one_hot: &Tensor) -> Result<(Tensor, Tensor)> {
        self.check_images(x)?;
        self.check_condition(Some(one_hot), x.dim(0)?)?;
        Ok(self.encode_unchecked(x, Some(one_hot))?)
    }

    pub(super) fn encode_unchecked(
        &self,
        x: &Tensor,
        one_hot: Option<&Tensor>,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let t = &self.t;
        let h = conv2d_bias_relu_pool(x, &t[ENC1_W], &t[ENC1_B], 1)?;
        let h = conv2d_bias_relu_pool(&h, &t[ENC2_W], &t[ENC2_B], 1)?;
        let h = with_label(h.flatten_from(1)?, one_hot)?;
        Ok((
            linear(&h, &t[MU_W], &t[MU_B])?,
            linear(&h, &t[LV_W], &t[LV_B])?,
        ))
    }

    /// Decoder logits `[b, 1, s, s]` of latent codes `z` `[b, k]` (unconditional VAE).
    ///
    /// # Errors
    /// [`Error::Shape`] for a wrong shape or dtype; [`Error::InvalidConfig`] for a
    /// conditional VAE; [`Error::Candle`] otherwise.
    pub fn decode_logits(&self, z: &Tensor) -> Result<Tensor> {
        self.check_latent(z)?;
        self.check_condition(None, z.dim(0)?)?;
        Ok(self.decode_unchecked(z, None)?)
    }

    /// Decoder logits `[b, 1, s, s]` of latent codes `z` `[b, k]` with labels `one_hot`
    /// `[b, n_classes]` (see [`Vae::one_hot`]) (conditional VAE). Differentiable in `z`
    /// (and in `one_hot`).
    ///
    /// # Errors
    /// [`Error::Shape`] for a wrong shape or dtype; [`Error::InvalidConfig`] for an
    /// unconditional VAE; [`Error::Candle`] otherwise.
    pub fn decode_logits_conditional(&self, z: &Tensor, one_hot: &Tensor) -> Result<Tensor> {
        self.check_latent(z)?;
        self.check_condition(Some(one_hot), z.dim(0)?)?;
        Ok(self.decode_unchecked(z, Some(one_hot))?)
    }

    pub(super) fn decode_unchecked(
        &self,
        z: &Tensor,
        one_hot: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let t = &self.t;
        let s = self.cfg.image_size;
        let b = z.dim(0)?;
        let z = with_label(z.clone(), one_hot)?;
        match self.cfg.decoder {
            DecoderKind::Conv => {
                let q = s / 4;
                let h = linear(&z, &t[FC_W], &t[FC_B])?.relu()?.reshape((
                    b,
                    self.cfg.conv2_channels,
                    q,
                    q,
                ))?;
                let h = conv2d_bias(&upsample2(&h)?, &t[DEC1_W], &t[DEC1_B], 1)?.relu()?;
                conv2d_bias(&upsample2(&h)?, &t[DEC2_W], &t[DEC2_B], 1)
            }
            DecoderKind::Mlp => {
                let h = linear(&z, &t[FC_W], &t[FC_B])?.relu()?;
                linear(&h, &t[OUT_W], &t[OUT_B])?.reshape((b, 1, s, s))
            }
        }
    }

    /// Decoded images `sigmoid(decode_logits(z))`, `[b, 1, s, s]` in (0, 1)
    /// (unconditional VAE).
    ///
    /// # Errors
    /// As [`Vae::decode_logits`].
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::sigmoid(&self.decode_logits(z)?)?)
    }

    /// Decoded images `sigmoid(decode_logits_conditional(z, one_hot))`, `[b, 1, s, s]` in
    /// (0, 1) (conditional VAE). Differentiable in `z`.
    ///
    /// # Errors
    /// As [`Vae::decode_logits_conditional`].
    pub fn decode_conditional(&self, z: &Tensor, one_hot: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::sigmoid(
            &self.decode_logits_conditional(z, one_hot)?,
        )?)
    }

    /// Reconstructions `decode(mu(x))` `[b, 1, s, s]` of images `x` (no sampling;
    /// unconditional VAE).
    ///
    /// # Errors
    /// As [`Vae::encode`].
    pub fn reconstruct(&self, x: &Tensor) -> Result<Tensor> {
        let (mu, _) = self.encode(x)?;
        self.decode(&mu)
    }

    /// Reconstructions `decode_conditional(mu(x, c), c)` `[b, 1, s, s]` of images `x` with
    /// labels `one_hot` (no sampling; conditional VAE).
    ///
    /// # Errors
    /// As [`Vae::encode_conditional`].
    pub fn reconstruct_conditional(&self, x: &Tensor, one_hot: &Tensor) -> Result<Tensor> {
        let (mu, _) = self.encode_conditional(x, one_hot)?;
        self.decode_conditional(&mu, one_hot)
    }
}

/// `[h, one_hot]` concatenated along the feature axis (`h` itself without a label).
fn with_label(h: Tensor, one_hot: Option<&Tensor>) -> candle_core::Result<Tensor> {
    match one_hot {
        Some(c) => Tensor::cat(&[&h, c], 1),
        None => Ok(h),
    }
}

/// The one-hot rows `[labels.len(), n_classes]` of `labels` (see [`Vae::one_hot`]).
pub(super) fn one_hot(labels: &[u32], n_classes: usize, device: &Device) -> Result<Tensor> {
    if n_classes == 0 {
        return Err(invalid(
            "n_classes",
            "this VAE is unconditional: it takes no labels",
        ));
    }
    if labels.is_empty() {
        return Err(invalid("labels", "no labels given"));
    }
    let mut rows = vec![0f32; labels.len() * n_classes];
    for (i, &label) in labels.iter().enumerate() {
        let c = label as usize;
        if c >= n_classes {
            return Err(invalid(
                "labels",
                format!("label {label} at position {i} is not below n_classes = {n_classes}"),
            ));
        }
        rows[i * n_classes + c] = 1.0;
    }
    Ok(Tensor::from_vec(rows, (labels.len(), n_classes), device)?)
}
