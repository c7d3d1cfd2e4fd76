//! Custom candle CPU ops for the hot layers: 2-d convolution (im2col + `gemm`), 2x2
//! max-pooling, per-row mean / variance (the BatchNorm statistics) and nearest-neighbour
//! 2x upsampling (the VAE's decoder), with hand-written backward passes.
//!
//! Why: on CPU, candle 0.11's own `conv2d` backward computes grad-input through a direct
//! `conv_transpose2d` loop and computes gradients for every argument (also frozen weights
//! and the data input), and its `max_pool2d` backward returns 1/(k*k) of the right gradient.
//! These ops
//! - run the convolution as `im2col` followed by one matrix product per image with the
//!   `gemm` crate (the one candle itself uses for `matmul`);
//! - compute grad-input as `col2im(W^T x grad)` and grad-kernel as `grad x im2col(x)^T`,
//!   each only when that argument takes part in the graph (`track_op()`): a frozen net
//!   loaded as plain tensors costs no weight gradients, and the data input of the first
//!   layer costs no input gradient during training;
//! - route the max-pool gradient to the first maximum of each window, as PyTorch does.
//!
//! All ops accept f32 and f64 (f64 serves the gradient checks) on the CPU and run
//! single-threaded per call; results do not depend on the number of threads.

mod conv;
mod moments;
mod pool;
mod upsample;

pub use conv::{conv2d, conv2d_bias};
pub use moments::{plane_moments, row_moments};
pub use pool::{max_pool2x2, max_pool2x2_relu};
pub use upsample::upsample2;

/// Element types of the custom ops (f32 and f64).
pub(crate) trait Elem:
    Copy
    + Default
    + PartialOrd
    + std::ops::AddAssign
    + std::ops::Add<Output = Self>
    + std::ops::Mul<Output = Self>
    + Send
    + Sync
    + 'static
{
    /// The multiplicative identity.
    const ONE: Self;
    fn is_nan(self) -> bool;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
}

impl Elem for f32 {
    const ONE: Self = 1.0;
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Elem for f64 {
    const ONE: Self = 1.0;
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// The contiguous data of a CPU tensor argument as a slice.
fn contiguous<'a, T>(
    data: &'a [T],
    layout: &candle_core::Layout,
    op: &str,
) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: arguments must be contiguous"),
    }
}
