//! Thesis section 3.5.2: does training on soft-labelled VAE interpolations make a
//! classifier easier to invert? (The thesis: Adam gains, SGD loses.)
//!
//! ```text
//! cargo run --release --example soft_label_study -- --seeds N --out DIR
//!     [--epochs 4,20 --steps 1000 --generated-per-real 0.5 --distinct-classes --beta 0.4
//!      --vae runs/vae --judge runs/judge --quick]
//! ```
//!
//! `--quick` (a smoke test, not a result): one seed, one epoch, 50 inversion steps, 0.1
//! interpolations per real digit; the judge only if one is cached in `--judge` (otherwise
//! `judge_accuracy` is null). The VAE is still loaded from, or trained into, `--vae`. It
//! cannot be combined with the flags it sets.
//!
//! For every training length in `--epochs`, seed `0..N`, optimiser (SGD: `TrainConfig::sgd()`,
//! Adam: `TrainConfig::adam()`) and data (`real`: the 8,000 training digits; `real+interp`:
//! the same plus `generated-per-real x 8,000` interpolations per epoch, decoded on the fly
//! from `a z1 + (1 - a) z2` of two random training digits (of two different classes with
//! `--distinct-classes`) with `a ~ U(0, 1)` (`Beta(beta, beta)` with `--beta`) and labelled
//! `a` / `1 - a` on their classes), a netinv-small classifier is trained (the seed sets the
//! weights and the order) and inverted with Task 1 at the reference settings (1000 Adam
//! steps, TV 1e-3, L2 1e-4); the judge scores the ten images.
//!
//! Writes `study.json` (a list of `{"optimizer", "data", "seed", "epochs", "test_accuracy",
//! "judge_accuracy", "class_mean_corr", "self_confidence"}`, rewritten after every run),
//! `study.md` (judge accuracy mean and min-max over seeds, test accuracy, per optimiser,
//! data and length), per run `runs/<name>/` with `task1.png`, `task1.json`, `images.npy`,
//! and the trained nets under `nets/` (reused when present).
//!
//! Many machines: the study is the job list of `netinv::interp::study` (one net per job).
//! `--shard K/N` runs shard K's share and records it in `--out/shard.json`; `--merge DIR...
//! --out OUT` checks the shards belong together and writes into OUT what one run writes
//! (`study.json`, `config.json` byte-identical, `study.md`, the `nets/` and `runs/`
//! folders copied). Train the VAE and the judge once before starting shards on one
//! machine, so they do not train them side by side. See docs/scaling.md.

#[path = "flag_support/mod.rs"]
mod flag_support;
#[path = "interp_support/mod.rs"]
mod interp_support;
#[path = "invert_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use candle_core::Device;
use candle_nn::VarMap;
use clap::Parser;
use netinv::core::shard::{self, Shard, ShardManifest};
use netinv::core::{atomic_write_bytes, write_json, Monitor, ProgressObserver};
use netinv::data::Mnist;
use netinv::interp::study::{Row, SoftLabelJob, SoftLabelStudy, TrainData};
use netinv::interp::{AlphaDist, InterpConfig, InterpolationSource};
use netinv::invert::InversionConfig;
use netinv::models::train::{evaluate, EpochRecord, TrainConfig, Trainer};
use netinv::models::{load_frozen, save_checkpoint, Classifier, ClassifierConfig};
use netinv::models::{VaeConfig, VaeTrainConfig};
use serde_json::json;

/// The study's name in shard manifests.
const STUDY: &str = "soft_label_study";

