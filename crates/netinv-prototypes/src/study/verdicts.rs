//! The verdicts of thesis chapter 4 from a prototype study's rows: the test F1 of the
//! hyperspherical and Busemann nets against tables 4.1 and 4.2, and section 4.5's "the
//! prototype nets invert worse than the Euclidean (cross-entropy) net".

use netinv_metrics::stats::{mean, mean_ci95_t, paired_differences};
use netinv_metrics::verdict::{Case, Verdict, VerdictRow};

use super::{dims_of, kind_label, Baseline, Row, Task};

/// Thesis table 4.1: hyperspherical test F1 in % by D.
pub const THESIS_HYPERSPHERICAL_F1: [(usize, f64); 3] = [(2, 77.1), (3, 90.4), (5, 97.7)];

/// Thesis table 4.2: Busemann test F1 in % by D.
pub const THESIS_BUSEMANN_F1: [(usize, f64); 3] = [(2, 92.4), (3, 95.5), (5, 96.2)];

/// The docs file of the study, `docs/results/prototypes.md`.
const STUDY: &str = "prototypes";

/// The verdict rows of chapter 4: the two F1 tables (a D holds when the thesis's figure
/// lies in our 95% t-interval over seeds) and the inversion claim (a net, D and task holds
/// when the paired difference prototype - cross-entropy of the panel majority's count has
/// a 95% t-interval below zero). A row is left out when the rows lack its nets.
pub fn verdicts(rows: &[Row], baselines: &[Baseline]) -> Vec<VerdictRow> {
    let mut out = Vec::new();
    let f1_claims = [
        (
            "hyperspherical",
            &THESIS_HYPERSPHERICAL_F1,
            "hyperspherical prototype nets reach test F1 77.1 / 90.4 / 97.7 % at D = 2 / 3 / 5 (thesis 4.4.1, table 4.1)",
        ),
        (
            "busemann",
            &THESIS_BUSEMANN_F1,
            "Busemann (hyperbolic) prototype nets reach test F1 92.4 / 95.5 / 96.2 % at D = 2 / 3 / 5 (thesis 4.4.2, table 4.2)",
        ),
    ];
    for (kind, thesis, claim) in f1_claims {
        if let Some(row) = f1_verdict(rows, kind, thesis, claim) {
            out.push(row);
        }
    }
    if let Some(row) = inversion_verdict(rows, baselines) {
        out.push(row);
    }
    out
}

/// The F1 verdict of one geometry.
fn f1_verdict(
    rows: &[Row],
    kind: &str,
    thesis: &[(usize, f64)],
    claim: &str,
) -> Option<VerdictRow> {
    let mut cases = Vec::new();
    let mut figures = Vec::new();
    for &(dim, theirs) in thesis {
        let f1: Vec<f64> = rows
            .iter()
            .filter(|r| r.kind == kind && r.dim == dim)
            .map(|r| 100.0 * r.f1)
            .collect();
        if f1.len() < 2 {
            continue;
        }
        let ci = mean_ci95_t(&f1);
        cases.push(Case::new(
            format!("D = {dim}"),
            ci.low() <= theirs && theirs <= ci.high(),
        ));
        figures.push(format!(
            "D = {dim}: {:.1} ± {:.1} (thesis {theirs:.1})",
            ci.mean, ci.half_width
        ));
    }
    let verdict = Verdict::from_cases(&cases)?;
    let inside = cases.iter().filter(|c| c.holds).count();
    Some(VerdictRow {
        claim: claim.to_string(),
        verdict,
        figure: format!(
            "{}; the thesis's figure inside our CI at {inside} of {} D, {} seeds",
            figures.join(", "),
            cases.len(),
            seeds_of(rows, kind)
        ),
        judges: "n/a".to_string(),
        study: STUDY.to_string(),
    })
}

