//! Checkpoints: `model.safetensors` (the tensors named by
//! [`ClassifierConfig::tensor_shapes`], f32) plus `config.json` (the
//! [`ClassifierConfig`]) in one folder, both written atomically.
//!
//! Loading checks the config, then every tensor's presence, dtype and shape against it, and
//! reports every problem by name (`missing tensor fc1.bias; fc2.weight: shape [10, 64],
//! expected [10, 128]; ...`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};

use crate::{Classifier, ClassifierConfig, Error, Result};

/// File name of the weights inside a checkpoint folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// File name of the architecture inside a checkpoint folder.
pub const CONFIG_FILE: &str = "config.json";

fn checkpoint_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The tensors of `cfg` held in `varmap`, detached, in the order of
/// [`ClassifierConfig::tensor_shapes`]; on a mismatch, every missing tensor and every
/// wrong shape or dtype, joined by `; `.
fn varmap_tensors(
    varmap: &VarMap,
    cfg: &ClassifierConfig,
) -> std::result::Result<Vec<(String, Tensor)>, String> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| "the VarMap's lock is poisoned".to_string())?;
    let mut problems = Vec::new();
    let mut tensors = Vec::new();
    for (name, shape) in cfg.tensor_shapes() {
        match data.get(&name) {
            None => problems.push(format!("missing tensor {name}")),
            Some(v) if v.dims() != shape.as_slice() => {
                problems.push(format!("{name}: shape {:?}, expected {shape:?}", v.dims()))
            }
            Some(v) if v.dtype() != DType::F32 => {
                problems.push(format!("{name}: dtype {:?}, expected F32", v.dtype()))
            }
            Some(v) => tensors.push((name, v.as_detached_tensor())),
        }
    }
    if problems.is_empty() {
        Ok(tensors)
    } else {
        Err(problems.join("; "))
    }
}

impl Classifier {
    /// A frozen copy of this trained net: its weights, taken from `varmap` (the VarMap it
    /// was built over), copied into plain tensors, so a backward pass reaches only the
    /// input. The result is the net [`load_frozen`] returns after [`save_checkpoint`], bit
    /// for bit, without a file; later training of `varmap` does not change it.
    ///
    /// # Errors
    /// [`Error::Shape`] naming every tensor of the config that `varmap` lacks or holds with
    /// another shape or dtype; [`Error::Candle`] if a copy fails.
    ///
    /// # Examples
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use netinv_models::{Classifier, ClassifierConfig};
    /// let varmap = candle_nn::VarMap::new();
    /// let net = Classifier::init(&ClassifierConfig::netinv_small(), &varmap, 0, &Device::Cpu)?;
    /// let frozen = net.freeze(&varmap)?;
    /// let x = Tensor::full(0.5f32, (1, 1, 28, 28), &Device::Cpu)?;
    /// let (a, b) = (net.forward(&x)?, frozen.forward(&x)?);
    /// assert_eq!(a.to_vec2::<f32>()?, b.to_vec2::<f32>()?);
    /// # Ok::<(), netinv_models::Error>(())
    /// ```
    pub fn freeze(&self, varmap: &VarMap) -> Result<Classifier> {
        let cfg = self.config();
        let tensors = varmap_tensors(varmap, cfg).map_err(|problems| Error::Shape {
            expected: "the tensors of the net's config in its VarMap".to_string(),
            got: problems,
        })?;
        let device = tensors
            .first()
            .map(|(_, t)| t.device().clone())
            .unwrap_or(Device::Cpu);
        let copies = tensors
            .into_iter()
            .map(|(name, t)| Ok((name, t.copy()?)))
            .collect::<Result<HashMap<String, Tensor>>>()?;
        Classifier::new(cfg, VarBuilder::from_tensors(copies, DType::F32, &device))
    }
}

/// Saves the tensors of `cfg` held in `varmap` to `dir/model.safetensors` and `cfg` to
/// `dir/config.json`, each atomically (a reader never sees a half-written file); `dir` is
/// created if missing. Other variables in `varmap` are not saved.
///
/// # Errors
/// [`Error::InvalidConfig`] for an invalid `cfg`; [`Error::Checkpoint`] naming every tensor
/// of `cfg` that `varmap` lacks or holds with another shape or dtype; [`Error::Core`] if
/// writing fails.
///
/// # Examples
/// ```
/// use candle_core::Device;
/// use netinv_models::{load_frozen, save_checkpoint, Classifier, ClassifierConfig};
/// let dir = tempfile::tempdir().unwrap();
/// let cfg = ClassifierConfig::netinv_small();
/// let varmap = candle_nn::VarMap::new();
/// Classifier::init(&cfg, &varmap, 0, &Device::Cpu)?;
/// save_checkpoint(dir.path(), &varmap, &cfg)?;
/// let frozen = load_frozen(dir.path(), &Device::Cpu)?;
/// assert_eq!(frozen.config(), &cfg);
/// # Ok::<(), netinv_models::Error>(())
/// ```
pub fn save_checkpoint(dir: &Path, varmap: &VarMap, cfg: &ClassifierConfig) -> Result<()> {
    cfg.validate()?;
    let weights = dir.join(WEIGHTS_FILE);
    let tensors = varmap_tensors(varmap, cfg).map_err(|problems| {
        checkpoint_error(
            &weights,
            format!("the VarMap does not match the config: {problems}"),
        )
    })?;
    let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), None)
        .map_err(|e| checkpoint_error(&weights, format!("cannot serialise: {e}")))?;
    netinv_core::atomic_write_bytes(&weights, &bytes)?;
    netinv_core::write_json(dir.join(CONFIG_FILE), cfg)?;
    Ok(())
}

