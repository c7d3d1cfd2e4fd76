//! The VAE's loss (the negative ELBO) and its evaluation over a data set.

use candle_core::{Device, Tensor};
use netinv_data::Dataset;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::{Vae, EVAL_BATCH};
use crate::error::invalid;
use crate::{Error, Result};

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

impl Vae {
    /// The loss terms ([`VaeLoss`]) of images `x` `[b, 1, s, s]` in [0, 1] with the
    /// reparameterisation noise `eps` `[b, k]` (draw it with [`standard_normal`])
    /// (unconditional VAE).
    ///
    /// # Errors
    /// [`Error::Shape`] for wrong shapes; [`Error::InvalidConfig`] for a conditional VAE;
    /// [`Error::Candle`] otherwise.
    pub fn loss(&self, x: &Tensor, eps: &Tensor) -> Result<VaeLoss> {
        self.checked_loss(x, None, eps)
    }

    /// The loss terms ([`VaeLoss`]) of images `x` `[b, 1, s, s]` in [0, 1] with their
    /// labels `one_hot` `[b, n_classes]` (see [`Vae::one_hot`]) and the reparameterisation
    /// noise `eps` `[b, k]`: the negative conditional ELBO of `log p(x | c)` (conditional
    /// VAE).
    ///
    /// # Errors
    /// [`Error::Shape`] for wrong shapes; [`Error::InvalidConfig`] for an unconditional VAE;
    /// [`Error::Candle`] otherwise.
    pub fn loss_conditional(&self, x: &Tensor, one_hot: &Tensor, eps: &Tensor) -> Result<VaeLoss> {
        self.checked_loss(x, Some(one_hot), eps)
    }

    /// The loss of a batch with labels `one_hot` for a conditional VAE (ignored otherwise):
    /// what training and evaluation over a labelled dataset use.
    pub(super) fn batch_loss(&self, x: &Tensor, labels: &Tensor, eps: &Tensor) -> Result<VaeLoss> {
        if self.cfg.is_conditional() {
            let labels: Vec<u32> = labels.to_vec1()?;
            let one_hot = self.one_hot(&labels, x.device())?;
            self.loss_conditional(x, &one_hot, eps)
        } else {
            self.loss(x, eps)
        }
    }

    fn checked_loss(&self, x: &Tensor, one_hot: Option<&Tensor>, eps: &Tensor) -> Result<VaeLoss> {
        self.check_images(x)?;
        self.check_latent(eps)?;
        if eps.dim(0)? != x.dim(0)? {
            return Err(Error::Shape {
                expected: format!("noise for {} images", x.dim(0)?),
                got: format!("{:?}", eps.dims()),
            });
        }
        self.check_condition(one_hot, x.dim(0)?)?;
        let (mu, logvar) = self.encode_unchecked(x, one_hot)?;
        let z = (&mu + (logvar.affine(0.5, 0.0)?.exp()? * eps)?)?;
        let logits = self.decode_unchecked(&z, one_hot)?;
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

    /// Latent means of all images of `data`, row-major `[n, k]`, in dataset order (a
    /// conditional VAE encodes each image with its label from `data`).
    ///
    /// # Errors
    /// [`Error::Shape`] if the images are not `s x s`; [`Error::InvalidConfig`] for a label
    /// `>= n_classes` of a conditional VAE; [`Error::Candle`] otherwise.
    pub fn encode_means(&self, data: &Dataset, device: &Device) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(data.len() * self.cfg.latent_dim);
        for batch in data.batches(EVAL_BATCH, None)? {
            let (x, labels) = batch.to_tensors(device)?;
            let (mu, _) = if self.cfg.is_conditional() {
                let one_hot = self.one_hot(&labels.to_vec1::<u32>()?, device)?;
                self.encode_conditional(&x, &one_hot)?
            } else {
                self.encode(&x)?
            };
            out.extend(mu.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    /// The mean ELBO terms over `data` (nats per image), one posterior sample per image
    /// with noise from `StdRng::seed_from_u64(seed)`: `(elbo, recon, kl)`, `elbo =
    /// -(recon + kl)`. A conditional VAE is evaluated with each image's label from `data`
    /// (the conditional ELBO of `log p(x | c)`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty dataset or a label `>= n_classes` of a
    /// conditional VAE; as [`Vae::loss`].
    pub fn elbo(&self, data: &Dataset, seed: u64, device: &Device) -> Result<(f64, f64, f64)> {
        if data.is_empty() {
            return Err(invalid("data", "the dataset is empty"));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut recon, mut kl) = (0.0f64, 0.0f64);
        for batch in data.batches(EVAL_BATCH, None)? {
            let (x, labels) = batch.to_tensors(device)?;
            let b = x.dim(0)?;
            let eps = standard_normal(&mut rng, b, self.cfg.latent_dim, device)?;
            let l = self.batch_loss(&x, &labels, &eps)?;
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
