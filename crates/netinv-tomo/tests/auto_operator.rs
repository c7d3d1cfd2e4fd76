//! `AutoOperator`: the CSR form at or below the memory budget and the matrix-free form
//! above it, each giving the same bits as the operator it wraps.

use netinv_tomo::ndarray::{Array2, Array3};
use netinv_tomo::{
    AutoOperator, CsrOperator, LinearOperator, ParallelBeam2d, RayTransform, DEFAULT_CSR_BUDGET,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `n x n` pixels at `angles` angles, `ceil(sqrt(2) n) + 2` detectors (the benches' sizes).
fn ray(n: usize, angles: usize) -> RayTransform {
    let n_det = (n as f64 * std::f64::consts::SQRT_2).ceil() as usize + 2;
    RayTransform::new(ParallelBeam2d::uniform(n, n, angles, n_det, 1.0).unwrap()).unwrap()
}

fn random<D: netinv_tomo::ndarray::Dimension>(
    shape: impl netinv_tomo::ndarray::ShapeBuilder<Dim = D>,
    seed: u64,
) -> netinv_tomo::ndarray::Array<f32, D> {
    let mut rng = StdRng::seed_from_u64(seed);
    netinv_tomo::ndarray::Array::from_shape_simple_fn(shape, || rng.random::<f32>())
}

fn dot(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

fn bits<'a>(a: impl IntoIterator<Item = &'a f32>) -> Vec<u32> {
    a.into_iter().map(|v| v.to_bits()).collect()
}

#[test]
fn the_choice_flips_at_the_budget() {
    let op = ray(20, 16);
    let needed = CsrOperator::required_bytes(&op);
    assert!(!AutoOperator::with_budget(op.clone(), 0).is_csr());
    assert!(!AutoOperator::with_budget(op.clone(), needed - 1).is_csr());
    assert!(AutoOperator::with_budget(op.clone(), needed).is_csr());
    assert!(AutoOperator::with_budget(op.clone(), usize::MAX).is_csr());
    match AutoOperator::with_budget(op, needed) {
        AutoOperator::Csr(csr) => assert_eq!(csr.memory_bytes(), needed),
        AutoOperator::MatrixFree(_) => panic!("expected the CSR form"),
    }
}

#[test]
fn default_budget_keeps_digits_and_128px_as_matrices_and_not_256px() {
    // the CT study's densest digit operator and the 128 px bench size fit ...
    for (n, angles) in [(28, 90), (128, 90)] {
        let op = ray(n, angles);
        let needed = CsrOperator::required_bytes(&op);
        assert!(needed <= DEFAULT_CSR_BUDGET, "{n} px / {angles}: {needed}");
        assert!(AutoOperator::new(op).is_csr(), "{n} px / {angles}");
    }
    // ... 256 px at 360 angles (681 MB) does not, and is never built
    let op = ray(256, 360);
    assert!(CsrOperator::required_bytes(&op) > 2 * DEFAULT_CSR_BUDGET);
    assert!(!AutoOperator::new(op).is_csr());
}

#[test]
fn adjoint_identity_in_both_forms() {
    for budget in [0, usize::MAX] {
        let op = AutoOperator::with_budget(ray(24, 20), budget);
        assert_eq!(op.is_csr(), budget > 0);
        for seed in 0..4 {
            let x = random(op.domain_shape(), seed);
            let y = random(op.range_shape(), seed + 100);
            let lhs = dot(&op.apply(x.view()), &y);
            let rhs = dot(&x, &op.adjoint(y.view()));
            let err = (lhs - rhs).abs() / lhs.abs().max(rhs.abs());
            assert!(err <= 1e-6, "budget {budget}, seed {seed}: {err}");
        }
    }
}

/// Every method of `auto` gives the same bits as the same method of `inner`.
fn assert_same_as<O: LinearOperator>(auto: &AutoOperator, inner: &O) {
    assert_eq!(auto.domain_shape(), inner.domain_shape());
    assert_eq!(auto.range_shape(), inner.range_shape());
    let x = random(inner.domain_shape(), 1);
    let y = random(inner.range_shape(), 2);
    assert_eq!(bits(&auto.apply(x.view())), bits(&inner.apply(x.view())));
    assert_eq!(
        bits(&auto.adjoint(y.view())),
        bits(&inner.adjoint(y.view()))
    );
    let (mut a, mut b) = (Array2::zeros(y.dim()), Array2::zeros(y.dim()));
    auto.apply_into(x.view(), a.view_mut());
    inner.apply_into(x.view(), b.view_mut());
    assert_eq!(bits(&a), bits(&b));
    let (mut a, mut b) = (Array2::zeros(x.dim()), Array2::zeros(x.dim()));
    auto.adjoint_into(y.view(), a.view_mut());
    inner.adjoint_into(y.view(), b.view_mut());
    assert_eq!(bits(&a), bits(&b));
    let (rows, cols) = inner.domain_shape();
    let (angles, n_det) = inner.range_shape();
    let xs: Array3<f32> = random((rows, cols, 5), 3);
    let ys: Array3<f32> = random((angles, n_det, 5), 4);
    let (mut a, mut b) = (Array3::zeros(ys.dim()), Array3::zeros(ys.dim()));
    auto.apply_batch_into(xs.view(), a.view_mut());
    inner.apply_batch_into(xs.view(), b.view_mut());
    assert_eq!(bits(&a), bits(&b));
    let (mut a, mut b) = (Array3::zeros(xs.dim()), Array3::zeros(xs.dim()));
    auto.adjoint_batch_into(ys.view(), a.view_mut());
    inner.adjoint_batch_into(ys.view(), b.view_mut());
    assert_eq!(bits(&a), bits(&b));
    assert_eq!(
        auto.norm_estimate(20, 7).to_bits(),
        inner.norm_estimate(20, 7).to_bits()
    );
    assert_eq!(
        bits(&auto.try_apply(x.view()).unwrap()),
        bits(&inner.try_apply(x.view()).unwrap())
    );
    assert_eq!(
        bits(&auto.try_adjoint(y.view()).unwrap()),
        bits(&inner.try_adjoint(y.view()).unwrap())
    );
    assert!(auto.check_domain((rows, cols)).is_ok() && auto.check_range((angles, n_det)).is_ok());
    assert!(auto.check_domain((rows + 1, cols)).is_err());
    assert!(auto.check_range((angles, n_det + 1)).is_err());
    let mut bad = y.clone();
    bad[[0, 1]] = f32::NAN;
    assert!(auto.check_range_array(bad.view()).is_err() && auto.try_adjoint(bad.view()).is_err());
    assert!(auto.check_domain_array(x.view()).is_ok());
}

#[test]
fn auto_results_equal_the_wrapped_operator_bit_for_bit() {
    let ray = ray(24, 20);
    let csr = CsrOperator::new(&ray);
    let auto_csr = AutoOperator::with_budget(ray.clone(), usize::MAX);
    assert!(auto_csr.is_csr());
    assert_same_as(&auto_csr, &csr);
    let auto_free = AutoOperator::with_budget(ray.clone(), 0);
    assert!(!auto_free.is_csr());
    assert_same_as(&auto_free, &ray);
}
