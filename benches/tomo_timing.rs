//! One timing of netinv's SIRT (or FBP, or the SSIM of two images) for
//! `tools/perf/tomo_table.py`, which writes the tomography and SSIM tables of
//! docs/performance.md (netinv beside ASTRA and scikit-image, from one run).
//!
//! The script builds this binary once (`cargo bench --bench tomo_timing --no-run
//! --message-format=json`, the executable taken from cargo's JSON), then starts it as a
//! separate process for every measurement, alternating with ASTRA's script
//! (`tools/perf/astra_sirt.py`), and prints nothing else than what this binary prints:
//!
//! ```text
//! tomo_timing --size 256 --angles 360 --iterations 20 --operator matrix-free --threads 1 \
//!     [--repeats 3] [--algorithm sirt|fbp|ssim|ssim-uniform7] [--seed 0]
//! {"algorithm":"sirt","size":256,"angles":360,"detectors":364,"operator":"matrix-free",...}
//! ```
//!
//! Geometry as in docs/performance.md: `ceil(sqrt(2) N) + 2` detectors, uniform angles over
//! a half turn, a seeded uniform random image and its sinogram. Each repeat is a whole SIRT
//! run of `iterations` iterations from zero, weights included (as ASTRA's `run(iterations)`),
//! inside a rayon pool of `threads` threads; the JSON line reports per iteration the median
//! over repeats of the process CPU time (all threads, `CLOCK_PROCESS_CPUTIME_ID`) and of the
//! wall time, every repeat's figures, the setup time (operator and, for `csr`, the matrix and
//! its transpose, built in rayon's global pool before the timed runs), and the peak
//! resident set (`VmHWM` of /proc/self/status, so setup
//! included; `null` where that file does not exist). With `--algorithm fbp` one repeat is
//! one FBP reconstruction (`iterations` is ignored and reported as 1). With `--algorithm
//! ssim` (Wang 2004: Gaussian 11x11 window, sigma 1.5) or `ssim-uniform7` (scikit-image's
//! default 7x7 box, sample covariance) one repeat is `iterations` SSIM calls on a `size` x
//! `size` pair (a smooth image and a seeded noisy copy, as `benches/metrics.rs`), no
//! operator is built, and the figures are per call.
//!
//! cargo passes `--bench` to bench executables; it is accepted and ignored.

#[path = "common/cpu_time.rs"]
#[allow(dead_code)] // `CpuTime` is for the criterion benches
mod cpu_time;

use std::hint::black_box;
use std::time::Instant;

use ndarray::Array2;
use netinv::metrics::{ssim, SsimConfig};
use netinv::tomo::{
    CsrOperator, Fbp, FbpConfig, LinearOperator, ParallelBeam2d, RayTransform, Sirt, SirtConfig,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use cpu_time::process_cpu_seconds;

/// Peak resident set in bytes (`VmHWM`), or `None` where /proc/self/status is missing.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Operator {
    MatrixFree,
    Csr,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Algorithm {
    Sirt,
    Fbp,
    Ssim,
    SsimUniform7,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Sirt => "sirt",
            Algorithm::Fbp => "fbp",
            Algorithm::Ssim => "ssim",
            Algorithm::SsimUniform7 => "ssim-uniform7",
        }
    }
}

#[derive(Debug)]
struct Args {
    size: usize,
    angles: usize,
    iterations: usize,
    operator: Operator,
    threads: usize,
    repeats: usize,
    algorithm: Algorithm,
    seed: u64,
}

