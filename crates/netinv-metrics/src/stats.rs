//! Summary statistics of the studies: mean, sample standard deviation, 95% confidence
//! intervals of the mean (normal and Student-t), Pearson correlation, paired differences
//! and the exact sign-flip (permutation) test of paired differences. Sums are in f64, in
//! the order of the input.
//!
//! ```text
//! mean        m  = sum x_i / n
//! sample sd   s  = sqrt( sum (x_i - m)^2 / (n - 1) )
//! 95% CI      m +- z s / sqrt(n),  z = 1.96 (normal)  or  z = t_{0.975, n-1} (Student)
//! Pearson     r  = sum (a - ma)(b - mb) / sqrt( sum (a - ma)^2  sum (b - mb)^2 )
//! sign flip   p  = #{ signs e in {-1, 1}^n : |sum e_i d_i| >= |sum d_i| } / 2^n
//! ```
//!
//! ```
//! use netinv_metrics::stats::{mean, mean_ci95_t, sign_flip_test};
//!
//! let gain = [0.4, 1.1, 0.3, 0.9, 0.7];
//! assert!((mean(&gain) - 0.68).abs() < 1e-12);
//! let ci = mean_ci95_t(&gain);
//! assert!(ci.low() > 0.0); // the whole interval is above zero
//! // All five gains positive: only the all-plus and all-minus signs reach |sum|.
//! assert_eq!(sign_flip_test(&gain)?, 2.0 / 32.0);
//! # Ok::<(), netinv_metrics::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The largest sample [`sign_flip_test`] enumerates exactly (2^24 sign patterns).
pub const SIGN_FLIP_MAX_N: usize = 24;

/// The 97.5% quantile of the standard normal distribution, rounded as the studies use it.
pub const Z_975: f64 = 1.96;

/// A mean with the half-width of its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanCi {
    /// The sample mean (NaN for no values).
    pub mean: f64,
    /// The half-width of the interval (NaN for fewer than two values).
    pub half_width: f64,
}

impl MeanCi {
    /// The lower end, `mean - half_width`.
    pub fn low(&self) -> f64 {
        self.mean - self.half_width
    }

    /// The upper end, `mean + half_width`.
    pub fn high(&self) -> f64 {
        self.mean + self.half_width
    }
}

/// The arithmetic mean; NaN for an empty slice.
pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

/// The smallest and the largest value (`(inf, -inf)` for an empty slice; NaNs are skipped).
pub fn min_max(v: &[f64]) -> (f64, f64) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

/// The sample variance (divisor `n - 1`) around the mean `m` of `v`.
fn sample_variance(v: &[f64], m: f64) -> f64 {
    v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() as f64 - 1.0)
}

/// The sample standard deviation (divisor `n - 1`); NaN for fewer than two values.
pub fn sample_std(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return f64::NAN;
    }
    sample_variance(v, mean(v)).sqrt()
}

/// The mean and `z * s / sqrt(n)` (the half-width of a CI with quantile `z`).
fn mean_ci_with(v: &[f64], z: impl Fn(usize) -> f64) -> MeanCi {
    let m = mean(v);
    if v.len() < 2 {
        return MeanCi {
            mean: m,
            half_width: f64::NAN,
        };
    }
    let n = v.len() as f64;
    MeanCi {
        mean: m,
        half_width: z(v.len() - 1) * (sample_variance(v, m) / n).sqrt(),
    }
}

/// The mean and the normal-approximation 95% CI, half-width `1.96 s / sqrt(n)` (what the
/// CT study reports; fine for n of 50 and more).
pub fn mean_ci95_normal(v: &[f64]) -> MeanCi {
    mean_ci_with(v, |_| Z_975)
}

/// The mean and the Student-t 95% CI, half-width `t_{0.975, n-1} s / sqrt(n)` (for small
/// samples such as a handful of seeds).
pub fn mean_ci95_t(v: &[f64]) -> MeanCi {
    mean_ci_with(v, |df| t_quantile(0.975, df as f64))
}

/// `a[i] - b[i]` for each pair.
///
/// # Errors
/// [`Error::InvalidConfig`] when the lengths differ.
pub fn paired_differences(a: &[f64], b: &[f64]) -> Result<Vec<f64>> {
    if a.len() != b.len() {
        return Err(Error::InvalidConfig {
            field: "b",
            reason: format!("{} values to pair with {}", b.len(), a.len()),
        });
    }
    Ok(a.iter().zip(b).map(|(x, y)| x - y).collect())
}

