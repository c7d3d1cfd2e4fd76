//! Helpers for tests across the netinv crates: central differences and closeness checks.

/// Central-difference gradient of `f` at `x` with step `h`:
///
/// ```text
/// g_i = (f(x + h e_i) - f(x - h e_i)) / (2 h)
/// ```
///
/// # Examples
/// ```
/// let g = netinv_core::testing::central_diff(|x| x[0] * x[0] + 3.0 * x[1], &[2.0, 5.0], 1e-4);
/// assert!((g[0] - 4.0).abs() < 1e-6 && (g[1] - 3.0).abs() < 1e-6);
/// ```
pub fn central_diff<F>(mut f: F, x: &[f64], h: f64) -> Vec<f64>
where
    F: FnMut(&[f64]) -> f64,
{
    let mut point = x.to_vec();
    (0..x.len())
        .map(|i| {
            point[i] = x[i] + h;
            let up = f(&point);
            point[i] = x[i] - h;
            let down = f(&point);
            point[i] = x[i];
            (up - down) / (2.0 * h)
        })
        .collect()
}

/// Whether `|a - b| <= atol + rtol * |b|` for every pair; the message names the first
/// offending index.
///
/// # Errors
/// A description of the first pair that is not close, or of a length mismatch.
pub fn check_close(a: &[f64], b: &[f64], rtol: f64, atol: f64) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("lengths differ: {} vs {}", a.len(), b.len()));
    }
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let close = (x - y).abs() <= atol + rtol * y.abs();
        if !close {
            return Err(format!("index {i}: {x} vs {y} (rtol {rtol}, atol {atol})"));
        }
    }
    Ok(())
}

/// Asserts [`check_close`].
///
/// # Panics
/// If any pair is not close, naming it.
///
/// # Examples
/// ```
/// netinv_core::testing::assert_close(&[1.0, 2.0], &[1.0, 2.0 + 1e-9], 1e-6, 0.0);
/// ```
#[track_caller]
pub fn assert_close(a: &[f64], b: &[f64], rtol: f64, atol: f64) {
    if let Err(msg) = check_close(a, b, rtol, atol) {
        panic!("not close: {msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn central_diff_is_exact_on_quadratics() {
        let g = central_diff(|x| 0.5 * x[0] * x[0] - x[0] * x[1], &[1.5, -2.0], 1e-3);
        assert_close(&g, &[1.5 + 2.0, -1.5], 1e-9, 1e-9);
    }

    #[test]
    fn check_close_catches_difference_and_nan() {
        assert!(check_close(&[1.0], &[1.1], 1e-3, 0.0).is_err());
        assert!(check_close(&[f64::NAN], &[1.0], 1e-3, 1.0).is_err());
        assert!(check_close(&[1.0], &[1.0, 2.0], 1e-3, 0.0).is_err());
    }
}
