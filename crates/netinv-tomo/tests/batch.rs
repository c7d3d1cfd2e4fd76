//! The batched paths (`apply_batch_into`, `Sirt::reconstruct_batch`,
//! `TvPdhg::reconstruct_batch`, `TvPdhg::reconstruct_batch_weighted`) against the
//! single-image or single-weight ones they stand in for.

use netinv_core::{IterState, Termination};
use netinv_tomo::ndarray::{Array2, Array3, Axis};
use netinv_tomo::{
    shepp_logan, stack_images, unstack_images, CsrOperator, Error, LinearOperator, ParallelBeam2d,
    RayTransform, Sirt, SirtConfig, TvConfig, TvPdhg,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn ray(rows: usize, angles: usize) -> RayTransform {
    let n_det = rows * 3 / 2;
    RayTransform::new(ParallelBeam2d::uniform(rows, rows, angles, n_det, 1.0).unwrap()).unwrap()
}

/// Four different test images: the phantom, its transpose, a flipped copy and noise.
fn images(rows: usize, seed: u64) -> Vec<Array2<f32>> {
    let p = shepp_logan(rows, rows).unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let noise = Array2::from_shape_fn((rows, rows), |_| rng.random::<f32>());
    let flipped = p.slice(netinv_tomo::ndarray::s![..;-1, ..]).to_owned();
    vec![p.clone(), p.t().to_owned(), flipped, noise]
}

fn sinograms(op: &CsrOperator, images: &[Array2<f32>]) -> Vec<Array2<f32>> {
    images.iter().map(|x| op.apply(x.view())).collect()
}

/// Same iterations, costs, metrics and termination (the clocks differ).
fn assert_same_run(a: &IterState, b: &IterState) {
    assert_eq!(
        (
            a.iteration,
            a.cost,
            a.previous_cost,
            &a.metrics,
            &a.termination
        ),
        (
            b.iteration,
            b.cost,
            b.previous_cost,
            &b.metrics,
            &b.termination
        )
    );
}

#[test]
fn csr_batch_products_equal_single_products_bit_for_bit() {
    let op = CsrOperator::new(&ray(12, 7));
    // 4 and 19 images: below and above the kernel's 16 register lanes, with a remainder
    for n in [4, 19] {
        batch_products_match(&op, n);
    }
}

fn batch_products_match(op: &CsrOperator, n: usize) {
    let xs: Vec<Array2<f32>> = (0..n as u64).flat_map(|s| images(12, s)).take(n).collect();
    let views: Vec<_> = xs.iter().map(|x| x.view()).collect();
    let batch = stack_images(&views).unwrap();
    let mut y = Array3::zeros((7, 18, n));
    op.apply_batch_into(batch.view(), y.view_mut());
    for (k, x) in xs.iter().enumerate() {
        assert_eq!(y.index_axis(Axis(2), k), op.apply(x.view()));
    }
    let mut back = Array3::zeros((12, 12, n));
    op.adjoint_batch_into(y.view(), back.view_mut());
    for (k, yk) in unstack_images(y.view()).iter().enumerate() {
        assert_eq!(back.index_axis(Axis(2), k), op.adjoint(yk.view()));
    }
}

#[test]
fn default_batch_products_of_the_matrix_free_projector_match_csr() {
    let ray = ray(10, 5);
    let csr = CsrOperator::new(&ray);
    let xs = images(10, 2);
    let views: Vec<_> = xs.iter().map(|x| x.view()).collect();
    let batch = stack_images(&views).unwrap();
    let (mut a, mut b) = (Array3::zeros((5, 15, 4)), Array3::zeros((5, 15, 4)));
    ray.apply_batch_into(batch.view(), a.view_mut());
    csr.apply_batch_into(batch.view(), b.view_mut());
    assert!(a
        .iter()
        .zip(&b)
        .all(|(p, q)| (p - q).abs() <= 1e-4 * (1.0 + q.abs())));
    let (mut c, mut d) = (Array3::zeros((10, 10, 4)), Array3::zeros((10, 10, 4)));
    ray.adjoint_batch_into(a.view(), c.view_mut());
    csr.adjoint_batch_into(a.view(), d.view_mut());
    assert!(c
        .iter()
        .zip(&d)
        .all(|(p, q)| (p - q).abs() <= 1e-4 * (1.0 + q.abs())));
}

#[test]
fn batched_sirt_equals_sirt_image_by_image() {
    let op = CsrOperator::new(&ray(16, 6));
    let xs = images(16, 3);
    let sinos = sinograms(&op, &xs);
    let views: Vec<_> = sinos.iter().map(|s| s.view()).collect();
    let starts: Vec<Array2<f32>> = xs.iter().map(|x| x.mapv(|v| 0.5 * v)).collect();
    let start_views: Vec<_> = starts.iter().map(|x| x.view()).collect();
    let sirt = Sirt::new(SirtConfig {
        iterations: 30,
        min: Some(0.0),
        max: Some(1.0),
        ..Default::default()
    })
    .unwrap();
    let batch = sirt
        .reconstruct_batch(&op, &views, Some(&start_views))
        .unwrap();
    for (k, rec) in batch.iter().enumerate() {
        let single = sirt
            .reconstruct_with(&op, views[k], Some(start_views[k]), &mut Default::default())
            .unwrap();
        assert_eq!(rec.image, single.image);
        assert_same_run(&rec.state, &single.state);
    }
}

#[test]
fn batched_pdhg_equals_pdhg_image_by_image_with_its_own_stop() {
    let op = CsrOperator::new(&ray(16, 8));
    // 18 images: the batched product's register lanes and its remainder both run
    let xs: Vec<Array2<f32>> = (4..9).flat_map(|s| images(16, s)).take(18).collect();
    let sinos = sinograms(&op, &xs);
    let views: Vec<_> = sinos.iter().map(|s| s.view()).collect();
    let solver = TvPdhg::new(TvConfig {
        weight: 0.05,
        iterations: 3000,
        min: Some(0.0),
        max: Some(1.0),
        relative_change: Some(1e-4),
        ..Default::default()
    })
    .unwrap();
    let batch = solver.reconstruct_batch(&op, &views).unwrap();
    let mut stops = Vec::new();
    for (k, rec) in batch.iter().enumerate() {
        let single = solver.reconstruct(&op, views[k]).unwrap();
        assert_eq!(rec.image, single.image, "image {k}");
        assert_same_run(&rec.state, &single.state);
        assert_eq!(rec.state.termination, Some(Termination::Converged));
        stops.push(rec.state.iteration);
    }
    // the images stop at different iterations, so the per-image stop is exercised
    assert!(stops.iter().any(|&s| s != stops[0]), "{stops:?}");
}

#[test]
fn bad_batches_are_errors() {
    let op = CsrOperator::new(&ray(8, 4));
    let solver = TvPdhg::new(TvConfig::default()).unwrap();
    assert!(matches!(
        solver.reconstruct_batch(&op, &[]),
        Err(Error::Shape { .. })
    ));
    let wrong = Array2::<f32>::zeros((3, 12));
    let mut nan = Array2::<f32>::zeros((4, 12));
    nan[[1, 1]] = f32::NAN;
    for bad in [wrong.view(), nan.view()] {
        let ok = Array2::<f32>::zeros((4, 12));
        let r = solver.reconstruct_batch(&op, &[ok.view(), bad]);
        assert!(matches!(
            r,
            Err(Error::Shape { .. } | Error::NonFinite { .. })
        ));
    }
    let sirt = Sirt::new(SirtConfig::default()).unwrap();
    let b = Array2::<f32>::zeros((4, 12));
    let x = Array2::<f32>::zeros((8, 8));
    let r = sirt.reconstruct_batch(&op, &[b.view(), b.view()], Some(&[x.view()]));
    assert!(matches!(r, Err(Error::Shape { .. })));
    assert!(stack_images(&[x.view(), b.view()]).is_err());
}

#[test]
fn weighted_pdhg_batch_equals_one_batch_per_weight() {
    let op = CsrOperator::new(&ray(16, 8));
    // 5 digits x 4 weights = 20 images: register lanes and remainder; weight 0 mixes a
    // least-squares image (other step sizes, no TV) into the TV ones
    let xs: Vec<Array2<f32>> = (1..3).flat_map(|s| images(16, s)).take(5).collect();
    let sinos = sinograms(&op, &xs);
    let views: Vec<_> = sinos.iter().map(|s| s.view()).collect();
    let grid = [0.05f32, 0.0, 0.3, 0.01];
    let config = TvConfig {
        weight: 123.0, // unused: every image has its own weight
        iterations: 2000,
        min: Some(0.0),
        max: Some(1.0),
        relative_change: Some(1e-4),
        ..Default::default()
    };
    // weight-major, as a tuning run lays it out
    let all_views: Vec<_> = grid.iter().flat_map(|_| views.iter().copied()).collect();
    let weights: Vec<f32> = grid
        .iter()
        .flat_map(|&w| std::iter::repeat_n(w, views.len()))
        .collect();
    let batch = TvPdhg::new(config.clone())
        .unwrap()
        .reconstruct_batch_weighted(&op, &all_views, &weights)
        .unwrap();
    assert_eq!(batch.len(), all_views.len());
    let mut stops = Vec::new();
    for (g, &w) in grid.iter().enumerate() {
        let alone = TvPdhg::new(TvConfig {
            weight: w,
            ..config.clone()
        })
        .unwrap()
        .reconstruct_batch(&op, &views)
        .unwrap();
        for (k, single) in alone.iter().enumerate() {
            let rec = &batch[g * views.len() + k];
            assert_eq!(rec.image, single.image, "weight {w}, image {k}");
            assert_same_run(&rec.state, &single.state);
            stops.push(rec.state.iteration);
        }
    }
    // the images stop at different iterations, so the per-image stop is exercised
    assert!(stops.iter().any(|&s| s != stops[0]), "{stops:?}");
    // the weights differ in effect
    assert_ne!(batch[0].image, batch[2 * views.len()].image);
}

#[test]
fn weighted_pdhg_batch_rejects_bad_weights() {
    let op = CsrOperator::new(&ray(8, 4));
    let solver = TvPdhg::new(TvConfig::default()).unwrap();
    let b = Array2::<f32>::zeros((4, 12));
    let two = [b.view(), b.view()];
    for wrong_length in [&[0.1f32][..], &[0.1, 0.1, 0.1], &[]] {
        assert!(matches!(
            solver.reconstruct_batch_weighted(&op, &two, wrong_length),
            Err(Error::Shape { .. })
        ));
    }
    for bad in [-0.1f32, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let r = solver.reconstruct_batch_weighted(&op, &two, &[0.1, bad]);
        assert!(
            matches!(r, Err(Error::InvalidConfig { .. })),
            "weight {bad}: {r:?}"
        );
    }
    assert!(matches!(
        solver.reconstruct_batch_weighted(&op, &[], &[]),
        Err(Error::Shape { .. })
    ));
    assert!(solver
        .reconstruct_batch_weighted(&op, &two, &[0.0, 0.2])
        .is_ok());
}