const USAGE: &str = "usage: tomo_timing --size N --angles A --iterations K \
--operator matrix-free|csr --threads T [--repeats R] [--algorithm sirt|fbp|ssim|ssim-uniform7] \
[--seed S]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        size: 128,
        angles: 90,
        iterations: 20,
        operator: Operator::MatrixFree,
        threads: 1,
        repeats: 3,
        algorithm: Algorithm::Sirt,
        seed: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue;
        }
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.into());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = |v: &str| -> Result<usize, String> {
            v.parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{flag}: expected a positive integer, got {v:?}"))
        };
        match flag.as_str() {
            "--size" => args.size = number(&value)?,
            "--angles" => args.angles = number(&value)?,
            "--iterations" => args.iterations = number(&value)?,
            "--threads" => args.threads = number(&value)?,
            "--repeats" => args.repeats = number(&value)?,
            "--seed" => {
                args.seed = value
                    .parse()
                    .map_err(|_| format!("--seed: expected an integer, got {value:?}"))?
            }
            "--operator" => {
                args.operator = match value.as_str() {
                    "matrix-free" => Operator::MatrixFree,
                    "csr" => Operator::Csr,
                    _ => return Err(format!("--operator: matrix-free or csr, got {value:?}")),
                }
            }
            "--algorithm" => {
                args.algorithm = [
                    Algorithm::Sirt,
                    Algorithm::Fbp,
                    Algorithm::Ssim,
                    Algorithm::SsimUniform7,
                ]
                .into_iter()
                .find(|a| a.name() == value)
                .ok_or_else(|| {
                    format!("--algorithm: sirt, fbp, ssim or ssim-uniform7, got {value:?}")
                })?
            }
            _ => return Err(format!("unknown argument {flag:?}\n{USAGE}")),
        }
    }
    if args.algorithm == Algorithm::Fbp {
        args.iterations = 1;
    }
    Ok(args)
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Times `repeats` calls of `work` (each `per_call` iterations); seconds per iteration.
fn time_runs(repeats: usize, per_call: usize, work: impl Fn()) -> (Vec<f64>, Vec<f64>) {
    let (mut cpu, mut wall) = (Vec::new(), Vec::new());
    for _ in 0..repeats {
        let c0 = process_cpu_seconds();
        let w0 = Instant::now();
        work();
        let w = w0.elapsed().as_secs_f64();
        let c = match (c0, process_cpu_seconds()) {
            (Some(a), Some(b)) => b - a,
            _ => f64::NAN,
        };
        cpu.push(c / per_call as f64);
        wall.push(w / per_call as f64);
    }
    (cpu, wall)
}

