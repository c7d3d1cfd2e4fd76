use super::*;

fn study() -> PrototypeStudy {
    PrototypeStudy {
        seeds: 2,
        dims: vec![2, 5],
        invert_dims: vec![5],
    }
}

#[test]
fn jobs_follow_seed_then_dim_then_kind_and_bad_settings_are_refused() {
    let study = study();
    let jobs = study.jobs().unwrap();
    assert_eq!(jobs.len(), 10);
    assert_eq!(jobs[0], PrototypeJob::CrossEntropy { seed: 0 });
    assert_eq!(
        jobs[4],
        PrototypeJob::Prototype {
            kind: PrototypeKind::Busemann,
            dim: 5,
            seed: 0
        }
    );
    assert_eq!(jobs[5].folder(), "cross_entropy_s1");
    assert_eq!(
        jobs[1].files(),
        vec!["hyperspherical_d2_s0", "embedding_hyperspherical_d2_s0.png"]
    );
    assert!(!study.inverts(&jobs[1]) && study.inverts(&jobs[3]) && study.inverts(&jobs[0]));
    assert_eq!(study.cost(&jobs[1]), 1.0);
    assert_eq!(study.cost(&jobs[3]), 1.5);
    for bad in [
        PrototypeStudy {
            seeds: 0,
            ..study.clone()
        },
        PrototypeStudy {
            dims: vec![],
            ..study.clone()
        },
        PrototypeStudy {
            dims: vec![5, 5],
            ..study.clone()
        },
        PrototypeStudy {
            invert_dims: vec![3],
            ..study.clone()
        },
        PrototypeStudy {
            invert_dims: vec![5, 5],
            ..study.clone()
        },
    ] {
        assert!(bad.jobs().is_err(), "{bad:?}");
    }
}

fn scores(majority: f64, net: f64) -> Scores {
    Scores {
        majority: Some(majority),
        judges: [("mlp".to_string(), majority), ("wide-cnn".to_string(), 0.5)].into(),
        unanimous: Some(0.5),
        nearest_mean: 0.3,
        knn: 0.2,
        class_mean_corr: 0.4,
        net,
    }
}

fn baseline(seed: u64, majority: f64) -> Baseline {
    Baseline {
        seed,
        precision: 0.9,
        recall: 0.8,
        f1: 0.85,
        task1: scores(majority, 1.0),
        task2: scores(majority, 1.0),
    }
}

fn row(seed: u64, f1: f64, majority: Option<f64>) -> Row {
    Row {
        kind: "busemann".into(),
        dim: 2,
        seed,
        precision: 0.5,
        recall: 0.5,
        f1,
        task1: majority.map(|m| scores(m, 0.9)),
        task2: majority.map(|m| scores(m, 0.8)),
    }
}

#[test]
fn merge_splits_rows_and_baselines_in_job_order_through_json() {
    let outs = vec![
        PrototypeOutput::CrossEntropy(baseline(0, 0.7)),
        PrototypeOutput::Prototype(row(0, 0.5, None)),
        PrototypeOutput::CrossEntropy(baseline(1, 0.6)),
        PrototypeOutput::Prototype(row(1, 0.6, Some(0.3))),
    ];
    let text = serde_json::to_string(&outs).unwrap();
    let back: Vec<PrototypeOutput> = serde_json::from_str(&text).unwrap();
    // the shard files hold the outputs: a round trip must give the same JSON bytes
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
    let (rows, baselines) = PrototypeStudy::merge(back);
    assert_eq!(rows, vec![row(0, 0.5, None), row(1, 0.6, Some(0.3))]);
    assert_eq!(baselines, vec![baseline(0, 0.7), baseline(1, 0.6)]);
}

