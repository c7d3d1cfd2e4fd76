//! A class-specific generative prior for few-angle CT (issue 17): latent search through a
//! decoder, then data-consistency refinement.
//!
//! 1. [`LatentSearch`]: `min_z ||A D(z, c) - b||^2 + lambda ||z||^2` by Adam on the codes
//!    of every chain (digits x classes x starts) of a batch at once; the data term's
//!    gradient through the projector's adjoint, the decoder's through candle
//!    ([`LatentDecoder`]). With a conditional decoder and [`ClassChoice::Free`]
//!    (label-free: no label is passed, so none can be read) every class is searched and
//!    each digit keeps the class whose objective (misfit + latent prior term) is lowest;
//!    after `explore_steps` only the best `keep_classes` classes go on (successive
//!    halving). [`ClassChoice::Oracle`] searches the given class only (an upper bound).
//!    The ratio of the second-best to the best class objective is the fit's
//!    [`confidence`](LatentFit::confidence).
//! 2. [`DcRefinement`]: `min_x 0.5 ||A x - b||^2 + mu / 2 ||x - D(z*, c*)||^2 +
//!    lambda_tv TV(x)` on the box [0, 1] by PDHG from the decoded image; with `mu = 0` it
//!    is the TV baseline's run, bit for bit.
//!
//! ```
//! use candle_core::Device;
//! use candle_nn::VarMap;
//! use netinv_ct::generative::{ClassChoice, LatentSearch, LatentSearchConfig, UnconditionalVae};
//! use netinv_ct::scan_operator;
//! use netinv_models::{Vae, VaeConfig};
//! use netinv_tomo::{CsrOperator, LinearOperator};
//!
//! // an untrained VAE stands in for a trained one (netinv_models::Vae::load)
//! let vae = Vae::init(&VaeConfig { latent_dim: 4, conv1_channels: 2, conv2_channels: 4, ..Default::default() },
//!                     &VarMap::new(), 0, &Device::Cpu)?.frozen()?;
//! let op = CsrOperator::new(&scan_operator(28, 3)?);
//! let truth = ndarray::Array2::from_elem((28, 28), 0.3f32);
//! let sino = op.apply(truth.view());
//! let cfg = LatentSearchConfig { starts: 2, steps: 5, ..Default::default() };
//! let fits = LatentSearch::new(cfg)?.run(&UnconditionalVae(&vae), &op, &[sino.view()], ClassChoice::Free)?;
//! assert_eq!(fits[0].image.dim(), (28, 28));
//! assert!(fits[0].class.is_none() && fits[0].confidence.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod decoder;
mod refine;
mod search;

pub use config::{LatentSearchConfig, RefineConfig};
pub use decoder::{ConditionalVae, LatentDecoder, UnconditionalVae};
pub use refine::{refine_grid, DcRefinement};
pub use search::{LatentFit, LatentRun, LatentSearch};

/// Which classes a latent search tries for each digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassChoice<'a> {
    /// Label-free: every class of a conditional decoder (the class is chosen by the
    /// objective), or the one unconditional model. Carries no label.
    Free,
    /// The given class of each digit (an oracle upper bound; conditional decoders only).
    Oracle(&'a [u32]),
}

#[cfg(test)]
pub(crate) mod tests;
