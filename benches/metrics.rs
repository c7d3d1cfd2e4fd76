//! Image metrics on 512x512 images: SSIM (Wang 2004 Gaussian and scikit-image's 7x7
//! uniform default) and MSE. Compare with `tools/metrics/bench_skimage.py`; the commands and
//! figures are in docs/performance.md (## Metrics).
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo bench --bench metrics
//! ```
//!
//! Times are process CPU time (`clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`, the clock behind
//! Python's `time.process_time`), not wall time, so they are not inflated when other jobs
//! share the machine; the code under test is single-threaded. Elsewhere than 64-bit Linux
//! the bench falls back to wall time.

use std::hint::black_box;

#[path = "common/cpu_time.rs"]
mod cpu_time;

use cpu_time::CpuTime;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ndarray::Array2;
use netinv::metrics::{mse, ssim, SsimConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A smooth image in [0, 1] and a noisy copy, seeded.
fn image_pair(size: usize, seed: u64) -> (Array2<f32>, Array2<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let reference = Array2::from_shape_fn((size, size), |(i, j)| {
        let (u, v) = (i as f32 / size as f32, j as f32 / size as f32);
        0.5 + 0.4 * (6.0 * u).sin() * (4.0 * v).cos()
    });
    let estimate = reference.mapv(|x| (x + 0.2 * (rng.random::<f32>() - 0.5)).clamp(0.0, 1.0));
    (reference, estimate)
}

fn bench_metrics(c: &mut Criterion<CpuTime>) {
    let size = 512;
    let (x, y) = image_pair(size, 42);
    let id = format!("{size}px");
    let mut group = c.benchmark_group("ssim");
    let gaussian = SsimConfig::gaussian();
    group.bench_function(BenchmarkId::from_parameter(&id), |b| {
        b.iter(|| ssim(black_box(x.view()), black_box(y.view()), &gaussian).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("ssim-uniform7");
    let uniform = SsimConfig::uniform(7);
    group.bench_function(BenchmarkId::from_parameter(&id), |b| {
        b.iter(|| ssim(black_box(x.view()), black_box(y.view()), &uniform).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("mse");
    group.bench_function(BenchmarkId::from_parameter(&id), |b| {
        b.iter(|| mse(black_box(x.view()), black_box(y.view())).unwrap())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = bench_metrics
}
criterion_main!(benches);
