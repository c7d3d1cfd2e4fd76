//! Step times of netinv-small (compare with `tools/models/torch_speed.py`).
//!
//! - `train-step/netinv-small-b64-t{threads}`: forward + cross-entropy + backward + a plain
//!   SGD update (lr 0.01) on a batch of 64;
//! - `invert-step/netinv-small-b10-t{threads}`: x `[10, 1, 28, 28]` a `Var`, forward through
//!   a frozen net (plain tensors), cross-entropy to targets 0..9, backward to x, an Adam
//!   update of x (lr 0.05) and a clamp to [0, 1];
//! - `invert-step/bn-netinv-small-b200-t{threads}`: the CT study's network term: x
//!   `[200, 1, 28, 28]` a `Var`, forward through a frozen BatchNorm net with per-image BN
//!   statistics, cross-entropy to targets plus the BN-statistics prior (weight 0.01),
//!   backward to x (no update).
//!
//! candle's CPU pool reads `RAYON_NUM_THREADS` once, so run the bench once per thread
//! count; the id carries it:
//! `RAYON_NUM_THREADS=1 cargo bench --bench models` and `RAYON_NUM_THREADS=2 ...`.
//!
//! Times are process CPU time (the sum over the process's threads of
//! `/proc/self/task/*/schedstat`, in ns), as the Python script's `time.process_time`, so they
//! are not inflated when other jobs share the machine; elsewhere than Linux, wall time.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{ModuleT, VarBuilder, VarMap};
#[path = "common/cpu_time.rs"]
mod cpu_time;

use cpu_time::CpuTime;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use netinv::invert::{BnStatsPrior, InvertibleNet};
use netinv::models::{init::initial_tensors, Classifier, ClassifierConfig};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random::<f32>()).collect()
}

fn train_step(c: &mut Criterion<CpuTime>) {
    let dev = Device::Cpu;
    let cfg = ClassifierConfig::netinv_small();
    let varmap = VarMap::new();
    let net = Classifier::init(&cfg, &varmap, 0, &dev).unwrap();
    let vars = varmap.all_vars();
    let x = Tensor::from_vec(uniform(64 * 784, 1), (64, 1, 28, 28), &dev).unwrap();
    let labels: Vec<u32> = (0..64).map(|i| (i * 7 % 10) as u32).collect();
    let y = Tensor::from_vec(labels, 64, &dev).unwrap();
    let lr = 0.01;
    let mut group = c.benchmark_group("train-step");
    let id = BenchmarkId::from_parameter(format!("netinv-small-b64-t{}", threads()));
    group.bench_function(id, |b| {
        b.iter(|| {
            let logits = net.forward_t(&x, true).unwrap();
            let loss = candle_nn::loss::cross_entropy(&logits, &y).unwrap();
            let grads = loss.backward().unwrap();
            for v in &vars {
                if let Some(g) = grads.get(v.as_tensor()) {
                    v.set(&(v.as_tensor() - (g * lr).unwrap()).unwrap())
                        .unwrap();
                }
            }
        })
    });
    group.finish();
}

fn invert_step(c: &mut Criterion<CpuTime>) {
    let dev = Device::Cpu;
    let cfg = ClassifierConfig::netinv_small();
    let tensors = initial_tensors(&cfg, 0, &dev)
        .unwrap()
        .into_iter()
        .collect();
    let net = Classifier::new(&cfg, VarBuilder::from_tensors(tensors, DType::F32, &dev)).unwrap();
    let mut rng = StdRng::seed_from_u64(2);
    let init: Vec<f32> = (0..10 * 784)
        .map(|_| {
            let n: f32 = rng.sample(rand_distr::StandardNormal);
            0.5 + 0.2 * n
        })
        .collect();
    let x = Var::from_vec(init, (10, 1, 28, 28), &dev).unwrap();
    let targets = Tensor::from_vec((0u32..10).collect::<Vec<_>>(), 10, &dev).unwrap();
    let (lr, b1, b2, eps) = (0.05f64, 0.9f64, 0.999f64, 1e-8f64);
    let mut m = Tensor::zeros((10, 1, 28, 28), DType::F32, &dev).unwrap();
    let mut v = Tensor::zeros((10, 1, 28, 28), DType::F32, &dev).unwrap();
    let mut t = 0i32;
    let mut group = c.benchmark_group("invert-step");
    let id = BenchmarkId::from_parameter(format!("netinv-small-b10-t{}", threads()));
    group.bench_function(id, |b| {
        b.iter(|| {
            t += 1;
            let logits = net.forward(x.as_tensor()).unwrap();
            let loss = candle_nn::loss::cross_entropy(&logits, &targets).unwrap();
            let grads = loss.backward().unwrap();
            let g = grads.get(x.as_tensor()).unwrap().detach();
            m = ((&m * b1).unwrap() + (&g * (1.0 - b1)).unwrap()).unwrap();
            v = ((&v * b2).unwrap() + (g.sqr().unwrap() * (1.0 - b2)).unwrap()).unwrap();
            let mhat = (&m / (1.0 - b1.powi(t))).unwrap();
            let vhat = (&v / (1.0 - b2.powi(t))).unwrap();
            let step = (mhat / (vhat.sqrt().unwrap() + eps).unwrap()).unwrap();
            let next = (x.as_tensor() - (step * lr).unwrap())
                .unwrap()
                .clamp(0f32, 1f32)
                .unwrap();
            x.set(&next).unwrap();
        })
    });
    group.finish();
}

fn invert_step_bn_b200(c: &mut Criterion<CpuTime>) {
    let dev = Device::Cpu;
    let cfg = ClassifierConfig {
        batch_norm: true,
        ..ClassifierConfig::netinv_small()
    };
    let tensors = initial_tensors(&cfg, 0, &dev)
        .unwrap()
        .into_iter()
        .collect();
    let net = Classifier::new(&cfg, VarBuilder::from_tensors(tensors, DType::F32, &dev)).unwrap();
    let x = Var::from_vec(uniform(200 * 784, 3), (200, 1, 28, 28), &dev).unwrap();
    let targets: Vec<u32> = (0..200).map(|i| (i % 10) as u32).collect();
    let targets = Tensor::from_vec(targets, 200, &dev).unwrap();
    let prior = BnStatsPrior::new(0.01).unwrap();
    let mut group = c.benchmark_group("invert-step");
    let id = BenchmarkId::from_parameter(format!("bn-netinv-small-b200-t{}", threads()));
    group.bench_function(id, |b| {
        b.iter(|| {
            let (logits, stats) =
                InvertibleNet::forward_with_image_bn_stats(&net, x.as_tensor()).unwrap();
            let ce = candle_nn::loss::cross_entropy(&logits, &targets).unwrap();
            let bn = prior.penalty_per_image(&stats).unwrap().sum_all().unwrap();
            let grads = (ce + bn).unwrap().backward().unwrap();
            grads.get(x.as_tensor()).unwrap().detach()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = train_step, invert_step, invert_step_bn_b200
}
criterion_main!(benches);
