//! A small convolutional variational auto-encoder (Kingma & Welling, 2014) for square
//! one-channel images (28x28 digits by default): [`VaeConfig`] -> [`Vae`].
//!
//! ```text
//! encoder: x [b,1,s,s] -> conv3x3(1->c1) -> maxpool2+relu -> conv3x3(c1->c2) -> maxpool2+relu
//!          -> flatten [b, c2*(s/4)^2] -> linear -> mu [b,k],  linear -> logvar [b,k]
//! sample:  z = mu + exp(logvar / 2) * eps,   eps ~ N(0, I) from a seeded host RNG
//! decoder: z [b,k] -> linear -> relu -> [b,c2,s/4,s/4] -> upsample2 -> conv3x3(c2->c1) -> relu
//!          -> upsample2 -> conv3x3(c1->1) -> logits [b,1,s,s];  image = sigmoid(logits)
//! ```
//!
//! The convolutions and poolings are netinv-models' custom CPU ops (im2col + gemm, exact
//! max-pool gradient); upsampling is nearest-neighbour (a broadcast, whose backward is a sum).

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Optimizer, VarMap};
use netinv_core::{IterState, Monitor, Termination};
use netinv_data::Dataset;
use netinv_models::ops::{conv2d_bias, max_pool2x2_relu};
use netinv_models::train::{derive_seed, Adam, AdamParams};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::{Error, Result};

/// File name of the VAE weights inside a checkpoint folder.
pub const VAE_WEIGHTS_FILE: &str = "vae.safetensors";
/// File name of the VAE architecture ([`VaeConfig`]) inside a checkpoint folder.
pub const VAE_CONFIG_FILE: &str = "vae_config.json";

/// Batch size used when encoding or evaluating whole datasets (no effect on results).
const EVAL_BATCH: usize = 500;

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
    /// use netinv_interp::VaeConfig;
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

/// The loss terms of one batch, each a scalar tensor averaged over the batch (nats per
/// image):
///
/// ```text
/// recon = mean_b sum_p [ max(l,0) - l x + log(1 + exp(-|l|)) ]       (BCE with logits l)
/// kl    = mean_b -1/2 sum_j [ 1 + logvar_j - mu_j^2 - exp(logvar_j) ]
/// total = recon + kl = -ELBO
/// ```
#[derive(Debug, Clone)]
pub struct VaeLoss {
    /// `recon + kl`, the negative ELBO.
    pub total: Tensor,
    /// The Bernoulli reconstruction term.
    pub recon: Tensor,
    /// The KL divergence from the prior N(0, I).
    pub kl: Tensor,
}

/// A VAE with its weights: trainable ([`Vae::init`], weights are variables of a
/// [`VarMap`]) or frozen ([`Vae::load`], plain tensors).
#[derive(Debug, Clone)]
pub struct Vae {
    cfg: VaeConfig,
    /// Tensors in the order of [`VaeConfig::tensor_shapes`].
    t: Vec<Tensor>,
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
const FC_W: usize = 8;
const FC_B: usize = 9;
const DEC1_W: usize = 10;
const DEC1_B: usize = 11;
const DEC2_W: usize = 12;
const DEC2_B: usize = 13;

fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    x.matmul(&w.t()?)?.broadcast_add(b)
}

/// Nearest-neighbour 2x upsampling `[b, c, h, w] -> [b, c, 2h, 2w]` (f32, CPU), one graph
/// node whose backward is a 2x2 sum-pooling of the gradient:
///
/// ```text
/// y[b, c, i, j] = x[b, c, i / 2, j / 2]
/// dL/dx[b, c, i, j] = sum_{u, v in {0, 1}} dL/dy[b, c, 2i + u, 2j + v]
/// ```
///
/// (A reshape + broadcast computes the same forward, but its backward is a strided
/// reduction that cost about a fifth of a VAE training step.)
fn upsample2(x: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(Upsample2)
}

