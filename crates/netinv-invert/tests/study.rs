//! The optimiser study's job list: refused settings, job order and pairing, order-free
//! merging, the docs tables' statistics on known numbers, the verdict rule.

use std::collections::BTreeMap;

use netinv_invert::study::{
    docs_tables, image_optimizer, invertibility_verdict, recipe_name, task2_sources, task2_targets,
    verdict_rows, OptimizerStudy, Paired, Row, Verdict, TASK2_PAIRS,
};
use netinv_invert::{Error, ImageOptimizer};
use netinv_metrics::stats::MeanCi;
use netinv_models::train::LrSchedule;

/// A `--quick`-size study: 2 seeds, checkpoints after epochs 1 and 2, the swap at 2.
fn study() -> OptimizerStudy {
    OptimizerStudy {
        seeds: 2,
        epochs: vec![1, 2],
        steps: 50,
        grid: false,
        swap_epochs: vec![2],
        swap_optimizers: vec!["sgd".to_string(), "lbfgs".to_string()],
    }
}

fn field_of(bad: OptimizerStudy) -> &'static str {
    match bad.jobs() {
        Err(Error::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn bad_settings_are_refused_by_name() {
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
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
                seeds: 25,
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
                epochs: vec![0, 2],
                ..study()
            },
            "epochs",
        ),
        (
            OptimizerStudy {
                epochs: vec![2, 2],
                ..study()
            },
            "epochs",
        ),
        (
            OptimizerStudy {
                epochs: vec![4, 2],
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
        (
            OptimizerStudy {
                swap_epochs: vec![3],
                ..study()
            },
            "swap_epochs",
        ),
        (
            OptimizerStudy {
                swap_epochs: vec![2, 2],
                ..study()
            },
            "swap_epochs",
        ),
        (
            OptimizerStudy {
                swap_optimizers: names(&["rmsprop"]),
                ..study()
            },
            "swap_optimizers",
        ),
        (
            OptimizerStudy {
                swap_optimizers: names(&["adam"]),
                ..study()
            },
            "swap_optimizers",
        ),
        (
            OptimizerStudy {
                swap_optimizers: names(&["sgd", "sgd"]),
                ..study()
            },
            "swap_optimizers",
        ),
        (
            OptimizerStudy {
                swap_optimizers: vec![],
                ..study()
            },
            "swap_optimizers",
        ),
    ];
    for (bad, name) in cases {
        assert_eq!(field_of(bad.clone()), name, "{bad:?}");
    }
    // no swap at all is fine without swap optimisers
    let no_swap = OptimizerStudy {
        swap_epochs: vec![],
        swap_optimizers: vec![],
        ..study()
    };
    assert!(no_swap.jobs().is_ok());
    assert!(OptimizerStudy::full().validate().is_ok());
}

#[test]
fn image_optimizers_by_name_and_unknown_names_refused() {
    assert_eq!(
        image_optimizer("adam").unwrap(),
        (ImageOptimizer::adam(), 0.05)
    );
    assert_eq!(
        image_optimizer("sgd").unwrap(),
        (ImageOptimizer::Sgd { momentum: 0.9 }, 1.0)
    );
    assert_eq!(
        image_optimizer("lbfgs").unwrap(),
        (ImageOptimizer::Lbfgs { history: 10 }, 1.0)
    );
    match image_optimizer("Adam") {
        Err(Error::InvalidConfig { field, reason }) => {
            assert_eq!(field, "image_optimizers");
            assert!(reason.contains("\"Adam\""), "{reason}");
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn jobs_are_one_constant_lr_run_per_seed_and_recipe_with_checkpoints() {
    let jobs = study().jobs().unwrap();
    assert_eq!(jobs.len(), 2 * 4);
    let names: Vec<String> = jobs.iter().map(|j| j.name()).collect();
    assert_eq!(
        names,
        [
            "sgd-s0",
            "adam-s0",
            "adam-fgsm0.1-s0",
            "adam-fgsm0.2-s0",
            "sgd-s1",
            "adam-s1",
            "adam-fgsm0.1-s1",
            "adam-fgsm0.2-s1"
        ]
    );
    assert_eq!(recipe_name(&jobs[3].train), "adam-fgsm0.2");
    for (i, job) in jobs.iter().enumerate() {
        assert_eq!(job.index, i);
        assert_eq!(job.weight_seed, job.train.seed);
        // one run to the last checkpoint, with a schedule that ignores the run's length
        assert_eq!(job.train.epochs, 2);
        assert_eq!(job.train.schedule, LrSchedule::Constant);
        let epochs: Vec<usize> = job.checkpoints.iter().map(|c| c.epochs).collect();
        assert_eq!(epochs, [1, 2]);
        let opts = |c: usize| -> Vec<&str> {
            job.checkpoints[c]
                .inversions
                .iter()
                .map(|i| i.image_optimizer.as_str())
                .collect()
        };
        assert_eq!(opts(0), ["adam"]);
        assert_eq!(opts(1), ["adam", "sgd", "lbfgs"]);
        for inv in job.checkpoints.iter().flat_map(|c| &c.inversions) {
            // the start is seeded by the training seed: paired across arms of one seed
            assert_eq!(inv.config.seed, job.train.seed);
            assert_eq!(inv.config.steps, 50);
            assert_eq!((inv.config.tv, inv.config.l2), (1e-3, 1e-4));
            assert!(inv.config.validate().is_ok());
        }
    }
    // arms of one seed invert with identical settings; seeds differ in their starts
    assert_eq!(jobs[0].checkpoints, jobs[3].checkpoints);
    assert_ne!(jobs[0].checkpoints, jobs[4].checkpoints);
    // FGSM epochs cost twice
    assert!(jobs[2].cost() > jobs[1].cost());
    let grid = OptimizerStudy {
        grid: true,
        ..study()
    };
    let jobs = grid.jobs().unwrap();
    assert_eq!(jobs[0].checkpoints[0].inversions.len(), 12);
    assert_eq!(jobs[0].checkpoints[1].inversions.len(), 14);
}

#[test]
fn task2_pairs_use_each_class_once_as_source_and_target() {
    let mut from: Vec<u8> = TASK2_PAIRS.iter().map(|p| p.0).collect();
    let mut to = task2_targets();
    assert!(TASK2_PAIRS.iter().all(|&(f, t)| u32::from(f) != t));
    from.sort_unstable();
    to.sort_unstable();
    assert_eq!(from, (0..10).collect::<Vec<u8>>());
    assert_eq!(to, (0..10).collect::<Vec<u32>>());
    let labels = [3u8, 9, 1, 0, 2, 4, 5, 6, 7, 8, 9, 1];
    let idx = task2_sources(&labels).unwrap();
    assert_eq!(idx[0], 1); // the first 9
    assert_eq!(idx[1], 2); // the first 1
    assert!(idx
        .iter()
        .zip(TASK2_PAIRS)
        .all(|(&i, (f, _))| labels[i] == f));
    match task2_sources(&[0, 1, 2]) {
        Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, "labels"),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

fn row(optimizer: &str, seed: u64, judge_accuracy: f64) -> Row {
    Row {
        optimizer: optimizer.to_string(),
        adversarial: "none".to_string(),
        epsilon: None,
        epochs: 4,
        seed,
        task: 1,
        image_optimizer: "adam".to_string(),
        inversion_seed: seed,
        tv: 1e-3,
        l2: 1e-4,
        test_accuracy: 0.9,
        judge_accuracy,
        judges: BTreeMap::from([("j1".to_string(), judge_accuracy)]),
        nearest_mean_accuracy: 0.5,
        knn_accuracy: 0.5,
        class_mean_corr: 0.5,
        net_accuracy: 1.0,
        self_confidence: 0.75,
        ms_per_step: 1.0,
    }
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

/// SGD nets judged 2, 4, 6 of 10 and Adam nets 1, 1, 1 over seeds 0..3.
fn known_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for (seed, (s, a)) in [(0.2, 0.1), (0.4, 0.1), (0.6, 0.1)].into_iter().enumerate() {
        rows.push(row("sgd", seed as u64, s));
        rows.push(row("adam", seed as u64, a));
    }
    rows
}

#[test]
fn docs_tables_give_t_intervals_and_paired_tests_on_known_numbers() {
    let text = docs_tables(&known_rows()).unwrap();
    // 2, 4, 6: mean 4, sd 2, t(0.975, 2) = 4.303 -> half-width 4.303 * 2 / sqrt 3 = 4.97
    assert!(
        text.lines().any(|l| l
            == "| sgd | 4 | 3 | **4.0 ± 5.0** | 4.0 ± 5.0 | 5.0 ± 0.0 | 5.0 ± 0.0 | 0.500 ± 0.000 | 10.0 ± 0.0 | 0.9000 ± 0.0000 |"),
        "{text}"
    );
    // differences 1, 3, 5: mean 3, same half-width; all positive, so p = 2 / 8
    assert!(
        text.lines()
            .any(|l| l == "| sgd - adam | 4 | 3 | 4.0 vs 1.0 | +3.0 ± 5.0 | 0.250 |"),
        "{text}"
    );
    // no swap rows, no swap table; no Task 2 rows, no Task 2 table
    assert!(!text.contains("swap"));
    assert!(!text.contains("Task 2"));
}

#[test]
fn verdicts_follow_the_interval_and_the_threshold() {
    let paired = |a: f64, b: f64, low: f64| Paired {
        n: 10,
        means: (a, b),
        diff: MeanCi {
            mean: a - b,
            half_width: a - b - low,
        },
        p: 0.01,
    };
    assert_eq!(
        invertibility_verdict(&paired(8.0, 2.0, 1.0)),
        Verdict::Holds
    );
    assert_eq!(
        invertibility_verdict(&paired(9.0, 6.0, 1.0)),
        Verdict::HoldsPartly
    );
    assert_eq!(
        invertibility_verdict(&paired(8.0, 2.0, -0.5)),
        Verdict::DoesNotHold
    );
    // 3 seeds, CI of the difference +3.0 ± 5.0 includes 0: does not hold; the judge agrees
    let rows = verdict_rows(&known_rows(), "[optimizer](results/optimizer.md)").unwrap();
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines.len(), 1, "{rows}");
    assert_eq!(
        lines[0],
        "| An Adam-trained net cannot be inverted, an SGD-trained one can (Task 1, noise to digits; thesis 2.5-2.6), 4 epochs | does not hold | sgd - adam (judges' majority, of 10): 4 ep: 4.0 vs 1.0, +3.0 ± 5.0 | 1 of 1 judges | [optimizer](results/optimizer.md) |"
    );
}
