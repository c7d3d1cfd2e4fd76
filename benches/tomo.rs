//! Tomography: Joseph projection, backprojection (its exact adjoint), SIRT iterations and
//! FBP, at 1 and 2 rayon threads. Compare with `tools/tomo/astra_timing.py` (ASTRA CPU);
//! commands and figures are in docs/performance.md (## Tomography).
//!
//! ```text
//! cargo bench --bench tomo
//! ```
//!
//! Each benchmark runs inside a rayon pool of 1 or 2 threads. `.../1thread-cpu` is measured
//! in process CPU time (all threads of the process, `CLOCK_PROCESS_CPUTIME_ID`, in ns; the
//! figure ASTRA's script measures with `time.process_time`), the others in wall time. `sirt-iter/*` times a whole 20-iteration SIRT run (weights included, as ASTRA's
//! `run(20)`) and reports it per iteration. `tv-pdhg-digits/*` solves 64 digit-sized
//! (28x28, 30 angles) TV problems, 200 PDHG iterations each, one by one and as one batch
//! (`TvPdhg::reconstruct_batch`), and reports the time per image and iteration.
//! `tv-pdhg-tune/*` is the CT study's TV-weight tuning of one setting (8 validation digits
//! at 7 TV weights, 28x28, 30 angles, 200 iterations): one batch of 8 per weight, or one
//! batch of 56 with a weight per image (`TvPdhg::reconstruct_batch_weighted`), per image
//! and iteration.
//! `csr-batch/*` is one batched CSR product (`apply_batch_into` / `adjoint_batch_into`) at
//! the CT study's densest shape, 200 digits at 90 angles, reported per digit.
//! `csr-build/*` builds the CSR operator (`CsrOperator::new`: matrix and transpose) at
//! 128 px / 90 angles and 256 px / 360 angles, wall time at 1 and 2 threads; 512 px (4-9 s
//! a build) is left to `crates/netinv-tomo/tests/csr_build_timing.rs`.

use std::hint::black_box;
use std::time::{Duration, Instant};

#[path = "common/cpu_time.rs"]
mod cpu_time;

use cpu_time::CpuTime;
use criterion::measurement::Measurement;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ndarray::{Array2, Array3};
use netinv::tomo::{
    CsrOperator, Fbp, FbpConfig, LinearOperator, ParallelBeam2d, RayTransform, Sirt, SirtConfig,
    TvConfig, TvPdhg,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SIRT_ITERS: usize = 20;
const DIGITS: usize = 64;
const PDHG_ITERS: usize = 200;
/// Digits per batch in the CT study (`ct_study`'s default `--n-images`).
const STUDY_BATCH: usize = 200;
/// The CT study's TV-weight grid and validation digits per setting.
const TV_GRID: [f32; 7] = [1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0];
const VAL_DIGITS: usize = 8;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

fn operator(n: usize, angles: usize) -> RayTransform {
    let n_det = (n as f64 * std::f64::consts::SQRT_2).ceil() as usize + 2;
    let geom = ParallelBeam2d::uniform(n, n, angles, n_det, 1.0).expect("geometry");
    RayTransform::new(geom).expect("operator")
}

/// `[rows, cols, STUDY_BATCH]`.
fn batch_shape((rows, cols): (usize, usize)) -> (usize, usize, usize) {
    (rows, cols, STUDY_BATCH)
}

fn random(shape: (usize, usize), seed: u64) -> Array2<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array2::from_shape_fn(shape, |_| rng.random::<f32>())
}

/// The workloads, each a closure run `reps` times per measured call, and the divisor.
type Work<'a> = (String, Box<dyn Fn() + Sync + 'a>, u32);

