//! Process CPU time, for the run times examples and studies report beside wall time.

/// Process CPU time in seconds (user + system, all threads) from `/proc/self/stat`, or
/// `None` where that file is missing or unreadable (not Linux). Resolution: one clock tick
/// (1/100 s on every Linux configuration in use).
///
/// # Examples
/// ```
/// let start = netinv_core::process_cpu_seconds();
/// let busy: f64 = (0..1_000_000).map(|i| (i as f64).sqrt()).sum();
/// assert!(busy > 0.0);
/// if let (Some(a), Some(b)) = (start, netinv_core::process_cpu_seconds()) {
///     assert!(b >= a);
/// }
/// ```
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is parenthesised and may hold spaces: fields are counted
    // after its closing ')'. There, state is 0, utime 11 and stime 12 (in clock ticks).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::process_cpu_seconds;

    /// Busy work for up to 5 s of wall time must show at least 0.05 s of CPU time: a parser
    /// reading the wrong fields (a constant, a start time) fails here.
    #[cfg(target_os = "linux")]
    #[test]
    fn cpu_time_grows_with_work_on_linux() {
        let start = process_cpu_seconds().expect("/proc/self/stat on Linux");
        let wall = std::time::Instant::now();
        let mut x = 0u64;
        while wall.elapsed().as_secs_f64() < 5.0 && process_cpu_seconds().unwrap() - start < 0.05 {
            for i in 0..1_000_000u64 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
            }
        }
        std::hint::black_box(x);
        let used = process_cpu_seconds().unwrap() - start;
        assert!((0.05..5.0).contains(&used), "{used} s of CPU time");
    }
}
