//! Properties of the image metrics on random images (proptest).

use netinv_metrics::ndarray::Array2;
use netinv_metrics::{mse, psnr, ssim, ssim_map, SsimConfig};
use proptest::prelude::*;

/// A pair of random images of the same shape, between 11x11 and 24x24, values in [0, 1].
fn image_pair() -> impl Strategy<Value = (Array2<f32>, Array2<f32>)> {
    (11usize..=24, 11usize..=24).prop_flat_map(|(rows, cols)| {
        let n = rows * cols;
        (
            prop::collection::vec(0.0f32..=1.0, n),
            prop::collection::vec(0.0f32..=1.0, n),
        )
            .prop_map(move |(a, b)| {
                (
                    Array2::from_shape_vec((rows, cols), a).unwrap(),
                    Array2::from_shape_vec((rows, cols), b).unwrap(),
                )
            })
    })
}

fn configs() -> [SsimConfig; 2] {
    [SsimConfig::gaussian(), SsimConfig::uniform(7)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn ssim_of_an_image_with_itself_is_one((x, _y) in image_pair()) {
        for cfg in configs() {
            let s = ssim(x.view(), x.view(), &cfg).unwrap();
            prop_assert!((s - 1.0).abs() < 1e-9, "{:?}: {}", cfg.window, s);
        }
    }

    #[test]
    fn ssim_is_symmetric((x, y) in image_pair()) {
        for cfg in configs() {
            let a = ssim(x.view(), y.view(), &cfg).unwrap();
            let b = ssim(y.view(), x.view(), &cfg).unwrap();
            prop_assert!((a - b).abs() < 1e-12, "{} vs {}", a, b);
        }
    }

    #[test]
    fn ssim_lies_in_minus_one_one((x, y) in image_pair(), flip in any::<bool>()) {
        // Flipping the estimate (1 - y) makes negative correlations likely.
        let y = if flip { y.mapv(|v| 1.0 - v) } else { y };
        for cfg in configs() {
            let s = ssim(x.view(), y.view(), &cfg).unwrap();
            prop_assert!((-1.0 - 1e-9..=1.0 + 1e-9).contains(&s), "{}", s);
            let map = ssim_map(x.view(), y.view(), &cfg).unwrap();
            prop_assert!(map.iter().all(|v| (-1.0 - 1e-6..=1.0 + 1e-6).contains(v)));
        }
    }

    #[test]
    fn ssim_is_invariant_to_scaling_with_the_data_range((x, y) in image_pair(), scale in 0.5f32..300.0) {
        let (xs, ys) = (x.mapv(|v| v * scale), y.mapv(|v| v * scale));
        for cfg in configs() {
            let a = ssim(x.view(), y.view(), &cfg).unwrap();
            let b = ssim(xs.view(), ys.view(), &cfg.with_data_range(f64::from(scale))).unwrap();
            prop_assert!((a - b).abs() < 1e-5, "{} vs {}", a, b);
        }
    }

    #[test]
    fn mse_is_non_negative_symmetric_and_zero_on_itself((x, y) in image_pair()) {
        let e = mse(x.view(), y.view()).unwrap();
        prop_assert!(e >= 0.0);
        prop_assert_eq!(e, mse(y.view(), x.view()).unwrap());
        prop_assert_eq!(mse(x.view(), x.view()).unwrap(), 0.0);
    }

    #[test]
    fn psnr_is_consistent_with_mse((x, y) in image_pair(), range in 0.5f64..300.0) {
        let e = mse(x.view(), y.view()).unwrap();
        let p = psnr(x.view(), y.view(), range).unwrap();
        if e == 0.0 {
            prop_assert_eq!(p, f64::INFINITY);
        } else {
            let want = 10.0 * (range * range / e).log10();
            prop_assert!((p - want).abs() < 1e-9, "{} vs {}", p, want);
            // And back: mse = range^2 10^(-psnr / 10).
            let back = range * range * 10f64.powf(-p / 10.0);
            prop_assert!((back - e).abs() <= 1e-9 * e.max(1e-12), "{} vs {}", back, e);
        }
    }
}
