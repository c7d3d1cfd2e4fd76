//! Filtered backprojection, as ASTRA's CPU `FBP`: filter, then adjoint.

use std::f64::consts::PI;

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;
use serde::{Deserialize, Serialize};

use crate::error::{check_finite, check_shape};
use crate::{LinearOperator, Result};

/// The FBP filter window, applied on top of the ramp (ASTRA's names in brackets).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FbpFilter {
    /// The plain ramp (`ram-lak`).
    #[default]
    RamLak,
    /// Ramp times `sinc`: `sin(w/2) / (w/2)` (`shepp-logan`).
    SheppLogan,
    /// Ramp times `cos(w/2)` (`cosine`).
    Cosine,
    /// Ramp times `(1 + cos w) / 2` (`hann`).
    Hann,
}

/// Settings of [`Fbp`]. Default: the Ram-Lak filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FbpConfig {
    /// The filter window.
    pub filter: FbpFilter,
}

impl FbpConfig {
    /// Checks the configuration (every combination of fields is valid at present).
    ///
    /// # Errors
    /// None at present.
    pub fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Filtered backprojection exactly as ASTRA's CPU `FBP` (version 2.x):
///
/// ```text
/// N = smallest power of two >= 2 n_det;  every sinogram row is zero-padded to N
/// h[0] = 1/4,  h[i odd] = -1 / (pi min(i, N - i))^2,  h[i even > 0] = 0   (spatial Ram-Lak)
/// H[k] = 2 Re(FFT(h))[k] * window(w_k),  w_k = 2 pi min(k, N - k) / N
/// q = IFFT(FFT(row) H)[0..n_det];   x = (pi / 2) / n_angles * A^T q
/// ```
///
/// Like ASTRA it assumes angles spread evenly over a half turn and applies no
/// detector-spacing factor. Filtering runs in parallel over angles (rustfft, f64).
///
/// Reference: Kak and Slaney, "Principles of Computerized Tomographic Imaging", ch. 3.
///
/// # Examples
/// ```
/// use netinv_tomo::{shepp_logan, Fbp, FbpConfig, LinearOperator, ParallelBeam2d, RayTransform};
/// let op = RayTransform::new(ParallelBeam2d::uniform(64, 64, 90, 92, 1.0).unwrap()).unwrap();
/// let truth = shepp_logan(64, 64).unwrap();
/// let sino = op.apply(truth.view());
/// let rec = Fbp::new(FbpConfig::default()).unwrap().reconstruct(&op, sino.view()).unwrap();
/// let err: f32 = (&rec - &truth).mapv(|v| v * v).sum().sqrt();
/// assert!(err / truth.mapv(|v| v * v).sum().sqrt() < 0.4);
/// ```
#[derive(Debug, Clone)]
pub struct Fbp {
    config: FbpConfig,
}

impl Fbp {
    /// An FBP reconstructor with a checked configuration.
    ///
    /// # Errors
    /// As [`FbpConfig::validate`].
    pub fn new(config: FbpConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The frequency response `H[k]` for `k = 0..N` of the filter for `n_det` detectors.
    pub fn frequency_response(&self, n_det: usize) -> Vec<f64> {
        let n = (2 * n_det.max(1)).next_power_of_two();
        let mut h: Vec<Complex<f64>> = (0..n)
            .map(|i| {
                let v = if i == 0 {
                    0.25
                } else if i % 2 == 1 {
                    let j = i.min(n - i) as f64;
                    -1.0 / (PI * j).powi(2)
                } else {
                    0.0
                };
                Complex::new(v, 0.0)
            })
            .collect();
        FftPlanner::new().plan_fft_forward(n).process(&mut h);
        (0..n)
            .map(|k| {
                let w = 2.0 * PI * k.min(n - k) as f64 / n as f64;
                let window = if k == 0 {
                    1.0
                } else {
                    match self.config.filter {
                        FbpFilter::RamLak => 1.0,
                        FbpFilter::SheppLogan => (w / 2.0).sin() / (w / 2.0),
                        FbpFilter::Cosine => (w / 2.0).cos(),
                        FbpFilter::Hann => (1.0 + w.cos()) / 2.0,
                    }
                };
                2.0 * h[k].re * window
            })
            .collect()
    }

    /// The filtered sinogram `q` (same shape as `sinogram`), before backprojection.
    ///
    /// # Errors
    /// [`Error::NonFinite`](crate::Error::NonFinite) if the sinogram holds NaN or
    /// infinities.
    pub fn filter(&self, sinogram: ArrayView2<f32>) -> Result<Array2<f32>> {
        check_finite("sinogram", sinogram.iter())?;
        let (n_angles, n_det) = sinogram.dim();
        let response = self.frequency_response(n_det);
        let n = response.len();
        let mut planner = FftPlanner::new();
        let (fwd, inv) = (planner.plan_fft_forward(n), planner.plan_fft_inverse(n));
        let sino = sinogram.as_standard_layout();
        let src = sino.as_slice().unwrap_or(&[]);
        let mut out = vec![0.0f32; n_angles * n_det];
        out.par_chunks_mut(n_det.max(1))
            .zip(src.par_chunks(n_det.max(1)))
            .for_each_init(
                || vec![Complex::new(0.0f64, 0.0); n],
                |buf, (dst, row)| {
                    for (b, i) in buf.iter_mut().zip(0..) {
                        *b = Complex::new(if i < n_det { row[i] as f64 } else { 0.0 }, 0.0);
                    }
                    fwd.process(buf);
                    for (b, &h) in buf.iter_mut().zip(&response) {
                        *b *= h;
                    }
                    inv.process(buf);
                    for (d, b) in dst.iter_mut().zip(buf.iter()) {
                        *d = (b.re / n as f64) as f32;
                    }
                },
            );
        Ok(Array2::from_shape_vec((n_angles, n_det), out).unwrap_or_default())
    }

    /// Reconstructs an image `op.domain_shape()` from `sinogram` (`op.range_shape()`).
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) if the sinogram does not match the operator,
    /// [`Error::NonFinite`](crate::Error::NonFinite) if it holds NaN or infinities.
    pub fn reconstruct<O: LinearOperator + ?Sized>(
        &self,
        op: &O,
        sinogram: ArrayView2<f32>,
    ) -> Result<Array2<f32>> {
        check_shape("sinogram", op.range_shape(), sinogram.dim())?;
        let q = self.filter(sinogram)?;
        let scale = (std::f32::consts::PI / 2.0) / sinogram.nrows() as f32;
        Ok(op.adjoint(q.view()).mapv(|v| v * scale))
    }
}
