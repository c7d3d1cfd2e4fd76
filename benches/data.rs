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

#[path = "common/cpu_time.rs"]
mod cpu_time;

use cpu_time::CpuTime;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use netinv::data::Mnist;

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
