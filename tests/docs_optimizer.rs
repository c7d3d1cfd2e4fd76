//! docs/results/optimizer.md's tables and verdict rows are printed from the committed
//! small result file `results/optimizer_study/study.json` (`cargo run --release --example
//! optimizer_study -- --tables results/optimizer_study`): this test re-derives them and
//! checks that every table line stands verbatim in the docs, so a new run that is not
//! copied into the docs, or a hand-edited number, fails.

use netinv::invert::study::{docs_tables, verdict_rows, OptimizerStudy, Row};

const LINK: &str = "[optimizer](results/optimizer.md)";

fn read(path: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::read_to_string(format!("{root}/{path}"))
        .unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

#[test]
fn optimizer_tables_and_verdicts_in_the_docs_are_the_committed_results() {
    let rows: Vec<Row> = serde_json::from_str(&read("results/optimizer_study/study.json")).unwrap();
    // the documented defaults: every job of the full study ran, each run was judged
    let study = OptimizerStudy::full();
    let jobs = study.jobs().unwrap();
    let runs: usize = jobs
        .iter()
        .flat_map(|j| &j.checkpoints)
        .map(|c| 2 * c.inversions.len())
        .sum();
    assert_eq!(rows.len(), runs);
    assert!(rows
        .iter()
        .all(|r| !r.judge_accuracy.is_nan() && r.judges.len() == 3));
    let docs = read("docs/results/optimizer.md");
    let printed = format!(
        "{}{}",
        docs_tables(&rows).unwrap(),
        verdict_rows(&rows, LINK).unwrap()
    );
    let mut checked = 0;
    for line in printed.lines().filter(|l| l.starts_with("| ")) {
        assert!(
            docs.lines().any(|l| l == line),
            "docs/results/optimizer.md lacks the line printed from results/optimizer_study:\n{line}"
        );
        checked += 1;
    }
    // 4 recipes x 5 lengths x 2 tasks headline rows at least
    assert!(checked >= 40, "only {checked} table lines printed");
    let verdicts = verdict_rows(&rows, LINK).unwrap();
    assert!(verdicts.lines().count() >= 8, "{verdicts}");
}
