use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use ndarray::Array2;
use netinv_models::{Vae, VaeConfig};
use netinv_tomo::{CsrOperator, LinearOperator, TvPdhg};

use super::*;
use crate::scan_operator;
use crate::study::tv_config;

pub(crate) fn tiny_vae() -> Vae {
    let cfg = VaeConfig {
        latent_dim: 4,
        conv1_channels: 2,
        conv2_channels: 4,
        ..Default::default()
    };
    Vae::init(&cfg, &VarMap::new(), 3, &Device::Cpu)
        .unwrap()
        .frozen()
        .unwrap()
}

/// A conditional decoder for tests: class `c` shifts the code by a fixed vector first.
pub(crate) struct Shifted {
    pub(crate) vae: Vae,
    pub(crate) classes: usize,
}

impl LatentDecoder for Shifted {
    fn latent_dim(&self) -> usize {
        4
    }
    fn image_size(&self) -> usize {
        28
    }
    fn n_classes(&self) -> usize {
        self.classes
    }
    fn decode(&self, z: &Tensor, classes: Option<&[u32]>) -> crate::Result<Tensor> {
        let classes = classes.ok_or_else(|| crate::error::invalid("classes", "needed"))?;
        let shift: Vec<f32> = classes
            .iter()
            .flat_map(|&c| {
                (0..4).map(move |j| {
                    if j == c as usize % 4 {
                        1.5
                    } else {
                        -0.5 * c as f32 / 3.0
                    }
                })
            })
            .collect();
        let shift = Tensor::from_vec(shift, (classes.len(), 4), &Device::Cpu)?;
        UnconditionalVae(&self.vae).decode(&(z + shift)?, None)
    }
}

/// A digit the decoder can produce: `D(z_true)`, and its scan.
fn reachable(vae: &Vae, op: &CsrOperator) -> (Array2<f32>, Array2<f32>) {
    let z = Tensor::from_vec(vec![1.2f32, -0.8, 0.5, 2.0], (1, 4), &Device::Cpu).unwrap();
    let img = vae
        .decode(&z)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let truth = Array2::from_shape_vec((28, 28), img).unwrap();
    let sino = op.apply(truth.view());
    (truth, sino)
}

fn misfit(op: &CsrOperator, x: &Array2<f32>, b: &Array2<f32>) -> f64 {
    (op.apply(x.view()) - b)
        .iter()
        .map(|&r| f64::from(r).powi(2))
        .sum()
}

#[test]
fn latent_search_lowers_the_data_misfit() {
    let vae = tiny_vae();
    let op = CsrOperator::new(&scan_operator(28, 3).unwrap());
    let (_, sino) = reachable(&vae, &op);
    let dec = UnconditionalVae(&vae);
    let cfg = LatentSearchConfig {
        starts: 1,
        steps: 40,
        prior_weight: 0.0,
        lr: 0.1,
        lr_end: 0.01,
        ..Default::default()
    };
    let search = LatentSearch::new(cfg).unwrap();
    let mut run = search
        .start(&dec, &op, &[sino.view()], ClassChoice::Free)
        .unwrap();
    run.step().unwrap();
    // after one step the best point is z = 0 (the start)
    let first = run.finish().unwrap().remove(0);
    assert!(first.z.iter().all(|&v| v == 0.0));
    assert!((first.misfit - misfit(&op, &first.image, &sino)).abs() < 1e-3 * first.misfit);
    let fit = search
        .run(&dec, &op, &[sino.view()], ClassChoice::Free)
        .unwrap()
        .remove(0);
    assert!(
        fit.misfit < 0.5 * first.misfit,
        "{} vs {}",
        fit.misfit,
        first.misfit
    );
    // the reported misfit is that of the reported image
    assert!((fit.misfit - misfit(&op, &fit.image, &sino)).abs() < 1e-3 * first.misfit);
}

