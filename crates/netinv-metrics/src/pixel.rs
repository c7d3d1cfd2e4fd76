//! Pixel-wise metrics: mean squared error and peak signal-to-noise ratio.

use ndarray::ArrayView2;

use crate::{Error, Result};

/// Checks that two images have the same non-empty shape.
fn check_shapes(reference: &ArrayView2<f32>, estimate: &ArrayView2<f32>) -> Result<()> {
    let (r, e) = (reference.dim(), estimate.dim());
    if r != e {
        return Err(Error::Shape {
            reference: [r.0, r.1],
            estimate: [e.0, e.1],
        });
    }
    if reference.is_empty() {
        return Err(Error::Empty { shape: [r.0, r.1] });
    }
    Ok(())
}

/// Checks that two images have the same non-empty shape and only finite values.
pub(crate) fn check_pair(reference: &ArrayView2<f32>, estimate: &ArrayView2<f32>) -> Result<()> {
    check_shapes(reference, estimate)?;
    check_finite(reference, "reference")?;
    check_finite(estimate, "estimate")
}

/// Whether every value is finite (branch-free within chunks, so it vectorises).
fn all_finite(values: &[f32]) -> bool {
    values
        .chunks(256)
        .all(|c| c.iter().fold(true, |ok, v| ok & v.is_finite()))
}

fn check_finite(image: &ArrayView2<f32>, name: &'static str) -> Result<()> {
    let finite = match image.as_slice_memory_order() {
        Some(values) => all_finite(values),
        None => image.rows().into_iter().all(|row| match row.as_slice() {
            Some(values) => all_finite(values),
            None => row.iter().all(|v| v.is_finite()),
        }),
    };
    if finite {
        return Ok(());
    }
    match image.indexed_iter().find(|(_, v)| !v.is_finite()) {
        Some(((row, col), &value)) => Err(Error::NonFinite {
            image: name,
            row,
            col,
            value,
        }),
        None => Ok(()),
    }
}

/// `sum_i (a_i - b_i)^2` in f64, with eight partial sums so that it vectorises.
fn sum_squared_differences(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0.0_f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            let d = f64::from(x[k]) - f64::from(y[k]);
            acc[k] += d * d;
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// Checks that a data range is finite and positive.
pub(crate) fn check_data_range(data_range: f64) -> Result<()> {
    if data_range.is_finite() && data_range > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidConfig {
            field: "data_range",
            reason: format!("must be finite and > 0, got {data_range}"),
        })
    }
}

/// Mean squared error between two images of the same shape `[rows, cols]`.
///
/// ```text
/// mse = 1/(rows cols) * sum_ij (reference_ij - estimate_ij)^2
/// ```
///
/// Differences and sums are taken in f64; this equals
/// `skimage.metrics.mean_squared_error` on the images promoted to f64.
///
/// # Errors
/// [`Error::Shape`] if the shapes differ, [`Error::Empty`] for images without pixels,
/// [`Error::NonFinite`] if either image holds NaN or an infinity.
///
/// # Examples
/// ```
/// use netinv_metrics::{mse, ndarray::array};
/// let a = array![[0.0_f32, 1.0], [0.5, 0.5]];
/// let b = array![[0.0_f32, 0.5], [0.5, 1.0]];
/// assert!((mse(a.view(), b.view()).unwrap() - 0.125).abs() < 1e-12);
/// ```
pub fn mse(reference: ArrayView2<f32>, estimate: ArrayView2<f32>) -> Result<f64> {
    check_shapes(&reference, &estimate)?;
    let sum = match (reference.as_slice(), estimate.as_slice()) {
        (Some(a), Some(b)) => sum_squared_differences(a, b),
        _ => reference
            .rows()
            .into_iter()
            .zip(estimate.rows())
            .map(|(ra, rb)| match (ra.as_slice(), rb.as_slice()) {
                (Some(a), Some(b)) => sum_squared_differences(a, b),
                _ => ra
                    .iter()
                    .zip(rb.iter())
                    .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
                    .sum(),
            })
            .sum(),
    };
    // Any NaN or infinity in the inputs makes the sum non-finite (f32 differences cannot
    // overflow in f64), so the inputs are only scanned when that happens.
    if !sum.is_finite() {
        check_pair(&reference, &estimate)?;
    }
    Ok(sum / reference.len() as f64)
}

