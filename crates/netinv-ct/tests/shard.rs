//! The CT study split into 3 shards and merged gives exactly the single run's JSON.

use candle_core::Device;
use candle_nn::VarMap;
use netinv_core::shard::{merge, write_shard, Shard, ShardManifest};
use netinv_ct::study::{Digits, Job, JobOutput, Outcome, Study, StudyConfig, Tuning, SHARD_STUDY};
use netinv_ct::HybridConfig;
use netinv_data::Mnist;
use netinv_invert::InversionConfig;
use netinv_models::{Classifier, ClassifierConfig};

fn digits(set: &netinv_data::Dataset) -> Digits {
    Digits {
        images: (0..set.len()).map(|i| set.image(i).to_owned()).collect(),
        labels: set.labels().iter().map(|&c| u32::from(c)).collect(),
    }
}

/// Three settings, one test digit each, short solvers.
fn tiny_config() -> StudyConfig {
    StudyConfig {
        angles: vec![2, 4, 8],
        noises: vec![None],
        pdhg_iterations: 10,
        pg_iterations: 3,
        pg_images: 1,
        grid_digits: 1,
        seed: 7,
        hybrid: HybridConfig {
            warmup_sirt: 5,
            alternating: 2,
            sirt_per_cycle: 2,
            inversion_per_cycle: 2,
            inversion: InversionConfig {
                steps: 4,
                ..HybridConfig::default().inversion
            },
            ..HybridConfig::default()
        },
        generative: Default::default(),
    }
}

/// Phases 1 and 2, as every shard runs them.
fn tune(study: &Study, net: &Classifier) -> Tuning {
    let tv = study.tv_jobs();
    let tv_out = study
        .run_phase::<Classifier>(&tv, None, None, &|_, _| {})
        .unwrap();
    let nets = study.tuning_jobs();
    let net_out = study.run_phase(&nets, Some(net), None, &|_, _| {}).unwrap();
    let jobs: Vec<Job> = tv.iter().chain(&nets).copied().collect();
    study
        .merge_tuning(&jobs, tv_out.into_iter().chain(net_out).collect())
        .unwrap()
}

fn json(outcome: &Outcome, tuning: &Tuning) -> [Vec<u8>; 4] {
    [
        serde_json::to_vec_pretty(&outcome.rows).unwrap(),
        serde_json::to_vec_pretty(&outcome.per_image).unwrap(),
        serde_json::to_vec_pretty(&outcome.kept).unwrap(),
        serde_json::to_vec_pretty(tuning).unwrap(),
    ]
}

#[test]
fn three_shards_merged_equal_one_run_byte_for_byte() {
    let mnist = Mnist::embedded().unwrap();
    let test = digits(&mnist.test().take(1));
    let val = digits(&mnist.train().take(1)).images;
    let cfg = ClassifierConfig {
        conv_channels: vec![4, 8],
        hidden: 16,
        batch_norm: true,
        ..ClassifierConfig::netinv_small()
    };
    let net = Classifier::init(&cfg, &VarMap::new(), 3, &Device::Cpu).unwrap();
    let study = Study::new(tiny_config(), &val, &test).unwrap();

    let tuning = tune(&study, &net);
    let jobs = study.run_jobs();
    let outs = study
        .run_phase(&jobs, Some(&net), Some(&tuning), &|_, _| {})
        .unwrap();
    let single = json(&study.merge_runs(&jobs, outs).unwrap(), &tuning);

    let tmp = tempfile::tempdir().unwrap();
    let config = serde_json::to_value(study.config()).unwrap();
    let mut dirs = Vec::new();
    for k in [3, 1, 2] {
        let shard = Shard::new(k, 3).unwrap();
        let tuning = tune(&study, &net);
        let jobs = study.shard_run_jobs(shard).unwrap();
        assert_eq!(jobs.len(), 1, "one setting per shard");
        let outs: Vec<JobOutput> = study
            .run_phase(&jobs, Some(&net), Some(&tuning), &|_, _| {})
            .unwrap();
        let done = jobs
            .iter()
            .map(|j| match j {
                Job::Run { setting } => *setting,
                other => panic!("{other:?}"),
            })
            .collect();
        let dir = tmp.path().join(format!("shard{k}"));
        let manifest = ShardManifest::new(SHARD_STUDY, config.clone(), shard, 3, done);
        write_shard(&dir, &manifest, &tuning, &outs).unwrap();
        dirs.push(dir);
    }
    let merged = merge::<Tuning, JobOutput>(&dirs, SHARD_STUDY, &tmp.path().join("out")).unwrap();
    let (tuning, outcome) = study.merge_shards(merged).unwrap();
    assert_eq!(json(&outcome, &tuning), single);

    // two shards only: a setting is missing
    let partial = merge::<Tuning, JobOutput>(&dirs[..2], SHARD_STUDY, &tmp.path().join("out"));
    assert!(partial
        .unwrap_err()
        .to_string()
        .contains("in none of the shard folders"));
}
