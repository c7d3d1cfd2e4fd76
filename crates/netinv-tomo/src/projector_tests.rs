//! Tests of the matrix-free projector's fast loops: every SIMD path the CPU runs (portable,
//! AVX2, AVX-512) gives the same bits and satisfies the adjoint identity, the results do
//! not depend on the thread count, and they agree with the f64 reference weights
//! (`for_each_weight`, the weights of the CSR matrix).

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::joseph::SimdPath;

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
fn every_simd_path_gives_the_portable_bits() {
    let paths = SimdPath::available();
    eprintln!("SIMD paths on this CPU: {paths:?}");
    for (g, geom) in geometries().into_iter().enumerate() {
        let plain = RayTransform::new(geom)
            .unwrap()
            .with_simd(SimdPath::Portable)
            .unwrap();
        let x = random(plain.domain_shape(), g as u64);
        let y = random(plain.range_shape(), 7 + g as u64);
        let (ax, aty) = (plain.apply(x.view()), plain.adjoint(y.view()));
        for &path in &paths {
            let simd = plain.clone().with_simd(path).unwrap();
            assert_eq!(simd.simd(), path);
            assert_eq!(simd.apply(x.view()), ax, "forward {g} {path:?}");
            assert_eq!(simd.adjoint(y.view()), aty, "adjoint {g} {path:?}");
        }
    }
}

#[test]
fn every_simd_path_satisfies_the_adjoint_identity() {
    // <A x, y> = <x, A^T y> in f64 over the f32 outputs, to f32 rounding.
    for (g, geom) in geometries().into_iter().enumerate() {
        for path in SimdPath::available() {
            let op = RayTransform::new(geom.clone())
                .unwrap()
                .with_simd(path)
                .unwrap();
            let x = random(op.domain_shape(), 50 + g as u64);
            let y = random(op.range_shape(), 60 + g as u64);
            let dot = |a: &Array2<f32>, b: &Array2<f32>| -> f64 {
                a.iter().zip(b).map(|(&p, &q)| p as f64 * q as f64).sum()
            };
            let left = dot(&op.apply(x.view()), &y);
            let right = dot(&x, &op.adjoint(y.view()));
            let rel = (left - right).abs() / left.abs().max(right.abs());
            assert!(
                rel < 1e-5,
                "geometry {g} {path:?}: {left} vs {right} ({rel:e})"
            );
        }
    }
}

#[test]
fn simd_paths_are_checked_and_named() {
    for path in SimdPath::available() {
        assert_eq!(SimdPath::from_name(path.name()).unwrap(), path);
    }
    assert!(SimdPath::from_name("sse9").is_err());
    assert_eq!(SimdPath::available()[0], SimdPath::Portable);
    assert_eq!(*SimdPath::available().last().unwrap(), SimdPath::detect());
    let op = RayTransform::new(ParallelBeam2d::uniform(8, 8, 4, 12, 1.0).unwrap()).unwrap();
    for path in [SimdPath::Avx2, SimdPath::Avx512] {
        assert_eq!(op.clone().with_simd(path).is_ok(), path.is_supported());
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