#[test]
fn gradient_matches_finite_differences() {
    // one step of Adam from z = 0 moves each coordinate by -lr * sign(gradient): compare
    // the signs with central differences of the objective
    let vae = tiny_vae();
    let op = CsrOperator::new(&scan_operator(28, 2).unwrap());
    let (_, sino) = reachable(&vae, &op);
    let lam = 0.3f32;
    let objective = |z: &[f32]| -> f64 {
        let t = Tensor::from_vec(z.to_vec(), (1, 4), &Device::Cpu).unwrap();
        let img = vae
            .decode(&t)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let x = Array2::from_shape_vec((28, 28), img).unwrap();
        misfit(&op, &x, &sino)
            + f64::from(lam) * z.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>()
    };
    let cfg = LatentSearchConfig {
        starts: 1,
        steps: 2,
        prior_weight: lam,
        lr: 1e-3,
        lr_end: 1e-3,
        ..Default::default()
    };
    let dec = UnconditionalVae(&vae);
    let mut run = LatentSearch::new(cfg)
        .unwrap()
        .start(&dec, &op, &[sino.view()], ClassChoice::Free)
        .unwrap();
    run.step().unwrap();
    run.step().unwrap();
    let moved = run.finish().unwrap().remove(0).z;
    for j in 0..4 {
        let h = 1e-2f32;
        let (mut up, mut down) = ([0.0f32; 4], [0.0f32; 4]);
        up[j] = h;
        down[j] = -h;
        let fd = (objective(&up) - objective(&down)) / (2.0 * f64::from(h));
        if fd.abs() > 1e-2 {
            assert_eq!(
                moved[j] < 0.0,
                fd > 0.0,
                "coordinate {j}: fd {fd}, moved {}",
                moved[j]
            );
        }
    }
}

