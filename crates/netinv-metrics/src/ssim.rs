//! Structural similarity (SSIM), matching `skimage.metrics.structural_similarity`.

use std::ops::Range;

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::pixel::{check_data_range, check_pair};
use crate::{Error, Result};

/// The largest window radius accepted by [`SsimConfig::validate`] (a 2001x2001 window).
const MAX_RADIUS: usize = 1000;

/// The sliding window that weights the local statistics of SSIM.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SsimWindow {
    /// A normalised, truncated Gaussian, as `scipy.ndimage.gaussian_filter`: radius
    /// `r = floor(truncate * sigma + 0.5)`, taps `w_k ∝ exp(-k^2 / (2 sigma^2))` for
    /// `k = -r..=r`, summing to 1. Side length `2 r + 1`.
    Gaussian {
        /// Standard deviation in pixels (Wang et al. 2004: 1.5); finite and > 0.
        sigma: f64,
        /// Truncation in standard deviations (scikit-image: 3.5, giving 11 taps at sigma 1.5);
        /// finite and > 0.
        truncate: f64,
    },
    /// A `size x size` box of equal weights `1 / size^2`, as `scipy.ndimage.uniform_filter`.
    Uniform {
        /// Side length; odd and >= 1 (>= 3 with sample covariance).
        size: usize,
    },
}

impl SsimWindow {
    /// Half the side length: `(size - 1) / 2`. This is also the border that SSIM crops.
    pub fn radius(&self) -> usize {
        match *self {
            // As scipy: int(truncate * sigma + 0.5); the cast floors (and saturates).
            SsimWindow::Gaussian { sigma, truncate } => (truncate * sigma + 0.5) as usize,
            SsimWindow::Uniform { size } => size.saturating_sub(1) / 2,
        }
    }

    /// Side length of the window.
    pub fn size(&self) -> usize {
        match *self {
            SsimWindow::Gaussian { .. } => 2 * self.radius() + 1,
            SsimWindow::Uniform { size } => size,
        }
    }

    /// The 1-D taps (the 2-D window is their outer product), summing to 1.
    pub fn taps(&self) -> Vec<f64> {
        match *self {
            SsimWindow::Gaussian { sigma, .. } => {
                let r = self.radius() as isize;
                let s2 = sigma * sigma;
                let phi: Vec<f64> = (-r..=r)
                    .map(|k| (-0.5 / s2 * (k * k) as f64).exp())
                    .collect();
                let sum: f64 = phi.iter().sum();
                phi.into_iter().map(|p| p / sum).collect()
            }
            SsimWindow::Uniform { size } => vec![1.0 / size as f64; size],
        }
    }
}

/// Parameters of [`ssim`] and [`ssim_map`].
///
/// The default is [`SsimConfig::gaussian`], the setting of Wang et al. (2004).
/// [`SsimConfig::uniform`]`(7)` is scikit-image's default setting.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SsimConfig {
    /// The window weighting the local means, variances and covariance.
    pub window: SsimWindow,
    /// Luminance stabiliser: `C1 = (k1 * data_range)^2`. Default 0.01; finite and > 0.
    pub k1: f64,
    /// Contrast stabiliser: `C2 = (k2 * data_range)^2`. Default 0.03; finite and > 0.
    pub k2: f64,
    /// The span of possible pixel values (1.0 for images in [0, 1], 255.0 for 8-bit
    /// images). Default 1.0; finite and > 0.
    pub data_range: f64,
    /// Normalise (co)variances by `N - 1` instead of `N`, with `N = size^2` the number of
    /// window pixels (scikit-image's `use_sample_covariance`). Default false.
    pub sample_covariance: bool,
}

impl Default for SsimConfig {
    fn default() -> Self {
        Self::gaussian()
    }
}

impl SsimConfig {
    /// Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5 (truncated at 3.5 sigma),
    /// population covariance, K1 = 0.01, K2 = 0.03, data range 1.0.
    ///
    /// Equals `structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
    /// use_sample_covariance=False, data_range=1.0)` in scikit-image.
    pub fn gaussian() -> Self {
        Self {
            window: SsimWindow::Gaussian {
                sigma: 1.5,
                truncate: 3.5,
            },
            k1: 0.01,
            k2: 0.03,
            data_range: 1.0,
            sample_covariance: false,
        }
    }

