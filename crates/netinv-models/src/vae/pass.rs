//! A decoder forward pass kept for its pullback ([`DecoderPass`]): the gradient in z of
//! `sum(D(z) * g)` for any `g`, without building or walking candle's autograd graph.
//!
//! Latent searches (min_z f(D(z))) need, at every step, the images `x = D(z)` and then
//! `J(z)^T g` for the gradient `g = df/dx` computed from `x`. candle's backward pass also
//! computes the gradient of every frozen weight of a matrix product (its `Matmul` backward
//! has no "does not track" shortcut) and allocates a zero tensor per graph node: for the
//! MLP decoder the hand-written pullback below costs about 2.3 forward passes where the
//! autograd one costs about 5.5 (measured in GENPRIOR.md, "H1 measurements").

use candle_core::{Tensor, Var};

use super::model::{FC_W, OUT_W};
use super::{DecoderKind, Vae};
use crate::{Error, Result};

/// The images of one decoder forward pass and what their pullback needs; see
/// [`Vae::decoder_pass`].
#[derive(Debug, Clone)]
pub struct DecoderPass {
    images: Tensor,
    latent_dim: usize,
    how: Pullback,
}

#[derive(Debug, Clone)]
enum Pullback {
    /// MLP decoder: the hidden activations (after the relu) and the two weights.
    Mlp {
        hidden: Tensor,
        w_in: Tensor,
        w_out: Tensor,
    },
    /// Any other decoder: candle's backward pass from `z` (a variable) to the images.
    Graph { z: Var },
}

impl Vae {
    /// Decodes `z` `[b, k]` (with labels `one_hot` `[b, n_classes]` for a conditional VAE,
    /// `None` for an unconditional one) and keeps what [`DecoderPass::pullback`] needs.
    /// The images are those of [`Vae::decode`] / [`Vae::decode_conditional`] (the same
    /// bits); `z` need not be a variable (no gradient flows back into it: use the pullback).
    ///
    /// # Errors
    /// [`Error::Shape`] for a wrong shape or dtype of `z` or `one_hot`;
    /// [`Error::InvalidConfig`] for a label given to an unconditional VAE or missing for a
    /// conditional one; [`Error::Candle`] otherwise.
    pub fn decoder_pass(&self, z: &Tensor, one_hot: Option<&Tensor>) -> Result<DecoderPass> {
        self.check_latent(z)?;
        self.check_condition(one_hot, z.dim(0)?)?;
        let k = self.cfg.latent_dim;
        let one_hot = one_hot.map(Tensor::detach);
        match self.cfg.decoder {
            DecoderKind::Mlp => {
                let (w_in, w_out) = (self.t[FC_W].detach(), self.t[OUT_W].detach());
                let input = match &one_hot {
                    Some(c) => Tensor::cat(&[&z.detach(), c], 1)?,
                    None => z.detach(),
                };
                let hidden = input
                    .matmul(&w_in.t()?)?
                    .broadcast_add(&self.t[FC_W + 1].detach())?
                    .relu()?;
                let s = self.cfg.image_size;
                let logits = hidden
                    .matmul(&w_out.t()?)?
                    .broadcast_add(&self.t[OUT_W + 1].detach())?
                    .reshape((z.dim(0)?, 1, s, s))?;
                Ok(DecoderPass {
                    images: candle_nn::ops::sigmoid(&logits)?,
                    latent_dim: k,
                    how: Pullback::Mlp {
                        hidden,
                        w_in: w_in.narrow(1, 0, k)?.contiguous()?,
                        w_out,
                    },
                })
            }
            DecoderKind::Conv => {
                let z = Var::from_tensor(&z.detach())?;
                let logits = self.decode_unchecked(z.as_tensor(), one_hot.as_ref())?;
                Ok(DecoderPass {
                    images: candle_nn::ops::sigmoid(&logits)?,
                    latent_dim: k,
                    how: Pullback::Graph { z },
                })
            }
        }
    }
}

impl DecoderPass {
    /// The decoded images `[b, 1, s, s]` in (0, 1).
    pub fn images(&self) -> &Tensor {
        &self.images
    }

    /// `J(z)^T g` `[b, k]`: the gradient in z of `sum(images * g)` for `g` `[b, 1, s, s]`
    /// (f32), e.g. `g = df/dx` of a data term `f` evaluated at [`DecoderPass::images`].
    /// Rows are independent: row i depends only on `z[i]` and `g[i]`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `g` is not f32 of the images' shape; [`Error::Candle`] otherwise.
    pub fn pullback(&self, g: &Tensor) -> Result<Tensor> {
        if g.dims() != self.images.dims() || g.dtype() != self.images.dtype() {
            return Err(Error::Shape {
                expected: format!("f32 {:?} (the images' shape)", self.images.dims()),
                got: format!("{:?} {:?}", g.dtype(), g.dims()),
            });
        }
        let g = g.detach();
        match &self.how {
            Pullback::Mlp {
                hidden,
                w_in,
                w_out,
            } => {
                let x = self.images.flatten_from(1)?;
                // d sigmoid = x (1 - x); relu passes where its output is positive.
                let d_logits = ((&x * (1.0 - &x)?)? * g.flatten_from(1)?)?;
                let mask = hidden.gt(0f32)?.to_dtype(hidden.dtype())?;
                let d_hidden = (d_logits.matmul(w_out)? * mask)?;
                Ok(d_hidden.matmul(w_in)?)
            }
            Pullback::Graph { z } => {
                let loss = (&self.images * &g)?.sum_all()?;
                let grads = loss.backward()?;
                match grads.get(z.as_tensor()) {
                    Some(gz) => Ok(gz.detach()),
                    None => Ok(Tensor::zeros(
                        (self.images.dim(0)?, self.latent_dim),
                        g.dtype(),
                        g.device(),
                    )?),
                }
            }
        }
    }
}