/// The two-sided p-value of the exact sign-flip (permutation) test of paired differences
/// `d` against a symmetric distribution around zero: the fraction of the `2^n` sign
/// patterns whose sum is at least as far from zero as the observed sum (ties within
/// `1e-9` of the observed absolute sum count, so that equal sums reached in another order
/// are not lost to rounding). Zero differences take part (each doubles the patterns
/// without changing sums).
///
/// # Errors
/// [`Error::InvalidConfig`] for no differences, a non-finite one, or more than
/// [`SIGN_FLIP_MAX_N`].
pub fn sign_flip_test(d: &[f64]) -> Result<f64> {
    if d.is_empty() || d.len() > SIGN_FLIP_MAX_N {
        return Err(Error::InvalidConfig {
            field: "d",
            reason: format!("{} differences, need 1..={SIGN_FLIP_MAX_N}", d.len()),
        });
    }
    if let Some(x) = d.iter().find(|x| !x.is_finite()) {
        return Err(Error::InvalidConfig {
            field: "d",
            reason: format!("difference {x} is not finite"),
        });
    }
    let observed = d.iter().sum::<f64>().abs();
    let scale = d.iter().map(|x| x.abs()).sum::<f64>().max(1.0);
    let threshold = observed - 1e-9 * scale;
    let patterns = 1u64 << d.len();
    let extreme = (0..patterns)
        .filter(|mask| {
            let s: f64 = d
                .iter()
                .enumerate()
                .map(|(i, &x)| if mask >> i & 1 == 1 { -x } else { x })
                .sum();
            s.abs() >= threshold
        })
        .count();
    Ok(extreme as f64 / patterns as f64)
}

/// Pearson correlation of two equally long slices (the shorter length is used); 0 when
/// either has zero variance or the slices are empty.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    if n == 0.0 {
        return 0.0;
    }
    let ma = a.iter().sum::<f64>() / n;
    let mb = b.iter().sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa <= 0.0 || sbb <= 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// The `p` quantile of Student's t distribution with `df > 0` degrees of freedom, by