/// A checkpoint read and checked against its config.
struct Checked {
    cfg: ClassifierConfig,
    tensors: HashMap<String, Tensor>,
}

/// Reads `dir/config.json` and `dir/model.safetensors` and checks that the file holds
/// exactly the tensors of the config, each f32 with the right shape.
fn read_checked(dir: &Path, device: &Device) -> Result<Checked> {
    let cfg_path = dir.join(CONFIG_FILE);
    let cfg: ClassifierConfig = serde_json::from_slice(&read(&cfg_path)?)
        .map_err(|e| checkpoint_error(&cfg_path, format!("not a valid ClassifierConfig: {e}")))?;
    cfg.validate()
        .map_err(|e| checkpoint_error(&cfg_path, e.to_string()))?;

    let weights: PathBuf = dir.join(WEIGHTS_FILE);
    let bytes = read(&weights)?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| checkpoint_error(&weights, format!("not a valid safetensors file: {e}")))?;
    let expected = cfg.tensor_shapes();
    let mut problems = Vec::new();
    for (name, shape) in &expected {
        match st.tensor(name) {
            Err(_) => problems.push(format!("missing tensor {name}")),
            Ok(view) => {
                if view.dtype() != safetensors::Dtype::F32 {
                    problems.push(format!("{name}: dtype {:?}, expected F32", view.dtype()));
                }
                if view.shape() != shape.as_slice() {
                    problems.push(format!(
                        "{name}: shape {:?}, expected {shape:?}",
                        view.shape()
                    ));
                }
            }
        }
    }
    let mut extra: Vec<String> = st
        .names()
        .into_iter()
        .filter(|n| !expected.iter().any(|(e, _)| e == *n))
        .map(str::to_string)
        .collect();
    extra.sort();
    problems.extend(extra.iter().map(|n| format!("unexpected tensor {n}")));
    if !problems.is_empty() {
        return Err(checkpoint_error(
            &weights,
            format!(
                "does not match {}: {}",
                cfg_path.display(),
                problems.join("; ")
            ),
        ));
    }
    let mut tensors = HashMap::with_capacity(expected.len());
    for (name, _) in expected {
        let view = st
            .tensor(&name)
            .map_err(|e| checkpoint_error(&weights, format!("{name}: {e}")))?;
        let t = candle_core::safetensors::Load::load(&view, device)?;
        tensors.insert(name, t);
    }
    Ok(Checked { cfg, tensors })
}

/// Loads a checkpoint folder as a frozen net: its weights are plain tensors, so a backward
/// pass computes gradients only for the input (what network inversion needs).
///
/// # Errors
/// [`Error::Io`] naming a missing or unreadable file; [`Error::Checkpoint`] for a config
/// that does not parse or validate, a corrupt safetensors file, or tensors that do not
/// match the config (every missing / unexpected tensor, wrong shape or dtype is named).
pub fn load_frozen(dir: &Path, device: &Device) -> Result<Classifier> {
    let Checked { cfg, tensors } = read_checked(dir, device)?;
    Classifier::new(&cfg, VarBuilder::from_tensors(tensors, DType::F32, device))
}

