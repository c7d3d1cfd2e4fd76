//! MNIST for netinv: strict IDX reading (raw or gzip), 10,000 real MNIST digits embedded
//! in the crate, and a [`Dataset`] type with seeded shuffling, batching and class subsets.
//! With the `candle` feature, datasets and batches convert to candle tensors; without it
//! the crate does not depend on candle.
//!
//! Conventions: images are f32 `[n, 28, 28]` (row-major, standard layout) with values in
//! [0, 1] (the MNIST bytes divided by 255); labels are u8 digit classes 0..=9; tensors are
//! NCHW `[n, 1, 28, 28]` f32 with u32 labels `[n]`. Every random step takes a seed.
//!
//! ```
//! use netinv_data::Mnist;
//!
//! // The embedded digits: 8,000 train and 2,000 test, all ten classes in both.
//! let mnist = Mnist::embedded()?;
//! let train = mnist.train();
//! assert_eq!(train.images().dim(), (8000, 28, 28));
//! assert_eq!(train.labels().len(), 8000);
//! assert!(train.class_counts().iter().all(|&c| c > 600));
//!
//! // Seeded batches: the same seed always gives the same order; the last batch may be short.
//! let mut seen = 0;
//! for batch in train.batches(64, Some(7))? {
//!     assert_eq!(batch.images.dim().0, batch.labels.len());
//!     seen += batch.len();
//! }
//! assert_eq!(seen, 8000);
//!
//! // The mean image of the sevens, [28, 28] in [0, 1].
//! let mean7 = train.class_mean(7)?;
//! assert!(mean7.iter().all(|&v| (0.0..=1.0).contains(&v)));
//! # Ok::<(), netinv_data::Error>(())
//! ```
//!
//! To use the full MNIST distribution instead, put the four standard files (raw or `.gz`)
//! in a directory and call [`Mnist::from_dir`]. The [`idx`] module reads and writes single
//! IDX files. Provenance and licences of the embedded digits: `DATA.md` in this crate.

#![warn(missing_docs)]

mod dataset;
mod error;
pub mod idx;
mod mnist;
#[cfg(feature = "candle")]
mod tensors;

/// The candle version of the tensors `to_tensors` returns (with the `candle` feature).
#[cfg(feature = "candle")]
pub use candle_core;
pub use dataset::{Batch, Batches, Dataset, NUM_CLASSES};
pub use error::{Error, Result};
pub use idx::Compression;
pub use mnist::{Mnist, FILE_NAMES, MNIST_SIDE};
pub use ndarray;