/// Peak signal-to-noise ratio in decibels, for images whose values span `data_range`
/// (1.0 for images in [0, 1], 255.0 for 8-bit images).
///
/// ```text
/// psnr = 10 log10(data_range^2 / mse(reference, estimate))
/// ```
///
/// Identical images have `mse = 0` and therefore `psnr = +inf` (`f64::INFINITY`), as in
/// `skimage.metrics.peak_signal_noise_ratio`; callers averaging PSNR over a set should
/// decide how to treat that case.
///
/// # Errors
/// Those of [`mse`], and [`Error::InvalidConfig`] if `data_range` is not finite and > 0.
///
/// # Examples
/// ```
/// use netinv_metrics::{psnr, ndarray::array};
/// let a = array![[0.0_f32, 1.0]];
/// let b = array![[0.1_f32, 0.9]];
/// // mse = 0.01, so psnr = 10 log10(1 / 0.01) = 20 dB
/// assert!((psnr(a.view(), b.view(), 1.0).unwrap() - 20.0).abs() < 1e-5);
/// assert_eq!(psnr(a.view(), a.view(), 1.0).unwrap(), f64::INFINITY);
/// ```
pub fn psnr(reference: ArrayView2<f32>, estimate: ArrayView2<f32>, data_range: f64) -> Result<f64> {
    check_data_range(data_range)?;
    let err = mse(reference, estimate)?;
    if err == 0.0 {
        return Ok(f64::INFINITY);
    }
    Ok(10.0 * (data_range * data_range / err).log10())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    #[test]
    fn mse_known_value() {
        let a = array![[1.0_f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let b = array![[1.0_f32, 0.0, 3.0], [4.0, 5.0, 9.0]];
        // (4 + 9) / 6
        assert!((mse(a.view(), b.view()).unwrap() - 13.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn mse_works_on_strided_views() {
        let a = Array2::from_shape_fn((4, 6), |(i, j)| (i * 6 + j) as f32);
        let b = Array2::<f32>::zeros((6, 4));
        let at = a.t();
        let expected: f64 = a.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / 24.0;
        assert!((mse(at, b.view()).unwrap() - expected).abs() < 1e-9);
    }

    #[test]
    fn mse_on_sliced_views_with_contiguous_rows() {
        let a = Array2::from_shape_fn((5, 21), |(i, j)| (i as f32 - j as f32) / 7.0);
        let b = a.mapv(|v| v * 0.5 + 0.25);
        let (va, vb) = (
            a.slice(ndarray::s![.., 2..19]),
            b.slice(ndarray::s![.., 2..19]),
        );
        let expected: f64 = va
            .iter()
            .zip(vb.iter())
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum::<f64>()
            / va.len() as f64;
        assert!((mse(va, vb).unwrap() - expected).abs() < 1e-12);
        assert!(
            (mse(va.to_owned().view(), vb.to_owned().view()).unwrap() - expected).abs() < 1e-12
        );
        let mut c = b.clone();
        c[[4, 18]] = f32::NEG_INFINITY;
        assert!(matches!(
            mse(va, c.slice(ndarray::s![.., 2..19])),
            Err(Error::NonFinite {
                image: "estimate",
                row: 4,
                col: 16,
                ..
            })
        ));
    }

    #[test]
    fn psnr_known_value_and_identical_images() {
        let a = array![[0.0_f32, 255.0]];
        let b = array![[25.5_f32, 255.0]];
        // mse = 25.5^2 / 2, psnr = 10 log10(255^2 * 2 / 25.5^2) = 20 + 10 log10(2)
        let p = psnr(a.view(), b.view(), 255.0).unwrap();
        assert!((p - (20.0 + 10.0 * 2.0_f64.log10())).abs() < 1e-9);
        assert!(psnr(a.view(), a.view(), 255.0).unwrap().is_infinite());
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        let a = Array2::<f32>::zeros((3, 4));
        let b = Array2::<f32>::zeros((4, 3));
        assert_eq!(
            mse(a.view(), b.view()),
            Err(Error::Shape {
                reference: [3, 4],
                estimate: [4, 3]
            })
        );
        assert!(matches!(
            psnr(a.view(), b.view(), 1.0),
            Err(Error::Shape { .. })
        ));
    }

    #[test]
    fn empty_images_are_an_error() {
        let a = Array2::<f32>::zeros((0, 5));
        assert_eq!(mse(a.view(), a.view()), Err(Error::Empty { shape: [0, 5] }));
    }

    #[test]
    fn non_finite_input_is_an_error() {
        let a = Array2::<f32>::zeros((3, 3));
        let mut b = a.clone();
        b[[1, 2]] = f32::NAN;
        match mse(a.view(), b.view()) {
            Err(Error::NonFinite {
                image: "estimate",
                row: 1,
                col: 2,
                value,
            }) => assert!(value.is_nan()),
            other => panic!("expected NonFinite, got {other:?}"),
        }
        b[[1, 2]] = 0.0;
        b[[0, 1]] = f32::INFINITY;
        assert!(matches!(
            psnr(b.view(), a.view(), 1.0),
            Err(Error::NonFinite {
                image: "reference",
                row: 0,
                col: 1,
                ..
            })
        ));
    }

    #[test]
    fn bad_data_range_is_an_error() {
        let a = Array2::<f32>::zeros((2, 2));
        for r in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                psnr(a.view(), a.view(), r),
                Err(Error::InvalidConfig {
                    field: "data_range",
                    ..
                })
            ));
        }
    }
}
