//! The projector's first tests: the adjoint identity, and the fast operator and the CSR
//! matrix against the slow dense reference.

use netinv_tomo::ndarray::{Array1, Array2};
use netinv_tomo::{dense_matrix, CsrOperator, LinearOperator, ParallelBeam2d, RayTransform};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random(shape: (usize, usize), rng: &mut StdRng) -> Array2<f32> {
    Array2::from_shape_fn(shape, |_| rng.random::<f32>())
}

fn dot(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

fn adjoint_error<O: LinearOperator>(op: &O, seed: u64) -> f64 {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = random(op.domain_shape(), &mut rng);
    let y = random(op.range_shape(), &mut rng);
    let lhs = dot(&op.apply(x.view()), &y);
    let rhs = dot(&x, &op.adjoint(y.view()));
    if lhs == 0.0 && rhs == 0.0 {
        return 0.0;
    }
    (lhs - rhs).abs() / lhs.abs().max(rhs.abs())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn adjoint_identity(
        rows in 1usize..24,
        cols in 1usize..24,
        n_det in 1usize..40,
        spacing in 0.3f32..2.5,
        angles in prop::collection::vec(-7.0f32..7.0, 1..12),
        seed in any::<u64>(),
    ) {
        let geom = ParallelBeam2d::new(rows, cols, angles, n_det, spacing).unwrap();
        let op = RayTransform::new(geom).unwrap();
        let err = adjoint_error(&op, seed);
        prop_assert!(err <= 1e-5, "relative error {err}");
        let csr = CsrOperator::new(&op);
        let err = adjoint_error(&csr, seed);
        prop_assert!(err <= 1e-5, "CSR relative error {err}");
    }
}

#[test]
fn adjoint_identity_at_128px() {
    let op = RayTransform::new(ParallelBeam2d::uniform(128, 128, 90, 183, 1.0).unwrap()).unwrap();
    let err = adjoint_error(&op, 5);
    println!("adjoint relative error at 128px / 90 angles: {err:.3e}");
    assert!(err <= 1e-6, "{err}");
}

fn geometries() -> Vec<ParallelBeam2d> {
    let pi = std::f32::consts::PI;
    vec![
        ParallelBeam2d::uniform(8, 8, 12, 12, 1.0).unwrap(),
        ParallelBeam2d::new(8, 8, vec![0.0, pi / 4.0, pi / 2.0, 2.3, -1.0, 4.0], 9, 0.7).unwrap(),
        ParallelBeam2d::new(8, 5, vec![0.1, 0.9, 1.6, 2.6, 3.3], 14, 1.6).unwrap(),
    ]
}

#[test]
fn fast_operator_and_csr_match_dense_reference() {
    for geom in geometries() {
        let a = dense_matrix(&geom);
        let op = RayTransform::new(geom.clone()).unwrap();
        let csr = CsrOperator::new(&op);
        let (rows, cols) = geom.image_shape();
        let (na, nd) = geom.sinogram_shape();
        // Column j of A is A e_j: compare every column, and every row through A^T e_i.
        for j in 0..rows * cols {
            let mut e = Array2::zeros((rows, cols));
            e[[j / cols, j % cols]] = 1.0;
            for (name, col) in [("fast", op.apply(e.view())), ("csr", csr.apply(e.view()))] {
                for (i, &v) in col.iter().enumerate() {
                    let d = (v as f64 - a[[i, j]]).abs();
                    assert!(d < 1e-5, "{name} A[{i}, {j}] = {v}, dense {}", a[[i, j]]);
                }
            }
        }
        for i in 0..na * nd {
            let mut e = Array2::zeros((na, nd));
            e[[i / nd, i % nd]] = 1.0;
            for (name, row) in [
                ("fast", op.adjoint(e.view())),
                ("csr", csr.adjoint(e.view())),
            ] {
                for (j, &v) in row.iter().enumerate() {
                    let d = (v as f64 - a[[i, j]]).abs();
                    assert!(d < 1e-5, "{name} A^T[{j}, {i}] = {v}, dense {}", a[[i, j]]);
                }
            }
        }
        // The CSR matrix holds the nonzeros of the dense one (plus, at most, weights of
        // rounding size where a ray passes within 1e-7 of a pixel's support edge).
        let nnz_dense = a.iter().filter(|&&v| v > 1e-7).count();
        let nnz_csr = csr.matrix().values().iter().filter(|&&v| v > 1e-7).count();
        assert_eq!(nnz_csr, nnz_dense);
    }
}

#[test]
fn dense_reference_times_an_image_equals_the_fast_projection() {
    // The dense matrix applied to an image equals the fast projection (a second, matrix-
    // vector route through ndarray's dot).
    let geom = geometries().remove(1);
    let a = dense_matrix(&geom);
    let op = RayTransform::new(geom).unwrap();
    let mut rng = StdRng::seed_from_u64(9);
    let x = random((8, 8), &mut rng);
    let xv: Array1<f64> = x.iter().map(|&v| v as f64).collect();
    let y = a.dot(&xv);
    let fast = op.apply(x.view());
    for (p, q) in fast.iter().zip(&y) {
        assert!((*p as f64 - q).abs() < 1e-5);
    }
}
