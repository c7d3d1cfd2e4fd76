//! Build time of the CSR operator (matrix and transpose) at the bench sizes, for the
//! figures in the commit messages and docs/performance.md. Ignored by default; run in
//! release:
//!
//! ```text
//! cargo test --release -p netinv-tomo --test csr_build_timing -- --ignored --nocapture
//! CSR_BUILD_SIZES=512x720 CSR_BUILD_THREADS=2 /usr/bin/time -v cargo test ...  # peak RSS
//! ```

use std::time::Instant;

use netinv_tomo::{CsrOperator, ParallelBeam2d, RayTransform};

/// `n x n` pixels at `angles` angles, `ceil(sqrt(2) n) + 2` detectors (the benches' sizes).
fn ray(n: usize, angles: usize) -> RayTransform {
    let n_det = (n as f64 * std::f64::consts::SQRT_2).ceil() as usize + 2;
    RayTransform::new(ParallelBeam2d::uniform(n, n, angles, n_det, 1.0).unwrap()).unwrap()
}

fn list(var: &str, default: &str) -> Vec<String> {
    std::env::var(var)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(str::to_string)
        .collect()
}

#[test]
#[ignore = "timing: run in release with --ignored --nocapture"]
fn csr_build_timing() {
    for size in list("CSR_BUILD_SIZES", "128x90,256x360,512x720") {
        let (n, angles) = size.split_once('x').expect("size as NxANGLES");
        let (n, angles): (usize, usize) = (n.parse().unwrap(), angles.parse().unwrap());
        let op = ray(n, angles);
        let start = Instant::now();
        let required = CsrOperator::required_bytes(&op);
        let counted = start.elapsed().as_secs_f64();
        for threads in list("CSR_BUILD_THREADS", "1,2") {
            let threads: usize = threads.parse().unwrap();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let reps = if n >= 512 { 1 } else { 3 };
            let mut best = f64::INFINITY;
            let mut nnz = 0;
            for _ in 0..reps {
                let start = Instant::now();
                let csr = pool.install(|| CsrOperator::new(&op));
                best = best.min(start.elapsed().as_secs_f64());
                nnz = csr.matrix().nnz();
            }
            println!(
                "csr-build {n}px-{angles}ang {threads} thread(s): {best:.3} s (best of {reps}), \
                 nnz {nnz}, required_bytes {required} ({:.1} MB, counted in {counted:.3} s)",
                required as f64 / 1e6
            );
        }
    }
}

/// Process CPU seconds of `reps` calls of `work`, per call (the clock ticks of
/// /proc/self/stat: `reps` is chosen so a measurement spans many ticks).
fn cpu_per_call<T>(reps: usize, mut work: impl FnMut() -> T) -> f64 {
    let start = netinv_core::process_cpu_seconds().expect("/proc/self/stat");
    for _ in 0..reps {
        std::hint::black_box(work());
    }
    (netinv_core::process_cpu_seconds().unwrap() - start) / reps as f64
}

/// The phases of a CSR build at 1 thread in process CPU time: the row pointers (counting
/// pass), the matrix (`to_csr`: counting and filling), the serial scatter transpose of
/// the matrix, and `CsrOperator::new` (matrix plus the transpose recomputed per pixel).
///
/// ```text
/// cargo test --release -p netinv-tomo --test csr_build_timing -- --ignored --nocapture phases
/// ```
#[test]
#[ignore = "timing: run in release with --ignored --nocapture"]
fn csr_build_phases_one_thread() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    for size in list("CSR_BUILD_SIZES", "28x90,64x90,128x90") {
        let (n, angles) = size.split_once('x').expect("size as NxANGLES");
        let (n, angles): (usize, usize) = (n.parse().unwrap(), angles.parse().unwrap());
        let op = ray(n, angles);
        let reps = (200 * 128 * 128 / (n * n)).clamp(3, 2000);
        pool.install(|| {
            let count = cpu_per_call(reps, || CsrOperator::required_bytes(&op));
            let matrix = cpu_per_call(reps, || op.to_csr());
            let a = op.to_csr();
            let scatter = cpu_per_call(reps, || a.transpose());
            let new = cpu_per_call(reps, || CsrOperator::new(&op));
            println!(
                "csr-build-cpu {n}px-{angles}ang 1 thread, {reps} reps: counting {:.3} ms, \
                 to_csr {:.3} ms, serial transpose {:.3} ms, CsrOperator::new {:.3} ms",
                1e3 * count,
                1e3 * matrix,
                1e3 * scatter,
                1e3 * new
            );
        });
    }
}