#[test]
fn label_free_search_chooses_by_objective_and_reports_confidence() {
    let dec = Shifted {
        vae: tiny_vae(),
        classes: 4,
    };
    let op = CsrOperator::new(&scan_operator(28, 3).unwrap());
    // a digit decoded in class 2 at z = 0
    let z = Tensor::zeros((1, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
    let img = dec
        .decode(&z, Some(&[2]))
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let sino = op.apply(Array2::from_shape_vec((28, 28), img).unwrap().view());
    let cfg = LatentSearchConfig {
        starts: 2,
        steps: 6,
        explore_steps: 3,
        keep_classes: 2,
        ..Default::default()
    };
    let search = LatentSearch::new(cfg).unwrap();
    let mut run = search
        .start(&dec, &op, &[sino.view(), sino.view()], ClassChoice::Free)
        .unwrap();
    assert_eq!(run.chains(), 2 * 4 * 2);
    for _ in 0..4 {
        run.step().unwrap();
    }
    assert_eq!(
        run.chains(),
        2 * 2 * 2,
        "successive halving keeps 2 classes"
    );
    while run.running() {
        run.step().unwrap();
    }
    let fits = run.finish().unwrap();
    for fit in &fits {
        assert_eq!(fit.class, Some(2));
        assert_eq!(fit.class_objectives.len(), 4);
        assert!(fit.class_objectives.iter().all(Option::is_some));
        let c = fit.confidence.unwrap();
        assert!(c >= 1.0, "{c}");
        assert_eq!(fit.objective, fit.class_objectives[2].unwrap());
    }
    // oracle: only the given class, no confidence
    let fits = search
        .run(&dec, &op, &[sino.view()], ClassChoice::Oracle(&[1]))
        .unwrap();
    assert_eq!(fits[0].class, Some(1));
    assert!(fits[0].confidence.is_none());
    assert!(search
        .run(&dec, &op, &[sino.view()], ClassChoice::Oracle(&[7]))
        .is_err());
    assert!(search
        .run(&dec, &op, &[sino.view()], ClassChoice::Oracle(&[1, 2]))
        .is_err());
    let plain = UnconditionalVae(&dec.vae);
    assert!(search
        .run(&plain, &op, &[sino.view()], ClassChoice::Oracle(&[1]))
        .is_err());
}

#[test]
fn search_is_deterministic_and_batch_independent() {
    let dec = Shifted {
        vae: tiny_vae(),
        classes: 3,
    };
    let op = CsrOperator::new(&scan_operator(28, 2).unwrap());
    let a = op.apply(Array2::from_elem((28, 28), 0.2f32).view());
    let b = op.apply(Array2::from_shape_fn((28, 28), |(r, _)| (r % 5) as f32 / 5.0).view());
    let cfg = LatentSearchConfig {
        starts: 2,
        steps: 4,
        explore_steps: 2,
        keep_classes: 1,
        chunk: 5,
        ..Default::default()
    };
    let search = LatentSearch::new(cfg.clone()).unwrap();
    let both = search
        .run(&dec, &op, &[a.view(), b.view()], ClassChoice::Free)
        .unwrap();
    let alone = search
        .run(&dec, &op, &[b.view()], ClassChoice::Free)
        .unwrap();
    assert_eq!(both[1], alone[0]);
    let big_chunks = LatentSearch::new(LatentSearchConfig { chunk: 512, ..cfg }).unwrap();
    assert_eq!(
        big_chunks
            .run(&dec, &op, &[a.view(), b.view()], ClassChoice::Free)
            .unwrap(),
        both
    );
}

#[test]
fn refinement_with_zero_anchor_is_the_tv_arm() {
    let op = CsrOperator::new(&scan_operator(28, 4).unwrap());
    let truth = Array2::from_shape_fn((28, 28), |(r, c)| {
        if (8..20).contains(&r) && (10..15).contains(&c) {
            0.9f32
        } else {
            0.0
        }
    });
    let sino = op.apply(truth.view());
    let anchor = Array2::from_elem((28, 28), 0.5f32);
    let (w, n) = (0.003f32, 60);
    let tv = TvPdhg::new(tv_config(w, n))
        .unwrap()
        .reconstruct_batch(&op, &[sino.view()])
        .unwrap();
    let dc = DcRefinement::new(RefineConfig {
        anchor: 0.0,
        tv_weight: w,
        iterations: 7,
        tv_iterations: n,
    })
    .unwrap()
    .run(&op, &[sino.view()], &[anchor.view()])
    .unwrap();
    assert_eq!(dc[0], tv[0].image);
    // with an anchor the grid batch gives the single runs' bits
    let grid = [(0.1f32, 0.0f32), (1.0, 0.01)];
    let batch = refine_grid(&op, &[sino.view()], &[anchor.view()], &grid, 20).unwrap();
    for (g, &(anchor_w, tv_w)) in grid.iter().enumerate() {
        let one = DcRefinement::new(RefineConfig {
            anchor: anchor_w,
            tv_weight: tv_w,
            iterations: 20,
            tv_iterations: n,
        })
        .unwrap()
        .run(&op, &[sino.view()], &[anchor.view()])
        .unwrap();
        assert_eq!(batch[g][0], one[0]);
        assert_ne!(one[0], dc[0]);
    }
    assert!(refine_grid(&op, &[sino.view()], &[anchor.view()], &[(0.0, 0.01)], 5).is_err());
}

#[test]
fn configs_are_checked() {
    assert!(LatentSearchConfig::default().validate().is_ok());
    for bad in [
        LatentSearchConfig {
            starts: 0,
            ..Default::default()
        },
        LatentSearchConfig {
            steps: 0,
            ..Default::default()
        },
        LatentSearchConfig {
            prior_weight: -1.0,
            ..Default::default()
        },
        LatentSearchConfig {
            lr: f64::NAN,
            ..Default::default()
        },
    ] {
        assert!(LatentSearch::new(bad).is_err());
    }
    let ok = RefineConfig {
        anchor: 0.1,
        tv_weight: 0.0,
        iterations: 1,
        tv_iterations: 1,
    };
    assert!(DcRefinement::new(ok).is_ok());
    assert!(DcRefinement::new(RefineConfig { anchor: -0.1, ..ok }).is_err());
    assert!(DcRefinement::new(RefineConfig {
        iterations: 0,
        ..ok
    })
    .is_err());
    let cfg = LatentSearchConfig::default();
    assert!((cfg.lr_at(0) - cfg.lr).abs() < 1e-12);
    assert!((cfg.lr_at(cfg.steps - 1) - cfg.lr_end).abs() < 1e-12);
}
