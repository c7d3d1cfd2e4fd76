//! SIRT, FBP and TV/PDHG behaviour beyond the golden files: convergence, the monitor,
//! the least-squares limit against a Cholesky solve of the normal equations (and, with the
//! `lapack-tests` feature, against LAPACK), and bad input.

#[cfg(feature = "lapack-tests")]
use ndarray_linalg::LeastSquaresSvd;
use netinv_core::{IterState, Monitor, Termination};
use netinv_tomo::ndarray::{Array1, Array2};
use netinv_tomo::{
    dense_matrix, shepp_logan, Error, Fbp, FbpConfig, LinearOperator, ParallelBeam2d, RayTransform,
    Reconstruction, Sirt, SirtConfig, TvConfig, TvPdhg,
};

fn op(rows: usize, angles: usize, n_det: usize) -> RayTransform {
    RayTransform::new(ParallelBeam2d::uniform(rows, rows, angles, n_det, 1.0).unwrap()).unwrap()
}

fn rel(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    let den: f64 = b.iter().map(|&y| (y as f64).powi(2)).sum();
    (num / den).sqrt()
}

/// The least-squares test problem: an 8x8 image, 12 angles x 12 detectors (144 equations,
/// 64 unknowns, full column rank), with inconsistent data (a deterministic perturbation, so
/// the residual is not zero). Returns the dense matrix, the operator and the data.
fn least_squares_problem() -> (Array2<f64>, RayTransform, Array2<f32>) {
    let geom = ParallelBeam2d::uniform(8, 8, 12, 12, 1.0).unwrap();
    let a = dense_matrix(&geom);
    let op = RayTransform::new(geom).unwrap();
    let truth = shepp_logan(8, 8).unwrap();
    let mut b = op.apply(truth.view());
    b.indexed_iter_mut()
        .for_each(|((i, j), v)| *v += 0.3 * ((i * 7 + j * 3) as f32).sin());
    (a, op, b)
}

/// PDHG without TV and box, run to a relative change of 1e-9 (at most 20,000 iterations).
fn pdhg_least_squares(op: &RayTransform, b: &Array2<f32>) -> Reconstruction {
    let cfg = TvConfig {
        relative_change: Some(1e-9),
        ..TvConfig::least_squares(20_000, None, None)
    };
    TvPdhg::new(cfg).unwrap().reconstruct(op, b.view()).unwrap()
}

/// Solves the normal equations `A^T A x = A^T b` in f64 by a Cholesky factorisation
/// `A^T A = L L^T` and two triangular solves (A has full column rank, so `A^T A` is
/// symmetric positive definite).
fn normal_equations_solution(a: &Array2<f64>, b: &Array1<f64>) -> Array1<f64> {
    let gram = a.t().dot(a);
    let rhs = a.t().dot(b);
    let n = gram.nrows();
    let mut l = Array2::<f64>::zeros((n, n));
    for j in 0..n {
        let d = gram[[j, j]] - (0..j).map(|k| l[[j, k]] * l[[j, k]]).sum::<f64>();
        assert!(d > 0.0, "A^T A is not positive definite at column {j}");
        l[[j, j]] = d.sqrt();
        for i in j + 1..n {
            let s = gram[[i, j]] - (0..j).map(|k| l[[i, k]] * l[[j, k]]).sum::<f64>();
            l[[i, j]] = s / l[[j, j]];
        }
    }
    let mut y = Array1::<f64>::zeros(n); // L y = rhs
    for i in 0..n {
        y[i] = (rhs[i] - (0..i).map(|k| l[[i, k]] * y[k]).sum::<f64>()) / l[[i, i]];
    }
    let mut x = Array1::<f64>::zeros(n); // L^T x = y
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| l[[k, i]] * x[k]).sum::<f64>()) / l[[i, i]];
    }
    x
}

#[test]
fn normal_equations_reference_is_a_least_squares_solution() {
    // The reference itself: the residual b - A x is orthogonal to every column of A.
    let (a, _, b) = least_squares_problem();
    let bv: Array1<f64> = b.iter().map(|&v| v as f64).collect();
    let x = normal_equations_solution(&a, &bv);
    let residual = &bv - &a.dot(&x);
    let gradient = a.t().dot(&residual);
    let scale = a.t().dot(&bv).iter().map(|v| v.abs()).fold(0.0, f64::max);
    assert!(
        residual.iter().map(|v| v * v).sum::<f64>() > 1e-3,
        "data are inconsistent"
    );
    for g in &gradient {
        assert!(g.abs() < 1e-9 * scale, "A^T (b - A x) = {g}");
    }
}

