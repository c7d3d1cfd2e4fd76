//! Agreement with scikit-image 0.26 on the cases in `data/skimage_reference.json`, written
//! by `tools/metrics/ssim_reference.py` (run from the repository root:
//! `/work/venv/bin/python tools/metrics/ssim_reference.py`). The images are rebuilt here
//! bit for bit (checked by hash); the tolerance is 1e-4 absolute on every value.

mod common;

use netinv_metrics::{mse, psnr, ssim, ssim_map, Error, SsimConfig};
use serde::Deserialize;

const TOL: f64 = 1e-4;

#[derive(Deserialize)]
struct Reference {
    generator: String,
    cases: Vec<Case>,
    ssim_map: MapCase,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    kind: String,
    rows: usize,
    cols: usize,
    seed: u64,
    data_range: f64,
    hash_reference: String,
    hash_estimate: String,
    ssim_gaussian: Option<f64>,
    ssim_uniform7: Option<f64>,
    mse: f64,
    psnr: Option<f64>,
}

#[derive(Deserialize)]
struct MapCase {
    kind: String,
    rows: usize,
    cols: usize,
    seed: u64,
    gaussian: Vec<f64>,
    uniform7: Vec<f64>,
}

fn load() -> Reference {
    let text = include_str!("data/skimage_reference.json");
    let reference: Reference = serde_json::from_str(text).unwrap();
    assert_eq!(reference.generator, "tools/metrics/ssim_reference.py");
    reference
}

/// Checks `got` against `want` and returns the absolute difference.
fn check(case: &str, what: &str, got: f64, want: f64) -> f64 {
    let diff = (got - want).abs();
    assert!(
        diff <= TOL,
        "{case} {what}: netinv {got} vs skimage {want} (|diff| {diff:e})"
    );
    diff
}

#[test]
fn images_are_rebuilt_bit_for_bit() {
    for case in load().cases {
        let (a, b) = common::make_pair(&case.kind, case.rows, case.cols, case.seed);
        assert_eq!(
            common::fnv1a(&a),
            case.hash_reference,
            "{} reference",
            case.name
        );
        assert_eq!(
            common::fnv1a(&b),
            case.hash_estimate,
            "{} estimate",
            case.name
        );
    }
}

#[test]
fn metrics_match_skimage() {
    let cases = load().cases;
    assert!(cases.len() >= 20);
    let mut worst = 0.0_f64;
    for case in &cases {
        let (a, b) = common::make_pair(&case.kind, case.rows, case.cols, case.seed);
        let (a, b) = (a.view(), b.view());
        let gauss = SsimConfig::gaussian().with_data_range(case.data_range);
        let uniform = SsimConfig::uniform(7).with_data_range(case.data_range);
        match case.ssim_gaussian {
            Some(want) => {
                worst = worst.max(check(
                    &case.name,
                    "ssim gaussian",
                    ssim(a, b, &gauss).unwrap(),
                    want,
                ));
            }
            // scikit-image refuses images smaller than the window; so do we.
            None => assert!(matches!(
                ssim(a, b, &gauss),
                Err(Error::SmallerThanWindow { window: 11, .. })
            )),
        }
        let want = case
            .ssim_uniform7
            .expect("uniform7 is defined for all sizes >= 8");
        worst = worst.max(check(
            &case.name,
            "ssim uniform7",
            ssim(a, b, &uniform).unwrap(),
            want,
        ));
        worst = worst.max(check(&case.name, "mse", mse(a, b).unwrap(), case.mse));
        let p = psnr(a, b, case.data_range).unwrap();
        match case.psnr {
            Some(want) => worst = worst.max(check(&case.name, "psnr", p, want)),
            None => assert_eq!(p, f64::INFINITY, "{}: identical images", case.name),
        }
    }
    eprintln!(
        "max |netinv - skimage| over {} cases: {worst:e}",
        cases.len()
    );
}

#[test]
fn ssim_map_matches_skimage_full() {
    let m = load().ssim_map;
    let (a, b) = common::make_pair(&m.kind, m.rows, m.cols, m.seed);
    let mut worst = 0.0_f64;
    for (cfg, want) in [
        (SsimConfig::gaussian(), &m.gaussian),
        (SsimConfig::uniform(7), &m.uniform7),
    ] {
        let map = ssim_map(a.view(), b.view(), &cfg).unwrap();
        assert_eq!(map.dim(), (m.rows, m.cols));
        assert_eq!(want.len(), m.rows * m.cols);
        for ((idx, &got), &w) in map.indexed_iter().zip(want.iter()) {
            let diff = check(
                &format!("map {:?} {idx:?}", cfg.window),
                "S",
                f64::from(got),
                w,
            );
            worst = worst.max(diff);
        }
    }
    eprintln!("max |netinv - skimage| over the two full maps (stored as f32): {worst:e}");
}
