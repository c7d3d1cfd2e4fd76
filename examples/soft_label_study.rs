//! Thesis sections 3.5.2 and 3.5.3: does training on soft-labelled VAE interpolations make
//! a classifier easier to invert (the thesis: Adam gains, SGD loses), once the step count is
//! controlled; and how many interpolations does the judge panel put in a third class?
//!
//! ```text
//! cargo run --release --example soft_label_study -- --seeds N --out DIR
//!     [--epochs 4 --steps 1000 --generated-per-real 0.5 --distinct-classes --beta 0.4
//!      --vae runs/vae --judge runs/judge --quick]
//! cargo run --release --example soft_label_study -- --tables DIR   # the docs' tables
//! ```
//!
//! `--quick` (a smoke test, not a result): one seed, one epoch, 50 inversion steps; the
//! judge panel only if all of it is cached in `--judge` (otherwise the judged columns are
//! null and there is no third-class count). The VAE is still loaded from, or trained into,
//! `--vae`. It cannot be combined with the flags it sets.
//!
//! For every training length in `--epochs`, seed `0..N`, optimiser (SGD: `TrainConfig::sgd()`,
//! Adam: `TrainConfig::adam()`) and data arm (`netinv::interp::study`: `real`, the 8,000
//! training digits; `real+interp`, the same plus `generated-per-real x 8,000` interpolations
//! per epoch, decoded on the fly from `a z1 + (1 - a) z2` of two random training digits (of
//! two different classes with `--distinct-classes`) with `a ~ U(0, 1)` (`Beta(beta, beta)`
//! with `--beta`) and labelled `a` / `1 - a` on their classes; `real-matched`, the real
//! digits for as many optimiser steps as real+interp takes), a netinv-small classifier is
//! trained (the seed sets the weights, the order and the pairs) and inverted with Task 1 (ten
//! noise images become 0..9; 1000 Adam steps, TV 1e-3, L2 1e-4, the start seeded by the
//! job's seed) and Task 2 (`study::task2_pairs`: the first test digit of each class d
//! becomes d - 1, one batch with the class loss summed, so each image inverts as it would
//! alone; same settings and seed). The judge panel (`--judge`, the three judges of
//! `default_panel`) scores both; its majority is the headline.
//!
//! Writes `study.json` (one row per net, `netinv::interp::study::Row`, rewritten after every
//! run), `third_class.json` (every interpolation between two different classes of the
//! real+interp source's epoch 0 with each judge's and the majority's class), `study.md`
//! (the tables of docs/results.md), `config.json`, per run `runs/<name>/` with `task1.png`,
//! `task1.json`, `task2.png`, `task2.json`, `images.npy`, and the trained nets under `nets/`
//! (reused when present).
//!
//! Many machines: the study is the job list of `netinv::interp::study` (one net per job).
//! `--shard K/N` runs shard K's share and records it in `--out/shard.json` (the third-class
//! count is every shard's shared phase); `--merge DIR... --out OUT` checks the shards belong
//! together and writes into OUT what one run writes (`study.json`, `third_class.json`,
//! `config.json` byte-identical, `study.md`, the `nets/` and `runs/` folders copied). Train
//! the VAE and the judge panel once before starting shards on one machine, so they do not
//! train them side by side. See docs/scaling.md.

#[path = "flag_support/mod.rs"]
mod flag_support;
#[path = "interp_support/mod.rs"]
mod interp_support;
#[path = "invert_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use clap::Parser;
use netinv::core::shard::{self, Shard, ShardManifest};
use netinv::core::{
    atomic_write_bytes, write_json, ImageGrid, ImageRef, Monitor, ProgressObserver,
};
use netinv::data::Mnist;
use netinv::interp::study::{
    self, tables, task2_pairs, Row, SoftLabelJob, SoftLabelStudy, ThirdClass, TrainData,
};
use netinv::interp::{AlphaDist, InterpConfig, InterpolationSource};
use netinv::invert::{InversionConfig, Inverter, Reduction};
use netinv::models::judge::{class_mean_correlation, JudgePanel};
use netinv::models::train::{evaluate, EpochRecord, TrainConfig, Trainer};
use netinv::models::{load_frozen, save_checkpoint, Classifier, ClassifierConfig};
use netinv::models::{VaeConfig, VaeTrainConfig};
use serde_json::json;

