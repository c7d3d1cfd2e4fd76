//! Golden tests against ASTRA 2.5 (CPU `linear` projector, `SIRT`, `FBP`).
//!
//! The files in tests/data were written by `tools/tomo/make_golden.py`; regenerate with
//! `/work/venv/bin/python tools/tomo/make_golden.py` from the repository root.

use std::path::PathBuf;

use netinv_tomo::ndarray::{Array1, Array2};
use netinv_tomo::{read_angles, read_npy2, LinearOperator, ParallelBeam2d, RayTransform};
use netinv_tomo::{Sirt, SirtConfig};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
        .join(format!("{name}.npy"))
}

struct Case {
    image: Array2<f32>,
    sino: Array2<f32>,
    op: RayTransform,
}

fn case(name: &str) -> Case {
    let image = read_npy2(data(&format!("{name}_image"))).unwrap();
    let angles = read_angles(data(&format!("{name}_angles"))).unwrap();
    let meta: Array1<f64> = ndarray_npy::read_npy(data(&format!("{name}_meta"))).unwrap();
    let sino = read_npy2(data(&format!("{name}_sino"))).unwrap();
    let (rows, cols) = image.dim();
    let geom = ParallelBeam2d::new(rows, cols, angles, meta[0] as usize, meta[1] as f32).unwrap();
    Case {
        image,
        sino,
        op: RayTransform::new(geom).unwrap(),
    }
}

fn rel_l2(a: &Array2<f32>, reference: &Array2<f32>) -> f64 {
    let num: f64 = a
        .iter()
        .zip(reference)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    let den: f64 = reference.iter().map(|&y| (y as f64).powi(2)).sum();
    (num / den).sqrt()
}

const CASES: [&str; 5] = ["sq16", "nu32", "rect", "fbp32", "fbp32s"];

#[test]
fn projection_matches_astra() {
    for name in CASES {
        let c = case(name);
        let sino = c.op.apply(c.image.view());
        let err = rel_l2(&sino, &c.sino);
        let max = c.sino.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let max_abs = sino
            .iter()
            .zip(&c.sino)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        println!(
            "{name}: projection rel L2 {err:.3e}, max abs / max {:.3e}",
            max_abs / max
        );
        assert!(err <= 5e-4, "{name}: rel L2 {err}");
    }
}

#[test]
fn sirt100_matches_astra() {
    for name in ["sq16", "nu32", "rect"] {
        let c = case(name);
        for (suffix, lo, hi) in [
            ("sirt100", None, None),
            ("sirt100box", Some(0.0), Some(1.0)),
        ] {
            let reference = read_npy2(data(&format!("{name}_{suffix}"))).unwrap();
            let cfg = SirtConfig {
                iterations: 100,
                min: lo,
                max: hi,
                ..Default::default()
            };
            let rec = Sirt::new(cfg)
                .unwrap()
                .reconstruct(&c.op, c.sino.view())
                .unwrap();
            let err = rel_l2(&rec.image, &reference);
            println!("{name} {suffix}: rel L2 {err:.3e}");
            assert!(err <= 2e-3, "{name} {suffix}: rel L2 {err}");
        }
    }
}

#[test]
fn fbp_matches_astra() {
    use netinv_tomo::{Fbp, FbpConfig, FbpFilter};
    let runs = [
        ("sq16", "ram-lak", FbpFilter::RamLak),
        ("fbp32", "ram-lak", FbpFilter::RamLak),
        ("fbp32", "shepp-logan", FbpFilter::SheppLogan),
        ("fbp32", "cosine", FbpFilter::Cosine),
        ("fbp32", "hann", FbpFilter::Hann),
        ("fbp32s", "ram-lak", FbpFilter::RamLak),
    ];
    for (name, astra_name, filter) in runs {
        let c = case(name);
        let reference = read_npy2(data(&format!("{name}_fbp_{astra_name}"))).unwrap();
        let rec = Fbp::new(FbpConfig { filter })
            .unwrap()
            .reconstruct(&c.op, c.sino.view())
            .unwrap();
        let err = rel_l2(&rec, &reference);
        println!("{name} FBP {astra_name}: rel L2 {err:.3e}");
        assert!(err <= 1e-3, "{name} {astra_name}: rel L2 {err}");
    }
}
