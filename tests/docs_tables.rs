//! docs/results.md's tables of the CT generative prior are printed from the committed
//! small result files (`results/ct_study/`): this test re-derives every row of the
//! generative PSNR table (`tools/ct/pivot_results.py results/ct_study/results.json
//! generative`) from `results.json` and checks the docs hold it verbatim, so a new run that
//! is not copied into the docs, or a hand-edited number, fails.

use serde::Deserialize;

/// One row of ct_study's `results.json` (the fields this test reads).
#[derive(Deserialize)]
struct Row {
    method: String,
    label_mode: String,
    n_angles: usize,
    noise_i0: Option<f64>,
    psnr_mean: f64,
    psnr_ci95: f64,
}

/// The table's row label, as the script prints it.
fn label(row: &Row) -> String {
    if row.label_mode == "none" {
        row.method.clone()
    } else {
        format!("{} ({})", row.method, row.label_mode)
    }
}

const GENERATIVE_TABLE: [&str; 8] = [
    "sirt100",
    "tv_pdhg",
    "vae",
    "vae_dc",
    "cvae (predicted)",
    "cvae (oracle)",
    "cvae_dc (predicted)",
    "cvae_dc (oracle)",
];

#[test]
fn generative_psnr_table_in_the_docs_is_the_committed_results() {
    let root = env!("CARGO_MANIFEST_DIR");
    let docs = std::fs::read_to_string(format!("{root}/docs/results.md")).unwrap();
    let json = std::fs::read_to_string(format!("{root}/results/ct_study/results.json")).unwrap();
    let rows: Vec<Row> = serde_json::from_str(&json).unwrap();
    let mut angles: Vec<usize> = rows.iter().map(|r| r.n_angles).collect();
    angles.sort_unstable();
    angles.dedup();
    let mut noises: Vec<Option<f64>> = Vec::new();
    for r in &rows {
        if !noises.contains(&r.noise_i0) {
            noises.push(r.noise_i0);
        }
    }
    let mut checked = 0;
    for noise in noises {
        for method in GENERATIVE_TABLE {
            let cells: Vec<String> = angles
                .iter()
                .map(|&a| {
                    rows.iter()
                        .find(|r| label(r) == method && r.n_angles == a && r.noise_i0 == noise)
                        .map_or("-".to_string(), |r| {
                            format!("{:.2} ({:.2})", r.psnr_mean, r.psnr_ci95)
                        })
                })
                .collect();
            let line = format!("| {method} | {} |", cells.join(" | "));
            assert!(
                docs.lines().any(|l| l == line),
                "docs/results.md lacks the row printed from results/ct_study/results.json:\n{line}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 24, "three noise levels x eight arms");
}
