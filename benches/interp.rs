//! Training-step time of the netinv-interp VAE (compare with `tools/interp/torch_vae_step.py`).
//!
//! `vae-train-step/b64`: a batch of 64 seeded 28x28 images, fresh reparameterisation noise
//! from a seeded host RNG, encoder + decoder forward, BCE + KL, backward and an Adam update
//! (lr 1e-3) of the default VAE (latent 16, channels 16 / 32).
//!
//! Run at one thread (candle's pool reads `RAYON_NUM_THREADS` once):
//! `RAYON_NUM_THREADS=1 cargo bench --bench interp`. Times are process CPU time
//! (`benches/common/cpu_time.rs`).

#[path = "common/cpu_time.rs"]
mod cpu_time;

use candle_core::{Device, Tensor};
use candle_nn::{Optimizer, VarMap};
use cpu_time::CpuTime;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use netinv::models::train::{Adam, AdamParams};
use netinv::models::{standard_normal, Vae, VaeConfig};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn vae_train_step(c: &mut Criterion<CpuTime>) {
    let dev = Device::Cpu;
    let cfg = VaeConfig::default();
    let varmap = VarMap::new();
    let vae = Vae::init(&cfg, &varmap, 0, &dev).unwrap();
    let mut opt = Adam::new(
        varmap.all_vars(),
        AdamParams {
            lr: 1e-3,
            ..Default::default()
        },
    )
    .unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let pixels: Vec<f32> = (0..64 * 784).map(|_| rng.random::<f32>()).collect();
    let x = Tensor::from_vec(pixels, (64, 1, 28, 28), &dev).unwrap();
    let mut noise = StdRng::seed_from_u64(2);
    let mut group = c.benchmark_group("vae-train-step");
    group.bench_function(BenchmarkId::from_parameter("b64"), |b| {
        b.iter(|| {
            let eps = standard_normal(&mut noise, 64, cfg.latent_dim, &dev).unwrap();
            let loss = vae.loss(&x, &eps).unwrap();
            opt.backward_step(&loss.total).unwrap();
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = vae_train_step
}
criterion_main!(benches);