#[test]
fn pdhg_without_tv_converges_to_the_normal_equations_solution() {
    let (a, op, b) = least_squares_problem();
    let bv: Array1<f64> = b.iter().map(|&v| v as f64).collect();
    let ls = normal_equations_solution(&a, &bv);
    let ls = Array2::from_shape_vec((8, 8), ls.iter().map(|&v| v as f32).collect()).unwrap();
    let rec = pdhg_least_squares(&op, &b);
    let err = rel(&rec.image, &ls);
    println!(
        "PDHG (weight 0) vs Cholesky least squares: rel L2 {err:.3e} after {} iterations",
        rec.state.iteration
    );
    assert!(err < 1e-3, "{err}");
}

#[cfg(feature = "lapack-tests")]
#[test]
fn pdhg_without_tv_converges_to_lapack_least_squares() {
    let (a, op, b) = least_squares_problem();
    let bv: Array1<f64> = b.iter().map(|&v| v as f64).collect();
    let ls = a.least_squares(&bv).unwrap().solution;
    // the dependency-free reference agrees with LAPACK's SVD solution
    let cholesky = normal_equations_solution(&a, &bv);
    let gap = (&ls - &cholesky)
        .iter()
        .map(|v| v.abs())
        .fold(0.0, f64::max);
    assert!(gap < 1e-8, "Cholesky vs LAPACK: max difference {gap}");
    let ls = Array2::from_shape_vec((8, 8), ls.iter().map(|&v| v as f32).collect()).unwrap();
    let rec = pdhg_least_squares(&op, &b);
    let err = rel(&rec.image, &ls);
    println!(
        "PDHG (weight 0) vs LAPACK least squares: rel L2 {err:.3e} after {} iterations",
        rec.state.iteration
    );
    assert!(err < 1e-3, "{err}");
}

