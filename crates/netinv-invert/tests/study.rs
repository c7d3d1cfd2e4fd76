//! The optimiser study's job list: refused settings, job order, order-free merging, the
//! table.

use netinv_invert::study::{recipe_name, OptimizerStudy, Row};
use netinv_invert::Error;

fn study() -> OptimizerStudy {
    OptimizerStudy {
        seeds: 2,
        epochs: vec![4, 20],
        steps: 50,
        grid: true,
    }
}

fn row(optimizer: &str, seed: u64, judge_accuracy: f64) -> Row {
    Row {
        optimizer: optimizer.to_string(),
        adversarial: "none".to_string(),
        epsilon: None,
        epochs: 4,
        seed,
        tv: 1e-3,
        l2: 1e-4,
        test_accuracy: 0.9,
        judge_accuracy,
        class_mean_corr: 0.5,
        self_confidence: 0.75,
        ms_per_step: 1.0,
    }
}

#[test]
fn bad_settings_are_refused_by_name() {
    let cases = [
        (
            OptimizerStudy {
                seeds: 0,
                ..study()
            },
            "seeds",
        ),
        (
            OptimizerStudy {
                epochs: vec![],
                ..study()
            },
            "epochs",
        ),
        (
            OptimizerStudy {
                epochs: vec![4, 0],
                ..study()
            },
            "epochs",
        ),
        (
            OptimizerStudy {
                epochs: vec![4, 4],
                ..study()
            },
            "epochs",
        ),
        (
            OptimizerStudy {
                steps: 0,
                ..study()
            },
            "steps",
        ),
    ];
    for (bad, name) in cases {
        match bad.jobs() {
            Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, name),
            other => panic!("{name}: expected InvalidConfig, got {other:?}"),
        }
    }
}

#[test]
fn jobs_run_epochs_then_seeds_then_recipes_with_the_grid() {
    let jobs = study().jobs().unwrap();
    assert_eq!(jobs.len(), 2 * 2 * 4);
    let names: Vec<String> = jobs.iter().take(5).map(|j| j.name()).collect();
    assert_eq!(
        names,
        [
            "sgd-e4-s0",
            "adam-e4-s0",
            "adam-fgsm0.1-e4-s0",
            "adam-fgsm0.2-e4-s0",
            "sgd-e4-s1"
        ]
    );
    assert_eq!(jobs[8].name(), "sgd-e20-s0");
    for (i, job) in jobs.iter().enumerate() {
        assert_eq!(job.index, i);
        assert_eq!(job.weight_seed, job.train.seed);
        assert_eq!(job.inversions.len(), 12);
        // the reference setting first; snapshots only within the steps
        assert_eq!((job.inversions[0].tv, job.inversions[0].l2), (1e-3, 1e-4));
        assert!(job
            .inversions
            .iter()
            .all(|c| c.snapshots.is_empty() && c.steps == 50));
        assert!(job.inversions.iter().all(|c| c.validate().is_ok()));
    }
    let reference_only = OptimizerStudy {
        grid: false,
        steps: 1000,
        ..study()
    };
    let jobs = reference_only.jobs().unwrap();
    assert_eq!(jobs[0].inversions.len(), 1);
    assert_eq!(jobs[0].inversions[0].snapshots, vec![100]);
    assert_eq!(recipe_name(&jobs[3].train), "adam-fgsm0.2");
}

#[test]
fn merge_orders_by_job_whatever_the_finishing_order() {
    let results = vec![
        (0, vec![row("sgd", 0, 0.9)]),
        (1, vec![row("adam", 0, 0.2), row("adam", 0, 0.3)]),
        (2, vec![row("sgd", 1, 0.7)]),
    ];
    let mut shuffled = results.clone();
    shuffled.swap(0, 2);
    shuffled.swap(1, 2);
    let merged = OptimizerStudy::merge(results);
    assert_eq!(OptimizerStudy::merge(shuffled), merged);
    assert_eq!(merged.len(), 4);
    assert_eq!(merged[1].optimizer, "adam");
    assert_eq!(merged[3].seed, 1);
}

#[test]
fn table_groups_seeds_and_says_when_nothing_was_judged() {
    let table = Row::table(&[
        row("sgd", 0, 0.9),
        row("sgd", 1, 0.7),
        row("adam", 0, f64::NAN),
    ]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[2],
        "| adam | 4 | 1e-3 | 1e-4 | 1 | no judge | 0.500 | 0.750 | 0.9000 |"
    );
    assert_eq!(
        lines[3],
        "| sgd | 4 | 1e-3 | 1e-4 | 2 | 8.0 / 10 (7-9) | 0.500 | 0.750 | 0.9000 |"
    );
}
