//! The VAE's architecture ([`VaeConfig`]) and its forward passes ([`Vae`]).

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::ops::{conv2d_bias, max_pool2x2_relu, upsample2};
use crate::{Error, Result};

/// The architecture of a [`Vae`].
///
/// Defaults: `latent_dim` 16, `conv1_channels` 16, `conv2_channels` 32, `image_size` 28.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VaeConfig {
    /// Dimension k of the latent space (> 0).
    pub latent_dim: usize,
    /// Channels of the first encoder convolution (and of the last hidden decoder layer), > 0.
    pub conv1_channels: usize,
    /// Channels of the second encoder convolution (and of the decoder's first feature
    /// map), > 0.
    pub conv2_channels: usize,
    /// Side s of the square one-channel images (a positive multiple of 4).
    pub image_size: usize,
}

impl Default for VaeConfig {
    fn default() -> Self {
        Self {
            latent_dim: 16,
            conv1_channels: 16,
            conv2_channels: 32,
            image_size: 28,
        }
    }
}

impl VaeConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first offending field: a zero `latent_dim` or
    /// channel count, an `image_size` that is zero or not a multiple of 4.
    ///
    /// # Examples
    /// ```
    /// use netinv_models::VaeConfig;
    /// assert!(VaeConfig::default().validate().is_ok());
    /// assert!(VaeConfig { latent_dim: 0, ..Default::default() }.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        if self.latent_dim == 0 {
            return Err(invalid("latent_dim", "must be > 0"));
        }
        if self.conv1_channels == 0 {
            return Err(invalid("conv1_channels", "must be > 0"));
        }
        if self.conv2_channels == 0 {
            return Err(invalid("conv2_channels", "must be > 0"));
        }
        if self.image_size == 0 || self.image_size % 4 != 0 {
            return Err(invalid(
                "image_size",
                format!("must be a positive multiple of 4, got {}", self.image_size),
            ));
        }
        Ok(())
    }

    /// Length of the flattened encoder features, `c2 * (s/4)^2`.
    pub fn flat_features(&self) -> usize {
        let q = self.image_size / 4;
        self.conv2_channels * q * q
    }

    /// Name and shape of every tensor of the VAE, in a fixed order.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (c1, c2, k, f) = (
            self.conv1_channels,
            self.conv2_channels,
            self.latent_dim,
            self.flat_features(),
        );
        [
            ("enc.conv1.weight", vec![c1, 1, 3, 3]),
            ("enc.conv1.bias", vec![c1]),
            ("enc.conv2.weight", vec![c2, c1, 3, 3]),
            ("enc.conv2.bias", vec![c2]),
            ("enc.mu.weight", vec![k, f]),
            ("enc.mu.bias", vec![k]),
            ("enc.logvar.weight", vec![k, f]),
            ("enc.logvar.bias", vec![k]),
            ("dec.fc.weight", vec![f, k]),
            ("dec.fc.bias", vec![f]),
            ("dec.conv1.weight", vec![c1, c2, 3, 3]),
            ("dec.conv1.bias", vec![c1]),
            ("dec.conv2.weight", vec![1, c1, 3, 3]),
            ("dec.conv2.bias", vec![1]),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s))
        .collect()
    }
}

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
pub(super) const FC_W: usize = 8;
const FC_B: usize = 9;
const DEC1_W: usize = 10;
const DEC1_B: usize = 11;
const DEC2_W: usize = 12;
const DEC2_B: usize = 13;

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

    /// The posterior parameters `(mu, logvar)`, each `[b, k]`, of images `x`
    /// `[b, 1, s, s]` in [0, 1].
    ///
    /// # Errors
    /// [`Error::Shape`] for a wrong shape or dtype; [`Error::Candle`] otherwise.
    pub fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        self.check_images(x)?;
        Ok(self.encode_unchecked(x)?)
    }

    pub(super) fn encode_unchecked(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let t = &self.t;
        let h = max_pool2x2_relu(&conv2d_bias(x, &t[ENC1_W], &t[ENC1_B], 1)?)?;
        let h = max_pool2x2_relu(&conv2d_bias(&h, &t[ENC2_W], &t[ENC2_B], 1)?)?;
        let h = h.flatten_from(1)?;
        Ok((
            linear(&h, &t[MU_W], &t[MU_B])?,
            linear(&h, &t[LV_W], &t[LV_B])?,
        ))
    }

    /// Decoder logits `[b, 1, s, s]` of latent codes `z` `[b, k]`.
    ///
    /// # Errors
    /// [`Error::Shape`] for a wrong shape or dtype; [`Error::Candle`] otherwise.
    pub fn decode_logits(&self, z: &Tensor) -> Result<Tensor> {
        self.check_latent(z)?;
        Ok(self.decode_unchecked(z)?)
    }

    pub(super) fn decode_unchecked(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        let t = &self.t;
        let q = self.cfg.image_size / 4;
        let b = z.dim(0)?;
        let h =
            linear(z, &t[FC_W], &t[FC_B])?
                .relu()?
                .reshape((b, self.cfg.conv2_channels, q, q))?;
        let h = conv2d_bias(&upsample2(&h)?, &t[DEC1_W], &t[DEC1_B], 1)?.relu()?;
        conv2d_bias(&upsample2(&h)?, &t[DEC2_W], &t[DEC2_B], 1)
    }

    /// Decoded images `sigmoid(decode_logits(z))`, `[b, 1, s, s]` in (0, 1).
    ///
    /// # Errors
    /// As [`Vae::decode_logits`].
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::sigmoid(&self.decode_logits(z)?)?)
    }

    /// Reconstructions `decode(mu(x))` `[b, 1, s, s]` of images `x` (no sampling).
    ///
    /// # Errors
    /// As [`Vae::encode`].
    pub fn reconstruct(&self, x: &Tensor) -> Result<Tensor> {
        let (mu, _) = self.encode(x)?;
        self.decode(&mu)
    }
}
