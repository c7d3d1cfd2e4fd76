//! The CNN classifiers: architecture ([`ClassifierConfig`] -> [`Classifier`]), seeded
//! PyTorch-style initialisation ([`init`]) and safetensors checkpoints
//! ([`save_checkpoint`], [`load_frozen`], [`load_into`], and [`Classifier::freeze`] for a
//! frozen copy without a file).

mod checkpoint;
pub mod init;
mod net;

pub use checkpoint::{load_frozen, load_into, save_checkpoint, CONFIG_FILE, WEIGHTS_FILE};
pub use net::{BnStats, Classifier, ClassifierConfig, BN_EPS, BN_MOMENTUM};