    /// A `size x size` uniform window with sample covariance, K1 = 0.01, K2 = 0.03, data
    /// range 1.0. `uniform(7)` is scikit-image's default,
    /// `structural_similarity(x, y, data_range=1.0)`.
    ///
    /// The size is checked by [`SsimConfig::validate`] (called by [`ssim`]): odd and >= 3.
    pub fn uniform(size: usize) -> Self {
        Self {
            window: SsimWindow::Uniform { size },
            sample_covariance: true,
            ..Self::gaussian()
        }
    }

    /// The same configuration with another data range.
    pub fn with_data_range(self, data_range: f64) -> Self {
        Self { data_range, ..self }
    }

    /// Width of the border that [`ssim`] leaves out of its mean: `(size - 1) / 2`.
    pub fn crop_width(&self) -> usize {
        self.window.radius()
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field: sigma or truncate not finite and > 0, a
    /// window radius above 1000, a zero or even uniform size, a uniform size of 1 with
    /// sample covariance (`N - 1 = 0`), k1, k2 or data_range not finite and > 0.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, reason: String| Err(Error::InvalidConfig { field, reason });
        match self.window {
            SsimWindow::Gaussian { sigma, truncate } => {
                if !(sigma.is_finite() && sigma > 0.0) {
                    return invalid(
                        "window.sigma",
                        format!("must be finite and > 0, got {sigma}"),
                    );
                }
                if !(truncate.is_finite() && truncate > 0.0) {
                    return invalid(
                        "window.truncate",
                        format!("must be finite and > 0, got {truncate}"),
                    );
                }
                if truncate * sigma + 0.5 > (MAX_RADIUS + 1) as f64 {
                    return invalid(
                        "window.sigma",
                        format!(
                            "window radius truncate * sigma = {} exceeds {MAX_RADIUS}",
                            truncate * sigma
                        ),
                    );
                }
                if self.sample_covariance && self.window.size() == 1 {
                    return invalid(
                        "sample_covariance",
                        "needs a window of more than one pixel (truncate * sigma >= 0.5)".into(),
                    );
                }
            }
            SsimWindow::Uniform { size } => {
                if size == 0 || size % 2 == 0 {
                    return invalid("window.size", format!("must be odd and >= 1, got {size}"));
                }
                if size > 2 * MAX_RADIUS + 1 {
                    return invalid(
                        "window.size",
                        format!("must be at most {}, got {size}", 2 * MAX_RADIUS + 1),
                    );
                }
                if self.sample_covariance && size == 1 {
                    return invalid(
                        "sample_covariance",
                        "needs a window of more than one pixel (size >= 3)".into(),
                    );
                }
            }
        }
        for (field, k) in [("k1", self.k1), ("k2", self.k2)] {
            if !(k.is_finite() && k > 0.0) {
                return invalid(field, format!("must be finite and > 0, got {k}"));
            }
        }
        check_data_range(self.data_range)
    }
}

