//! Criterion measurement of process CPU time, shared by the benches (`#[path]` module).
//!
//! The machine is shared and noisy, so speed comparisons are made in process CPU time at one
//! thread (see docs/performance.md); this measurement falls back to wall time where the CPU
//! clock is unavailable.

use std::time::Instant;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};

/// Process CPU time in ns (64-bit Linux), or `None` elsewhere.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
#[allow(unsafe_code)] // one FFI call; SAFETY comment at the call
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

/// Process CPU time in seconds (64-bit Linux), or `None` elsewhere: what the one-timing
/// binaries (`tomo_timing`, `models_timing`) report beside wall time.
#[allow(dead_code)] // the criterion benches use `CpuTime` only
pub fn process_cpu_seconds() -> Option<f64> {
    process_cpu_ns().map(|ns| ns as f64 * 1e-9)
}

/// Criterion measurement of process CPU time (wall time where it is unavailable).
pub struct CpuTime;

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
