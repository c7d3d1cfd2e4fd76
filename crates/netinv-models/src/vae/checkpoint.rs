//! VAE checkpoints: `vae.safetensors` (the tensors of [`VaeConfig::tensor_shapes`]) plus
//! `vae_config.json` in one folder, both written atomically.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::{Vae, VaeConfig, VAE_CONFIG_FILE, VAE_WEIGHTS_FILE};
use crate::{Error, Result};

fn checkpoint_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl Vae {
    /// A frozen VAE from plain tensors named as in [`VaeConfig::tensor_shapes`] (gradients
    /// flow to the inputs only).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an invalid `cfg`; [`Error::Shape`] listing every
    /// missing tensor and every tensor with a wrong shape or a dtype other than f32.
    pub fn from_tensors(cfg: &VaeConfig, tensors: &HashMap<String, Tensor>) -> Result<Self> {
        cfg.validate()?;
        let mut problems = Vec::new();
        let mut t = Vec::new();
        for (name, shape) in cfg.tensor_shapes() {
            match tensors.get(&name) {
                None => problems.push(format!("missing tensor {name}")),
                Some(x) if x.dims() != shape.as_slice() => {
                    problems.push(format!("{name}: shape {:?}, expected {shape:?}", x.dims()))
                }
                Some(x) if x.dtype() != DType::F32 => {
                    problems.push(format!("{name}: dtype {:?}, expected F32", x.dtype()))
                }
                Some(x) => t.push(x.detach()),
            }
        }
        if !problems.is_empty() {
            return Err(Error::Shape {
                expected: format!("the tensors of {cfg:?}"),
                got: problems.join("; "),
            });
        }
        Ok(Self {
            cfg: cfg.clone(),
            t,
        })
    }

    /// Saves the current weights to `dir/vae.safetensors` and the architecture to
    /// `dir/vae_config.json`, each atomically; `dir` is created if missing.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] if serialisation fails, [`Error::Core`] if writing does.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let weights = dir.join(VAE_WEIGHTS_FILE);
        let named: Vec<(String, Tensor)> = self
            .cfg
            .tensor_shapes()
            .into_iter()
            .zip(&self.t)
            .map(|((n, _), t)| (n, t.detach()))
            .collect();
        let bytes = safetensors::serialize(named.iter().map(|(n, t)| (n.as_str(), t)), None)
            .map_err(|e| checkpoint_error(&weights, format!("cannot serialise: {e}")))?;
        netinv_core::atomic_write_bytes(&weights, &bytes)?;
        netinv_core::write_json(dir.join(VAE_CONFIG_FILE), &self.cfg)?;
        Ok(())
    }

    /// Loads a frozen VAE saved by [`Vae::save`]: reads the architecture from
    /// `dir/vae_config.json`, then checks that `dir/vae.safetensors` holds every tensor it
    /// needs with the right shape.
    ///
    /// # Errors
    /// [`Error::Io`] for a missing file, [`Error::Checkpoint`] for a malformed config or
    /// weights file, or weights that do not match the config (naming each tensor).
    pub fn load(dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        // the allocator setting every network run profits from (page faults otherwise)
        netinv_core::retain_freed_memory_once();
        let dir = dir.as_ref();
        let cfg_path = dir.join(VAE_CONFIG_FILE);
        let text = std::fs::read(&cfg_path).map_err(|source| Error::Io {
            path: cfg_path.clone(),
            source,
        })?;
        let cfg: VaeConfig = serde_json::from_slice(&text)
            .map_err(|e| checkpoint_error(&cfg_path, format!("not a valid VaeConfig: {e}")))?;
        cfg.validate()
            .map_err(|e| checkpoint_error(&cfg_path, e.to_string()))?;
        let weights = dir.join(VAE_WEIGHTS_FILE);
        if !weights.exists() {
            return Err(Error::Io {
                path: weights,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let tensors = candle_core::safetensors::load(&weights, device)
            .map_err(|e| checkpoint_error(&weights, format!("cannot read: {e}")))?;
        Self::from_tensors(&cfg, &tensors).map_err(|e| match e {
            Error::Shape { got, .. } => {
                checkpoint_error(&weights, format!("does not match {VAE_CONFIG_FILE}: {got}"))
            }
            other => other,
        })
    }

    /// [`Vae::load`], then checks that the saved architecture is `expected`.
    ///
    /// # Errors
    /// As [`Vae::load`]; [`Error::Checkpoint`] naming both configurations when they differ.
    pub fn load_expecting(
        dir: impl AsRef<Path>,
        expected: &VaeConfig,
        device: &Device,
    ) -> Result<Self> {
        let dir = dir.as_ref();
        let vae = Self::load(dir, device)?;
        if vae.config() != expected {
            return Err(checkpoint_error(
                &dir.join(VAE_CONFIG_FILE),
                format!(
                    "saved architecture {:?} differs from the expected {expected:?}",
                    vae.config()
                ),
            ));
        }
        Ok(vae)
    }
}