fn workloads<'a>(
    op128: &'a RayTransform,
    csr128: &'a CsrOperator,
    op256: &'a RayTransform,
    data: &'a Data,
) -> Vec<Work<'a>> {
    let sirt = Sirt::new(SirtConfig {
        iterations: SIRT_ITERS,
        ..Default::default()
    })
    .expect("sirt");
    let sirt2 = sirt.clone();
    let sirt3 = sirt.clone();
    let fbp = Fbp::new(FbpConfig::default()).expect("fbp");
    let pdhg = TvPdhg::new(TvConfig {
        weight: 0.02,
        iterations: PDHG_ITERS,
        min: Some(0.0),
        max: Some(1.0),
        ..Default::default()
    })
    .expect("pdhg");
    let pdhg2 = pdhg.clone();
    let pdhg3 = pdhg.clone();
    let pdhg4 = pdhg.clone();
    let per_image_iteration = (DIGITS * PDHG_ITERS) as u32;
    let tune_per_image_iteration = (TV_GRID.len() * VAL_DIGITS * PDHG_ITERS) as u32;
    let val_views = move || -> Vec<_> {
        data.digit_sinograms[..VAL_DIGITS]
            .iter()
            .map(|y| y.view())
            .collect()
    };
    vec![
        (
            "tv-pdhg-digits/64x28px-30ang-one-by-one".into(),
            Box::new(move || {
                for y in &data.digit_sinograms {
                    black_box(pdhg.reconstruct(&data.csr28, y.view()).expect("pdhg"));
                }
            }),
            per_image_iteration,
        ),
        (
            "tv-pdhg-digits/64x28px-30ang-batched".into(),
            Box::new(move || {
                let views: Vec<_> = data.digit_sinograms.iter().map(|y| y.view()).collect();
                black_box(pdhg2.reconstruct_batch(&data.csr28, &views).expect("pdhg"));
            }),
            per_image_iteration,
        ),
        (
            "tv-pdhg-tune/7x8x28px-30ang-per-weight".into(),
            Box::new(move || {
                let views = val_views();
                for &weight in &TV_GRID {
                    let cfg = TvConfig {
                        weight,
                        ..pdhg3.config().clone()
                    };
                    let solver = TvPdhg::new(cfg).expect("pdhg");
                    black_box(solver.reconstruct_batch(&data.csr28, &views).expect("pdhg"));
                }
            }),
            tune_per_image_iteration,
        ),
        (
            "tv-pdhg-tune/7x8x28px-30ang-weighted".into(),
            Box::new(move || {
                let views: Vec<_> = TV_GRID.iter().flat_map(|_| val_views()).collect();
                let weights: Vec<f32> = TV_GRID
                    .iter()
                    .flat_map(|&w| std::iter::repeat_n(w, VAL_DIGITS))
                    .collect();
                black_box(
                    pdhg4
                        .reconstruct_batch_weighted(&data.csr28, &views, &weights)
                        .expect("pdhg"),
                );
            }),
            tune_per_image_iteration,
        ),
        (
            "csr-batch/28px-90ang-b200-forward".into(),
            Box::new(move || {
                let mut y = Array3::zeros(batch_shape(data.csr90.range_shape()));
                data.csr90
                    .apply_batch_into(data.digits.view(), y.view_mut());
                black_box(y);
            }),
            STUDY_BATCH as u32,
        ),
        (
            "csr-batch/28px-90ang-b200-adjoint".into(),
            Box::new(move || {
                let mut x = Array3::zeros(batch_shape(data.csr90.domain_shape()));
                data.csr90
                    .adjoint_batch_into(data.digit_sinos90.view(), x.view_mut());
                black_box(x);
            }),
            STUDY_BATCH as u32,
        ),
        (
            "project/128px-90ang".into(),
            Box::new(move || {
                black_box(op128.apply(data.x128.view()));
            }),
            1,
        ),
        (
            "backproject/128px-90ang".into(),
            Box::new(move || {
                black_box(op128.adjoint(data.y128.view()));
            }),
            1,
        ),
        (
            "project-csr/128px-90ang".into(),
            Box::new(move || {
                black_box(csr128.apply(data.x128.view()));
            }),
            1,
        ),
        (
            "backproject-csr/128px-90ang".into(),
            Box::new(move || {
                black_box(csr128.adjoint(data.y128.view()));
            }),
            1,
        ),
        (
            "sirt-iter/128px-90ang".into(),
            Box::new(move || {
                black_box(sirt.reconstruct(op128, data.y128.view()).expect("sirt"));
            }),
            SIRT_ITERS as u32,
        ),
        (
            "sirt-iter-csr/128px-90ang".into(),
            Box::new(move || {
                black_box(sirt2.reconstruct(csr128, data.y128.view()).expect("sirt"));
            }),
            SIRT_ITERS as u32,
        ),
        (
            "sirt-iter/256px-360ang".into(),
            Box::new(move || {
                black_box(sirt3.reconstruct(op256, data.y256.view()).expect("sirt"));
            }),
            SIRT_ITERS as u32,
        ),
        (
            "fbp/256px-360ang".into(),
            Box::new(move || {
                black_box(fbp.reconstruct(op256, data.y256.view()).expect("fbp"));
            }),
            1,
        ),
    ]
}

