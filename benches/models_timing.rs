//! One timing of netinv-small for `tools/perf/models_table.py`, which writes the CNN table of
//! docs/performance.md (netinv beside PyTorch, from one run).
//!
//! The script builds this binary once (`cargo bench --bench models_timing --no-run
//! --message-format=json`) and starts it as a separate process per measurement, with
//! `RAYON_NUM_THREADS` set (candle reads it once per process):
//!
//! ```text
//! RAYON_NUM_THREADS=2 models_timing --case train-epoch|train-step|invert-b10|invert-bn-b200 \
//!     [--repeats 5] [--steps 20]
//! {"case":"invert-bn-b200","threads":2,"cpu_s":[...],"wall_s":[...],"bits":"..."}
//! ```
//!
//! - `train-epoch`: one epoch of `train_classifier`'s defaults (SGD lr 0.05, momentum 0.9,
//!   cosine schedule, batch 64, 2-pixel shifts, seed 0) on the 8,000 embedded training
//!   digits, no evaluation; a repeat is one epoch from the same initial weights.
//! - `train-step`: as `benches/models.rs` `train-step` (batch 64, plain SGD lr 0.01);
//! - `invert-b10`: as `invert-step/netinv-small-b10` (frozen net, Adam on x, clamp);
//! - `invert-bn-b200`: as `invert-step/bn-netinv-small-b200` (frozen BN net, per-image BN
//!   statistics prior, backward to x).
//!
//! For the step cases a repeat is `--steps` steps (after 3 untimed warm-up steps) and the
//! figures are per step; `train-epoch` runs one untimed warm-up epoch first (as
//! `tools/perf/torch_models.py` does). Times: process CPU time (all threads) and wall time of each repeat.
//! `bits`: an FNV-1a hash of the result's f32 bits (the trained weights, the inverted images
//! or the image gradient after the last repeat), equal at every thread count when the
//! computation is bit-identical across thread counts.
//!
//! cargo passes `--bench` to bench executables; it is accepted and ignored.

#[path = "common/cpu_time.rs"]
#[allow(dead_code)] // `CpuTime` is for the criterion benches
mod cpu_time;

use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{ModuleT, VarBuilder, VarMap};
use cpu_time::process_cpu_seconds;
use netinv::core::Monitor;
use netinv::data::Mnist;
use netinv::invert::{BnStatsPrior, InvertibleNet};
use netinv::models::train::{TrainConfig, Trainer};
use netinv::models::{init::initial_tensors, Classifier, ClassifierConfig};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// FNV-1a over the f32 bits of every tensor, in order.
fn fnv(tensors: &[Tensor]) -> Result<String> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for t in tensors {
        for v in t.flatten_all()?.to_vec1::<f32>()? {
            for b in v.to_bits().to_le_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    Ok(format!("{h:016x}"))
}

fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random::<f32>()).collect()
}

/// A frozen net (plain tensors) with seeded weights.
fn frozen(batch_norm: bool) -> Result<Classifier> {
    let dev = Device::Cpu;
    let cfg = ClassifierConfig {
        batch_norm,
        ..ClassifierConfig::netinv_small()
    };
    let tensors = initial_tensors(&cfg, 0, &dev)?.into_iter().collect();
    Ok(Classifier::new(
        &cfg,
        VarBuilder::from_tensors(tensors, DType::F32, &dev),
    )?)
}

/// The variables of `varmap` sorted by name (a `VarMap` is a hash map: its own order
/// changes from run to run).
fn sorted_vars(varmap: &VarMap) -> Result<Vec<Var>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("VarMap lock poisoned"))?;
    let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(vars.into_iter().map(|(_, v)| v).collect())
}

/// A measured case: `run(steps)` performs `steps` units of work; `bits()` hashes the state.
trait Case {
    fn run(&mut self, steps: usize) -> Result<()>;
    fn bits(&self) -> Result<String>;
}

struct TrainEpoch {
    mnist: Mnist,
    last: Vec<Tensor>,
}

impl Case for TrainEpoch {
    fn run(&mut self, _steps: usize) -> Result<()> {
        let varmap = VarMap::new();
        let model = Classifier::init(&ClassifierConfig::netinv_small(), &varmap, 0, &Device::Cpu)?;
        let cfg = TrainConfig {
            epochs: 1,
            ..TrainConfig::sgd()
        };
        Trainer::new(cfg)?.fit(
            &model,
            &varmap,
            self.mnist.train(),
            None,
            &mut Monitor::new(),
        )?;
        self.last = sorted_vars(&varmap)?
            .iter()
            .map(|v| v.as_tensor().clone())
            .collect();
        Ok(())
    }
    fn bits(&self) -> Result<String> {
        fnv(&self.last)
    }
}

struct TrainStep {
    net: Classifier,
    vars: Vec<Var>,
    x: Tensor,
    y: Tensor,
}

impl Case for TrainStep {
    fn run(&mut self, steps: usize) -> Result<()> {
        for _ in 0..steps {
            let logits = self.net.forward_t(&self.x, true)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &self.y)?;
            let grads = loss.backward()?;
            for v in &self.vars {
                if let Some(g) = grads.get(v.as_tensor()) {
                    v.set(&(v.as_tensor() - (g * 0.01)?)?)?;
                }
            }
        }
        Ok(())
    }
    fn bits(&self) -> Result<String> {
        fnv(&self
            .vars
            .iter()
            .map(|v| v.as_tensor().clone())
            .collect::<Vec<_>>())
    }
}

struct InvertB10 {
    net: Classifier,
    x: Var,
    targets: Tensor,
    m: Tensor,
    v: Tensor,
    t: i32,
}