/// bisection on [`student_t_cdf`] (to about 1e-13); NaN for `p` outside (0, 1) or a
/// non-positive `df`.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    if !(p > 0.0 && p < 1.0 && df > 0.0) {
        return f64::NAN;
    }
    if p < 0.5 {
        return -t_quantile(1.0 - p, df);
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while student_t_cdf(hi, df) < p {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if student_t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-15 * hi {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The distribution function of Student's t with `df` degrees of freedom,
/// `P(T <= t) = 1 - I_{df / (df + t^2)}(df / 2, 1 / 2) / 2` for `t >= 0` (symmetric below),
/// with `I` the regularised incomplete beta function.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * incomplete_beta(df / (df + t * t), 0.5 * df, 0.5);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// `ln Gamma(x)` for `x > 0` (Lanczos, g = 7, 9 terms; relative error about 1e-15).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Gamma(x) Gamma(1 - x) = pi / sin(pi x).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let series = C[1..]
        .iter()
        .enumerate()
        .fold(C[0], |acc, (i, c)| acc + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

/// The regularised incomplete beta function `I_x(a, b)` (continued fraction, modified
/// Lentz; Numerical Recipes 6.4), for `x` in [0, 1] and `a, b > 0`.
fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    // The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the
    // symmetry I_x(a, b) = 1 - I_{1-x}(b, a) otherwise.
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_fraction(x, a, b) / a
    } else {
        1.0 - ln_front.exp() * beta_fraction(1.0 - x, b, a) / b
    }
}

/// The continued fraction of [`incomplete_beta`].
fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_std_and_min_max_known_values() {
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&v), 5.0);
        // sum of squared deviations 32, n - 1 = 7 (numpy: np.std(v, ddof=1) = 2.138089935299395)
        assert!((sample_std(&v) - 2.138_089_935_299_395).abs() < 1e-15);
        assert_eq!(min_max(&v), (2.0, 9.0));
        assert!(mean(&[]).is_nan());
        assert!(sample_std(&[1.0]).is_nan());
    }

    #[test]
    fn normal_ci_is_the_ct_studys_formula_bit_for_bit() {
        // The CT study's mean_ci: 1.96 * sqrt(var / n) with var = sum (x - m)^2 / (n - 1).
        let v = [0.1, 0.7, 0.35, 0.2, 0.95, 0.4];
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
        let ci = mean_ci95_normal(&v);
        assert_eq!(ci.mean.to_bits(), m.to_bits());
        assert_eq!(ci.half_width.to_bits(), (1.96 * (var / n).sqrt()).to_bits());
        assert!(mean_ci95_normal(&[3.0]).half_width.is_nan());
        assert!(mean_ci95_normal(&[]).mean.is_nan());
    }

    #[test]
    fn t_quantiles_match_closed_forms_and_tables() {
        // Closed forms: df 1 (Cauchy) t = tan(pi (p - 1/2)); df 2 t = (2p - 1) / sqrt(2 p (1 - p)).
        let p: f64 = 0.975;
        let df1 = (std::f64::consts::PI * (p - 0.5)).tan();
        let df2 = (2.0 * p - 1.0) / (2.0 * p * (1.0 - p)).sqrt();
        assert!((t_quantile(p, 1.0) - df1).abs() < 1e-11 * df1);
        assert!((t_quantile(p, 2.0) - df2).abs() < 1e-12 * df2);
        assert!((df2 - 4.302_652_729_749_464).abs() < 1e-14);
        // Table values (scipy.stats.t.ppf, 6 decimals).
        for (p, df, expected) in [
            (0.975, 4.0, 2.776_445),
            (0.975, 9.0, 2.262_157),
            (0.975, 29.0, 2.045_230),
            (0.975, 1000.0, 1.962_339),
            (0.9, 3.0, 1.637_744),
            (0.025, 9.0, -2.262_157),
        ] {
            let got = t_quantile(p, df);
            assert!((got - expected).abs() < 6e-7, "p {p}, df {df}: {got}");
        }
        // scipy.stats.t.cdf(1.5, 5) = 0.903048 (6 decimals); symmetric around 0.
        assert!((student_t_cdf(1.5, 5.0) - 0.903_048).abs() < 6e-7);
        assert!((student_t_cdf(-1.5, 5.0) + student_t_cdf(1.5, 5.0) - 1.0).abs() < 1e-14);
        assert!(t_quantile(1.0, 3.0).is_nan() && t_quantile(0.5, 0.0).is_nan());
    }

    #[test]
    fn t_ci_known_values() {
        // x = 1..=10: mean 5.5, s = sqrt(55 / 6); half-width t_{0.975, 9} s / sqrt(10) with
        // t_{0.975, 9} = 2.262157 (table): 2.165851.
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        let ci = mean_ci95_t(&v);
        assert_eq!(ci.mean, 5.5);
        let expected = t_quantile(0.975, 9.0) * (55.0f64 / 6.0 / 10.0).sqrt();
        assert_eq!(ci.half_width.to_bits(), expected.to_bits());
        assert!((ci.half_width - 2.165_851).abs() < 1e-6, "{ci:?}");
        assert!((ci.low() - 3.334_149).abs() < 1e-6);
        assert!(ci.high() > ci.low());
    }

    #[test]
    fn sign_flip_known_values() {
        // d = (1, 2, 3, 4): only the all-plus and all-minus patterns reach |10|: 2 / 16.
        assert_eq!(sign_flip_test(&[1.0, 2.0, 3.0, 4.0]).unwrap(), 0.125);
        // d = (1, -1, 2): sums 4, 0, 2, -2, 2, -2, 0, -4; |s| >= 2 for 6 of 8.
        assert_eq!(sign_flip_test(&[1.0, -1.0, 2.0]).unwrap(), 0.75);
        // A zero difference doubles the patterns without changing the p-value.
        assert_eq!(sign_flip_test(&[1.0, 2.0, 3.0, 4.0, 0.0]).unwrap(), 0.125);
        // Sums equal up to rounding count as ties: 0.1 + 0.2 vs 0.3.
        assert_eq!(sign_flip_test(&[0.1, 0.2, -0.3]).unwrap(), 1.0);
        assert!(sign_flip_test(&[]).is_err());
        assert!(sign_flip_test(&[f64::NAN]).is_err());
        assert!(sign_flip_test(&[1.0; SIGN_FLIP_MAX_N + 1]).is_err());
    }

    #[test]
    fn paired_differences_and_pearson() {
        assert_eq!(
            paired_differences(&[3.0, 1.0], &[1.0, 1.5]).unwrap(),
            vec![2.0, -0.5]
        );
        assert!(paired_differences(&[1.0], &[1.0, 2.0]).is_err());
        assert!((pearson(&[1., 2., 3.], &[2., 4., 6.]) - 1.0).abs() < 1e-12);
        assert!((pearson(&[1., 2., 3.], &[3., 2., 1.]) + 1.0).abs() < 1e-12);
        assert_eq!(pearson(&[1., 1., 1.], &[1., 2., 3.]), 0.0);
        // x = (1, 2, 3, 4), y = (1, 3, 2, 4): scipy.stats.pearsonr gives r = 0.8.
        assert!((pearson(&[1., 2., 3., 4.], &[1., 3., 2., 4.]) - 0.8).abs() < 1e-12);
    }
}
