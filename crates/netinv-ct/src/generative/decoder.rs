//! The decoder a latent search inverts: [`LatentDecoder`], with impls for the VAEs of
//! netinv-models.

use candle_core::Tensor;
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
}