impl Case for InvertB10 {
    fn run(&mut self, steps: usize) -> Result<()> {
        let (lr, b1, b2, eps) = (0.05f64, 0.9f64, 0.999f64, 1e-8f64);
        for _ in 0..steps {
            self.t += 1;
            let logits = self.net.forward(self.x.as_tensor())?;
            let loss = candle_nn::loss::cross_entropy(&logits, &self.targets)?;
            let grads = loss.backward()?;
            let g = grads
                .get(self.x.as_tensor())
                .context("no gradient")?
                .detach();
            self.m = ((&self.m * b1)? + (&g * (1.0 - b1))?)?;
            self.v = ((&self.v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let mhat = (&self.m / (1.0 - b1.powi(self.t)))?;
            let vhat = (&self.v / (1.0 - b2.powi(self.t)))?;
            let step = (mhat / (vhat.sqrt()? + eps)?)?;
            let next = (self.x.as_tensor() - (step * lr)?)?.clamp(0f32, 1f32)?;
            self.x.set(&next)?;
        }
        Ok(())
    }
    fn bits(&self) -> Result<String> {
        fnv(&[self.x.as_tensor().clone()])
    }
}

struct InvertBn {
    net: Classifier,
    x: Var,
    targets: Tensor,
    prior: BnStatsPrior,
    grad: Option<Tensor>,
}

impl Case for InvertBn {
    fn run(&mut self, steps: usize) -> Result<()> {
        for _ in 0..steps {
            let (logits, stats) =
                InvertibleNet::forward_with_image_bn_stats(&self.net, self.x.as_tensor())?;
            let ce = candle_nn::loss::cross_entropy(&logits, &self.targets)?;
            let bn = self.prior.penalty_per_image(&stats)?.sum_all()?;
            let grads = (ce + bn)?.backward()?;
            self.grad = Some(
                grads
                    .get(self.x.as_tensor())
                    .context("no gradient")?
                    .detach(),
            );
        }
        Ok(())
    }
    fn bits(&self) -> Result<String> {
        fnv(self.grad.as_slice())
    }
}

fn make(case: &str) -> Result<Box<dyn Case>> {
    let dev = Device::Cpu;
    Ok(match case {
        "train-epoch" => Box::new(TrainEpoch {
            mnist: Mnist::embedded()?,
            last: Vec::new(),
        }),
        "train-step" => {
            let varmap = VarMap::new();
            let net = Classifier::init(&ClassifierConfig::netinv_small(), &varmap, 0, &dev)?;
            let labels: Vec<u32> = (0..64).map(|i| (i * 7 % 10) as u32).collect();
            Box::new(TrainStep {
                net,
                vars: sorted_vars(&varmap)?,
                x: Tensor::from_vec(uniform(64 * 784, 1), (64, 1, 28, 28), &dev)?,
                y: Tensor::from_vec(labels, 64, &dev)?,
            })
        }
        "invert-b10" => {
            let mut rng = StdRng::seed_from_u64(2);
            let init: Vec<f32> = (0..10 * 784)
                .map(|_| {
                    let n: f32 = rng.sample(rand_distr::StandardNormal);
                    0.5 + 0.2 * n
                })
                .collect();
            Box::new(InvertB10 {
                net: frozen(false)?,
                x: Var::from_vec(init, (10, 1, 28, 28), &dev)?,
                targets: Tensor::from_vec((0u32..10).collect::<Vec<_>>(), 10, &dev)?,
                m: Tensor::zeros((10, 1, 28, 28), DType::F32, &dev)?,
                v: Tensor::zeros((10, 1, 28, 28), DType::F32, &dev)?,
                t: 0,
            })
        }
        "invert-bn-b200" => {
            let targets: Vec<u32> = (0..200).map(|i| (i % 10) as u32).collect();
            Box::new(InvertBn {
                net: frozen(true)?,
                x: Var::from_vec(uniform(200 * 784, 3), (200, 1, 28, 28), &dev)?,
                targets: Tensor::from_vec(targets, 200, &dev)?,
                prior: BnStatsPrior::new(0.01)?,
                grad: None,
            })
        }
        other => bail!("unknown --case {other}"),
    })
}

fn main() -> Result<()> {
    let mut case = None;
    let (mut repeats, mut steps) = (5usize, 20usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--bench" => {}
            "--case" => case = Some(value("--case")?),
            "--repeats" => repeats = value("--repeats")?.parse()?,
            "--steps" => steps = value("--steps")?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    let name = case.context("--case is required")?;
    if repeats == 0 || steps == 0 {
        bail!("--repeats and --steps must be at least 1");
    }
    let mut c = make(&name)?;
    let per_repeat = if name == "train-epoch" { 1 } else { steps };
    // untimed warm-up (allocator, thread pools, caches): 3 steps, or one whole epoch (as the
    // PyTorch anchor does)
    c.run(3)?;
    let (mut cpu, mut wall) = (Vec::new(), Vec::new());
    for _ in 0..repeats {
        let (c0, t0) = (process_cpu_seconds(), Instant::now());
        c.run(per_repeat)?;
        let w = t0.elapsed().as_secs_f64() / per_repeat as f64;
        let cpu_s = match (c0, process_cpu_seconds()) {
            (Some(a), Some(b)) => (b - a) / per_repeat as f64,
            _ => f64::NAN,
        };
        cpu.push(cpu_s);
        wall.push(w);
    }
    let out = serde_json::json!({
        "case": name,
        "threads": candle_core::utils::get_num_threads(),
        "per": if name == "train-epoch" { "epoch" } else { "step" },
        "steps_per_repeat": per_repeat,
        "cpu_s": cpu,
        "wall_s": wall,
        "bits": c.bits()?,
    });
    println!("{out}");
    Ok(())
}