/// Mean structural similarity of two images `[rows, cols]` (Wang et al. 2004), equal to
/// `skimage.metrics.structural_similarity` (0.26) with the matching settings.
///
/// With `w` the window of `cfg` (taps summing to 1) applied to the whole image with
/// `reflect` boundaries (`d c b a | a b c d | d c b a`, as scipy.ndimage), `x` the reference
/// and `y` the estimate:
///
/// ```text
/// mu_x = w * x,   mu_y = w * y
/// v_x  = n (w * x^2 - mu_x^2),   v_y = n (w * y^2 - mu_y^2),   v_xy = n (w * xy - mu_x mu_y)
/// n    = N / (N - 1) with sample covariance (N = size^2 pixels), else 1
/// C1   = (k1 data_range)^2,   C2 = (k2 data_range)^2
/// S    = (2 mu_x mu_y + C1)(2 v_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(v_x + v_y + C2))
/// ssim = mean of S over rows pad..rows-pad, cols pad..cols-pad,  pad = (size - 1) / 2
/// ```
///
/// All arithmetic is in f64. The result lies in [-1, 1]; it is 1 for identical images and
/// symmetric in its arguments.
///
/// # Errors
/// [`Error::InvalidConfig`] from [`SsimConfig::validate`]; [`Error::Shape`],
/// [`Error::Empty`], [`Error::NonFinite`] as for [`crate::mse`];
/// [`Error::SmallerThanWindow`] if `rows` or `cols` is below the window size (11 for the
/// Gaussian default).
///
/// # Examples
/// ```
/// use netinv_metrics::{ssim, SsimConfig, ndarray::Array2};
/// let x = Array2::from_shape_fn((32, 32), |(i, j)| ((i * j) % 7) as f32 / 7.0);
/// let y = x.mapv(|v| 0.9 * v + 0.05);
/// let s = ssim(x.view(), y.view(), &SsimConfig::gaussian()).unwrap();
/// assert!(s > 0.9 && s < 1.0);
/// assert!((ssim(x.view(), x.view(), &SsimConfig::uniform(7)).unwrap() - 1.0).abs() < 1e-12);
/// ```
pub fn ssim(
    reference: ArrayView2<f32>,
    estimate: ArrayView2<f32>,
    cfg: &SsimConfig,
) -> Result<f64> {
    check_inputs(&reference, &estimate, cfg)?;
    let (rows, cols) = reference.dim();
    let pad = cfg.crop_width();
    let (row_range, col_range) = (pad..rows - pad, pad..cols - pad);
    let count = (row_range.len() * col_range.len()) as f64;
    let mut total = 0.0_f64;
    ssim_rows(&reference, &estimate, cfg, row_range, col_range, |_, s| {
        total += s.iter().sum::<f64>();
    });
    Ok(total / count)
}

/// The full SSIM map `[rows, cols]`: the per-pixel `S` of [`ssim`] (see the formula there),
/// equal to scikit-image's `structural_similarity(..., full=True)[1]`.
///
/// The map covers the whole image, its border included (computed with reflected
/// boundaries); [`ssim`] is the mean of this map over the interior
/// `[pad..rows-pad, pad..cols-pad]` with `pad = cfg.crop_width() = (size - 1) / 2` (5 for
/// the Gaussian default, 3 for `uniform(7)`). Values are computed in f64 and stored as f32.
///
/// # Errors
/// As [`ssim`].
///
/// # Examples
/// ```
/// use netinv_metrics::{ssim, ssim_map, SsimConfig, ndarray::{s, Array2}};
/// let x = Array2::from_shape_fn((16, 20), |(i, j)| ((i + 2 * j) % 5) as f32 / 5.0);
/// let y = x.mapv(|v| v * v);
/// let cfg = SsimConfig::gaussian();
/// let map = ssim_map(x.view(), y.view(), &cfg).unwrap();
/// assert_eq!(map.dim(), (16, 20));
/// let p = cfg.crop_width() as isize;
/// let interior = map.slice(s![p..-p, p..-p]);
/// let mean = interior.iter().map(|&v| f64::from(v)).sum::<f64>() / interior.len() as f64;
/// assert!((mean - ssim(x.view(), y.view(), &cfg).unwrap()).abs() < 1e-6);
/// ```
pub fn ssim_map(
    reference: ArrayView2<f32>,
    estimate: ArrayView2<f32>,
    cfg: &SsimConfig,
) -> Result<Array2<f32>> {
    check_inputs(&reference, &estimate, cfg)?;
    let (rows, cols) = reference.dim();
    let mut map = Array2::<f32>::zeros((rows, cols));
    ssim_rows(&reference, &estimate, cfg, 0..rows, 0..cols, |i, s| {
        for (m, &v) in map.row_mut(i).iter_mut().zip(s) {
            *m = v as f32;
        }
    });
    Ok(map)
}