/// The number of seeds of the nets of `kind` (the largest count over D).
fn seeds_of(rows: &[Row], kind: &str) -> usize {
    dims_of(rows)
        .into_iter()
        .map(|d| rows.iter().filter(|r| r.kind == kind && r.dim == d).count())
        .max()
        .unwrap_or(0)
}

/// Section 4.5's inversion claim over every prototype net, D and task.
fn inversion_verdict(rows: &[Row], baselines: &[Baseline]) -> Option<VerdictRow> {
    let mut cases = Vec::new();
    let mut means = Vec::new();
    let mut judge_votes: std::collections::BTreeMap<String, (usize, usize)> =
        std::collections::BTreeMap::new();
    for kind in ["hyperspherical", "busemann"] {
        for dim in dims_of(rows) {
            for task in [Task::One, Task::Two] {
                let nets: Vec<(&Row, &Baseline)> = rows
                    .iter()
                    .filter(|r| r.kind == kind && r.dim == dim)
                    .filter_map(|r| baselines.iter().find(|b| b.seed == r.seed).map(|b| (r, b)))
                    .collect();
                let pairs: Vec<(f64, f64)> = nets
                    .iter()
                    .filter_map(|(r, b)| {
                        let ours = task.of_row()(r).and_then(|s| s.majority)?;
                        let base = task.of_baseline()(b).majority?;
                        Some((10.0 * ours, 10.0 * base))
                    })
                    .collect();
                if pairs.len() < 2 {
                    continue;
                }
                let (a, b): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
                let d = paired_differences(&a, &b).ok()?;
                let ci = mean_ci95_t(&d);
                let task_name = if task == Task::One {
                    "Task 1"
                } else {
                    "Task 2"
                };
                cases.push(Case::new(
                    format!("{} D = {dim} {task_name}", kind_label(kind)),
                    ci.high() < 0.0,
                ));
                means.push(ci.mean);
                count_judge_votes(&nets, task, &mut judge_votes);
            }
        }
    }
    let verdict = Verdict::from_cases(&cases)?;
    let holding = cases.iter().filter(|c| c.holds).count();
    let below: usize = means.iter().filter(|m| **m < 0.0).count();
    let (lo, hi) = means
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &m| {
            (l.min(m), h.max(m))
        });
    let judges = judge_votes
        .iter()
        .map(|(name, (yes, all))| format!("{name} {yes} of {all}"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(VerdictRow {
        claim: "prototype nets invert worse than a Euclidean cross-entropy net (thesis 4.5)"
            .to_string(),
        verdict,
        figure: format!(
            "prototype - cross-entropy, panel majority, images of 10, paired by seed: means {lo:+.1} to {hi:+.1}, below 0 in {below} of {n} cases, 95% CI below 0 in {holding} of {n}",
            n = cases.len()
        ),
        judges: format!("cases where the judge scores the prototype net lower: {judges}"),
        study: STUDY.to_string(),
    })
}

/// For each judge, counts the case as agreeing when its mean accuracy over the seeds is
/// lower on the prototype nets than on their cross-entropy nets.
fn count_judge_votes(
    nets: &[(&Row, &Baseline)],
    task: Task,
    votes: &mut std::collections::BTreeMap<String, (usize, usize)>,
) {
    let mut names: Vec<String> = nets
        .iter()
        .filter_map(|(r, _)| task.of_row()(r))
        .flat_map(|s| s.judges.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        let ours: Vec<f64> = nets
            .iter()
            .filter_map(|(r, _)| task.of_row()(r).and_then(|s| s.judges.get(&name).copied()))
            .collect();
        let base: Vec<f64> = nets
            .iter()
            .filter_map(|(_, b)| task.of_baseline()(b).judges.get(&name).copied())
            .collect();
        if ours.is_empty() || base.is_empty() {
            continue;
        }
        let entry = votes.entry(name).or_insert((0, 0));
        entry.1 += 1;
        if mean(&ours) < mean(&base) {
            entry.0 += 1;
        }
    }
}
