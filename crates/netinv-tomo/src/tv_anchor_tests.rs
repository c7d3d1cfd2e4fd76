//! Tests of the anchor term of [`TvPdhg::start_batch_anchored`].

use ndarray::{Array2, ArrayView2};

use crate::{CsrOperator, LinearOperator, ParallelBeam2d, RayTransform, TvConfig, TvPdhg};

fn small_problem() -> (CsrOperator, Array2<f32>, Array2<f32>) {
    let ray = RayTransform::new(ParallelBeam2d::uniform(8, 8, 3, 12, 1.0).unwrap()).unwrap();
    let op = CsrOperator::new(&ray);
    let truth = Array2::from_shape_fn((8, 8), |(r, c)| ((r * 3 + c * 5) % 7) as f32 / 7.0);
    let anchor = Array2::from_shape_fn((8, 8), |(r, c)| ((r * 5 + c * 2) % 4) as f32 / 4.0);
    (op, truth, anchor)
}

/// Solves `(A^T A + mu I) x = A^T b + mu x0` by conjugate gradients in f64.
fn closed_form(op: &CsrOperator, b: ArrayView2<f32>, x0: ArrayView2<f32>, mu: f64) -> Array2<f64> {
    let apply = |v: &Array2<f64>| -> Array2<f64> {
        let av = op.apply(v.mapv(|w| w as f32).view());
        op.adjoint(av.view()).mapv(f64::from) + v * mu
    };
    let rhs = op.adjoint(b).mapv(f64::from) + x0.mapv(f64::from) * mu;
    let mut x = Array2::<f64>::zeros(rhs.dim());
    let mut r = rhs.clone();
    let mut p = r.clone();
    let mut rr: f64 = r.iter().map(|v| v * v).sum();
    for _ in 0..200 {
        let ap = apply(&p);
        let alpha = rr / p.iter().zip(&ap).map(|(a, b)| a * b).sum::<f64>();
        x = x + &p * alpha;
        r = r - &ap * alpha;
        let next: f64 = r.iter().map(|v| v * v).sum();
        if next < 1e-20 {
            break;
        }
        p = &r + &p * (next / rr);
        rr = next;
    }
    x
}

#[test]
fn anchored_least_squares_matches_the_normal_equations() {
    let (op, truth, anchor) = small_problem();
    let b = op.apply(truth.view());
    let mu = 0.5f32;
    let solver = TvPdhg::new(TvConfig {
        weight: 0.0,
        iterations: 4000,
        ..TvConfig::default()
    })
    .unwrap();
    let mut run = solver
        .start_batch_anchored(&op, &[b.view()], &[0.0], &[anchor.view()], &[mu], None)
        .unwrap();
    while run.running() {
        run.step().unwrap();
    }
    let x = run.finish().remove(0).image;
    let want = closed_form(&op, b.view(), anchor.view(), f64::from(mu));
    let err = x
        .iter()
        .zip(&want)
        .map(|(&a, &w)| (f64::from(a) - w).abs())
        .fold(0.0, f64::max);
    assert!(err < 1e-3, "max deviation {err}");
    // the anchor pulls: the solution differs from the anchor-free least squares
    assert!(want
        .iter()
        .zip(&truth)
        .any(|(w, t)| (w - f64::from(*t)).abs() > 0.05));
}

#[test]
fn zero_anchor_weight_is_the_tv_run_bit_for_bit() {
    let (op, truth, anchor) = small_problem();
    let b = op.apply(truth.view());
    let b2 = op.apply(anchor.view());
    let solver = TvPdhg::new(TvConfig {
        iterations: 80,
        min: Some(0.0),
        max: Some(1.0),
        ..TvConfig::default()
    })
    .unwrap();
    let (sinos, weights) = ([b.view(), b2.view()], [0.02f32, 0.0]);
    let plain = solver
        .reconstruct_batch_weighted(&op, &sinos, &weights)
        .unwrap();
    let mut run = solver
        .start_batch_anchored(
            &op,
            &sinos,
            &weights,
            &[anchor.view(); 2],
            &[0.0, 0.0],
            None,
        )
        .unwrap();
    while run.running() {
        run.step().unwrap();
    }
    for (a, p) in run.finish().iter().zip(&plain) {
        assert_eq!(a.image, p.image);
    }
    // a positive weight in the same batch leaves the other image's bits alone
    let mut run = solver
        .start_batch_anchored(
            &op,
            &sinos,
            &weights,
            &[anchor.view(); 2],
            &[0.0, 3.0],
            None,
        )
        .unwrap();
    while run.running() {
        run.step().unwrap();
    }
    let mixed = run.finish();
    assert_eq!(mixed[0].image, plain[0].image);
    assert_ne!(mixed[1].image, plain[1].image);
}

#[test]
fn anchored_inputs_are_checked() {
    let (op, truth, anchor) = small_problem();
    let b = op.apply(truth.view());
    let solver = TvPdhg::new(TvConfig::default()).unwrap();
    let (s, a) = ([b.view()], [anchor.view()]);
    assert!(solver
        .start_batch_anchored(&op, &s, &[0.0], &a, &[-1.0], None)
        .is_err());
    assert!(solver
        .start_batch_anchored(&op, &s, &[0.0], &a, &[f32::NAN], None)
        .is_err());
    assert!(solver
        .start_batch_anchored(&op, &s, &[0.0], &[], &[1.0], None)
        .is_err());
    let wrong = Array2::<f32>::zeros((4, 4));
    assert!(solver
        .start_batch_anchored(&op, &s, &[0.0], &[wrong.view()], &[1.0], None)
        .is_err());
    assert!(solver
        .start_batch_anchored(&op, &s, &[0.0], &a, &[1.0], Some(&[wrong.view()]))
        .is_err());
}