#[test]
fn task2_sources_take_the_seeds_image_of_each_source_class() {
    // classes 0..9 twice, then a third 9
    let labels: Vec<u8> = (0..10).chain(0..10).chain([9]).collect();
    let s0 = task2_sources(&labels, 0).unwrap();
    assert_eq!(s0, (0..10).collect::<Vec<_>>());
    let s1 = task2_sources(&labels, 1).unwrap();
    assert_eq!(s1, (10..20).collect::<Vec<_>>());
    // seed 2: only class 9 has a third image; the others wrap to their first
    let s2 = task2_sources(&labels, 2).unwrap();
    assert_eq!(s2[9], 20);
    assert_eq!(s2[0], 0);
    for (&i, &(from, to)) in s1.iter().zip(&TASK2_PAIRS) {
        assert_eq!(labels[i], from);
        assert_ne!(u32::from(from), to, "a pair must change the class");
    }
    assert_eq!(TASK2_PAIRS[9], (9, 8), "the thesis's pair");
    assert!(task2_sources(&[0, 1, 2], 0).is_err());
    assert_eq!(task2_targets()[9], 8);
}

#[test]
fn tables_print_means_cis_and_pairs_from_the_rows() {
    let baselines = vec![baseline(0, 0.7), baseline(1, 0.5)];
    let rows = vec![row(0, 0.6, Some(0.4)), row(1, 0.8, Some(0.4))];
    let f1 = f1_table(&rows, &baselines);
    // F1 60 and 80: mean 70, half-width t_{0.975,1} * 10 / sqrt(2) * sqrt(2) = 12.706 * 10
    assert!(
        f1.contains("| Busemann | 2 | **70.0 ± 127.1** | 60.0, 80.0 | 50.0 / 50.0 |"),
        "{f1}"
    );
    assert!(
        f1.contains(
            "| cross-entropy (10 outputs) | - | **85.0 ± 0.0** | 85.0, 85.0 | 90.0 / 80.0 |"
        ),
        "{f1}"
    );
    let t1 = inversion_table(&rows, &baselines, Task::One);
    assert!(t1.starts_with("| net | D | majority of 10 (mean ± 95% CI) | per seed | mlp | wide-cnn | unanimous % |"), "{t1}");
    assert!(
        t1.contains("| cross-entropy | - | **6.0 ± 12.7** | 7, 5 | 6.0 | 5.0 | 50 | 3.0 | 2.0 | 0.400 | 10.0 |"),
        "{t1}"
    );
    assert!(
        t1.contains(
            "| Busemann | 2 | **4.0 ± 0.0** | 4, 4 | 4.0 | 5.0 | 50 | 3.0 | 2.0 | 0.400 | 9.0 |"
        ),
        "{t1}"
    );
    let t2 = inversion_table(&rows, &baselines, Task::Two);
    assert!(
        t2.contains(
            "| Busemann | 2 | **4.0 ± 0.0** | 4, 4 | 4.0 | 5.0 | 50 | 3.0 | 2.0 | 0.400 | 8.0 |"
        ),
        "{t2}"
    );
    // differences -3 and -1: mean -2, p = 2/4 (both signs patterns reaching |sum| = 4)
    let paired = paired_table(&rows, &baselines);
    assert!(
        paired.contains("| Busemann | 2 | -2.0 ± 12.7 | 0.500 | -2.0 ± 12.7 | 0.500 | 2 |"),
        "{paired}"
    );
    let all = tables(&rows, &baselines);
    assert!(all.contains(&f1) && all.contains(&paired));
}

#[test]
fn gap_recipes_start_with_the_default_and_map_to_train_configs() {
    let recipes = gap_recipes();
    assert_eq!(recipes[0], GapRecipe::study_default());
    let cfg = recipes[2].train_config(4);
    assert_eq!(cfg.schedule, LrSchedule::Constant);
    assert_eq!((cfg.shift, cfg.epochs, cfg.seed), (0, 10, 4));
    assert!(matches!(cfg.optimizer, OptimizerKind::Adam));
    let rows = vec![
        GapRow {
            recipe: recipes[0].clone(),
            seed: 0,
            val_f1: 0.6,
            final_loss: 0.2,
        },
        GapRow {
            recipe: recipes[0].clone(),
            seed: 1,
            val_f1: 0.7,
            final_loss: 0.1,
        },
    ];
    let t = gap_table(&rows);
    assert!(
        t.contains("| cosine lr 0.001, 10 ep, shift 2 | **65.0 ± 63.5** | 60.0, 70.0 | 0.1500 |"),
        "{t}"
    );
}
