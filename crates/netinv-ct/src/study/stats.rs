//! Per-image metrics and their summaries (mean and 95% confidence interval per arm and
//! setting).

use ndarray::ArrayView2;
use netinv_metrics::{mse, psnr, ssim, SsimConfig};
use serde::{Deserialize, Serialize};

use super::method::ARMS;
use super::Setting;
use crate::Result;

/// PSNR is capped at this many dB (an exact reconstruction has an infinite PSNR).
pub const PSNR_CAP: f64 = 100.0;

/// How the 95% confidence interval is computed (written to `config.json`).
pub const CI95_RULE: &str = "1.96 * sample sd / sqrt(n)";

/// The metrics of one reconstruction: a row of `per_image.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerImage {
    /// The arm's index in [`ARMS`].
    pub arm: usize,
    /// The test digit's index.
    pub image: usize,
    /// Projection angles of the setting.
    pub n_angles: usize,
    /// Photons per ray (`None`: noiseless).
    pub noise_i0: Option<f64>,
    /// Mean squared error against the truth.
    pub mse: f64,
    /// PSNR in dB (data range 1), capped at [`PSNR_CAP`].
    pub psnr: f64,
    /// SSIM (Gaussian window).
    pub ssim: f64,
}

/// The summary of one arm at one setting: a row of `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The method's name.
    pub method: String,
    /// The label mode's name.
    pub label_mode: String,
    /// Projection angles.
    pub n_angles: usize,
    /// Photons per ray (`None`: noiseless).
    pub noise_i0: Option<f64>,
    /// Digits summarised.
    pub n: usize,
    /// Mean MSE.
    pub mse_mean: f64,
    /// Half-width of the 95% CI of the MSE.
    pub mse_ci95: f64,
    /// Mean PSNR (dB).
    pub psnr_mean: f64,
    /// Half-width of the 95% CI of the PSNR (dB).
    pub psnr_ci95: f64,
    /// Mean SSIM.
    pub ssim_mean: f64,
    /// Half-width of the 95% CI of the SSIM.
    pub ssim_ci95: f64,
}

/// `(mse, psnr, ssim)` of `rec` against `truth` (PSNR with data range 1, capped at
/// [`PSNR_CAP`]; SSIM with the Gaussian window).
///
/// # Errors
/// [`crate::Error::Metrics`] if the shapes differ.
pub fn metrics(truth: ArrayView2<f32>, rec: ArrayView2<f32>) -> Result<(f64, f64, f64)> {
    let m = mse(truth, rec)?;
    let p = psnr(truth, rec, 1.0)?.min(PSNR_CAP);
    let s = ssim(truth, rec, &SsimConfig::gaussian())?;
    Ok((m, p, s))
}

/// The mean and the half-width of its 95% confidence interval, `1.96 s / sqrt(n)` with the
/// sample standard deviation `s` (NaN for fewer than two values; both NaN when empty):
/// [`netinv_metrics::stats::mean_ci95_normal`].
pub fn mean_ci(v: &[f64]) -> (f64, f64) {
    let ci = netinv_metrics::stats::mean_ci95_normal(v);
    (ci.mean, ci.half_width)
}

/// One [`Row`] per setting and arm (settings in the given order, arms in [`ARMS`] order),
/// skipping arms without results at a setting.
pub fn summarize(settings: &[Setting], per_image: &[PerImage]) -> Vec<Row> {
    let mut rows = Vec::new();
    for setting in settings {
        for (a, arm) in ARMS.iter().enumerate() {
            let sel: Vec<&PerImage> = per_image
                .iter()
                .filter(|r| {
                    r.arm == a && r.n_angles == setting.n_angles && r.noise_i0 == setting.noise
                })
                .collect();
            if sel.is_empty() {
                continue;
            }
            let col =
                |f: fn(&PerImage) -> f64| mean_ci(&sel.iter().map(|r| f(r)).collect::<Vec<_>>());
            let (mse_mean, mse_ci95) = col(|r| r.mse);
            let (psnr_mean, psnr_ci95) = col(|r| r.psnr);
            let (ssim_mean, ssim_ci95) = col(|r| r.ssim);
            rows.push(Row {
                method: arm.method.name().into(),
                label_mode: arm.label_mode.name().into(),
                n_angles: setting.n_angles,
                noise_i0: setting.noise,
                n: sel.len(),
                mse_mean,
                mse_ci95,
                psnr_mean,
                psnr_ci95,
                ssim_mean,
                ssim_ci95,
            });
        }
    }
    rows
}

