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
//! All ops accept f32 and f64 (f64 serves the gradient checks) on the CPU. They split their
//! work over the images of the batch (groups of images whose number depends only on the
//! batch size, never on the thread count) and run the groups on candle's own CPU thread pool
//! (the one its element-wise ops use, sized by `RAYON_NUM_THREADS` / `CANDLE_NUM_THREADS`),
//! so no second pool competes for the cores. Sums over the batch (the kernel gradient) are
//! taken per group and the group sums added in group order: results are bit-identical at
//! every thread count.

mod conv;
mod conv_pool;
mod moments;
mod pool;
mod upsample;

pub use conv::{conv2d, conv2d_bias};
pub use conv_pool::{conv2d_bias_moments_relu_pool, conv2d_bias_relu_pool};
pub use moments::{plane_moments, row_moments};
pub use pool::{max_pool2x2, max_pool2x2_relu};
pub use upsample::upsample2;

/// Number of work groups the batch is split into (at most; fewer for small batches). Fixed,
/// so that sums over the batch do not depend on the number of threads.
const BATCH_GROUPS: usize = 8;

/// Images per work group for a batch of `b` images: `ceil(b / BATCH_GROUPS)`, at least 1.
fn images_per_group(b: usize) -> usize {
    b.div_ceil(BATCH_GROUPS).max(1)
}

/// Threads of candle's CPU pool (the calling thread included).
fn pool_threads() -> usize {
    candle_core::utils::barrier_pool().n_workers() + 1
}

/// Calls `f(i, item)` for every `item` of `items` (`i` its index), in parallel on candle's
/// CPU thread pool when it has more than one thread, else in order on this thread. Each item
/// is typically a disjoint `&mut` part of an output, so the result does not depend on which
/// thread ran which item.
fn par_each<X: Send>(items: Vec<X>, f: impl Fn(usize, X) + Sync) {
    if items.len() <= 1 || pool_threads() <= 1 {
        for (i, item) in items.into_iter().enumerate() {
            f(i, item);
        }
        return;
    }
    let slots: Vec<std::sync::Mutex<Option<X>>> = items
        .into_iter()
        .map(|x| std::sync::Mutex::new(Some(x)))
        .collect();
    candle_core::utils::barrier_pool().execute_chunked(slots.len(), |range| {
        for i in range {
            // Each index is handed out once, so the lock is never contended; a poisoned
            // lock (a panic in another item) still holds this item's value.
            let item = match slots[i].lock() {
                Ok(mut g) => g.take(),
                Err(poisoned) => poisoned.into_inner().take(),
            };
            if let Some(item) = item {
                f(i, item);
            }
        }
    });
}

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
