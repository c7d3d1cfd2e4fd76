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

/// The CT ablation table of docs/results.md (issue 18) is re-derived from the committed
/// `results/ct_ablation/per_image.json` by the library's statistics
/// (`summarize_ablation`: means, crossed bootstrap and t intervals), and every line must be
/// in the docs verbatim; the committed `summary.json` must hold the same numbers.
#[test]
fn ct_ablation_table_in_the_docs_is_the_committed_results() {
    use netinv::ct::study::ablation::{summarize_ablation, summary_line, AblationImage};
    let root = env!("CARGO_MANIFEST_DIR");
    let docs = std::fs::read_to_string(format!("{root}/docs/results.md")).unwrap();
    let dir = format!("{root}/results/ct_ablation");
    let rows: Vec<AblationImage> =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/per_image.json")).unwrap())
            .unwrap();
    let summary = summarize_ablation(&rows).unwrap();
    let committed: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary.len(), committed.len());
    for (s, c) in summary.iter().zip(&committed) {
        assert_eq!(
            serde_json::to_value(s).unwrap(),
            *c,
            "summary.json row {}",
            s.name
        );
        let line = summary_line(s);
        assert!(
            docs.lines().any(|l| l == line),
            "docs/results.md lacks the row printed from results/ct_ablation/per_image.json:\n{line}"
        );
    }
    // five arms and six differences per setting
    assert_eq!(summary.len() % 11, 0);
    assert!(!summary.is_empty());
}

/// docs/results.md's "Prototypes" tables (`cargo run --release --example prototype_tables
/// -- results/prototype_study results/prototype_study/gap`) are printed from the committed
/// result files: every table line the script prints must stand verbatim in the docs.
fn assert_docs_hold(printed: &str, source: &str) {
    let root = env!("CARGO_MANIFEST_DIR");
    let docs = std::fs::read_to_string(format!("{root}/docs/results.md")).unwrap();
    let mut checked = 0;
    for line in printed.lines().filter(|l| l.starts_with("| ")) {
        assert!(
            docs.lines().any(|l| l == line),
            "docs/results.md lacks the line printed from {source}:\n{line}"
        );
        checked += 1;
    }
    assert!(checked > 0, "{source} printed no table");
}

#[test]
fn prototype_tables_in_the_docs_are_the_committed_results() {
    use netinv::prototypes::study::{tables, Baseline, Row};
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = format!("{root}/results/prototype_study");
    let rows: Vec<Row> =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/study.json")).unwrap())
            .unwrap();
    let baselines: Vec<Baseline> =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/baseline.json")).unwrap())
            .unwrap();
    // three geometries x D rows, all inverted: every net has both tasks scored by the panel
    assert!(rows.iter().all(|r| r.task1.is_some() && r.task2.is_some()));
    assert!(baselines.iter().all(|b| b.task1.majority.is_some()));
    assert_docs_hold(&tables(&rows, &baselines), "results/prototype_study");
}

#[test]
fn prototype_gap_search_table_in_the_docs_is_the_committed_results() {
    use netinv::prototypes::study::{gap_table, GapRow};
    let root = env!("CARGO_MANIFEST_DIR");
    let path = format!("{root}/results/prototype_study/gap/gap_search.json");
    let rows: Vec<GapRow> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_docs_hold(&gap_table(&rows), "results/prototype_study/gap");
}
