//! Inversion step times of the ONNX fixture models (compare with
//! `tools/onnx/bench_torch.py`, which times the same step in PyTorch).
//!
//! `onnx-invert-5-steps/{model}-b10-jitter2-t{threads}`: five steps of `invert_onnx`'s
//! default inversion (batch 10, targets 0..9, Adam lr 0.05, cross-entropy + 1e-3 squared
//! TV + 1e-4 ||x||^2, jitter of up to 2 px, clamp) plus the run's set-up and final forward
//! pass; divide by 5 for the time of one step (slightly high).
//!
//! `RAYON_NUM_THREADS=1 cargo bench --bench onnx`. Times are process CPU time (see
//! `benches/common/cpu_time.rs`).

#[path = "common/cpu_time.rs"]
mod cpu_time;

use std::path::PathBuf;

use candle_core::Device;
use cpu_time::CpuTime;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use netinv::core::Monitor;
use netinv::invert::{InversionConfig, Inverter, Jitter};
use netinv::onnx::OnnxNet;

/// Steps per timed iteration.
const STEPS: usize = 5;

fn threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn bench_inversion(c: &mut Criterion<CpuTime>) {
    netinv::core::retain_freed_memory();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crates/netinv-onnx/tests/fixtures");
    let targets: Vec<u32> = (0..10).collect();
    let cfg = InversionConfig {
        steps: STEPS,
        jitter: Some(Jitter {
            max_shift: 2,
            seed: 0,
        }),
        ..Default::default()
    };
    let inverter = Inverter::new(cfg).expect("valid config");
    let mut group = c.benchmark_group("onnx-invert-5-steps");
    group.sample_size(10);
    for name in ["lenet", "resnet_bn", "color32"] {
        let mut net = OnnxNet::load(dir.join(format!("{name}.onnx"))).expect("fixture loads");
        let norm = net.metadata_normalization().expect("metadata");
        net.set_normalization(norm).expect("normalisation");
        let id = BenchmarkId::from_parameter(format!("{name}-b10-jitter2-t{}", threads()));
        group.bench_function(id, |b| {
            b.iter(|| {
                inverter
                    .invert_classes(&net, &targets, None, &Device::Cpu, &mut Monitor::new())
                    .expect("inversion runs")
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = bench_inversion
}
criterion_main!(benches);