/// The study's name in shard manifests.
const STUDY: &str = "soft_label_study";

/// The epoch seed of the interpolations the third-class count judges.
const THIRD_CLASS_SEED: u64 = 0;

/// Train SGD / Adam nets on real, real + interpolated and step-matched real digits and
/// invert each (Task 1 and Task 2).
#[derive(Debug, Parser)]
struct Args {
    /// Seeds per setting.
    #[arg(long, default_value_t = 10, value_parser = flag_support::at_least_one_u64)]
    seeds: u64,
    /// Output folder.
    #[arg(long, default_value = "runs/soft_label_study")]
    out: PathBuf,
    /// Training lengths in epochs (nominal: real-matched trains longer).
    #[arg(long, value_delimiter = ',', default_value = "4", value_parser = flag_support::at_least_one)]
    epochs: Vec<usize>,
    /// Inversion steps (Task 1 and Task 2).
    #[arg(long, default_value_t = 1000, value_parser = flag_support::at_least_one)]
    steps: usize,
    /// Interpolations per real digit and epoch (> 0: with 0 both arms would train on the
    /// same data).
    #[arg(long, default_value_t = 0.5, value_parser = flag_support::positive)]
    generated_per_real: f64,
    /// Draw the two digits of a pair from different classes.
    #[arg(long)]
    distinct_classes: bool,
    /// Draw the weights from Beta(BETA, BETA) instead of U(0, 1).
    #[arg(long, value_parser = flag_support::positive)]
    beta: Option<f64>,
    /// VAE folder (trained there, 30 epochs, if missing).
    #[arg(long, default_value = "runs/vae")]
    vae: PathBuf,
    /// Judge panel folder (each judge trained there if missing).
    #[arg(long, default_value = "runs/judge")]
    judge: PathBuf,
    /// Smoke-test settings (see the header); judges only with a cached panel.
    #[arg(long, conflicts_with_all = ["seeds", "epochs", "steps"])]
    quick: bool,
    /// Run only shard K of N of the job list (K in 1..=N) and record it in --out/shard.json.
    #[arg(long, value_parser = flag_support::shard)]
    shard: Option<Shard>,
    /// Merge these finished shard folders into --out (the settings come from the shards).
    #[arg(long, num_args = 1.., conflicts_with_all = ["seeds", "epochs", "steps", "generated_per_real", "distinct_classes", "beta", "quick", "shard"])]
    merge: Vec<PathBuf>,
    /// Print the tables of a finished run's folder (`study.json`, `third_class.json`) and
    /// exit; nothing is trained.
    #[arg(long, conflicts_with_all = ["seeds", "epochs", "steps", "generated_per_real", "distinct_classes", "beta", "quick", "shard", "merge"])]
    tables: Option<PathBuf>,
}

impl Args {
    /// The `--quick` settings in place of the defaults.
    fn apply_quick(&mut self) {
        if self.quick {
            (self.seeds, self.epochs, self.steps) = (1, vec![1], 50);
        }
    }
}

/// Trains a netinv-small net on `source` (soft targets) and saves it; cached like
/// `support::load_or_train_net`.
fn load_or_train_on_interp(
    cfg: &TrainConfig,
    weight_seed: u64,
    source: &InterpolationSource,
    mnist: &Mnist,
    dir: &Path,
    label: &str,
) -> Result<(Classifier, f64)> {
    if dir.join("test_accuracy.json").exists() {
        let net = load_frozen(dir, &Device::Cpu)?;
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("test_accuracy.json"))?)?;
        return Ok((net, v["test_accuracy"].as_f64().unwrap_or(f64::NAN)));
    }
    let model_cfg = ClassifierConfig::netinv_small();
    let varmap = VarMap::new();
    let net = Classifier::init(&model_cfg, &varmap, weight_seed, &Device::Cpu)?;
    let mut monitor: Monitor<EpochRecord> =
        Monitor::new().with_observer(ProgressObserver::new(cfg.epochs, label));
    Trainer::new(cfg.clone())?.fit(&net, &varmap, source, None, &mut monitor)?;
    save_checkpoint(dir, &varmap, &model_cfg)?;
    write_json(dir.join("train_config.json"), cfg)?;
    write_json(dir.join("interp_config.json"), source.config())?;
    let frozen = load_frozen(dir, &Device::Cpu)?;
    let acc = evaluate(&frozen, mnist.test(), &Device::Cpu)?.accuracy;
    write_json(
        dir.join("test_accuracy.json"),
        &json!({ "test_accuracy": acc }),
    )?;
    Ok((frozen, acc))
}

