//! Seeded, PyTorch-style initialisation of a [`Classifier`](crate::Classifier)'s tensors.
//!
//! candle's CPU RNG cannot be seeded, so every value is drawn from a host
//! `StdRng::seed_from_u64(seed)` and uploaded with `Tensor::from_vec`: the same seed gives
//! bit-identical weights on every machine and thread count.

use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{ClassifierConfig, Error, Result};

/// `n` values from `U(-bound, bound)` drawn from `rng` (f32).
pub fn uniform(rng: &mut StdRng, n: usize, bound: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-bound..=bound)).collect()
}

/// The initial value of every tensor of `cfg`, in the order of
/// [`ClassifierConfig::tensor_shapes`], as PyTorch initialises `Conv2d`, `Linear` and
/// `BatchNorm2d`:
///
/// ```text
/// conv / linear weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
///     fan_in = in_channels * 3 * 3 (conv) or in_features (linear)
/// BatchNorm weight = 1, bias = 0, running_mean = 0, running_var = 1
/// ```
///
/// # Errors
/// [`Error::InvalidConfig`] if `cfg` is invalid; [`Error::Candle`] if a tensor cannot be
/// created on `device`.
pub fn initial_tensors(
    cfg: &ClassifierConfig,
    seed: u64,
    device: &Device,
) -> Result<Vec<(String, Tensor)>> {
    cfg.validate()?;
    let mut rng = StdRng::seed_from_u64(seed);
    let shapes = cfg.tensor_shapes();
    let mut out = Vec::with_capacity(shapes.len());
    // fan_in of the weight most recently drawn: its bias shares the bound.
    let mut fan_in = 1usize;
    for (name, shape) in shapes {
        let n: usize = shape.iter().product();
        let values = if name.starts_with("bns.") {
            let v = if name.ends_with(".weight") || name.ends_with(".running_var") {
                1.0
            } else {
                0.0
            };
            vec![v; n]
        } else {
            if name.ends_with(".weight") {
                fan_in = shape[1..].iter().product();
            }
            uniform(&mut rng, n, 1.0 / (fan_in as f32).sqrt())
        };
        out.push((name, Tensor::from_vec(values, shape, device)?));
    }
    Ok(out)
}

/// Fills `varmap` with [`initial_tensors`] as trainable variables (replacing existing
/// variables of the same name in place, so models built over `varmap` see the new values).
///
/// # Errors
/// As [`initial_tensors`]; [`Error::Shape`] if `varmap` already holds a variable of one of
/// these names with another shape.
pub fn init_varmap(
    cfg: &ClassifierConfig,
    varmap: &VarMap,
    seed: u64,
    device: &Device,
) -> Result<()> {
    let tensors = initial_tensors(cfg, seed, device)?;
    let mut data = varmap.data().lock().map_err(|_| Error::InvalidConfig {
        field: "varmap",
        reason: "the VarMap's lock is poisoned".into(),
    })?;
    for (name, t) in tensors {
        match data.get(&name) {
            Some(var) => {
                if var.shape() != t.shape() {
                    return Err(Error::Shape {
                        expected: format!("{name} {:?}", t.dims()),
                        got: format!("{:?} in the VarMap", var.dims()),
                    });
                }
                var.set(&t)?;
            }
            None => {
                data.insert(name, Var::from_tensor(&t)?);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_follow_fan_in_and_bn_constants() {
        let cfg = ClassifierConfig {
            batch_norm: true,
            ..Default::default()
        };
        let ts = initial_tensors(&cfg, 0, &Device::Cpu).unwrap();
        for (name, t) in &ts {
            let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
            let bound = match name.as_str() {
                n if n.starts_with("convs.0") => 1.0 / 3.0,
                n if n.starts_with("convs.1") => 1.0 / 12.0,
                n if n.starts_with("fc1") => 1.0 / 1568f32.sqrt(),
                n if n.starts_with("fc2") => 1.0 / 128f32.sqrt(),
                "bns.0.weight" | "bns.1.weight" | "bns.0.running_var" | "bns.1.running_var" => {
                    assert!(v.iter().all(|&x| x == 1.0), "{name}");
                    continue;
                }
                _ => {
                    assert!(v.iter().all(|&x| x == 0.0), "{name}");
                    continue;
                }
            };
            assert!(
                max <= bound && max > 0.8 * bound,
                "{name}: max {max}, bound {bound}"
            );
        }
    }

    #[test]
    fn init_varmap_overwrites_in_place_and_checks_shapes() {
        let cfg = ClassifierConfig::netinv_small();
        let vm = VarMap::new();
        init_varmap(&cfg, &vm, 1, &Device::Cpu).unwrap();
        let var = vm.data().lock().unwrap()["fc2.bias"].clone();
        let old = var.to_vec1::<f32>().unwrap();
        init_varmap(&cfg, &vm, 2, &Device::Cpu).unwrap();
        // The same variable now holds the values of seed 2.
        let new = var.to_vec1::<f32>().unwrap();
        assert_ne!(old, new);
        assert_eq!(
            new,
            vm.data().lock().unwrap()["fc2.bias"]
                .to_vec1::<f32>()
                .unwrap()
        );
        let other = ClassifierConfig { hidden: 64, ..cfg };
        assert!(matches!(
            init_varmap(&other, &vm, 1, &Device::Cpu),
            Err(Error::Shape { .. })
        ));
    }
}
