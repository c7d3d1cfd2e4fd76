//! Conversion to candle tensors (feature `candle`).

use candle_core::{Device, Tensor};
use ndarray::ArrayView3;

use crate::{Batch, Dataset};

/// Images `[n, h, w]` -> a `[n, 1, h, w]` f32 tensor, labels -> a `[n]` u32 tensor.
fn to_tensors(
    images: ArrayView3<'_, f32>,
    labels: &[u8],
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let (n, h, w) = images.dim();
    let images = images.as_standard_layout();
    let data = images
        .as_slice()
        .ok_or_else(|| candle_core::Error::Msg("images not contiguous".into()))?;
    let x = Tensor::from_slice(data, (n, 1, h, w), device)?;
    let y = Tensor::from_vec(
        labels.iter().map(|&l| u32::from(l)).collect::<Vec<u32>>(),
        n,
        device,
    )?;
    Ok((x, y))
}

impl Dataset {
    /// The dataset as candle tensors: images f32 `[n, 1, height, width]` in [0, 1] (one
    /// channel, NCHW) and labels u32 `[n]`.
    ///
    /// # Errors
    /// Candle's error if a tensor cannot be created on `device`.
    ///
    /// # Examples
    /// ```
    /// let mnist = netinv_data::Mnist::embedded().unwrap();
    /// let (x, y) = mnist.test().take(5).to_tensors(&candle_core::Device::Cpu).unwrap();
    /// assert_eq!(x.dims(), &[5, 1, 28, 28]);
    /// assert_eq!(y.dims(), &[5]);
    /// ```
    pub fn to_tensors(&self, device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
        to_tensors(self.images(), self.labels(), device)
    }
}

impl Batch {
    /// The batch as candle tensors: images f32 `[b, 1, height, width]` in [0, 1] and labels
    /// u32 `[b]`.
    ///
    /// # Errors
    /// Candle's error if a tensor cannot be created on `device`.
    pub fn to_tensors(&self, device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
        to_tensors(self.images.view(), &self.labels, device)
    }
}
