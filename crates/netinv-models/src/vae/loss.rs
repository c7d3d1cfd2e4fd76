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
