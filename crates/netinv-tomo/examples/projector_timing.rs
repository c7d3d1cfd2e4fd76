//! Times one tomography workload of netinv-tomo at one size, for `tools/tomo/perf_table.py`
//! (which runs ASTRA's same workload in alternating rounds and writes the table in
//! docs/performance.md). One workload per process, so the peak memory is its own.
//!
//! ```text
//! cargo run --release -p netinv-tomo --example projector_timing -- \
//!     <project|backproject|sirt-iter|fbp> <size> <angles> <threads> <operator: fly|csr|auto> [seconds]
//! ```
//!
//! Prints one JSON line: milliseconds per call (per iteration for `sirt-iter`, a 20-iteration
//! run with its weights divided by 20, as ASTRA's `run(20)`) in process CPU time (from
//! `/proc/self/stat`, 10 ms ticks, so each measurement runs for `seconds`, default 3) and in
//! wall time, the number of calls, and the peak resident memory (`VmHWM`) in MB.

use std::time::Instant;

use netinv_tomo::ndarray::Array2;
use netinv_tomo::{
    CsrOperator, Fbp, FbpConfig, LinearOperator, ParallelBeam2d, RayTransform, Sirt, SirtConfig,
};

const SIRT_ITERS: usize = 20;

/// utime + stime of this process in seconds (Linux `/proc/self/stat`, fields 14 and 15).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

/// Peak resident set size in MB (`VmHWM` of `/proc/self/status`).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kb: f64 = line
        .split_whitespace()
        .nth(1)
        .expect("value")
        .parse()
        .expect("kB");
    kb / 1024.0
}

/// A deterministic image of uniform [0, 1) values (a 64-bit LCG; the figures do not
/// depend on the values, only on the sizes).
fn image(n: usize) -> Array2<f32> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    Array2::from_shape_fn((n, n), |_| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u64 << 24) as f32
    })
}

fn run<O: LinearOperator>(op: &O, what: &str, x: &Array2<f32>, y: &Array2<f32>) -> usize {
    match what {
        "project" => {
            std::hint::black_box(op.apply(x.view()));
            1
        }
        "backproject" => {
            std::hint::black_box(op.adjoint(y.view()));
            1
        }
        "sirt-iter" => {
            let cfg = SirtConfig {
                iterations: SIRT_ITERS,
                ..Default::default()
            };
            let sirt = Sirt::new(cfg).expect("sirt config");
            std::hint::black_box(sirt.reconstruct(op, y.view()).expect("sirt"));
            SIRT_ITERS
        }
        "fbp" => {
            let fbp = Fbp::new(FbpConfig::default()).expect("fbp config");
            std::hint::black_box(fbp.reconstruct(op, y.view()).expect("fbp"));
            1
        }
        other => panic!("unknown workload {other}"),
    }
}

fn measure<O: LinearOperator>(op: &O, what: &str, n: usize, seconds: f64) -> (f64, f64, usize) {
    let x = image(n);
    let y = op.apply(x.view());
    run(op, what, &x, &y); // warm-up
    let (c0, w0) = (cpu_seconds(), Instant::now());
    let mut calls = 0;
    while w0.elapsed().as_secs_f64() < seconds || calls == 0 {
        calls += run(op, what, &x, &y);
    }
    let cpu = (cpu_seconds() - c0) * 1e3 / calls as f64;
    (cpu, w0.elapsed().as_secs_f64() * 1e3 / calls as f64, calls)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        eprintln!("usage: projector_timing <project|backproject|sirt-iter|fbp> <size> <angles> <threads> <fly|csr> [seconds]");
        std::process::exit(2);
    }
    let what = args[0].as_str();
    let n: usize = args[1].parse().expect("size");
    let angles: usize = args[2].parse().expect("angles");
    let threads: usize = args[3].parse().expect("threads");
    let seconds: f64 = args.get(5).map_or(3.0, |s| s.parse().expect("seconds"));
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("thread pool");
    let n_det = (n as f64 * std::f64::consts::SQRT_2).ceil() as usize + 2;
    let geom = ParallelBeam2d::uniform(n, n, angles, n_det, 1.0).expect("geometry");
    let fly = RayTransform::new(geom).expect("operator");
    let build = Instant::now();
    let (cpu, wall, calls) = match args[4].as_str() {
        "fly" => measure(&fly, what, n, seconds),
        "csr" => measure(&CsrOperator::new(&fly), what, n, seconds),
        other => panic!("unknown operator {other}"),
    };
    let _ = build;
    println!(
        "{{\"what\": \"{what}\", \"size\": {n}, \"angles\": {angles}, \"threads\": {threads}, \"operator\": \"{}\", \"cpu_ms\": {cpu:.4}, \"wall_ms\": {wall:.4}, \"calls\": {calls}, \"peak_rss_mb\": {:.1}}}",
        args[4],
        peak_rss_mb()
    );
}