fn check_inputs(
    reference: &ArrayView2<f32>,
    estimate: &ArrayView2<f32>,
    cfg: &SsimConfig,
) -> Result<()> {
    cfg.validate()?;
    check_pair(reference, estimate)?;
    let (rows, cols) = reference.dim();
    let window = cfg.window.size();
    if rows < window || cols < window {
        return Err(Error::SmallerThanWindow {
            shape: [rows, cols],
            window,
        });
    }
    Ok(())
}

/// The index that scipy's `reflect` mode reads for position `i` (possibly outside
/// `0..n`), valid for `-n <= i < 2n`.
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let j = if i < 0 {
        -i - 1
    } else if i >= n {
        2 * n - i - 1
    } else {
        i
    };
    j as usize
}

/// `out[j] += w * src[j]` for all `j`.
#[inline]
fn axpy(out: &mut [f64], w: f64, src: &[f64]) {
    for (o, &s) in out.iter_mut().zip(src) {
        *o += w * s;
    }
}

/// `out[j] += w * (a[j] + b[j])` for all `j`.
#[inline]
fn axpy2(out: &mut [f64], w: f64, a: &[f64], b: &[f64]) {
    for ((o, &s), &t) in out.iter_mut().zip(a).zip(b) {
        *o += w * (s + t);
    }
}

/// Correlates the five signals in `src` (each of length `n + 2 r`) with the symmetric
/// `taps` (length `2 r + 1`), writing `n` values from `offset` on into each of `out`.
fn correlate(out: &mut [&mut [f64]; 5], src: &[Vec<f64>; 5], taps: &[f64], offset: usize) {
    let r = taps.len() / 2;
    for (o, s) in out.iter_mut().zip(src) {
        let n = o.len();
        o.fill(0.0);
        // Symmetric taps: pair k with 2r - k, halving the multiplications.
        for (k, &w) in taps[..r].iter().enumerate() {
            let a = &s[offset + k..offset + k + n];
            let b = &s[offset + 2 * r - k..offset + 2 * r - k + n];
            axpy2(o, w, a, b);
        }
        axpy(o, taps[r], &s[offset + r..offset + r + n]);
    }
}

