//! The step API: runs driven step by step give the drivers' results bit for bit, take
//! outside changes of the image between steps, and compute SIRT's weights once.

use std::sync::atomic::{AtomicUsize, Ordering};

use netinv_core::{IterState, Monitor, Termination};
use netinv_tomo::ndarray::{Array2, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3};
use netinv_tomo::{
    shepp_logan, CsrOperator, Error, LinearOperator, ParallelBeam2d, RayTransform, Sirt,
    SirtConfig, TvConfig, TvPdhg,
};

fn ray(rows: usize, angles: usize) -> RayTransform {
    RayTransform::new(ParallelBeam2d::uniform(rows, rows, angles, rows + 6, 1.0).unwrap()).unwrap()
}

fn sinograms<O: LinearOperator>(op: &O, n: usize) -> Vec<Array2<f32>> {
    let truth = shepp_logan(op.domain_shape().0, op.domain_shape().1).unwrap();
    (0..n)
        .map(|k| op.apply(truth.mapv(|v| v * (1.0 + 0.3 * k as f32)).t()))
        .collect()
}

fn sirt(iterations: usize) -> Sirt {
    Sirt::new(SirtConfig {
        iterations,
        min: Some(0.0),
        max: Some(1.2),
        relaxation: 0.9,
    })
    .unwrap()
}

/// An operator that counts its single-image and batched products.
struct Counting<O> {
    inner: O,
    single: AtomicUsize,
    batched: AtomicUsize,
}

impl<O: LinearOperator> Counting<O> {
    fn new(inner: O) -> Self {
        Self {
            inner,
            single: AtomicUsize::new(0),
            batched: AtomicUsize::new(0),
        }
    }
    fn counts(&self) -> (usize, usize) {
        (
            self.single.load(Ordering::SeqCst),
            self.batched.load(Ordering::SeqCst),
        )
    }
}

impl<O: LinearOperator> LinearOperator for Counting<O> {
    fn domain_shape(&self) -> (usize, usize) {
        self.inner.domain_shape()
    }
    fn range_shape(&self) -> (usize, usize) {
        self.inner.range_shape()
    }
    fn apply_into(&self, x: ArrayView2<f32>, y: ArrayViewMut2<f32>) {
        self.single.fetch_add(1, Ordering::SeqCst);
        self.inner.apply_into(x, y);
    }
    fn adjoint_into(&self, y: ArrayView2<f32>, x: ArrayViewMut2<f32>) {
        self.single.fetch_add(1, Ordering::SeqCst);
        self.inner.adjoint_into(y, x);
    }
    fn apply_batch_into(&self, x: ArrayView3<f32>, y: ArrayViewMut3<f32>) {
        self.batched.fetch_add(1, Ordering::SeqCst);
        self.inner.apply_batch_into(x, y);
    }
    fn adjoint_batch_into(&self, y: ArrayView3<f32>, x: ArrayViewMut3<f32>) {
        self.batched.fetch_add(1, Ordering::SeqCst);
        self.inner.adjoint_batch_into(y, x);
    }
}

#[test]
fn n_sirt_steps_equal_reconstruct_with_n_iterations_bit_for_bit() {
    let ray = ray(16, 10);
    let csr = CsrOperator::new(&ray);
    let b = sinograms(&ray, 1).remove(0);
    for n in [1, 7, 25] {
        let driven = sirt(n).reconstruct(&ray, b.view()).unwrap();
        // a run with a larger budget, stepped n times by hand
        let mut run = sirt(1000).start(&ray, b.view(), None).unwrap();
        for _ in 0..n {
            run.step().unwrap();
        }
        assert_eq!(run.image(0), driven.image.view(), "{n} steps");
        assert_eq!(run.state(0).cost, driven.state.cost);
        assert!(run.running());
        let rec = run.finish().remove(0);
        assert_eq!(rec.image, driven.image);
        assert!(matches!(rec.state.termination, Some(Termination::Other(_))));
        // the CSR operator, stepped to its budget
        let mut run = sirt(n).start(&csr, b.view(), None).unwrap();
        while run.running() {
            run.step().unwrap();
        }
        let stepped = run.finish().remove(0);
        let csr_driven = sirt(n).reconstruct(&csr, b.view()).unwrap();
        assert_eq!(stepped.image, csr_driven.image);
        assert_eq!(stepped.state.iteration, n);
        assert_eq!(stepped.state.termination, Some(Termination::MaxIterations));
    }
}

