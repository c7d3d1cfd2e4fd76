//! docs/results/soft_labels.md's tables and verdict rows are printed from the committed
//! small result files of the soft-label study (`results/soft_label_study/study.json` and
//! `third_class.json`; `cargo run --release --example soft_label_study -- --tables
//! results/soft_label_study`): this test re-derives every table line with the library's
//! printer and checks the docs hold it verbatim, so a new run that is not copied into the
//! docs, or a hand-edited number, fails.

use netinv::interp::study::{tables, verdict_rows, Row, ThirdClass};

fn read(path: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::read_to_string(format!("{root}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn soft_label_tables_and_verdicts_in_the_docs_are_the_committed_results() {
    let docs = read("docs/results/soft_labels.md");
    let rows: Vec<Row> =
        serde_json::from_str(&read("results/soft_label_study/study.json")).unwrap();
    let third: ThirdClass =
        serde_json::from_str(&read("results/soft_label_study/third_class.json")).unwrap();
    // the full run: 10 seeds x 2 optimisers x 3 arms, every net judged on both tasks
    let mut seeds: Vec<u64> = rows.iter().map(|r| r.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    assert_eq!(seeds, (0..10).collect::<Vec<u64>>());
    assert_eq!(rows.len(), 6 * seeds.len());
    assert!(rows
        .iter()
        .all(|r| r.judge_accuracy.is_finite() && r.task2_judge_accuracy.is_finite()));
    assert_eq!(third.judges.len(), 3);
    let printed = tables(&rows, Some(&third));
    let mut checked = 0;
    for line in printed.lines().filter(|l| l.starts_with("| ")) {
        assert!(
            docs.lines().any(|l| l == line),
            "docs/results/soft_labels.md lacks the line printed from results/soft_label_study:\n{line}"
        );
        checked += 1;
    }
    assert!(checked > 40, "only {checked} table lines printed");
    // six claims of thesis 3.5.2 at the one training length and the one of 3.5.3, each
    // under the docs' "Verdicts" heading
    let verdicts = verdict_rows(&rows, Some(&third));
    let verdict_lines: Vec<&str> = verdicts.lines().skip(2).collect();
    assert_eq!(verdict_lines.len(), 7, "{verdicts}");
    let section = docs
        .split("## Verdicts")
        .nth(1)
        .expect("a \"## Verdicts\" heading");
    for line in verdict_lines {
        assert!(line.ends_with("| [soft_labels](results/soft_labels.md) |"));
        assert!(
            section.lines().any(|l| l == line),
            "Verdicts lacks:\n{line}"
        );
    }
}