/// The slice of a contiguous f32 CPU argument.
fn f32_slice<'a>(
    s: &'a candle_core::CpuStorage,
    l: &candle_core::Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let candle_core::CpuStorage::F32(v) = s else {
        candle_core::bail!("{op}: f32 only")
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("{op}: the argument must be contiguous"),
    }
}

struct Upsample2;

impl candle_core::CustomOp1 for Upsample2 {
    fn name(&self) -> &'static str {
        "upsample2"
    }

    fn cpu_fwd(
        &self,
        s: &candle_core::CpuStorage,
        l: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let (b, c, h, w) = l.shape().dims4()?;
        let x = f32_slice(s, l, "upsample2")?;
        let mut out = vec![0f32; b * c * 4 * h * w];
        for (src, dst) in x.chunks_exact(h * w).zip(out.chunks_exact_mut(4 * h * w)) {
            for i in 0..h {
                let (top, bottom) = dst[2 * i * 2 * w..(2 * i + 2) * 2 * w].split_at_mut(2 * w);
                for j in 0..w {
                    let v = src[i * w + j];
                    top[2 * j] = v;
                    top[2 * j + 1] = v;
                }
                bottom.copy_from_slice(top);
            }
        }
        Ok((
            candle_core::CpuStorage::F32(out),
            candle_core::Shape::from((b, c, 2 * h, 2 * w)),
        ))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&SumPool2)?))
    }
}

/// 2x2 sum-pooling with stride 2, the backward of [`Upsample2`] (no backward of its own).
struct SumPool2;

impl candle_core::CustomOp1 for SumPool2 {
    fn name(&self) -> &'static str {
        "sum-pool2"
    }

    fn cpu_fwd(
        &self,
        s: &candle_core::CpuStorage,
        l: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let (b, c, h2, w2) = l.shape().dims4()?;
        if h2 % 2 != 0 || w2 % 2 != 0 {
            candle_core::bail!("sum-pool2: even sizes needed, got {h2}x{w2}")
        }
        let (h, w) = (h2 / 2, w2 / 2);
        let g = f32_slice(s, l, "sum-pool2")?;
        let mut out = vec![0f32; b * c * h * w];
        for (src, dst) in g.chunks_exact(4 * h * w).zip(out.chunks_exact_mut(h * w)) {
            for i in 0..h {
                let top = &src[2 * i * w2..(2 * i + 1) * w2];
                let bottom = &src[(2 * i + 1) * w2..(2 * i + 2) * w2];
                for j in 0..w {
                    dst[i * w + j] =
                        top[2 * j] + top[2 * j + 1] + bottom[2 * j] + bottom[2 * j + 1];
                }
            }
        }
        Ok((
            candle_core::CpuStorage::F32(out),
            candle_core::Shape::from((b, c, h, w)),
        ))
    }
}