fn json_f64(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// A smooth image in [0, 1] and a noisy copy, seeded (the recipe of `benches/metrics.rs`).
fn image_pair(size: usize, seed: u64) -> (Array2<f32>, Array2<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let reference = Array2::from_shape_fn((size, size), |(i, j)| {
        let (u, v) = (i as f32 / size as f32, j as f32 / size as f32);
        0.5 + 0.4 * (6.0 * u).sin() * (4.0 * v).cos()
    });
    let estimate = reference.mapv(|x| (x + 0.2 * (rng.random::<f32>() - 0.5)).clamp(0.0, 1.0));
    (reference, estimate)
}

/// `--algorithm ssim` / `ssim-uniform7`: `iterations` SSIM calls per repeat.
fn run_ssim(args: &Args, pool: &rayon::ThreadPool) -> Result<serde_json::Value, String> {
    let (x, y) = image_pair(args.size, 42 + args.seed);
    let config = match args.algorithm {
        Algorithm::Ssim => SsimConfig::gaussian(),
        _ => SsimConfig::uniform(7),
    };
    pool.install(|| -> Result<serde_json::Value, String> {
        let value = ssim(x.view(), y.view(), &config).map_err(|e| format!("ssim: {e}"))?;
        let (cpu, wall) = time_runs(args.repeats, args.iterations, || {
            for _ in 0..args.iterations {
                black_box(ssim(black_box(x.view()), black_box(y.view()), &config).expect("ssim"));
            }
        });
        Ok(serde_json::json!({
            "tool": "netinv",
            "algorithm": args.algorithm.name(),
            "size": args.size,
            "iterations": args.iterations,
            "repeats": args.repeats,
            "threads": rayon::current_num_threads(),
            "value": json_f64(value),
            "cpu_s_per_iter": json_f64(median(&cpu)),
            "wall_s_per_iter": json_f64(median(&wall)),
            "cpu_s_per_iter_runs": cpu.iter().map(|&v| json_f64(v)).collect::<Vec<_>>(),
            "wall_s_per_iter_runs": wall.iter().map(|&v| json_f64(v)).collect::<Vec<_>>(),
            "peak_rss_bytes": peak_rss_bytes(),
        }))
    })
}

fn run(args: &Args) -> Result<serde_json::Value, String> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .map_err(|e| format!("thread pool: {e}"))?;
    if matches!(args.algorithm, Algorithm::Ssim | Algorithm::SsimUniform7) {
        return run_ssim(args, &pool);
    }
    let n = args.size;
    let n_det = (n as f64 * std::f64::consts::SQRT_2).ceil() as usize + 2;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let image = Array2::from_shape_fn((n, n), |_| rng.random::<f32>());

    // Setup (operator, CSR matrix, sinogram) runs in rayon's global pool, outside the
    // timed runs: the CSR build at 512 px takes minutes at one thread.
    let setup_start = Instant::now();
    let geom = ParallelBeam2d::uniform(n, n, args.angles, n_det, 1.0)
        .map_err(|e| format!("geometry: {e}"))?;
    let ray = RayTransform::new(geom).map_err(|e| format!("operator: {e}"))?;
    let csr = (args.operator == Operator::Csr).then(|| CsrOperator::new(&ray));
    let setup_seconds = setup_start.elapsed().as_secs_f64();
    let op: &dyn LinearOperator = match &csr {
        Some(c) => c,
        None => &ray,
    };
    let sinogram = op.apply(image.view());

    pool.install(|| -> Result<serde_json::Value, String> {
        let threads = rayon::current_num_threads();

        let (cpu, wall) = match args.algorithm {
            Algorithm::Sirt => {
                let sirt = Sirt::new(SirtConfig {
                    iterations: args.iterations,
                    ..Default::default()
                })
                .map_err(|e| format!("sirt: {e}"))?;
                time_runs(args.repeats, args.iterations, || {
                    black_box(sirt.reconstruct(op, sinogram.view()).expect("sirt"));
                })
            }
            Algorithm::Fbp => {
                let fbp = Fbp::new(FbpConfig::default()).map_err(|e| format!("fbp: {e}"))?;
                time_runs(args.repeats, 1, || {
                    black_box(fbp.reconstruct(op, sinogram.view()).expect("fbp"));
                })
            }
            Algorithm::Ssim | Algorithm::SsimUniform7 => unreachable!("handled by run_ssim"),
        };
        let peak = peak_rss_bytes();
        let csr_bytes = csr.as_ref().map(|c| {
            // indptr (usize) + indices (u32) + values (f32), matrix and transpose.
            let m = c.matrix();
            2 * (m.nnz() * 8 + (m.n_rows() + m.n_cols() + 2) * 8)
        });
        Ok(serde_json::json!({
            "tool": "netinv",
            "algorithm": args.algorithm.name(),
            "simd": ray.simd().name(),
            "size": n,
            "angles": args.angles,
            "detectors": n_det,
            "operator": match args.operator { Operator::MatrixFree => "matrix-free", Operator::Csr => "csr" },
            "iterations": args.iterations,
            "repeats": args.repeats,
            "threads": threads,
            "cpu_s_per_iter": json_f64(median(&cpu)),
            "wall_s_per_iter": json_f64(median(&wall)),
            "cpu_s_per_iter_runs": cpu.iter().map(|&v| json_f64(v)).collect::<Vec<_>>(),
            "wall_s_per_iter_runs": wall.iter().map(|&v| json_f64(v)).collect::<Vec<_>>(),
            "setup_wall_s": json_f64(setup_seconds),
            "csr_bytes_estimate": csr_bytes,
            "peak_rss_bytes": peak,
        }))
    })
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    match run(&args) {
        Ok(line) => println!("{line}"),
        Err(msg) => {
            eprintln!("tomo_timing: {msg}");
            std::process::exit(1);
        }
    }
}
