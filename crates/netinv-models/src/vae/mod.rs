//! A small convolutional variational auto-encoder (Kingma & Welling, 2014) for square
//! one-channel images (28x28 digits by default): [`VaeConfig`] -> [`Vae`].
//!
//! ```text
//! encoder: x [b,1,s,s] -> conv3x3(1->c1) -> maxpool2+relu -> conv3x3(c1->c2) -> maxpool2+relu
//!          -> flatten [b, c2*(s/4)^2] -> linear -> mu [b,k],  linear -> logvar [b,k]
//! sample:  z = mu + exp(logvar / 2) * eps,   eps ~ N(0, I) from a seeded host RNG
//! decoder: z [b,k] -> linear -> relu -> [b,c2,s/4,s/4] -> upsample2 -> conv3x3(c2->c1) -> relu
//!          -> upsample2 -> conv3x3(c1->1) -> logits [b,1,s,s];  image = sigmoid(logits)
//!   (or, DecoderKind::Mlp: z -> linear(h) -> relu -> linear(s*s) -> logits)
//! ```
//!
//! A conditional VAE (`n_classes > 0`, Sohn et al. 2015) appends the one-hot label `[b, n]`
//! to the flattened encoder features (before the mu / logvar layers) and to z (before the
//! decoder's first layer); its methods are the `*_conditional` ones, and the trainer and
//! the ELBO take the labels from the dataset.
//!
//! The convolutions and poolings are netinv-models' custom CPU ops ([`crate::ops`]) (im2col + gemm, exact
//! max-pool gradient); upsampling is nearest-neighbour (a broadcast, whose backward is a sum).

mod checkpoint;
mod config;
mod loss;
mod model;
mod pass;
mod trainer;

pub use config::{DecoderKind, VaeConfig};
pub use loss::{standard_normal, VaeLoss};
pub use model::Vae;
pub use pass::DecoderPass;
pub use trainer::{VaeEpoch, VaeReport, VaeTrainConfig, VaeTrainer};

/// File name of the VAE weights inside a checkpoint folder.
pub const VAE_WEIGHTS_FILE: &str = "vae.safetensors";
/// File name of the VAE architecture ([`VaeConfig`]) inside a checkpoint folder.
pub const VAE_CONFIG_FILE: &str = "vae_config.json";

/// Batch size used when encoding or evaluating whole datasets (no effect on results).
const EVAL_BATCH: usize = 500;

#[cfg(test)]
mod cond_tests;
#[cfg(test)]
mod tests;