/// Train SGD / Adam nets on real vs real + interpolated digits and invert each.
#[derive(Debug, Parser)]
struct Args {
    /// Seeds per setting.
    #[arg(long, default_value_t = 3, value_parser = flag_support::at_least_one_u64)]
    seeds: u64,
    /// Output folder.
    #[arg(long, default_value = "runs/soft_label_study")]
    out: PathBuf,
    /// Training lengths in epochs.
    #[arg(long, value_delimiter = ',', default_value = "4,20", value_parser = flag_support::at_least_one)]
    epochs: Vec<usize>,
    /// Inversion steps.
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
    /// Judge folder (trained there if missing).
    #[arg(long, default_value = "runs/judge")]
    judge: PathBuf,
    /// Smoke-test settings (see the header); judges only with a cached judge.
    #[arg(long, conflicts_with_all = ["seeds", "epochs", "steps", "generated_per_real"])]
    quick: bool,
    /// Run only shard K of N of the job list (K in 1..=N) and record it in --out/shard.json.
    #[arg(long, value_parser = flag_support::shard)]
    shard: Option<Shard>,
    /// Merge these finished shard folders into --out (the settings come from the shards).
    #[arg(long, num_args = 1.., conflicts_with_all = ["seeds", "epochs", "steps", "generated_per_real", "distinct_classes", "beta", "quick", "shard"])]
    merge: Vec<PathBuf>,
}