#[test]
fn batched_sirt_steps_equal_reconstruct_batch_and_take_outside_changes() {
    let op = CsrOperator::new(&ray(16, 8));
    let bs = sinograms(&op, 3);
    let views: Vec<_> = bs.iter().map(|b| b.view()).collect();
    let driven = sirt(12).reconstruct_batch(&op, &views, None).unwrap();
    let mut run = sirt(12).start_batch(&op, &views, None).unwrap();
    assert_eq!(run.len(), 3);
    while run.running() {
        run.step().unwrap();
    }
    for (got, want) in run.finish().iter().zip(&driven) {
        assert_eq!(got.image, want.image);
        assert_eq!(got.state.cost, want.state.cost);
    }
    // An outside change between steps (as the CT hybrid loop makes) gives what a new
    // one-iteration run from the changed images gives: the hybrid's old restarts.
    let one = sirt(1);
    let mut run = sirt(100).start_batch(&op, &views, None).unwrap();
    let mut restarted: Vec<Array2<f32>> = vec![Array2::zeros((16, 16)); 3];
    for cycle in 0..6 {
        run.step().unwrap();
        let starts: Vec<_> = restarted.iter().map(|x| x.view()).collect();
        let recs = one.reconstruct_batch(&op, &views, Some(&starts)).unwrap();
        for (x, rec) in restarted.iter_mut().zip(recs) {
            *x = rec.image;
        }
        assert_eq!(
            run.images().to_owned(),
            netinv_tomo::stack_images(&restarted.iter().map(|x| x.view()).collect::<Vec<_>>())
                .unwrap()
        );
        let change = |v: f32| if cycle % 2 == 0 { v * 0.5 } else { v.min(0.3) };
        run.images_mut().mapv_inplace(change);
        restarted.iter_mut().for_each(|x| x.mapv_inplace(change));
    }
    // a single image: set_image, then one step, equals a restart from that image
    let b = &bs[1];
    let start = bs[0].clone(); // any finite image of the right shape is a start...
    let start = Array2::from_shape_fn((16, 16), |(r, c)| start[[r % 8, c]] * 0.01);
    let mut run = sirt(10).start(&op, b.view(), None).unwrap();
    run.step().unwrap();
    run.set_image(0, start.view()).unwrap();
    run.step().unwrap();
    let restart = one.reconstruct_with(&op, b.view(), Some(start.view()), &mut Monitor::new());
    assert_eq!(run.image(0), restart.unwrap().image.view());
    assert_eq!(run.state(0).iteration, 2);
    assert!(matches!(
        run.set_image(0, Array2::zeros((16, 15)).view()),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        run.set_image(0, Array2::from_elem((16, 16), f32::NAN).view()),
        Err(Error::NonFinite { .. })
    ));
}

#[test]
fn steps_on_prepared_weights_do_not_recompute_them() {
    let op = Counting::new(CsrOperator::new(&ray(12, 6)));
    let b = sinograms(&op.inner, 2);
    assert_eq!(op.counts(), (0, 0));
    let solver = sirt(50);
    let weights = solver.weights(&op);
    // the weights cost one forward and one adjoint projection of a single image
    assert_eq!(op.counts(), (2, 0));
    let mut run = solver
        .start_prepared(&op, &weights, b[0].view(), None)
        .unwrap();
    for n in 1..=5 {
        run.step().unwrap();
        // each step: one batched forward and one batched adjoint projection, nothing else
        assert_eq!(op.counts(), (2, 2 * n));
    }
    let stepped = run.image(0).to_owned();
    // the same weights serve another run on a batch
    let views: Vec<_> = b.iter().map(|b| b.view()).collect();
    let mut batch = solver
        .start_batch_prepared(&op, &weights, &views, None)
        .unwrap();
    for _ in 0..5 {
        batch.step().unwrap();
    }
    assert_eq!(op.counts(), (2, 20));
    assert_eq!(batch.image(0), stepped.view());
    assert_eq!(batch.weights(), &weights);
    // a run that computes its own weights does so once, at its start
    let mut fresh = solver.start(&op, b[0].view(), None).unwrap();
    assert_eq!(op.counts(), (4, 20));
    for _ in 0..5 {
        fresh.step().unwrap();
    }
    assert_eq!(op.counts(), (4, 30));
    assert_eq!(fresh.image(0), stepped.view());
}

#[test]
fn prepared_weights_must_fit_the_operator_and_relaxation() {
    let (small, large) = (ray(8, 6), ray(12, 6));
    let b = sinograms(&large, 1).remove(0);
    let weights = sirt(5).weights(&small);
    assert_eq!(weights.rays().dim(), small.range_shape());
    assert_eq!(weights.pixels().dim(), small.domain_shape());
    assert_eq!(weights.relaxation(), 0.9);
    let wrong_op = sirt(5).start_prepared(&large, &weights, b.view(), None);
    assert!(matches!(
        wrong_op,
        Err(Error::InvalidConfig {
            field: "weights",
            ..
        })
    ));
    let other = Sirt::new(SirtConfig::default()).unwrap();
    let weights = sirt(5).weights(&large);
    let wrong_relaxation = other.start_prepared(&large, &weights, b.view(), None);
    assert!(matches!(wrong_relaxation, Err(Error::InvalidConfig { .. })));
    // bad data are refused before the weights are looked at
    let nan = Array2::from_elem(large.range_shape(), f32::NAN);
    let bad = sirt(5).start_prepared(&large, &weights, nan.view(), None);
    assert!(matches!(bad, Err(Error::NonFinite { .. })));
}

