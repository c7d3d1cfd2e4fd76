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

use std::time::Instant;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ndarray::Array2;
use netinv::metrics::{mse, ssim, SsimConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Process CPU time in ns (64-bit Linux), or `None` elsewhere.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn process_cpu_ns() -> Option<u64> {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec with the C layout of 64-bit Linux.
    let rc = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// Process CPU time in ns (64-bit Linux), or `None` elsewhere.
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn process_cpu_ns() -> Option<u64> {
    None
}

/// Criterion measurement of process CPU time (wall time where /proc is missing).
struct CpuTime;

static WALL_TIME: WallTime = WallTime;

impl Measurement for CpuTime {
    type Intermediate = (Option<u64>, Instant);
    type Value = f64;

    fn start(&self) -> Self::Intermediate {
        (process_cpu_ns(), Instant::now())
    }

    fn end(&self, (cpu, wall): Self::Intermediate) -> f64 {
        match (cpu, process_cpu_ns()) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64,
            _ => wall.elapsed().as_nanos() as f64,
        }
    }

    fn add(&self, v1: &f64, v2: &f64) -> f64 {
        v1 + v2
    }

    fn zero(&self) -> f64 {
        0.0
    }

    fn to_f64(&self, value: &f64) -> f64 {
        *value
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        // Values are nanoseconds, as for wall time.
        WALL_TIME.formatter()
    }
}

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