#[test]
fn tv_respects_the_box_and_beats_least_squares_on_few_angles() {
    let op = op(32, 12, 46);
    let truth = shepp_logan(32, 32).unwrap();
    let sino = op.apply(truth.view());
    let box_ls = TvPdhg::new(TvConfig::least_squares(1000, Some(0.0), Some(1.0)))
        .unwrap()
        .reconstruct(&op, sino.view())
        .unwrap();
    let tv = TvPdhg::new(TvConfig {
        weight: 0.01,
        iterations: 1000,
        min: Some(0.0),
        max: Some(1.0),
        ..Default::default()
    })
    .unwrap()
    .reconstruct(&op, sino.view())
    .unwrap();
    for rec in [&box_ls.image, &tv.image] {
        assert!(rec.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }
    let (e_ls, e_tv) = (rel(&box_ls.image, &truth), rel(&tv.image, &truth));
    println!("12 angles: box-LS rel err {e_ls:.3}, TV rel err {e_tv:.3}");
    assert!(e_tv < 0.5 * e_ls, "TV {e_tv} should beat box-LS {e_ls}");
    // The objective decreases overall.
    assert!(tv.state.cost.unwrap() <= tv.state.best_cost.unwrap() * 1.01);
}

#[test]
fn sirt_reports_to_the_monitor_and_stop_rules_end_it() {
    let op = op(16, 20, 24);
    let sino = op.apply(shepp_logan(16, 16).unwrap().view());
    let mut costs = Vec::new();
    let rec = {
        let mut monitor: Monitor<Array2<f32>> = Monitor::new()
            .with_observer(|s: &IterState, _: &Array2<f32>| {
                costs.push(s.cost.unwrap());
                Ok(())
            })
            .with_stop_rule(|s: &IterState| (s.iteration == 7).then_some(Termination::Converged));
        Sirt::new(SirtConfig::default())
            .unwrap()
            .reconstruct_with(&op, sino.view(), None, &mut monitor)
            .unwrap()
    };
    assert_eq!(rec.state.iteration, 7);
    assert_eq!(rec.state.termination, Some(Termination::Converged));
    assert_eq!(costs.len(), 7);
    assert!(costs.windows(2).all(|w| w[1] < w[0]), "{costs:?}");
    // Restarting from the result continues the descent.
    let more = Sirt::new(SirtConfig {
        iterations: 1,
        ..Default::default()
    })
    .unwrap()
    .reconstruct_with(
        &op,
        sino.view(),
        Some(rec.image.view()),
        &mut Monitor::new(),
    )
    .unwrap();
    assert!(more.state.cost.unwrap() < costs[6]);
}

#[test]
fn tv_relative_change_rule_stops_early() {
    let op = op(16, 10, 24);
    let sino = op.apply(shepp_logan(16, 16).unwrap().view());
    let cfg = TvConfig {
        weight: 0.1,
        iterations: 5000,
        relative_change: Some(1e-4),
        ..Default::default()
    };
    let rec = TvPdhg::new(cfg)
        .unwrap()
        .reconstruct(&op, sino.view())
        .unwrap();
    assert_eq!(rec.state.termination, Some(Termination::Converged));
    assert!(rec.state.iteration < 5000);
    assert!(rec.state.metrics["relative_change"] <= 1e-4);
}

#[test]
fn bad_input_is_an_error() {
    let op = op(8, 6, 10);
    let good = Array2::<f32>::zeros((6, 10));
    let wrong = Array2::<f32>::zeros((6, 9));
    let mut nan = good.clone();
    nan[[2, 3]] = f32::NAN;
    let sirt = Sirt::new(SirtConfig::default()).unwrap();
    let fbp = Fbp::new(FbpConfig::default()).unwrap();
    let tv = TvPdhg::new(TvConfig {
        iterations: 2,
        ..Default::default()
    })
    .unwrap();
    assert!(matches!(
        sirt.reconstruct(&op, wrong.view()),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        fbp.reconstruct(&op, wrong.view()),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        tv.reconstruct(&op, wrong.view()),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        sirt.reconstruct(&op, nan.view()),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        fbp.reconstruct(&op, nan.view()),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        tv.reconstruct(&op, nan.view()),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        op.try_adjoint(wrong.view()),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        op.try_adjoint(nan.view()),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        op.try_apply(Array2::zeros((8, 9)).view()),
        Err(Error::Shape { .. })
    ));
    let bad_init = Array2::<f32>::zeros((7, 8));
    assert!(matches!(
        sirt.reconstruct_with(&op, good.view(), Some(bad_init.view()), &mut Monitor::new()),
        Err(Error::Shape { .. })
    ));
    // lo > hi, zero iterations, bad relaxation.
    for cfg in [
        SirtConfig {
            min: Some(1.0),
            max: Some(0.0),
            ..Default::default()
        },
        SirtConfig {
            iterations: 0,
            ..Default::default()
        },
        SirtConfig {
            relaxation: 0.0,
            ..Default::default()
        },
        SirtConfig {
            max: Some(f32::INFINITY),
            ..Default::default()
        },
    ] {
        assert!(matches!(Sirt::new(cfg), Err(Error::InvalidConfig { .. })));
    }
    assert!(matches!(
        TvPdhg::new(TvConfig {
            min: Some(1.0),
            max: Some(0.0),
            ..Default::default()
        }),
        Err(Error::InvalidConfig { .. })
    ));
    // Geometry: empty angles, zero detectors or image size, non-finite angles.
    for r in [
        ParallelBeam2d::new(8, 8, vec![], 10, 1.0),
        ParallelBeam2d::new(8, 8, vec![0.0], 0, 1.0),
        ParallelBeam2d::new(0, 8, vec![0.0], 10, 1.0),
        ParallelBeam2d::new(8, 0, vec![0.0], 10, 1.0),
        ParallelBeam2d::new(8, 8, vec![0.0, f32::NAN], 10, 1.0),
        ParallelBeam2d::new(8, 8, vec![f32::NEG_INFINITY], 10, 1.0),
    ] {
        assert!(matches!(r, Err(Error::InvalidGeometry { .. })));
    }
    assert!(shepp_logan(0, 4).is_err());
}

#[test]
fn sirt_and_fbp_reconstruct_a_phantom() {
    let op = op(32, 60, 46);
    let truth = shepp_logan(32, 32).unwrap();
    let sino = op.apply(truth.view());
    let sirt = Sirt::new(SirtConfig {
        iterations: 200,
        min: Some(0.0),
        max: Some(1.0),
        ..Default::default()
    })
    .unwrap()
    .reconstruct(&op, sino.view())
    .unwrap();
    let fbp = Fbp::new(FbpConfig::default())
        .unwrap()
        .reconstruct(&op, sino.view())
        .unwrap();
    let (e_sirt, e_fbp) = (rel(&sirt.image, &truth), rel(&fbp, &truth));
    println!("32px / 60 angles: SIRT-200 rel err {e_sirt:.3}, FBP rel err {e_fbp:.3}");
    assert!(e_sirt < 0.2 && e_fbp < 0.45);
}