/// Checks what clap's value parsers cannot (repeated lengths, the folders) before a judge,
/// a VAE or a net is trained.
fn validate(args: &Args) -> Result<()> {
    flag_support::distinct("--epochs", &args.epochs)?;
    flag_support::output_folder("--out", &args.out)?;
    flag_support::cache_folder("--vae", &args.vae, netinv::models::VAE_CONFIG_FILE, "VAE")?;
    flag_support::cache_folder("--judge", &args.judge, netinv::models::JUDGE_FILE, "judge")
}

/// `--tables DIR`: the tables of a finished run.
fn print_tables(dir: &Path) -> Result<()> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    };
    let rows: Vec<Row> = serde_json::from_str(&read("study.json")?)?;
    let third: Option<ThirdClass> = if dir.join("third_class.json").exists() {
        Some(serde_json::from_str(&read("third_class.json")?)?)
    } else {
        None
    };
    print!("{}", tables(&rows, third.as_ref()));
    Ok(())
}

fn main() -> Result<()> {
    netinv::core::install_cleanup_handler()?;
    let mut args = Args::parse();
    if let Some(dir) = &args.tables {
        return print_tables(dir);
    }
    if !args.merge.is_empty() {
        return merge(&args);
    }
    args.apply_quick();
    validate(&args)?;
    let mnist = Mnist::embedded()?;
    let panel = if args.quick {
        let cached = support::cached_panel(&args.judge)?;
        if cached.is_none() {
            eprintln!(
                "--quick: the judge panel is not all cached in {}, the images are not judged",
                args.judge.display()
            );
        }
        cached
    } else {
        Some(support::panel(&args.judge, &mnist)?)
    };
    let vae = interp_support::load_or_train_vae(
        &VaeConfig::default(),
        &VaeTrainConfig {
            epochs: 30,
            ..Default::default()
        },
        0,
        &mnist,
        &args.vae,
    )?;
    let interp_cfg = InterpConfig {
        generated_per_real: args.generated_per_real,
        distinct_classes: args.distinct_classes,
        alpha: match args.beta {
            Some(alpha) => AlphaDist::Beta { alpha },
            None => AlphaDist::Uniform,
        },
        ..Default::default()
    };
    let source = InterpolationSource::new(&vae, mnist.train(), interp_cfg, &Device::Cpu)?;
    eprintln!(
        "interpolation source: {} real + {} generated digits per epoch",
        source.real_len(),
        source.generated_len()
    );
    let study = SoftLabelStudy {
        seeds: args.seeds,
        epochs: args.epochs.clone(),
        real_len: source.real_len(),
        generated_len: source.generated_len(),
    };
    let jobs = study.jobs()?;
    let shard = args.shard.unwrap_or_else(Shard::whole);
    let costs: Vec<f64> = jobs.iter().map(SoftLabelJob::cost).collect();
    let mine = shard.jobs_of(&costs)?;
    let inv = InversionConfig {
        steps: args.steps,
        snapshots: [100].into_iter().filter(|&s| s < args.steps).collect(),
        ..Default::default()
    };
    let config = json!({
        "study": study,
        "interp": source.config(),
        "inversion": inv,
        "vae": args.vae,
        "judge": args.judge,
    });
    write_json(args.out.join("config.json"), &config)?;
    let third = panel
        .as_ref()
        .map(|p| study::third_class(&source, p, THIRD_CLASS_SEED, &Device::Cpu))
        .transpose()?;
    if let Some(tc) = &third {
        write_json(args.out.join("third_class.json"), tc)?;
    }
    let mut rows = Vec::with_capacity(mine.len());
    for job in mine.iter().map(|&j| &jobs[j]) {
        let cx = RunContext {
            out: &args.out,
            mnist: &mnist,
            source: &source,
            panel: panel.as_ref(),
            inv: &inv,
        };
        rows.push(run_job(&cx, job)?);
        write_rows(&args.out, &rows, third.as_ref())?;
    }
    if let Some(shard) = args.shard {
        let config = json!({ "config_json": config, "judged": panel.is_some() });
        let manifest = ShardManifest::new(STUDY, config, shard, jobs.len(), mine);
        shard::write_shard(&args.out, &manifest, &third, &rows)?;
        println!(
            "shard {shard}: {} of {} jobs in {}/shard.json; combine the shards with --merge",
            rows.len(),
            jobs.len(),
            args.out.display()
        );
    }
    println!("{}", tables(&rows, third.as_ref()));
    println!("wrote {}/study.json and study.md", args.out.display());
    Ok(())
}

