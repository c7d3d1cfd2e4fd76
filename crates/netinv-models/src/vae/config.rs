//! The VAE's architecture: [`VaeConfig`] and the decoder kinds ([`DecoderKind`]).

use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::Result;

/// Which decoder a [`crate::Vae`] has (the encoder is the same convolutional one for both).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecoderKind {
    /// `z -> linear -> relu -> [c2, s/4, s/4] -> upsample2 -> conv3x3(c2->c1) -> relu ->
    /// upsample2 -> conv3x3(c1->1)`: the original decoder (the default).
    #[default]
    Conv,
    /// `z -> linear(mlp_hidden) -> relu -> linear(s*s)`: pure matrix products, several times
    /// cheaper per decoded image than [`DecoderKind::Conv`] (latent searches through the
    /// decoder run thousands of decodes per image).
    Mlp,
}

/// The architecture of a [`crate::Vae`].
///
/// Defaults: `latent_dim` 16, `conv1_channels` 16, `conv2_channels` 32, `image_size` 28,
/// `n_classes` 0 (unconditional), `decoder` [`DecoderKind::Conv`], `mlp_hidden` 512.
/// Fields at their default are left out of the JSON form, so the configuration of an
/// unconditional convolutional VAE serialises exactly as before these fields existed, and
/// older `vae_config.json` files (without them) load as that VAE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VaeConfig {
    /// Dimension k of the latent space (> 0).
    pub latent_dim: usize,
    /// Channels of the first encoder convolution (and of the last hidden decoder layer of the
    /// convolutional decoder), > 0.
    pub conv1_channels: usize,
    /// Channels of the second encoder convolution (and of the convolutional decoder's first
    /// feature map), > 0.
    pub conv2_channels: usize,
    /// Side s of the square one-channel images (a positive multiple of 4).
    pub image_size: usize,
    /// Number of classes the VAE is conditioned on: 0 for an unconditional VAE; n > 0 (at
    /// most 1,000) appends the one-hot label `[b, n]` to the encoder's flattened features
    /// (the input of the mu / logvar layers) and to z (the input of the decoder).
    #[serde(skip_serializing_if = "is_zero")]
    pub n_classes: usize,
    /// The decoder's kind.
    #[serde(skip_serializing_if = "is_conv")]
    pub decoder: DecoderKind,
    /// Hidden units of the [`DecoderKind::Mlp`] decoder (> 0; unused by the convolutional
    /// decoder).
    #[serde(skip_serializing_if = "is_default_hidden")]
    pub mlp_hidden: usize,
}

const DEFAULT_MLP_HIDDEN: usize = 512;
/// Upper bound on `n_classes` (a guard against a nonsense value allocating huge layers).
const MAX_CLASSES: usize = 1000;

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_conv(d: &DecoderKind) -> bool {
    *d == DecoderKind::Conv
}

fn is_default_hidden(h: &usize) -> bool {
    *h == DEFAULT_MLP_HIDDEN
}

impl Default for VaeConfig {
    fn default() -> Self {
        Self {
            latent_dim: 16,
            conv1_channels: 16,
            conv2_channels: 32,
            image_size: 28,
            n_classes: 0,
            decoder: DecoderKind::Conv,
            mlp_hidden: DEFAULT_MLP_HIDDEN,
        }
    }
}

impl VaeConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the first offending field: a zero
    /// `latent_dim` or channel count, an `image_size` that is zero or not a multiple of 4,
    /// `n_classes` above 1,000, a zero `mlp_hidden` for the MLP decoder.
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
        if self.n_classes > MAX_CLASSES {
            return Err(invalid(
                "n_classes",
                format!("must be at most {MAX_CLASSES}, got {}", self.n_classes),
            ));
        }
        if self.decoder == DecoderKind::Mlp && self.mlp_hidden == 0 {
            return Err(invalid("mlp_hidden", "must be > 0 for the MLP decoder"));
        }
        Ok(())
    }

    /// Length of the flattened encoder features, `c2 * (s/4)^2` (the one-hot label of a
    /// conditional VAE comes on top).
    pub fn flat_features(&self) -> usize {
        let q = self.image_size / 4;
        self.conv2_channels * q * q
    }

    /// Whether the VAE is conditioned on a class label (`n_classes > 0`).
    pub fn is_conditional(&self) -> bool {
        self.n_classes > 0
    }

    /// Name and shape of every tensor of the VAE, in a fixed order: the encoder's eight
    /// tensors, then the decoder's.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (c1, c2, k, f, n) = (
            self.conv1_channels,
            self.conv2_channels,
            self.latent_dim,
            self.flat_features(),
            self.n_classes,
        );
        let mut shapes = vec![
            ("enc.conv1.weight", vec![c1, 1, 3, 3]),
            ("enc.conv1.bias", vec![c1]),
            ("enc.conv2.weight", vec![c2, c1, 3, 3]),
            ("enc.conv2.bias", vec![c2]),
            ("enc.mu.weight", vec![k, f + n]),
            ("enc.mu.bias", vec![k]),
            ("enc.logvar.weight", vec![k, f + n]),
            ("enc.logvar.bias", vec![k]),
        ];
        match self.decoder {
            DecoderKind::Conv => shapes.extend([
                ("dec.fc.weight", vec![f, k + n]),
                ("dec.fc.bias", vec![f]),
                ("dec.conv1.weight", vec![c1, c2, 3, 3]),
                ("dec.conv1.bias", vec![c1]),
                ("dec.conv2.weight", vec![1, c1, 3, 3]),
                ("dec.conv2.bias", vec![1]),
            ]),
            DecoderKind::Mlp => {
                let (h, p) = (self.mlp_hidden, self.image_size * self.image_size);
                shapes.extend([
                    ("dec.hidden.weight", vec![h, k + n]),
                    ("dec.hidden.bias", vec![h]),
                    ("dec.out.weight", vec![p, h]),
                    ("dec.out.bias", vec![p]),
                ])
            }
        }
        shapes
            .into_iter()
            .map(|(name, shape)| (name.to_string(), shape))
            .collect()
    }
}