/// Loads a checkpoint folder into `varmap` to resume training, returning its config.
/// Variables of `varmap` with a checkpoint tensor's name are overwritten in place (a net
/// already built over `varmap` sees the loaded values); missing ones are created, so
/// `Classifier::new(&cfg, VarBuilder::from_varmap(varmap, ..))` can follow. New variables
/// go to the device of the variables already in `varmap` (the CPU if it is empty).
///
/// # Errors
/// As [`load_frozen`]; [`Error::Checkpoint`] if `varmap` holds a variable of a checkpoint
/// tensor's name with another shape.
pub fn load_into(dir: &Path, varmap: &mut VarMap) -> Result<ClassifierConfig> {
    let weights = dir.join(WEIGHTS_FILE);
    let mut data = varmap
        .data()
        .lock()
        .map_err(|_| checkpoint_error(&weights, "the VarMap's lock is poisoned"))?;
    let device = data
        .values()
        .next()
        .map(|v| v.device().clone())
        .unwrap_or(Device::Cpu);
    let Checked { cfg, tensors } = read_checked(dir, &device)?;
    let mismatched: Vec<String> = tensors
        .iter()
        .filter_map(|(name, t)| {
            let v = data.get(name)?;
            (v.dims() != t.dims()).then(|| {
                format!(
                    "{name}: VarMap has {:?}, checkpoint {:?}",
                    v.dims(),
                    t.dims()
                )
            })
        })
        .collect();
    if !mismatched.is_empty() {
        return Err(checkpoint_error(
            &weights,
            format!("does not fit the VarMap: {}", mismatched.join("; ")),
        ));
    }
    for (name, t) in tensors {
        match data.get(&name) {
            Some(v) => v.set(&t)?,
            None => {
                data.insert(name, Var::from_tensor(&t)?);
            }
        }
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits(net: &Classifier) -> Vec<f32> {
        let vals: Vec<f32> = (0..2 * 784)
            .map(|i| ((i * 31 % 97) as f32) / 97.0)
            .collect();
        let x = Tensor::from_vec(vals, (2, 1, 28, 28), &Device::Cpu).unwrap();
        net.forward(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    fn saved(cfg: &ClassifierConfig, seed: u64) -> (tempfile::TempDir, VarMap, Classifier) {
        let dir = tempfile::tempdir().unwrap();
        let vm = VarMap::new();
        let net = Classifier::init(cfg, &vm, seed, &Device::Cpu).unwrap();
        save_checkpoint(dir.path(), &vm, cfg).unwrap();
        (dir, vm, net)
    }

    #[test]
    fn freeze_in_memory_equals_save_and_load_bit_for_bit() {
        use crate::train::{TrainConfig, Trainer};
        let data = netinv_data::Mnist::embedded().unwrap().train().take(64);
        for bn in [false, true] {
            let cfg = ClassifierConfig {
                conv_channels: vec![4, 8],
                hidden: 16,
                batch_norm: bn,
                ..Default::default()
            };
            let vm = VarMap::new();
            let net = Classifier::init(&cfg, &vm, 11, &Device::Cpu).unwrap();
            let train = |epochs| {
                let t = TrainConfig {
                    epochs,
                    batch_size: 32,
                    ..TrainConfig::sgd()
                };
                Trainer::new(t)
                    .unwrap()
                    .fit(&net, &vm, &data, None, &mut netinv_core::Monitor::new())
                    .unwrap();
            };
            // Trained weights (and BN running statistics) differ from the initial ones.
            let initial = logits(&net);
            train(1);
            assert_ne!(logits(&net), initial);
            let frozen = net.freeze(&vm).unwrap();
            let dir = tempfile::tempdir().unwrap();
            save_checkpoint(dir.path(), &vm, &cfg).unwrap();
            let loaded = load_frozen(dir.path(), &Device::Cpu).unwrap();
            let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
            assert_eq!(bits(logits(&frozen)), bits(logits(&loaded)), "bn {bn}");
            assert_eq!(bits(logits(&frozen)), bits(logits(&net)), "bn {bn}");
            // Frozen: no gradient reaches a weight, and more training leaves it unchanged.
            let before = logits(&frozen);
            train(1);
            assert_ne!(logits(&net), before);
            assert_eq!(logits(&frozen), before);
        }
        // A VarMap that does not hold the net's tensors is a clear error.
        let other = VarMap::new();
        let net = Classifier::init(
            &ClassifierConfig::default(),
            &VarMap::new(),
            0,
            &Device::Cpu,
        )
        .unwrap();
        match net.freeze(&other) {
            Err(Error::Shape { got, .. }) => assert!(got.contains("missing tensor"), "{got}"),
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn round_trip_frozen_and_resume_give_same_logits() {
        for bn in [false, true] {
            let cfg = ClassifierConfig {
                batch_norm: bn,
                ..Default::default()
            };
            let (dir, _, net) = saved(&cfg, 11);
            let frozen = load_frozen(dir.path(), &Device::Cpu).unwrap();
            assert_eq!(logits(&net), logits(&frozen));
            // Resume into a net built over another seed: it must see the loaded values.
            let mut vm = VarMap::new();
            let other = Classifier::init(&cfg, &vm, 12, &Device::Cpu).unwrap();
            assert_ne!(logits(&net), logits(&other));
            assert_eq!(load_into(dir.path(), &mut vm).unwrap(), cfg);
            assert_eq!(logits(&net), logits(&other));
            // Resume into an empty VarMap, then build.
            let mut vm = VarMap::new();
            let cfg2 = load_into(dir.path(), &mut vm).unwrap();
            let built = Classifier::new(
                &cfg2,
                VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
            )
            .unwrap();
            assert_eq!(logits(&net), logits(&built));
        }
    }

    #[test]
    fn frozen_weights_get_no_gradient() {
        let (dir, _, _) = saved(&ClassifierConfig::netinv_small(), 1);
        let net = load_frozen(dir.path(), &Device::Cpu).unwrap();
        let x = Var::zeros((1, 1, 28, 28), DType::F32, &Device::Cpu).unwrap();
        let grads = net
            .forward(x.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(grads.get(x.as_tensor()).is_some());
        let weights = net.weight_tensors();
        assert_eq!(weights.len(), 8);
        for w in &weights {
            assert!(grads.get(w).is_none());
        }
    }

    #[test]
    fn missing_files_are_io_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        match load_frozen(dir.path(), &Device::Cpu) {
            Err(Error::Io { path, .. }) => assert!(path.ends_with(CONFIG_FILE)),
            other => panic!("expected Io, got {other:?}"),
        }
        let (dir, _, _) = saved(&ClassifierConfig::netinv_small(), 1);
        std::fs::remove_file(dir.path().join(WEIGHTS_FILE)).unwrap();
        match load_frozen(dir.path(), &Device::Cpu) {
            Err(Error::Io { path, .. }) => assert!(path.ends_with(WEIGHTS_FILE)),
            other => panic!("expected Io, got {other:?}"),
        }
    }

    #[test]
    fn corrupt_files_are_clear_errors() {
        let (dir, _, _) = saved(&ClassifierConfig::netinv_small(), 1);
        let path = dir.path().join(WEIGHTS_FILE);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = load_frozen(dir.path(), &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid safetensors file"), "{err}");
        std::fs::write(dir.path().join(CONFIG_FILE), "{\"hidden\": \"many\"}").unwrap();
        let err = load_frozen(dir.path(), &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid ClassifierConfig"), "{err}");
        std::fs::write(dir.path().join(CONFIG_FILE), "{\"hidden\": 0}").unwrap();
        let err = load_frozen(dir.path(), &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("hidden"), "{err}");
    }

    #[test]
    fn mismatched_config_names_every_problem() {
        let (dir, _, _) = saved(&ClassifierConfig::netinv_small(), 1);
        let other = ClassifierConfig {
            hidden: 64,
            batch_norm: true,
            ..Default::default()
        };
        netinv_core::write_json(dir.path().join(CONFIG_FILE), &other).unwrap();
        let err = load_frozen(dir.path(), &Device::Cpu)
            .unwrap_err()
            .to_string();
        for needle in [
            "missing tensor bns.0.running_mean",
            "fc1.weight: shape [128, 1568], expected [64, 1568]",
            "fc2.weight: shape [10, 128], expected [10, 64]",
        ] {
            assert!(err.contains(needle), "{needle} not in {err}");
        }
        // A net without BN loaded with a BN-free config but a BN file: unexpected tensors.
        let (dir, _, _) = saved(
            &ClassifierConfig {
                batch_norm: true,
                ..Default::default()
            },
            1,
        );
        netinv_core::write_json(
            dir.path().join(CONFIG_FILE),
            &ClassifierConfig::netinv_small(),
        )
        .unwrap();
        let err = load_frozen(dir.path(), &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unexpected tensor bns.0.bias"), "{err}");
    }

    #[test]
    fn wrong_dtype_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ClassifierConfig::netinv_small();
        let ts = crate::init::initial_tensors(&cfg, 0, &Device::Cpu).unwrap();
        let ts: Vec<(String, Tensor)> = ts
            .into_iter()
            .map(|(n, t)| {
                if n == "fc2.bias" {
                    (n, t.to_dtype(DType::F64).unwrap())
                } else {
                    (n, t)
                }
            })
            .collect();
        let bytes = safetensors::serialize(ts.iter().map(|(n, t)| (n.as_str(), t)), None).unwrap();
        std::fs::write(dir.path().join(WEIGHTS_FILE), bytes).unwrap();
        netinv_core::write_json(dir.path().join(CONFIG_FILE), &cfg).unwrap();
        let err = load_frozen(dir.path(), &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("fc2.bias: dtype F64, expected F32"), "{err}");
    }

    #[test]
    fn saving_a_mismatched_varmap_fails() {
        let vm = VarMap::new();
        Classifier::init(&ClassifierConfig::netinv_small(), &vm, 0, &Device::Cpu).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let other = ClassifierConfig {
            outputs: 3,
            ..Default::default()
        };
        let err = save_checkpoint(dir.path(), &vm, &other)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("fc2.weight: shape [10, 128], expected [3, 128]"),
            "{err}"
        );
        assert!(!dir.path().join(WEIGHTS_FILE).exists());
    }
}
