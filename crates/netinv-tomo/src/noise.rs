//! Seeded measurement noise for sinograms: Poisson (transmission) and additive Gaussian.

use ndarray::{Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, Poisson};

use crate::error::check_finite;
use crate::{Error, Result};

/// Poisson noise of a transmission scan with `i0` incident photons per ray:
///
/// ```text
/// n ~ Poisson(i0 exp(-s p)),   p' = -ln(max(n, 1) / i0) / s
/// ```
///
/// where `p` is the noiseless line integral (in pixel units, as [`RayTransform`] gives it)
/// and `s = attenuation_scale` converts it to optical depth (for example `1 / rows` for an
/// image spanning unit length, or the physical pixel size times the attenuation unit).
/// Counts of 0 are set to 1 so the log stays finite. Lower `i0` means more noise.
///
/// [`RayTransform`]: crate::RayTransform
///
/// # Errors
/// [`Error::InvalidConfig`] if `i0` is not in `(0, 1e18]` or `attenuation_scale` is not
/// finite and > 0; [`Error::NonFinite`] if the sinogram holds NaN or infinities.
///
/// # Examples
/// ```
/// use netinv_tomo::{ndarray::Array2, poisson_noise};
/// let clean = Array2::from_elem((4, 8), 10.0f32);
/// let a = poisson_noise(clean.view(), 1e4, 0.05, 7).unwrap();
/// let b = poisson_noise(clean.view(), 1e4, 0.05, 7).unwrap();
/// assert_eq!(a, b); // seeded
/// assert!(a.iter().all(|&v| (v - 10.0).abs() < 2.0));
/// ```
pub fn poisson_noise(
    sinogram: ArrayView2<f32>,
    i0: f64,
    attenuation_scale: f64,
    seed: u64,
) -> Result<Array2<f32>> {
    if !(i0 > 0.0 && i0 <= 1e18) {
        return Err(Error::InvalidConfig {
            field: "i0",
            reason: format!("must be in (0, 1e18], got {i0}"),
        });
    }
    if !(attenuation_scale.is_finite() && attenuation_scale > 0.0) {
        return Err(Error::InvalidConfig {
            field: "attenuation_scale",
            reason: format!("must be finite and > 0, got {attenuation_scale}"),
        });
    }
    check_finite("sinogram", sinogram.iter())?;
    let mut rng = StdRng::seed_from_u64(seed);
    Ok(sinogram.mapv(|p| {
        let mean = i0 * (-attenuation_scale * p as f64).exp();
        let n = match Poisson::new(mean) {
            Ok(dist) => dist.sample(&mut rng),
            Err(_) => 0.0, // mean underflowed to 0 (or is out of range): no photons
        };
        (-(n.max(1.0) / i0).ln() / attenuation_scale) as f32
    }))
}

/// Additive white Gaussian noise with standard deviation `sigma`: `p' = p + sigma z`,
/// `z ~ N(0, 1)` from a seeded generator.
///
/// # Errors
/// [`Error::InvalidConfig`] if `sigma` is not finite and >= 0; [`Error::NonFinite`] if
/// the sinogram holds NaN or infinities.
///
/// # Examples
/// ```
/// use netinv_tomo::{gaussian_noise, ndarray::Array2};
/// let clean = Array2::zeros((50, 50));
/// let noisy = gaussian_noise(clean.view(), 0.5, 1).unwrap();
/// let var = noisy.mapv(|v| v * v).mean().unwrap();
/// assert!((var - 0.25).abs() < 0.03);
/// ```
pub fn gaussian_noise(sinogram: ArrayView2<f32>, sigma: f64, seed: u64) -> Result<Array2<f32>> {
    let normal = Normal::new(0.0, sigma)
        .ok()
        .filter(|_| sigma.is_finite() && sigma >= 0.0)
        .ok_or_else(|| Error::InvalidConfig {
            field: "sigma",
            reason: format!("must be finite and >= 0, got {sigma}"),
        })?;
    check_finite("sinogram", sinogram.iter())?;
    let mut rng = StdRng::seed_from_u64(seed);
    Ok(sinogram.mapv(|p| (p as f64 + normal.sample(&mut rng)) as f32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_statistics_and_errors() {
        // Mean counts i0 exp(-s p) = 1e4 * exp(-0.5): the estimate's variance is about
        // 1 / (s^2 * counts).
        let clean = Array2::from_elem((100, 100), 10.0f32);
        let noisy = poisson_noise(clean.view(), 1e4, 0.05, 3).unwrap();
        let mean = noisy.mean().unwrap();
        let var = noisy.mapv(|v| (v - mean).powi(2)).mean().unwrap();
        let expected_var = 1.0 / (0.05f32.powi(2) * 1e4 * (-0.5f32).exp());
        assert!((mean - 10.0).abs() < 0.05, "{mean}");
        assert!(
            (var / expected_var - 1.0).abs() < 0.1,
            "{var} vs {expected_var}"
        );
        assert_ne!(noisy, poisson_noise(clean.view(), 1e4, 0.05, 4).unwrap());
        // A huge line integral gives no photons, clamped to one count: finite output.
        let dark = poisson_noise(Array2::from_elem((1, 1), 1e6f32).view(), 100.0, 1.0, 0).unwrap();
        assert!((dark[[0, 0]] - (100.0f32).ln()).abs() < 1e-4);
        assert!(poisson_noise(clean.view(), 0.0, 1.0, 0).is_err());
        assert!(poisson_noise(clean.view(), 1e4, f64::NAN, 0).is_err());
        let nan = Array2::from_elem((1, 1), f32::NAN);
        assert!(matches!(
            poisson_noise(nan.view(), 1e4, 1.0, 0),
            Err(Error::NonFinite { .. })
        ));
        assert!(gaussian_noise(clean.view(), -1.0, 0).is_err());
        assert!(gaussian_noise(clean.view(), f64::INFINITY, 0).is_err());
        assert!(gaussian_noise(nan.view(), 1.0, 0).is_err());
    }
}
