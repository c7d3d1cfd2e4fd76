//! Data loading: decompressing and parsing the embedded MNIST digits, and one pass over the
//! 8,000 training digits in seeded batches of 64. Figures and commands in
//! docs/performance.md (## Data loading).
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo bench --bench data
//! ```
//!
//! Times are process CPU time (`clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`, as in
//! benches/metrics.rs), comparable with `time.process_time` in tools/data/bench_numpy.py and
//! not inflated when other jobs share the machine; elsewhere than 64-bit Linux, wall time.

use std::hint::black_box;
use std::time::Instant;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use netinv::data::Mnist;

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

/// Criterion measurement of process CPU time (wall time where it is unavailable).
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

fn bench_data(c: &mut Criterion<CpuTime>) {
    let mut group = c.benchmark_group("data");
    group.sample_size(20);
    group.bench_function(BenchmarkId::new("embedded-load", "8000+2000"), |b| {
        b.iter(|| black_box(Mnist::embedded().expect("embedded data")))
    });
    let mnist = Mnist::embedded().expect("embedded data");
    let train = mnist.train();
    group.bench_function(BenchmarkId::new("batches-b64", "train-8000-seed1"), |b| {
        b.iter(|| {
            let mut sum = 0usize;
            for batch in train.batches(64, Some(1)).expect("batch size > 0") {
                sum += black_box(&batch).len();
            }
            assert_eq!(sum, train.len());
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = bench_data
}
criterion_main!(benches);
