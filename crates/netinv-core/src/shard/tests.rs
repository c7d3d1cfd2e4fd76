use super::*;

fn write(dir: &Path, study: &str, config: serde_json::Value, shard: &str, costs: &[f64]) {
    let shard: Shard = shard.parse().unwrap();
    let jobs = shard.jobs_of(costs).unwrap();
    let outputs: Vec<f64> = jobs.iter().map(|&j| j as f64 + 0.5).collect();
    let manifest = ShardManifest::new(study, config, shard, costs.len(), jobs);
    write_shard(dir, &manifest, &(), &outputs).unwrap();
}

fn err_text<T: fmt::Debug>(r: Result<T>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn shard_specs_parse_and_bad_ones_are_refused() {
    let s: Shard = "2/8".parse().unwrap();
    assert_eq!((s.index(), s.count()), (2, 8));
    assert_eq!(s.to_string(), "2/8");
    assert_eq!(serde_json::to_string(&s).unwrap(), "\"2/8\"");
    assert_eq!(serde_json::from_str::<Shard>("\"2/8\"").unwrap(), s);
    assert_eq!(Shard::whole(), "1/1".parse().unwrap());
    for bad in [
        "0/3", "4/3", "1/0", "a/2", "3", "", "-1/2", "1/2/3", "1.5/2",
    ] {
        assert!(bad.parse::<Shard>().is_err(), "{bad} was accepted");
    }
    assert!(err_text("4/3".parse::<Shard>()).contains("1..=3"));
    assert!(serde_json::from_str::<Shard>("\"0/2\"").is_err());
}

#[test]
fn equal_costs_go_round_robin_and_every_job_has_one_shard() {
    assert_eq!(assign(&[1.0; 7], 3).unwrap(), vec![0, 1, 2, 0, 1, 2, 0]);
    let costs = [3.0, 1.0, 2.0, 1.0, 1.0, 5.0];
    // longest first: 5 -> s0, 3 -> s1, 2 -> s1 (3 < 5); then the 1s to the lightest,
    // ties to the lower shard: job 1 -> s0 (5 = 5), job 3 -> s1 (6 > 5), job 4 -> s0
    assert_eq!(assign(&costs, 2).unwrap(), vec![1, 0, 1, 1, 0, 0]);
    let mut seen = Vec::new();
    for k in 1..=3 {
        seen.extend(Shard::new(k, 3).unwrap().jobs_of(&costs).unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..costs.len()).collect::<Vec<_>>());
    assert!(err_text(assign(&costs, 7)).contains("only 6 jobs"));
    assert!(assign(&[1.0, f64::NAN], 1).is_err());
    assert!(assign(&[1.0, -1.0], 1).is_err());
}

#[test]
fn merge_restores_job_order_and_exact_floats() {
    let tmp = tempfile::tempdir().unwrap();
    // floats whose shortest text takes 17 digits must read back to the same bits
    let values: Vec<f64> = (0..200)
        .map(|i| (f64::from(i) * 0.1).sin() / 3.0 + 1e-7 * f64::from(i))
        .collect();
    let costs = vec![1.0; values.len()];
    let mut dirs = Vec::new();
    for k in 1..=3 {
        let shard = Shard::new(k, 3).unwrap();
        let jobs = shard.jobs_of(&costs).unwrap();
        let outs: Vec<f64> = jobs.iter().map(|&j| values[j]).collect();
        let dir = tmp.path().join(format!("s{k}"));
        let m = ShardManifest::new("t", serde_json::json!({}), shard, costs.len(), jobs);
        write_shard(&dir, &m, &(), &outs).unwrap();
        dirs.push(dir);
    }
    dirs.reverse();
    let merged = merge::<(), f64>(&dirs, "t", &tmp.path().join("out")).unwrap();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&merged.outputs), bits(&values));
    assert_eq!(merged.sources[0], tmp.path().join("s1"));
}

#[test]
fn mismatched_missing_and_duplicate_shards_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name);
    let costs = [1.0; 4];
    let cfg = serde_json::json!({ "args": { "seed": 0, "steps": 10 } });
    write(&p("a1"), "st", cfg.clone(), "1/2", &costs);
    write(&p("a2"), "st", cfg.clone(), "2/2", &costs);
    let other = serde_json::json!({ "args": { "seed": 1, "steps": 10 } });
    write(&p("b2"), "st", other, "2/2", &costs);
    write(&p("c2"), "other_study", cfg.clone(), "2/2", &costs);
    write(&p("d2"), "st", cfg.clone(), "2/3", &costs);
    let out = p("out");
    assert!(merge::<(), f64>(&[p("a1"), p("a2")], "st", &out).is_ok());
    let refused = |dirs: &[PathBuf]| err_text(merge::<(), f64>(dirs, "st", &out));
    assert!(refused(&[p("a1"), p("b2")]).contains("args.seed"));
    assert!(refused(&[p("a1"), p("c2")]).contains("other_study"));
    assert!(refused(&[p("a1"), p("d2")]).contains("split"));
    assert!(refused(&[p("a1")]).contains("in none of the shard folders"));
    assert!(refused(&[p("a1"), p("a1"), p("a2")]).contains("in both"));
    assert!(refused(&[p("a1"), p("nothing")]).contains("has no shard.json"));
    assert!(refused(&[]).contains("at least one"));
    assert!(
        err_text(merge::<(), f64>(&[p("a1"), p("a2")], "st", &p("a2"))).contains("output folder")
    );
    // a shared phase that differs between shards
    let shard: Shard = "2/2".parse().unwrap();
    let m = ShardManifest::new("st", cfg.clone(), shard, 4, vec![1, 3]);
    write_shard(&p("e2"), &m, &7u32, &[1.5, 3.5]).unwrap();
    let m1 = ShardManifest::new("st", cfg, "1/2".parse().unwrap(), 4, vec![0, 2]);
    write_shard(&p("e1"), &m1, &8u32, &[0.5, 2.5]).unwrap();
    assert!(err_text(merge::<u32, f64>(&[p("e1"), p("e2")], "st", &out)).contains("shared"));
    assert!(write_shard(&p("f"), &m1, &(), &[0.5]).is_err());
}

#[test]
fn nan_survives_a_shard_file_and_job_files_are_copied() {
    #[derive(Serialize, Deserialize)]
    struct Row {
        #[serde(deserialize_with = "nan_from_null")]
        score: f64,
    }
    let text = serde_json::to_string(&Row { score: f64::NAN }).unwrap();
    assert_eq!(text, r#"{"score":null}"#);
    assert!(serde_json::from_str::<Row>(&text).unwrap().score.is_nan());
    assert_eq!(
        serde_json::from_str::<Row>(r#"{"score":2.5}"#)
            .unwrap()
            .score,
        2.5
    );

    let tmp = tempfile::tempdir().unwrap();
    let from = tmp.path().join("shard");
    atomic_write_bytes(from.join("runs/a/x.bin"), b"xyz").unwrap();
    atomic_write_bytes(from.join("runs/a/deep/y.bin"), b"y").unwrap();
    let to = tmp.path().join("merged");
    copy_job_files(&from, &to, Path::new("runs/a")).unwrap();
    copy_job_files(&from, &to, Path::new("runs/missing")).unwrap();
    assert_eq!(std::fs::read(to.join("runs/a/x.bin")).unwrap(), b"xyz");
    assert_eq!(std::fs::read(to.join("runs/a/deep/y.bin")).unwrap(), b"y");
    assert!(!to.join("runs/missing").exists());
}