/// What every job needs besides its own settings.
struct RunContext<'a> {
    out: &'a Path,
    mnist: &'a Mnist,
    source: &'a InterpolationSource,
    panel: Option<&'a JudgePanel>,
    inv: &'a InversionConfig,
}

/// What Task 2 gave on one net.
struct Task2Outcome {
    judge_accuracy: Option<f64>,
    judges: std::collections::BTreeMap<String, f64>,
    net_accuracy: f64,
    class_mean_corr: f64,
}

/// Task 2 on the pairs of `task2_pairs`: the ten sources inverted as one batch with the class
/// loss summed (so each image inverts as it would alone), judged by the panel. Writes
/// `task2.png` (sources over results, captioned with the net's and the majority's class) and
/// `task2.json` into `out`.
fn task2(
    net: &Classifier,
    panel: Option<&JudgePanel>,
    mnist: &Mnist,
    inv: &InversionConfig,
    out: &Path,
) -> Result<Task2Outcome> {
    let pairs = task2_pairs();
    let test = mnist.test();
    let mut pixels = Vec::with_capacity(pairs.len() * 784);
    let mut indices = Vec::with_capacity(pairs.len());
    for &(from, _) in &pairs {
        let i = test
            .labels()
            .iter()
            .position(|&l| l == from)
            .with_context(|| format!("no {from} in the test digits"))?;
        indices.push(i);
        pixels.extend(test.image(i).iter().copied());
    }
    let targets: Vec<u32> = pairs.iter().map(|&(_, to)| to).collect();
    let (h, w) = test.image_dim();
    let init = Tensor::from_vec(pixels.clone(), (pairs.len(), 1, h, w), &Device::Cpu)?;
    let cfg = InversionConfig {
        reduction: Reduction::Sum,
        snapshots: Vec::new(),
        ..inv.clone()
    };
    let result = Inverter::new(cfg.clone())?.invert_classes(
        net,
        &targets,
        Some(&init),
        &Device::Cpu,
        &mut Monitor::new(),
    )?;
    let net_predictions = result.predictions();
    let verdict = panel
        .map(|p| p.verdict(result.images.view(), &targets))
        .transpose()?;
    let corr = class_mean_correlation(result.images.view(), &targets, mnist.train())?;
    let net_hits = net_predictions
        .iter()
        .zip(&targets)
        .filter(|(p, t)| p == t)
        .count();

    pixels.extend(result.images.iter().copied());
    let mut captions: Vec<String> = pairs.iter().map(|(f, _)| format!("label {f}")).collect();
    captions.extend((0..pairs.len()).map(|i| match &verdict {
        Some(v) => format!(
            "n{} j{}",
            net_predictions[i],
            support::class_text(v.majority[i])
        ),
        None => format!("n{}", net_predictions[i]),
    }));
    ImageGrid::new(pairs.len())
        .with_column_labels(pairs.iter().map(|(f, t)| format!("{f}->{t}")).collect())
        .with_row_labels(vec!["source".into(), "final".into()])
        .with_captions(captions)
        .write_png(
            out.join("task2.png"),
            ImageRef::new(&pixels, 2 * pairs.len(), h, w)?,
        )?;
    let outcome = Task2Outcome {
        judge_accuracy: verdict.as_ref().map(|v| v.accuracy),
        judges: verdict.as_ref().map(|v| v.accuracies()).unwrap_or_default(),
        net_accuracy: net_hits as f64 / pairs.len() as f64,
        class_mean_corr: netinv::metrics::stats::mean(&corr),
    };
    write_json(
        out.join("task2.json"),
        &json!({
            "config": cfg,
            "source_test_indices": indices,
            "pairs": pairs,
            "net_predictions": net_predictions,
            "net_probabilities": result.probabilities,
            "judge_accuracy": outcome.judge_accuracy,
            "judges": verdict.as_ref().map(|v| v.accuracies()),
            "majority": verdict.as_ref().map(|v| v.majority.clone()),
            "verdicts": verdict.as_ref().map(|v| v.judges.clone()),
            "class_mean_corr_per_image": corr,
            "seconds": result.state.elapsed_seconds,
        }),
    )?;
    Ok(outcome)
}