/// A summary metric of the study, for tables and plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// PSNR in dB.
    Psnr,
    /// SSIM.
    Ssim,
    /// Mean squared error.
    Mse,
}

impl Metric {
    /// Every metric.
    pub const ALL: [Metric; 3] = [Self::Psnr, Self::Ssim, Self::Mse];

    /// `psnr`, `ssim` or `mse` (file names).
    pub fn name(self) -> &'static str {
        match self {
            Self::Psnr => "psnr",
            Self::Ssim => "ssim",
            Self::Mse => "mse",
        }
    }

    /// The axis label with the unit.
    pub fn axis_label(self) -> &'static str {
        match self {
            Self::Psnr => "PSNR (dB)",
            Self::Ssim => "SSIM (1 = identical)",
            Self::Mse => "MSE (intensity^2, range [0, 1])",
        }
    }

    /// The row's mean and CI half-width of this metric (a CI that is not finite, from a
    /// single digit, as 0).
    pub fn of(self, r: &Row) -> (f64, f64) {
        let (m, c) = match self {
            Self::Psnr => (r.psnr_mean, r.psnr_ci95),
            Self::Ssim => (r.ssim_mean, r.ssim_ci95),
            Self::Mse => (r.mse_mean, r.mse_ci95),
        };
        (m, if c.is_finite() { c } else { 0.0 })
    }
}

/// `none` for noiseless data, else the photon count as `1e3`.
pub fn noise_name(noise: Option<f64>) -> String {
    noise.map_or("none".to_string(), |v| format!("{v:.0e}"))
}

/// Parses a noise level: `none` (or `0`, `inf`) for noiseless data, else photons per ray,
/// finite and > 0.
///
/// # Errors
/// [`crate::Error::InvalidConfig`] for anything else.
pub fn parse_noise(value: &str) -> Result<Option<f64>> {
    let v = value.trim().to_lowercase();
    if v == "none" || v == "0" || v == "inf" {
        return Ok(None);
    }
    match v.parse::<f64>() {
        Ok(f) if f > 0.0 && f.is_finite() => Ok(Some(f)),
        _ => Err(crate::error::invalid(
            "noise",
            format!("a noise level is photons per ray > 0 or `none`, got `{value}`"),
        )),
    }
}

/// The rows as a Markdown table (noise, angles, method, label mode, n, and each metric's
/// mean +- 95% CI).
pub fn markdown_table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| noise | angles | method | label | n | PSNR (dB) | SSIM | MSE |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.2} +- {:.2} | {:.3} +- {:.3} | {:.4} +- {:.4} |\n",
            noise_name(r.noise_i0),
            r.n_angles,
            r.method,
            r.label_mode,
            r.n,
            r.psnr_mean,
            r.psnr_ci95,
            r.ssim_mean,
            r.ssim_ci95,
            r.mse_mean,
            r.mse_ci95
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_levels_parse_and_print() {
        assert_eq!(parse_noise("none").unwrap(), None);
        assert_eq!(parse_noise(" 1e3").unwrap(), Some(1000.0));
        assert_eq!(noise_name(Some(1000.0)), "1e3");
        for bad in ["-5", "nan", "x", "1e400"] {
            assert!(parse_noise(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mean_ci_known_values() {
        let (m, c) = mean_ci(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        // sample variance 5/3, n = 4
        assert!((c - 1.96 * (5.0f64 / 3.0 / 4.0).sqrt()).abs() < 1e-15);
        assert!(mean_ci(&[]).0.is_nan());
        let (m, c) = mean_ci(&[7.0]);
        assert_eq!(m, 7.0);
        assert!(c.is_nan());
    }

    #[test]
    fn summarize_groups_by_arm_and_setting() {
        let row = |arm, image, psnr| PerImage {
            arm,
            image,
            n_angles: 4,
            noise_i0: None,
            mse: 0.0,
            psnr,
            ssim: 1.0,
        };
        let per_image = [row(1, 0, 10.0), row(1, 1, 20.0), row(0, 0, 5.0)];
        let settings = [Setting {
            index: 0,
            n_angles: 4,
            noise: None,
        }];
        let rows = summarize(&settings, &per_image);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].method.as_str(), rows[0].n), ("fbp", 1));
        assert_eq!((rows[1].method.as_str(), rows[1].n), ("sirt100", 2));
        assert_eq!(rows[1].psnr_mean, 15.0);
    }
}