fn checkpoint_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
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
            let values = netinv_models::init::uniform(&mut rng, n, 1.0 / (fan_in as f32).sqrt());
            let var = Var::from_vec(values, shape.as_slice(), device)?;
            t.push(var.as_tensor().clone());
            data.insert(name, var);
        }
        Ok(Self {
            cfg: cfg.clone(),
            t,
        })
    }

    /// A frozen VAE from plain tensors named as in [`VaeConfig::tensor_shapes`] (gradients
    /// flow to the inputs only).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an invalid `cfg`; [`Error::Shape`] listing every
    /// missing tensor and every tensor with a wrong shape or a dtype other than f32.
    pub fn from_tensors(cfg: &VaeConfig, tensors: &HashMap<String, Tensor>) -> Result<Self> {
        cfg.validate()?;
        let mut problems = Vec::new();
        let mut t = Vec::new();
        for (name, shape) in cfg.tensor_shapes() {
            match tensors.get(&name) {
                None => problems.push(format!("missing tensor {name}")),
                Some(x) if x.dims() != shape.as_slice() => {
                    problems.push(format!("{name}: shape {:?}, expected {shape:?}", x.dims()))
                }
                Some(x) if x.dtype() != DType::F32 => {
                    problems.push(format!("{name}: dtype {:?}, expected F32", x.dtype()))
                }
                Some(x) => t.push(x.detach()),
            }
        }
        if !problems.is_empty() {
            return Err(Error::Shape {
                expected: format!("the tensors of {cfg:?}"),
                got: problems.join("; "),
            });
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

    /// Saves the current weights to `dir/vae.safetensors` and the architecture to
    /// `dir/vae_config.json`, each atomically; `dir` is created if missing.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] if serialisation fails, [`Error::Core`] if writing does.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let weights = dir.join(VAE_WEIGHTS_FILE);
        let named: Vec<(String, Tensor)> = self
            .cfg
            .tensor_shapes()
            .into_iter()
            .zip(&self.t)
            .map(|((n, _), t)| (n, t.detach()))
            .collect();
        let bytes = safetensors::serialize(named.iter().map(|(n, t)| (n.as_str(), t)), None)
            .map_err(|e| checkpoint_error(&weights, format!("cannot serialise: {e}")))?;
        netinv_core::atomic_write_bytes(&weights, &bytes)?;
        netinv_core::write_json(dir.join(VAE_CONFIG_FILE), &self.cfg)?;
        Ok(())
    }

    /// Loads a frozen VAE saved by [`Vae::save`]: reads the architecture from
    /// `dir/vae_config.json`, then checks that `dir/vae.safetensors` holds every tensor it
    /// needs with the right shape.
    ///
    /// # Errors
    /// [`Error::Io`] for a missing file, [`Error::Checkpoint`] for a malformed config or
    /// weights file, or weights that do not match the config (naming each tensor).
    pub fn load(dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let dir = dir.as_ref();
        let cfg_path = dir.join(VAE_CONFIG_FILE);
        let text = std::fs::read(&cfg_path).map_err(|source| Error::Io {
            path: cfg_path.clone(),
            source,
        })?;
        let cfg: VaeConfig = serde_json::from_slice(&text)
            .map_err(|e| checkpoint_error(&cfg_path, format!("not a valid VaeConfig: {e}")))?;
        cfg.validate()
            .map_err(|e| checkpoint_error(&cfg_path, e.to_string()))?;
        let weights = dir.join(VAE_WEIGHTS_FILE);
        if !weights.exists() {
            return Err(Error::Io {
                path: weights,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let tensors = candle_core::safetensors::load(&weights, device)
            .map_err(|e| checkpoint_error(&weights, format!("cannot read: {e}")))?;
        Self::from_tensors(&cfg, &tensors).map_err(|e| match e {
            Error::Shape { got, .. } => {
                checkpoint_error(&weights, format!("does not match {VAE_CONFIG_FILE}: {got}"))
            }
            other => other,
        })
    }

    /// [`Vae::load`], then checks that the saved architecture is `expected`.
    ///
    /// # Errors
    /// As [`Vae::load`]; [`Error::Checkpoint`] naming both configurations when they differ.
    pub fn load_expecting(
        dir: impl AsRef<Path>,
        expected: &VaeConfig,
        device: &Device,
    ) -> Result<Self> {
        let dir = dir.as_ref();
        let vae = Self::load(dir, device)?;
        if vae.config() != expected {
            return Err(checkpoint_error(
                &dir.join(VAE_CONFIG_FILE),
                format!(
                    "saved architecture {:?} differs from the expected {expected:?}",
                    vae.config()
                ),
            ));
        }
        Ok(vae)
    }

    fn check_images(&self, x: &Tensor) -> Result<()> {
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

    fn check_latent(&self, z: &Tensor) -> Result<()> {
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

    fn encode_unchecked(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
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

    fn decode_unchecked(&self, z: &Tensor) -> candle_core::Result<Tensor> {
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

    /// The loss terms ([`VaeLoss`]) of images `x` `[b, 1, s, s]` in [0, 1] with the
    /// reparameterisation noise `eps` `[b, k]` (draw it with [`standard_normal`]).
    ///
    /// # Errors
    /// [`Error::Shape`] for wrong shapes; [`Error::Candle`] otherwise.
    pub fn loss(&self, x: &Tensor, eps: &Tensor) -> Result<VaeLoss> {
        self.check_images(x)?;
        self.check_latent(eps)?;
        if eps.dim(0)? != x.dim(0)? {
            return Err(Error::Shape {
                expected: format!("noise for {} images", x.dim(0)?),
                got: format!("{:?}", eps.dims()),
            });
        }
        let (mu, logvar) = self.encode_unchecked(x)?;
        let z = (&mu + (logvar.affine(0.5, 0.0)?.exp()? * eps)?)?;
        let logits = self.decode_unchecked(&z)?;
        let b = x.dim(0)? as f64;
        // BCE with logits, stable form.
        let bce =
            ((logits.relu()? - (&logits * x)?)? + (logits.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
        let recon = (bce.sum_all()? / b)?;
        let kl_terms = ((logvar.exp()? + mu.sqr()?)? - (logvar + 1.0)?)?;
        let kl = (kl_terms.sum_all()? * (0.5 / b))?;
        Ok(VaeLoss {
            total: (&recon + &kl)?,
            recon,
            kl,
        })
    }

    /// Latent means of all images of `data`, row-major `[n, k]`, in dataset order.
    ///
    /// # Errors
    /// [`Error::Shape`] if the images are not `s x s`; [`Error::Candle`] otherwise.
    pub fn encode_means(&self, data: &Dataset, device: &Device) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(data.len() * self.cfg.latent_dim);
        for batch in data.batches(EVAL_BATCH, None)? {
            let (x, _) = batch.to_tensors(device)?;
            let (mu, _) = self.encode(&x)?;
            out.extend(mu.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    /// The mean ELBO terms over `data` (nats per image), one posterior sample per image
    /// with noise from `StdRng::seed_from_u64(seed)`: `(elbo, recon, kl)`, `elbo =
    /// -(recon + kl)`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty dataset; as [`Vae::loss`].
    pub fn elbo(&self, data: &Dataset, seed: u64, device: &Device) -> Result<(f64, f64, f64)> {
        if data.is_empty() {
            return Err(invalid("data", "the dataset is empty"));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut recon, mut kl) = (0.0f64, 0.0f64);
        for batch in data.batches(EVAL_BATCH, None)? {
            let (x, _) = batch.to_tensors(device)?;
            let b = x.dim(0)?;
            let eps = standard_normal(&mut rng, b, self.cfg.latent_dim, device)?;
            let l = self.loss(&x, &eps)?;
            recon += f64::from(l.recon.to_scalar::<f32>()?) * b as f64;
            kl += f64::from(l.kl.to_scalar::<f32>()?) * b as f64;
        }
        let n = data.len() as f64;
        Ok((-(recon + kl) / n, recon / n, kl / n))
    }
}

/// `[rows, cols]` f32 draws from N(0, 1) taken from `rng` (candle's CPU RNG cannot be
/// seeded, so noise is drawn on the host and uploaded).
///
/// # Errors
/// [`Error::Candle`] if the tensor cannot be created.
pub fn standard_normal(
    rng: &mut StdRng,
    rows: usize,
    cols: usize,
    device: &Device,
) -> Result<Tensor> {
    let v: Vec<f32> = (0..rows * cols)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    Ok(Tensor::from_vec(v, (rows, cols), device)?)
}

/// How a [`Vae`] is trained.
///
/// Defaults: `epochs` 10, `batch_size` 64, `lr` 1e-3 (Adam, betas 0.9 / 0.999, no weight
/// decay), `seed` 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VaeTrainConfig {
    /// Passes over the training set (> 0).
    pub epochs: usize,
    /// Images per Adam step (> 0).
    pub batch_size: usize,
    /// Adam learning rate (finite, > 0).
    pub lr: f64,
    /// Seed of the shuffling and of the reparameterisation noise.
    pub seed: u64,
}

impl Default for VaeTrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 64,
            lr: 1e-3,
            seed: 0,
        }
    }
}

impl VaeTrainConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first offending field.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(invalid("epochs", "must be > 0"));
        }
        if self.batch_size == 0 {
            return Err(invalid("batch_size", "must be > 0"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(invalid(
                "lr",
                format!("must be finite and > 0, got {}", self.lr),
            ));
        }
        Ok(())
    }
}

/// What one training epoch achieved (nats per image); `epoch` counts from 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VaeEpoch {
    /// The epoch number, from 1.
    pub epoch: usize,
    /// Mean ELBO over the epoch's training batches (weights changing during the epoch).
    pub train_elbo: f64,
    /// Mean reconstruction term over the epoch.
    pub train_recon: f64,
    /// Mean KL term over the epoch.
    pub train_kl: f64,
    /// ELBO on the evaluation set after the epoch (one seeded sample per image), if one was
    /// given.
    pub test_elbo: Option<f64>,
    /// Wall-clock seconds of the epoch's training steps (evaluation excluded).
    pub seconds: f64,
}

/// The outcome of [`VaeTrainer::fit`].
#[derive(Debug, Clone)]
pub struct VaeReport {
    /// One record per completed epoch.
    pub history: Vec<VaeEpoch>,
    /// The final state: `iteration` = completed epochs, `cost` = last negative train ELBO.
    pub state: IterState,
}

/// Trains a [`Vae`] with Adam on the negative ELBO; one [`Monitor`] iteration per epoch.
#[derive(Debug, Clone)]
pub struct VaeTrainer {
    cfg: VaeTrainConfig,
}

const SHUFFLE_STREAM: u64 = 0;
const NOISE_STREAM: u64 = 1;
const EVAL_STREAM: u64 = 2;

impl VaeTrainer {
    /// A trainer for `cfg` (validated).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an invalid `cfg`.
    pub fn new(cfg: VaeTrainConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self { cfg })
    }

    /// The configuration.
    pub fn config(&self) -> &VaeTrainConfig {
        &self.cfg
    }

    /// Trains `vae` (built by [`Vae::init`] over `varmap`) on the images of `train`, in an
    /// order and with noise fixed by `(seed, epoch)`; evaluates the ELBO on `test` after
    /// every epoch if given. Stop rules of `monitor` may end the run early.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty training set; [`Error::NonFiniteLoss`] naming
    /// the epoch and step; an observer's error; [`Error::Shape`] for images of the wrong
    /// size; candle's errors.
    pub fn fit(
        &self,
        vae: &Vae,
        varmap: &VarMap,
        train: &Dataset,
        test: Option<&Dataset>,
        monitor: &mut Monitor<'_, VaeEpoch>,
    ) -> Result<VaeReport> {
        let cfg = &self.cfg;
        if train.is_empty() {
            return Err(invalid("train", "the training set is empty"));
        }
        let device = vae.t[0].device().clone();
        let vars = varmap.all_vars();
        let mut opt = Adam::new(
            vars,
            AdamParams {
                lr: cfg.lr,
                ..Default::default()
            },
        )?;
        let mut state = IterState::new(cfg.epochs);
        let mut history = Vec::new();
        let mut reason = Termination::MaxIterations;
        for epoch in 0..cfg.epochs {
            let started = Instant::now();
            let mut noise = StdRng::seed_from_u64(derive_seed(cfg.seed, epoch, NOISE_STREAM));
            let (mut recon_sum, mut kl_sum, mut seen) = (0.0f64, 0.0f64, 0usize);
            let batches = train.batches(
                cfg.batch_size,
                Some(derive_seed(cfg.seed, epoch, SHUFFLE_STREAM)),
            )?;
            for (step, batch) in batches.enumerate() {
                let (x, _) = batch.to_tensors(&device)?;
                let b = x.dim(0)?;
                let eps = standard_normal(&mut noise, b, vae.cfg.latent_dim, &device)?;
                let l = vae.loss(&x, &eps)?;
                let total = f64::from(l.total.to_scalar::<f32>()?);
                if !total.is_finite() {
                    return Err(Error::NonFiniteLoss {
                        epoch: epoch + 1,
                        step: step + 1,
                        loss: total,
                    });
                }
                opt.backward_step(&l.total)?;
                recon_sum += f64::from(l.recon.to_scalar::<f32>()?) * b as f64;
                kl_sum += f64::from(l.kl.to_scalar::<f32>()?) * b as f64;
                seen += b;
            }
            let seconds = started.elapsed().as_secs_f64();
            let test_elbo = match test {
                Some(t) => Some(
                    vae.elbo(t, derive_seed(cfg.seed, epoch, EVAL_STREAM), &device)?
                        .0,
                ),
                None => None,
            };
            let n = seen.max(1) as f64;
            let record = VaeEpoch {
                epoch: epoch + 1,
                train_elbo: -(recon_sum + kl_sum) / n,
                train_recon: recon_sum / n,
                train_kl: kl_sum / n,
                test_elbo,
                seconds,
            };
            state.advance(Some(-record.train_elbo));
            if let Some(e) = test_elbo {
                state.set_metric("test_elbo", e);
            }
            history.push(record.clone());
            if let Some(r) = monitor.after_iteration(&state, &record)? {
                reason = r;
                break;
            }
        }
        let last = history.last().cloned();
        if let Some(last) = last {
            monitor.finish(&mut state, reason, &last)?;
        }
        Ok(VaeReport { history, state })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use netinv_core::testing::assert_close;
    use netinv_data::ndarray::Array3;

    /// `n` 8x8 images: a bright square whose position depends on the class (0..4).
    pub(crate) fn toy_dataset(n: usize) -> Dataset {
        let mut images = Array3::<f32>::zeros((n, 8, 8));
        let mut labels = Vec::new();
        for i in 0..n {
            let c = (i % 4) as u8;
            let (r0, c0) = (usize::from(c / 2) * 4, usize::from(c % 2) * 4);
            for r in 0..4 {
                for q in 0..4 {
                    images[[i, r0 + r, c0 + q]] = 0.9 - 0.1 * ((i / 4) % 3) as f32;
                }
            }
            labels.push(c);
        }
        Dataset::new(images, labels).unwrap()
    }

    fn small_cfg() -> VaeConfig {
        VaeConfig {
            latent_dim: 2,
            conv1_channels: 4,
            conv2_channels: 8,
            image_size: 8,
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
    fn upsample_gradient_is_the_sum_over_each_block() {
        let dev = Device::Cpu;
        let vals: Vec<f32> = (0..2 * 3 * 2 * 3).map(|i| i as f32 * 0.1 - 1.0).collect();
        let x = Var::from_vec(vals.clone(), (2, 3, 2, 3), &dev).unwrap();
        let wts: Vec<f32> = (0..2 * 3 * 4 * 6).map(|i| ((i * 7) % 11) as f32).collect();
        let w = Tensor::from_vec(wts.clone(), (2, 3, 4, 6), &dev).unwrap();
        let y = upsample2(x.as_tensor()).unwrap();
        // Forward equals the reshape + broadcast definition.
        let reference = x
            .as_tensor()
            .reshape((2, 3, 2, 1, 3, 1))
            .unwrap()
            .broadcast_as((2, 3, 2, 2, 3, 2))
            .unwrap()
            .reshape((2, 3, 4, 6))
            .unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            reference.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        let grads = (y * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let g = grads.get(x.as_tensor()).unwrap();
        let g = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for p in 0..6 {
            for i in 0..2 {
                for j in 0..3 {
                    let at = |r: usize, c: usize| wts[p * 24 + r * 6 + c];
                    let expected = at(2 * i, 2 * j)
                        + at(2 * i, 2 * j + 1)
                        + at(2 * i + 1, 2 * j)
                        + at(2 * i + 1, 2 * j + 1);
                    assert_eq!(g[p * 6 + i * 3 + j], expected);
                }
            }
        }
    }

    #[test]
    fn upsample_repeats_pixels() {
        let dev = Device::Cpu;
        let x = Tensor::new(&[[[[1f32, 2.], [3., 4.]]]], &dev).unwrap();
        let y = upsample2(&x).unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.]
        );
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
}