/// Trains (or reloads) the job's net, inverts it with Task 1 and Task 2 (starts seeded by
/// the job's seed) and judges the images.
fn run_job(cx: &RunContext<'_>, job: &SoftLabelJob) -> Result<Row> {
    let (cfg, seed, name) = (&job.train, job.train.seed, job.name());
    let net_dir = cx.out.join("nets").join(&name);
    let (net, test_accuracy) = match job.data {
        TrainData::Real | TrainData::RealMatched => {
            support::load_or_train_net(cfg, seed, cx.mnist, &net_dir, &name)?
        }
        TrainData::RealInterp => {
            load_or_train_on_interp(cfg, seed, cx.source, cx.mnist, &net_dir, &name)?
        }
    };
    let dir = cx.out.join("runs").join(&name);
    let inv = InversionConfig {
        seed,
        ..cx.inv.clone()
    };
    let t1 = support::task1(&net, cx.panel, cx.mnist.train(), &inv, &dir, false)?;
    let t2 = task2(&net, cx.panel, cx.mnist, &inv, &dir)?;
    let row = Row {
        optimizer: job.optimizer.clone(),
        data: job.data.name().to_string(),
        seed,
        epochs: job.epochs,
        train_epochs: cfg.epochs,
        train_steps: job.steps,
        test_accuracy,
        judge_accuracy: t1.judge_accuracy.unwrap_or(f64::NAN),
        judges: t1.judges.clone().unwrap_or_default(),
        judges_unanimous: t1.judges_unanimous.unwrap_or(f64::NAN),
        class_mean_corr: t1.class_mean_corr,
        self_confidence: t1.self_confidence,
        task2_judge_accuracy: t2.judge_accuracy.unwrap_or(f64::NAN),
        task2_judges: t2.judges,
        task2_net_accuracy: t2.net_accuracy,
        task2_class_mean_corr: t2.class_mean_corr,
    };
    let judged = |a: Option<f64>| a.map_or("-".into(), |a| format!("{:.0}/10", 10.0 * a));
    println!(
        "{name}: {} steps, test acc {test_accuracy:.4}, Task 1 majority {}, Task 2 majority {} (net {:.0}/10)",
        job.steps,
        judged(t1.judge_accuracy),
        judged(t2.judge_accuracy),
        10.0 * t2.net_accuracy
    );
    Ok(row)
}

/// `study.json` and `study.md` of `rows`.
fn write_rows(out: &Path, rows: &[Row], third: Option<&ThirdClass>) -> Result<()> {
    write_json(out.join("study.json"), rows)?;
    atomic_write_bytes(out.join("study.md"), tables(rows, third).as_bytes())?;
    Ok(())
}

/// `--merge`: the shards' rows in job order, `config.json`, `third_class.json` and the job
/// folders, as one run writes them.
fn merge(args: &Args) -> Result<()> {
    flag_support::output_folder("--out", &args.out)?;
    let merged = shard::merge::<Option<ThirdClass>, Row>(&args.merge, STUDY, &args.out)?;
    let config = &merged.config["config_json"];
    let study: SoftLabelStudy = serde_json::from_value(config["study"].clone())?;
    let jobs = study.jobs()?;
    anyhow::ensure!(
        jobs.len() == merged.outputs.len(),
        "the shards list {} jobs, their settings give {}",
        merged.outputs.len(),
        jobs.len()
    );
    for (job, source) in jobs.iter().zip(&merged.sources) {
        for part in ["nets", "runs"] {
            shard::copy_job_files(source, &args.out, &Path::new(part).join(job.name()))?;
        }
    }
    write_json(args.out.join("config.json"), config)?;
    if let Some(tc) = &merged.shared {
        write_json(args.out.join("third_class.json"), tc)?;
    }
    write_rows(&args.out, &merged.outputs, merged.shared.as_ref())?;
    println!("{}", tables(&merged.outputs, merged.shared.as_ref()));
    println!(
        "merged {} shards into {}",
        args.merge.len(),
        args.out.display()
    );
    Ok(())
}
