//! The decoder a latent search inverts: [`LatentDecoder`], with impls for the VAEs of
//! netinv-models.

use candle_core::{Device, Tensor, Var};
use netinv_models::Vae;

use crate::error::invalid;
use crate::{Error, Result};

/// A generative model's decoder `D(z, c)`: latent codes (and, for a conditional model, a
/// class per code) to images in (0, 1). The latent search only needs this, so any
/// decoder (a VAE's, a GAN's generator) can be inverted.
pub trait LatentDecoder: Sync {
    /// Dimension k of the latent codes.
    fn latent_dim(&self) -> usize;

    /// Side s of the square images.
    fn image_size(&self) -> usize;

    /// Classes the decoder is conditioned on (0: unconditional).
    fn n_classes(&self) -> usize;

    /// Decoded images `[b, s * s]` (row-major pixels) in (0, 1) of latent codes `z`
    /// `[b, k]` (f32, possibly a tracked variable: the result must be differentiable in
    /// `z`), with `classes` one per row (each `< n_classes()`) for a conditional decoder,
    /// `None` for an unconditional one.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `classes` is given to an unconditional decoder, missing
    /// for a conditional one, or out of range; model and candle errors.
    fn decode(&self, z: &Tensor, classes: Option<&[u32]>) -> Result<Tensor>;

    /// One forward and backward pass of the latent search on `b` codes `z` (`[b, k]`
    /// row-major): decodes them, asks `data_gradient(images)` for `g = df/dx` of the data
    /// term (`[b, s * s]`), and returns the images and `J(z)^T g` (`[b, k]`, the gradient
    /// in z of `sum(D(z) * g)`). The default goes through candle's autograd on
    /// [`decode`](Self::decode); a decoder with a cheaper pullback overrides it.
    ///
    /// # Errors
    /// As [`decode`](Self::decode) and `data_gradient`.
    fn decode_and_pull(
        &self,
        z: &[f32],
        classes: Option<&[u32]>,
        data_gradient: &mut dyn FnMut(&[f32]) -> Result<Vec<f32>>,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let k = self.latent_dim();
        let zv = Var::from_vec(z.to_vec(), (z.len() / k, k), &Device::Cpu)?;
        let x = self.decode(zv.as_tensor(), classes)?;
        let images = x.flatten_all()?.to_vec1::<f32>()?;
        let g = Tensor::from_vec(data_gradient(&images)?, x.shape(), &Device::Cpu)?;
        let grads = (x * g)?.sum_all()?.backward()?;
        let dz = grads
            .get(zv.as_tensor())
            .ok_or_else(|| invalid("decoder", "the decoded images do not depend on z"))?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok((images, dz))
    }
}

/// [`LatentDecoder::decode_and_pull`] through [`Vae::decoder_pass`] (its own pullback).
fn vae_pass(
    vae: &Vae,
    z: &[f32],
    one_hot: Option<&Tensor>,
    data_gradient: &mut dyn FnMut(&[f32]) -> Result<Vec<f32>>,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let k = vae.latent_dim();
    let zt = Tensor::from_vec(z.to_vec(), (z.len() / k, k), &Device::Cpu)?;
    let pass = vae.decoder_pass(&zt, one_hot).map_err(Error::Models)?;
    let images = pass.images().flatten_all()?.to_vec1::<f32>()?;
    let g = Tensor::from_vec(data_gradient(&images)?, pass.images().shape(), &Device::Cpu)?;
    let dz = pass.pullback(&g).map_err(Error::Models)?;
    Ok((images, dz.flatten_all()?.to_vec1::<f32>()?))
}

/// An unconditional [`Vae`]'s decoder.
#[derive(Debug, Clone, Copy)]
pub struct UnconditionalVae<'a>(pub &'a Vae);

impl LatentDecoder for UnconditionalVae<'_> {
    fn latent_dim(&self) -> usize {
        self.0.config().latent_dim
    }

    fn image_size(&self) -> usize {
        self.0.config().image_size
    }

    fn n_classes(&self) -> usize {
        0
    }

    fn decode(&self, z: &Tensor, classes: Option<&[u32]>) -> Result<Tensor> {
        if classes.is_some() {
            return Err(invalid(
                "classes",
                "an unconditional decoder takes no classes",
            ));
        }
        let images = self.0.decode(z).map_err(Error::Models)?;
        Ok(images.flatten_from(1)?)
    }

    fn decode_and_pull(
        &self,
        z: &[f32],
        classes: Option<&[u32]>,
        data_gradient: &mut dyn FnMut(&[f32]) -> Result<Vec<f32>>,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        if classes.is_some() {
            return Err(invalid(
                "classes",
                "an unconditional decoder takes no classes",
            ));
        }
        vae_pass(self.0, z, None, data_gradient)
    }
}

/// A conditional [`Vae`]'s decoder (`Vae::decode_conditional` with one-hot classes).
#[derive(Debug, Clone, Copy)]
pub struct ConditionalVae<'a>(pub &'a Vae);

impl LatentDecoder for ConditionalVae<'_> {
    fn latent_dim(&self) -> usize {
        self.0.latent_dim()
    }

    fn image_size(&self) -> usize {
        self.0.config().image_size
    }

    fn n_classes(&self) -> usize {
        self.0.n_classes()
    }

    fn decode(&self, z: &Tensor, classes: Option<&[u32]>) -> Result<Tensor> {
        let classes = classes
            .ok_or_else(|| invalid("classes", "a conditional decoder needs a class per code"))?;
        let one_hot = self.0.one_hot(classes, z.device()).map_err(Error::Models)?;
        let images = self
            .0
            .decode_conditional(z, &one_hot)
            .map_err(Error::Models)?;
        Ok(images.flatten_from(1)?)
    }

    fn decode_and_pull(
        &self,
        z: &[f32],
        classes: Option<&[u32]>,
        data_gradient: &mut dyn FnMut(&[f32]) -> Result<Vec<f32>>,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let classes = classes
            .ok_or_else(|| invalid("classes", "a conditional decoder needs a class per code"))?;
        let one_hot = self
            .0
            .one_hot(classes, &Device::Cpu)
            .map_err(Error::Models)?;
        vae_pass(self.0, z, Some(&one_hot), data_gradient)
    }
}