/// Computes the SSIM map on `row_range x col_range` and hands each row to `sink`
/// (row index, values for `col_range`). Preconditions (checked by the callers): same shape,
/// finite values, the image at least as large as the window, a valid config.
fn ssim_rows<F: FnMut(usize, &[f64])>(
    x: &ArrayView2<f32>,
    y: &ArrayView2<f32>,
    cfg: &SsimConfig,
    row_range: Range<usize>,
    col_range: Range<usize>,
    mut sink: F,
) {
    let (rows, cols) = x.dim();
    let taps = cfg.window.taps();
    let r = taps.len() / 2;
    let nc = col_range.len();
    let c0 = col_range.start;

    // Horizontal pass: x, y, x^2, y^2, xy of one row, correlated along the row, kept for
    // the columns of `col_range` only, in a ring of the last 2r + 1 rows (every row the
    // vertical window reads, reflected ones included, lies among them).
    let ring = 2 * r + 1;
    let mut planes: [Vec<f64>; 5] = std::array::from_fn(|_| vec![0.0; ring * nc]);
    let mut padded: [Vec<f64>; 5] = std::array::from_fn(|_| vec![0.0; cols + 2 * r]);
    let mut horizontal = |i: usize, planes: &mut [Vec<f64>; 5]| {
        {
            let [px, py, pxx, pyy, pxy] = &mut padded;
            for ((p, q), (&a, &b)) in px[r..r + cols]
                .iter_mut()
                .zip(&mut py[r..r + cols])
                .zip(x.row(i).iter().zip(y.row(i).iter()))
            {
                *p = f64::from(a);
                *q = f64::from(b);
            }
            for t in 0..r {
                px[r - 1 - t] = px[r + t];
                py[r - 1 - t] = py[r + t];
                px[r + cols + t] = px[r + cols - 1 - t];
                py[r + cols + t] = py[r + cols - 1 - t];
            }
            for j in 0..cols + 2 * r {
                let (a, b) = (px[j], py[j]);
                pxx[j] = a * a;
                pyy[j] = b * b;
                pxy[j] = a * b;
            }
        }
        let slot = i % ring;
        let range = slot * nc..(slot + 1) * nc;
        let [p0, p1, p2, p3, p4] = planes;
        let mut out = [
            &mut p0[range.clone()],
            &mut p1[range.clone()],
            &mut p2[range.clone()],
            &mut p3[range.clone()],
            &mut p4[range],
        ];
        correlate(&mut out, &padded, &taps, c0);
    };
    let mut computed = 0;

    // Vertical pass, one output row at a time, then the SSIM formula.
    let n_window = (taps.len() * taps.len()) as f64;
    let cov_norm = if cfg.sample_covariance {
        n_window / (n_window - 1.0)
    } else {
        1.0
    };
    let c1 = (cfg.k1 * cfg.data_range).powi(2);
    let c2 = (cfg.k2 * cfg.data_range).powi(2);
    let mut acc: [Vec<f64>; 5] = std::array::from_fn(|_| vec![0.0; nc]);
    let mut s_row = vec![0.0_f64; nc];
    for i in row_range {
        while computed <= (i + r).min(rows - 1) {
            horizontal(computed, &mut planes);
            computed += 1;
        }
        for (a, plane) in acc.iter_mut().zip(&planes) {
            a.fill(0.0);
            let row = |k: usize| {
                let slot = reflect(i as isize + k as isize - r as isize, rows) % ring;
                &plane[slot * nc..(slot + 1) * nc]
            };
            for (k, &w) in taps[..r].iter().enumerate() {
                axpy2(a, w, row(k), row(2 * r - k));
            }
            axpy(a, taps[r], row(r));
        }
        let [ux, uy, uxx, uyy, uxy] = &acc;
        for (j, s) in s_row.iter_mut().enumerate() {
            let (mx, my) = (ux[j], uy[j]);
            let vx = cov_norm * (uxx[j] - mx * mx);
            let vy = cov_norm * (uyy[j] - my * my);
            let vxy = cov_norm * (uxy[j] - mx * my);
            let a1 = 2.0 * mx * my + c1;
            let a2 = 2.0 * vxy + c2;
            let b1 = mx * mx + my * my + c1;
            let b2 = vx + vy + c2;
            *s = (a1 * a2) / (b1 * b2);
        }
        sink(i, &s_row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array2};

    fn pattern(rows: usize, cols: usize, phase: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            (((i * 7 + j * 3 + phase) % 13) as f32 / 13.0) * 0.8 + 0.1
        })
    }

    /// Slow reference: the 2-D window applied pixel by pixel with reflected indices.
    fn slow_map(x: &Array2<f32>, y: &Array2<f32>, cfg: &SsimConfig) -> Array2<f64> {
        let taps = cfg.window.taps();
        let r = taps.len() / 2;
        let (rows, cols) = x.dim();
        let n = (taps.len() * taps.len()) as f64;
        let norm = if cfg.sample_covariance {
            n / (n - 1.0)
        } else {
            1.0
        };
        let c1 = (cfg.k1 * cfg.data_range).powi(2);
        let c2 = (cfg.k2 * cfg.data_range).powi(2);
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            let mut m = [0.0_f64; 5];
            for (di, wi) in taps.iter().enumerate() {
                for (dj, wj) in taps.iter().enumerate() {
                    let si = reflect(i as isize + di as isize - r as isize, rows);
                    let sj = reflect(j as isize + dj as isize - r as isize, cols);
                    let (a, b) = (f64::from(x[[si, sj]]), f64::from(y[[si, sj]]));
                    let w = wi * wj;
                    for (acc, v) in m.iter_mut().zip([a, b, a * a, b * b, a * b]) {
                        *acc += w * v;
                    }
                }
            }
            let [ux, uy, uxx, uyy, uxy] = m;
            let vx = norm * (uxx - ux * ux);
            let vy = norm * (uyy - uy * uy);
            let vxy = norm * (uxy - ux * uy);
            (2.0 * ux * uy + c1) * (2.0 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        })
    }

    #[test]
    fn gaussian_taps_match_scipy() {
        // scipy.ndimage._gaussian_kernel1d(1.5, 0, 5), printed with repr().
        let scipy = [
            0.00102838008447911,
            0.007598758135239185,
            0.03600077212843083,
            0.10936068950970002,
            0.2130055377112537,
            0.26601172486179436,
        ];
        let taps = SsimConfig::gaussian().window.taps();
        assert_eq!(taps.len(), 11);
        for (k, want) in scipy.iter().enumerate() {
            assert!((taps[k] - want).abs() < 1e-15, "tap {k}");
            assert_eq!(taps[k], taps[10 - k]);
        }
        assert!((taps.iter().sum::<f64>() - 1.0).abs() < 1e-15);
    }

    #[test]
    fn window_sizes_and_crop() {
        assert_eq!(SsimConfig::gaussian().window.size(), 11);
        assert_eq!(SsimConfig::gaussian().crop_width(), 5);
        assert_eq!(SsimConfig::uniform(7).window.size(), 7);
        assert_eq!(SsimConfig::uniform(7).crop_width(), 3);
        assert_eq!(SsimConfig::default(), SsimConfig::gaussian());
        let g = SsimWindow::Gaussian {
            sigma: 1.0,
            truncate: 4.0,
        };
        assert_eq!(g.size(), 9);
    }

    #[test]
    fn fast_map_equals_slow_reference() {
        let x = pattern(13, 19, 0);
        let y = pattern(13, 19, 5).mapv(|v| v * v);
        for cfg in [
            SsimConfig::gaussian(),
            SsimConfig::uniform(7),
            SsimConfig::uniform(3).with_data_range(2.0),
            SsimConfig {
                window: SsimWindow::Gaussian {
                    sigma: 2.0,
                    truncate: 3.0,
                },
                ..SsimConfig::gaussian()
            },
        ] {
            let fast = ssim_map(x.view(), y.view(), &cfg).unwrap();
            let slow = slow_map(&x, &y, &cfg);
            for (f, s) in fast.iter().zip(slow.iter()) {
                assert!((f64::from(*f) - s).abs() < 1e-6, "{cfg:?}: {f} vs {s}");
            }
            let p = cfg.crop_width();
            let (rows, cols) = x.dim();
            let crop = slow.slice(s![p..rows - p, p..cols - p]);
            let mean = crop.sum() / crop.len() as f64;
            let got = ssim(x.view(), y.view(), &cfg).unwrap();
            assert!((got - mean).abs() < 1e-12, "{cfg:?}: {got} vs {mean}");
        }
    }

    #[test]
    fn window_as_large_as_the_image() {
        // An 11x11 image leaves a single pixel after cropping.
        let x = pattern(11, 11, 1);
        let y = pattern(11, 11, 2);
        let cfg = SsimConfig::gaussian();
        let map = slow_map(&x, &y, &cfg);
        let got = ssim(x.view(), y.view(), &cfg).unwrap();
        assert!((got - map[[5, 5]]).abs() < 1e-12);
    }

    #[test]
    fn works_on_transposed_views() {
        let x = pattern(20, 14, 0);
        let y = pattern(20, 14, 3);
        let (xt, yt) = (x.t().to_owned(), y.t().to_owned());
        let cfg = SsimConfig::uniform(7);
        let a = ssim(x.t(), y.t(), &cfg).unwrap();
        let b = ssim(xt.view(), yt.view(), &cfg).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn constant_images_give_the_luminance_term() {
        let x = Array2::from_elem((12, 12), 0.2_f32);
        let y = Array2::from_elem((12, 12), 0.7_f32);
        let c1 = 0.01_f64.powi(2);
        let (a, b) = (f64::from(0.2_f32), f64::from(0.7_f32));
        let want = (2.0 * a * b + c1) / (a * a + b * b + c1);
        let got = ssim(x.view(), y.view(), &SsimConfig::gaussian()).unwrap();
        assert!((got - want).abs() < 1e-9);
    }

    #[test]
    fn error_shape_mismatch() {
        let x = Array2::<f32>::zeros((16, 16));
        let y = Array2::<f32>::zeros((16, 17));
        let err = ssim(x.view(), y.view(), &SsimConfig::gaussian()).unwrap_err();
        assert_eq!(
            err,
            Error::Shape {
                reference: [16, 16],
                estimate: [16, 17]
            }
        );
        assert!(err.to_string().contains("shape mismatch"));
        assert!(ssim_map(x.view(), y.view(), &SsimConfig::gaussian()).is_err());
    }

    #[test]
    fn error_smaller_than_window() {
        let x = Array2::<f32>::zeros((10, 40));
        let err = ssim(x.view(), x.view(), &SsimConfig::gaussian()).unwrap_err();
        assert_eq!(
            err,
            Error::SmallerThanWindow {
                shape: [10, 40],
                window: 11
            }
        );
        assert!(ssim(x.view(), x.view(), &SsimConfig::uniform(7)).is_ok());
        let x = Array2::<f32>::zeros((6, 6));
        assert!(matches!(
            ssim_map(x.view(), x.view(), &SsimConfig::uniform(7)),
            Err(Error::SmallerThanWindow { window: 7, .. })
        ));
    }

    #[test]
    fn error_empty_images() {
        let x = Array2::<f32>::zeros((0, 0));
        assert!(matches!(
            ssim(x.view(), x.view(), &SsimConfig::gaussian()),
            Err(Error::Empty { shape: [0, 0] })
        ));
    }

    #[test]
    fn error_nan_input() {
        let x = pattern(12, 12, 0);
        let mut y = x.clone();
        y[[3, 4]] = f32::NAN;
        assert!(matches!(
            ssim(x.view(), y.view(), &SsimConfig::gaussian()),
            Err(Error::NonFinite {
                image: "estimate",
                row: 3,
                col: 4,
                ..
            })
        ));
        assert!(matches!(
            ssim_map(y.view(), x.view(), &SsimConfig::uniform(7)),
            Err(Error::NonFinite {
                image: "reference",
                ..
            })
        ));
    }

    fn config_error(cfg: SsimConfig) -> &'static str {
        let x = pattern(16, 16, 0);
        match ssim(x.view(), x.view(), &cfg) {
            Err(Error::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig for {cfg:?}, got {other:?}"),
        }
    }

    #[test]
    fn error_even_or_zero_window() {
        assert_eq!(config_error(SsimConfig::uniform(8)), "window.size");
        assert_eq!(config_error(SsimConfig::uniform(0)), "window.size");
        assert_eq!(config_error(SsimConfig::uniform(1)), "sample_covariance");
        let one = SsimConfig {
            sample_covariance: false,
            ..SsimConfig::uniform(1)
        };
        assert!(one.validate().is_ok());
    }

    #[test]
    fn error_bad_data_range_and_constants() {
        for r in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                config_error(SsimConfig::gaussian().with_data_range(r)),
                "data_range"
            );
        }
        let base = SsimConfig::gaussian();
        assert_eq!(config_error(SsimConfig { k1: 0.0, ..base }), "k1");
        assert_eq!(config_error(SsimConfig { k2: -0.1, ..base }), "k2");
    }

    #[test]
    fn error_bad_gaussian_window() {
        let with = |sigma, truncate| SsimConfig {
            window: SsimWindow::Gaussian { sigma, truncate },
            ..SsimConfig::gaussian()
        };
        assert_eq!(config_error(with(0.0, 3.5)), "window.sigma");
        assert_eq!(config_error(with(f64::NAN, 3.5)), "window.sigma");
        assert_eq!(config_error(with(1.5, -1.0)), "window.truncate");
        assert_eq!(config_error(with(1e9, 3.5)), "window.sigma");
    }

    #[test]
    fn config_round_trips_through_json() {
        for cfg in [
            SsimConfig::gaussian(),
            SsimConfig::uniform(7).with_data_range(255.0),
        ] {
            let text = serde_json::to_string(&cfg).unwrap();
            let back: SsimConfig = serde_json::from_str(&text).unwrap();
            assert_eq!(back, cfg);
        }
        let text = serde_json::to_string(&SsimConfig::uniform(7)).unwrap();
        assert!(text.contains(r#""kind":"uniform","size":7"#), "{text}");
    }
}