impl Args {
    /// The `--quick` settings in place of the defaults.
    fn apply_quick(&mut self) {
        if self.quick {
            (self.seeds, self.epochs) = (1, vec![1]);
            (self.steps, self.generated_per_real) = (50, 0.1);
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

/// Mean, min and max of one column of a group of runs.
fn stats(v: &[f64]) -> (f64, f64, f64) {
    let (min, max) = netinv::metrics::stats::min_max(v);
    (netinv::metrics::stats::mean(v), min, max)
}

fn table(rows: &[Row]) -> String {
    let mut groups: BTreeMap<(usize, String, String), Vec<&Row>> = BTreeMap::new();
    for r in rows {
        groups
            .entry((r.epochs, r.optimizer.clone(), r.data.clone()))
            .or_default()
            .push(r);
    }
    let mut s = String::from(
        "| epochs | optimizer | data | seeds | judge acc mean (min-max) | class-mean corr | own confidence | test acc mean (min-max) |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for ((epochs, opt, data), g) in &groups {
        let (jm, jlo, jhi) = stats(
            &g.iter()
                .map(|r| 10.0 * r.judge_accuracy)
                .collect::<Vec<_>>(),
        );
        let (cm, _, _) = stats(&g.iter().map(|r| r.class_mean_corr).collect::<Vec<_>>());
        let (sm, _, _) = stats(&g.iter().map(|r| r.self_confidence).collect::<Vec<_>>());
        let (tm, tlo, thi) = stats(&g.iter().map(|r| r.test_accuracy).collect::<Vec<_>>());
        let _ = writeln!(
            s,
            "| {epochs} | {opt} | {data} | {} | {jm:.1} / 10 ({jlo:.0}-{jhi:.0}) | {cm:.3} | {sm:.3} | {tm:.4} ({tlo:.4}-{thi:.4}) |",
            g.len()
        );
    }
    s
}

/// Checks what clap's value parsers cannot (repeated lengths, the folders) before a judge,
/// a VAE or a net is trained.
fn validate(args: &Args) -> Result<()> {
    flag_support::distinct("--epochs", &args.epochs)?;
    flag_support::output_folder("--out", &args.out)?;
    flag_support::cache_folder("--vae", &args.vae, netinv::models::VAE_CONFIG_FILE, "VAE")?;
    flag_support::cache_folder("--judge", &args.judge, netinv::models::JUDGE_FILE, "judge")
}

fn main() -> Result<()> {
    netinv::core::install_cleanup_handler()?;
    let mut args = Args::parse();
    if !args.merge.is_empty() {
        return merge(&args);
    }
    args.apply_quick();
    validate(&args)?;
    let study = SoftLabelStudy {
        seeds: args.seeds,
        epochs: args.epochs.clone(),
    };
    let jobs = study.jobs()?;
    let shard = args.shard.unwrap_or_else(Shard::whole);
    let costs: Vec<f64> = jobs
        .iter()
        .map(|j| j.cost(args.generated_per_real))
        .collect();
    let mine = shard.jobs_of(&costs)?;
    let mnist = Mnist::embedded()?;
    let judge = if args.quick {
        let cached = support::cached_judge(&args.judge)?;
        if cached.is_none() {
            eprintln!(
                "--quick: no cached judge in {}, the images are not judged",
                args.judge.display()
            );
        }
        cached
    } else {
        Some(support::judge(&args.judge, &mnist)?)
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
    let inv = InversionConfig {
        steps: args.steps,
        snapshots: [100].into_iter().filter(|&s| s < args.steps).collect(),
        ..Default::default()
    };
    let config = json!({
        "epochs": args.epochs,
        "seeds": args.seeds,
        "interp": source.config(),
        "inversion": inv,
        "vae": args.vae,
        "judge": args.judge,
    });
    write_json(args.out.join("config.json"), &config)?;
    let mut rows = Vec::with_capacity(mine.len());
    for job in mine.iter().map(|&j| &jobs[j]) {
        let cx = RunContext {
            args: &args,
            mnist: &mnist,
            source: &source,
            judge: judge.as_ref(),
            inv: &inv,
        };
        rows.push(run_job(&cx, job)?);
        write_rows(&args.out, &rows)?;
    }
    if let Some(shard) = args.shard {
        let config = json!({ "config_json": config, "judged": judge.is_some() });
        let manifest = ShardManifest::new(STUDY, config, shard, jobs.len(), mine);
        shard::write_shard(&args.out, &manifest, &(), &rows)?;
        println!(
            "shard {shard}: {} of {} jobs in {}/shard.json; combine the shards with --merge",
            rows.len(),
            jobs.len(),
            args.out.display()
        );
    }
    println!("{}", table(&rows));
    println!("wrote {}/study.json and study.md", args.out.display());
    Ok(())
}

/// What every job needs besides its own settings.
struct RunContext<'a> {
    args: &'a Args,
    mnist: &'a Mnist,
    source: &'a InterpolationSource,
    judge: Option<&'a netinv::models::Judge>,
    inv: &'a InversionConfig,
}

/// Trains (or reloads) the job's net, inverts it with Task 1 and judges the images.
fn run_job(cx: &RunContext<'_>, job: &SoftLabelJob) -> Result<Row> {
    let (cfg, seed, name) = (&job.train, job.train.seed, job.name());
    let net_dir = cx.args.out.join("nets").join(&name);
    let (net, test_accuracy) = match job.data {
        TrainData::Real => support::load_or_train_net(cfg, seed, cx.mnist, &net_dir, &name)?,
        TrainData::RealInterp => {
            load_or_train_on_interp(cfg, seed, cx.source, cx.mnist, &net_dir, &name)?
        }
    };
    let dir = cx.args.out.join("runs").join(&name);
    let t1 = support::task1(&net, cx.judge, cx.mnist.train(), cx.inv, &dir, false)?;
    let row = Row {
        optimizer: job.optimizer.clone(),
        data: job.data.name().to_string(),
        seed,
        epochs: cfg.epochs,
        test_accuracy,
        judge_accuracy: t1.judge_accuracy.unwrap_or(f64::NAN),
        class_mean_corr: t1.class_mean_corr,
        self_confidence: t1.self_confidence,
    };
    let judged = t1
        .judge_accuracy
        .map_or("-".into(), |a| format!("{:.0}/10", 10.0 * a));
    println!(
        "{name}: test acc {test_accuracy:.4}, judge {judged}, corr {:.3}, own conf {:.3}",
        row.class_mean_corr, row.self_confidence
    );
    Ok(row)
}

/// `study.json` and `study.md` of `rows`.
fn write_rows(out: &Path, rows: &[Row]) -> Result<()> {
    write_json(out.join("study.json"), rows)?;
    atomic_write_bytes(out.join("study.md"), table(rows).as_bytes())?;
    Ok(())
}

/// `--merge`: the shards' rows in job order, `config.json` and the job folders, as one run
/// writes them.
fn merge(args: &Args) -> Result<()> {
    flag_support::output_folder("--out", &args.out)?;
    let merged = shard::merge::<(), Row>(&args.merge, STUDY, &args.out)?;
    let config = &merged.config["config_json"];
    let study = SoftLabelStudy {
        seeds: serde_json::from_value(config["seeds"].clone())?,
        epochs: serde_json::from_value(config["epochs"].clone())?,
    };
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
    write_rows(&args.out, &merged.outputs)?;
    println!("{}", table(&merged.outputs));
    println!(
        "merged {} shards into {}",
        args.merge.len(),
        args.out.display()
    );
    Ok(())
}