struct Data {
    csr28: CsrOperator,
    /// The CT study's densest operator (28x28 digits, 90 angles) and a batch of
    /// `STUDY_BATCH` images `[28, 28, b]` and sinograms for it.
    csr90: CsrOperator,
    digits: Array3<f32>,
    digit_sinos90: Array3<f32>,
    digit_sinograms: Vec<Array2<f32>>,
    x128: Array2<f32>,
    y128: Array2<f32>,
    y256: Array2<f32>,
}

fn setup() -> (RayTransform, CsrOperator, RayTransform, Data) {
    let op128 = operator(128, 90);
    let op256 = operator(256, 360);
    let csr128 = CsrOperator::new(&op128);
    let x128 = random((128, 128), 1);
    let y128 = op128.apply(x128.view());
    let y256 = op256.apply(random((256, 256), 2).view());
    let csr28 = CsrOperator::new(&operator(28, 30));
    let digit_sinograms = (0..DIGITS as u64)
        .map(|k| csr28.apply(random((28, 28), 10 + k).view()))
        .collect();
    let csr90 = CsrOperator::new(&operator(28, 90));
    let digits = Array3::from_shape_fn((28, 28, STUDY_BATCH), |(i, j, k)| {
        ((i * 31 + j * 17 + k * 7) % 101) as f32 / 100.0
    });
    let mut digit_sinos90 = Array3::zeros(batch_shape(csr90.range_shape()));
    csr90.apply_batch_into(digits.view(), digit_sinos90.view_mut());
    let data = Data {
        csr28,
        csr90,
        digits,
        digit_sinos90,
        digit_sinograms,
        x128,
        y128,
        y256,
    };
    (op128, csr128, op256, data)
}

fn bench_cpu(c: &mut Criterion<CpuTime>) {
    let (op128, csr128, op256, data) = setup();
    let one = pool(1);
    for (name, work, div) in workloads(&op128, &csr128, &op256, &data) {
        let mut group = c.benchmark_group(name.split('/').next().unwrap_or("tomo").to_string());
        group.sample_size(10);
        let size = name.split('/').nth(1).unwrap_or("");
        group.bench_function(BenchmarkId::new(size.to_string(), "1thread-cpu"), |b| {
            b.iter_custom(|iters| {
                let m = CpuTime;
                let start = m.start();
                one.install(|| {
                    for _ in 0..iters {
                        work();
                    }
                });
                m.end(start) / div as f64
            })
        });
        group.finish();
    }
}

fn bench_csr_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("csr-build");
    group.sample_size(10);
    for (n, angles) in [(128usize, 90usize), (256, 360)] {
        let op = operator(n, angles);
        for threads in [1usize, 2] {
            let p = pool(threads);
            let label = if threads == 1 { "1thread" } else { "2threads" };
            let id = BenchmarkId::new(format!("{n}px-{angles}ang"), label);
            group.bench_function(id, |b| {
                b.iter(|| p.install(|| black_box(CsrOperator::new(&op))))
            });
        }
    }
    group.finish();
}

fn bench_wall(c: &mut Criterion) {
    let (op128, csr128, op256, data) = setup();
    for threads in [1usize, 2] {
        let p = pool(threads);
        for (name, work, div) in workloads(&op128, &csr128, &op256, &data) {
            let mut group = c.benchmark_group(name.split('/').next().unwrap_or("tomo").to_string());
            group.sample_size(10);
            let size = name.split('/').nth(1).unwrap_or("");
            let label = if threads == 1 { "1thread" } else { "2threads" };
            group.bench_function(BenchmarkId::new(size.to_string(), label), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    p.install(|| {
                        for _ in 0..iters {
                            work();
                        }
                    });
                    let elapsed: Duration = start.elapsed();
                    elapsed / div
                })
            });
            group.finish();
        }
    }
}

criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(CpuTime);
    targets = bench_cpu
}
criterion_group!(wall, bench_wall);
criterion_group!(csr_build, bench_csr_build);
criterion_main!(cpu, wall, csr_build);
