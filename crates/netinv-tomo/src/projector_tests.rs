//! Tests of the matrix-free projector's fast loops: the AVX2 and portable loops give the
//! same bits, the results do not depend on the thread count, and they agree with the f64
//! reference weights (`for_each_weight`, the weights of the CSR matrix).

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::joseph::Kernels;

fn random(shape: (usize, usize), seed: u64) -> Array2<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array2::from_shape_fn(shape, |_| rng.random::<f32>() - 0.25)
}

/// Geometries that reach every loop: detector spacing 1 (window loops), 0.4 (rays closer
/// than a pixel: the general adjoint) and 2.5 (rays more than 2 pixels apart: the
/// gathering forward loop), a rectangle, and angles in every quadrant.
fn geometries() -> Vec<ParallelBeam2d> {
    let angles: Vec<f32> = vec![0.0, 0.3, 0.8, 1.5707964, 2.0, 2.9, 3.6, -1.2, 5.5];
    vec![
        ParallelBeam2d::uniform(37, 37, 23, 55, 1.0).unwrap(),
        ParallelBeam2d::new(20, 33, angles.clone(), 90, 0.4).unwrap(),
        ParallelBeam2d::new(31, 18, angles, 17, 2.5).unwrap(),
    ]
}

/// `A x` and `A^T y` from the f64 weights of `for_each_weight`, summed in f64.
fn reference(op: &RayTransform, x: &Array2<f32>, y: &Array2<f32>) -> (Vec<f64>, Vec<f64>) {
    let (n_angles, n_det) = op.geometry().sinogram_shape();
    let xs: Vec<f32> = x.iter().copied().collect();
    let ys: Vec<f32> = y.iter().copied().collect();
    let mut ax = vec![0.0; n_angles * n_det];
    let mut aty = vec![0.0; xs.len()];
    for a in 0..n_angles {
        for d in 0..n_det {
            let ray = a * n_det + d;
            op.for_each_weight(a, d, |p, w| {
                ax[ray] += w * xs[p] as f64;
                aty[p] += w * ys[ray] as f64;
            });
        }
    }
    (ax, aty)
}

fn max_relative(fast: &Array2<f32>, exact: &[f64]) -> f64 {
    let scale = exact.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = fast
        .iter()
        .zip(exact)
        .fold(0.0f64, |m, (&f, &e)| m.max((f as f64 - e).abs()));
    err / scale
}

#[test]
fn fast_loops_agree_with_the_f64_weights() {
    for (g, geom) in geometries().into_iter().enumerate() {
        let op = RayTransform::new(geom).unwrap();
        let x = random(op.domain_shape(), g as u64);
        let y = random(op.range_shape(), 100 + g as u64);
        let (ax, aty) = reference(&op, &x, &y);
        // Within f32 rounding of the outputs (sums over up to ~60 terms of both signs).
        let forward = max_relative(&op.apply(x.view()), &ax);
        let adjoint = max_relative(&op.adjoint(y.view()), &aty);
        assert!(forward < 1e-6, "geometry {g}: forward {forward:e}");
        assert!(adjoint < 1e-6, "geometry {g}: adjoint {adjoint:e}");
    }
}

#[test]
fn avx2_and_portable_loops_give_the_same_bits() {
    let fast = Kernels::detect();
    if fast == Kernels::Portable {
        eprintln!("no AVX2 on this CPU: only the portable loops exist here");
        return;
    }
    for (g, geom) in geometries().into_iter().enumerate() {
        let simd = RayTransform::new(geom).unwrap();
        let plain = simd.clone().with_kernels(Kernels::Portable);
        let x = random(simd.domain_shape(), g as u64);
        let y = random(simd.range_shape(), 7 + g as u64);
        assert_eq!(simd.apply(x.view()), plain.apply(x.view()), "forward {g}");
        assert_eq!(
            simd.adjoint(y.view()),
            plain.adjoint(y.view()),
            "adjoint {g}"
        );
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    // Large enough that both directions split into several parallel jobs.
    let geom = ParallelBeam2d::uniform(96, 96, 120, 138, 1.0).unwrap();
    let op = RayTransform::new(geom).unwrap();
    let x = random(op.domain_shape(), 1);
    let y = random(op.range_shape(), 2);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| (op.apply(x.view()), op.adjoint(y.view())))
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one.0, two.0, "forward");
    assert_eq!(one.1, two.1, "adjoint");
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let op = RayTransform::new(ParallelBeam2d::uniform(8, 8, 4, 12, 1.0).unwrap()).unwrap();
    assert!(op.try_apply(Array2::zeros((8, 7)).view()).is_err());
    assert!(op.try_adjoint(Array2::zeros((5, 12)).view()).is_err());
    let mut x = Array2::zeros((8, 8));
    x[[3, 4]] = f32::INFINITY;
    assert!(op.try_apply(x.view()).is_err());
}
