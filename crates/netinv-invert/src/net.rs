//! The network side of an inversion: what the engine needs from a frozen model.

use candle_core::Tensor;

use crate::engine::argmax;
use crate::{BnLayerStats, Result};
use netinv_models::train::softmax_rows;

/// A frozen network that can be inverted: eval-mode forward passes that are differentiable
/// with respect to the input (the weights are constants, so no gradient is kept for them).
pub trait InvertibleNet {
    /// The input shape `(channels, height, width)` of one image.
    fn input_dims(&self) -> (usize, usize, usize);

    /// The number of outputs (classes for a classifier).
    fn outputs(&self) -> usize;

    /// Eval-mode output `[b, outputs]` for `x` `[b, channels, height, width]`.
    ///
    /// # Errors
    /// Shape or candle errors.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// Whether the network has BatchNorm layers (needed by [`crate::BnStatsPrior`]).
    fn has_batch_norm(&self) -> bool {
        false
    }

    /// Eval-mode output plus the statistics of every BatchNorm layer's input; the default
    /// returns no statistics.
    ///
    /// # Errors
    /// Shape or candle errors.
    fn forward_with_bn_stats(&self, x: &Tensor) -> Result<(Tensor, Vec<BnLayerStats>)> {
        Ok((self.forward(x)?, Vec::new()))
    }

    /// As [`InvertibleNet::forward_with_bn_stats`], with the statistics of every image
    /// taken over its own height and width (`batch_mean` / `batch_var` of shape `[b, C]`);
    /// the default returns no statistics.
    ///
    /// # Errors
    /// Shape or candle errors.
    fn forward_with_image_bn_stats(&self, x: &Tensor) -> Result<(Tensor, Vec<BnLayerStats>)> {
        Ok((self.forward(x)?, Vec::new()))
    }

    /// The softmax probabilities `[b][outputs]` of the eval-mode output for `x`, on the
    /// host (accumulated in f64).
    ///
    /// # Errors
    /// Shape or candle errors of the forward pass.
    fn probabilities(&self, x: &Tensor) -> Result<Vec<Vec<f32>>> {
        Ok(softmax_rows(&self.forward(x)?)?)
    }

    /// The class of largest output (the first one on ties) for every image of `x`.
    ///
    /// # Errors
    /// Shape or candle errors of the forward pass.
    fn predict(&self, x: &Tensor) -> Result<Vec<u32>> {
        Ok(self
            .probabilities(x)?
            .iter()
            .map(|p| argmax(p) as u32)
            .collect())
    }
}

impl InvertibleNet for netinv_models::Classifier {
    fn input_dims(&self) -> (usize, usize, usize) {
        let c = self.config();
        (c.in_channels, c.image_size, c.image_size)
    }

    fn outputs(&self) -> usize {
        self.config().outputs
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(netinv_models::Classifier::forward(self, x)?)
    }

    fn has_batch_norm(&self) -> bool {
        self.config().batch_norm
    }

    fn forward_with_bn_stats(&self, x: &Tensor) -> Result<(Tensor, Vec<BnLayerStats>)> {
        let (logits, stats) = netinv_models::Classifier::forward_with_bn_stats(self, x)?;
        Ok((logits, layer_stats(stats)))
    }

    fn forward_with_image_bn_stats(&self, x: &Tensor) -> Result<(Tensor, Vec<BnLayerStats>)> {
        let (logits, stats) = netinv_models::Classifier::forward_with_image_bn_stats(self, x)?;
        Ok((logits, layer_stats(stats)))
    }
}

/// The models crate's statistics as the prior's input.
fn layer_stats(stats: Vec<netinv_models::BnStats>) -> Vec<BnLayerStats> {
    stats
        .into_iter()
        .map(|s| BnLayerStats {
            batch_mean: s.batch_mean,
            batch_var: s.batch_var,
            running_mean: s.running_mean,
            running_var: s.running_var,
        })
        .collect()
}