#[test]
fn a_monitor_drives_a_stepped_run_as_reconstruct_with_does() {
    let op = ray(16, 10);
    let b = sinograms(&op, 1).remove(0);
    let stop_at_5 = |s: &IterState| (s.iteration == 5).then_some(Termination::Converged);
    let driven = sirt(100)
        .reconstruct_with(
            &op,
            b.view(),
            None,
            &mut Monitor::new().with_stop_rule(stop_at_5),
        )
        .unwrap();
    let mut monitor: Monitor<Array2<f32>> = Monitor::new().with_stop_rule(stop_at_5);
    let mut run = sirt(100).start(&op, b.view(), None).unwrap();
    while run.running() {
        run.step_with(|_, state, x| Ok(monitor.after_iteration(state, &x.to_owned())?))
            .unwrap();
    }
    let rec = run.finish().remove(0);
    assert_eq!(rec.image, driven.image);
    assert_eq!(rec.state.iteration, 5);
    assert_eq!(rec.state.termination, Some(Termination::Converged));
}

#[test]
fn pdhg_steps_equal_the_drivers_with_per_image_stops() {
    let op = CsrOperator::new(&ray(16, 8));
    let b = sinograms(&op, 3);
    let views: Vec<_> = b.iter().map(|b| b.view()).collect();
    let cfg = TvConfig {
        iterations: 400,
        relative_change: Some(2e-3),
        min: Some(0.0),
        ..Default::default()
    };
    let solver = TvPdhg::new(cfg).unwrap();
    let weights = [0.0, 0.02, 0.05];
    let driven = solver
        .reconstruct_batch_weighted(&op, &views, &weights)
        .unwrap();
    let mut run = solver.start_batch_weighted(&op, &views, &weights).unwrap();
    let mut steps = 0;
    while run.running() {
        run.step().unwrap();
        steps += 1;
    }
    let iterations: Vec<usize> = driven.iter().map(|r| r.state.iteration).collect();
    assert_eq!(steps, *iterations.iter().max().unwrap());
    assert!(
        iterations.iter().any(|&n| n < steps),
        "stops differ: {iterations:?}"
    );
    assert_ne!(
        run.step_sizes(0),
        run.step_sizes(1),
        "A and [A; grad] have other norms"
    );
    for (got, want) in run.finish().iter().zip(&driven) {
        assert_eq!(got.image, want.image);
        assert_eq!(got.state.iteration, want.state.iteration);
        assert_eq!(got.state.termination, want.state.termination);
    }
    // one image, stepped by hand, against reconstruct
    let alone = TvPdhg::new(TvConfig {
        iterations: 30,
        ..Default::default()
    })
    .unwrap();
    let mut run = alone.start(&op, views[2], None).unwrap();
    for _ in 0..30 {
        run.step().unwrap();
    }
    assert!(!run.running());
    assert_eq!(
        run.image(0),
        alone.reconstruct(&op, views[2]).unwrap().image.view()
    );
}

/// `y = s x` on `[rows, cols]` images: its norm is `|s|`.
struct Scale(f32, (usize, usize));

impl LinearOperator for Scale {
    fn domain_shape(&self) -> (usize, usize) {
        self.1
    }
    fn range_shape(&self) -> (usize, usize) {
        self.1
    }
    fn apply_into(&self, x: ArrayView2<f32>, mut y: ArrayViewMut2<f32>) {
        y.zip_mut_with(&x, |y, &x| *y = self.0 * x);
    }
    fn adjoint_into(&self, y: ArrayView2<f32>, mut x: ArrayViewMut2<f32>) {
        x.zip_mut_with(&y, |x, &y| *x = self.0 * y);
    }
}

#[test]
fn norm_estimate_and_shape_checks() {
    let scale = Scale(-2.5, (3, 4));
    let l = scale.norm_estimate(1, 7);
    assert!((l - 2.5).abs() < 1e-6, "{l}");
    // the projector: below its largest singular value, reproducible, growing with iterations
    let op = ray(16, 8);
    let (l5, l50) = (op.norm_estimate(5, 1), op.norm_estimate(50, 1));
    assert_eq!(l50, op.norm_estimate(50, 1));
    assert!(l5 <= l50 * (1.0 + 1e-6) && l50 > 10.0, "{l5} {l50}");
    assert!(op.check_domain((16, 16)).is_ok() && op.check_range((8, 22)).is_ok());
    assert!(matches!(
        op.check_domain((16, 15)),
        Err(Error::Shape { what: "image", .. })
    ));
    assert!(matches!(
        op.check_range((22, 8)),
        Err(Error::Shape {
            what: "sinogram",
            ..
        })
    ));
    let mut x = Array2::zeros((16, 16));
    assert!(op.check_domain_array(x.view()).is_ok());
    x[[3, 4]] = f32::INFINITY;
    assert!(matches!(
        op.check_domain_array(x.view()),
        Err(Error::NonFinite { index: 52, .. })
    ));
}
