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
use netinv::core::{atomic_write_bytes, write_json, Monitor, ProgressObserver};
use netinv::data::Mnist;
use netinv::interp::{AlphaDist, InterpConfig, InterpolationSource};
use netinv::invert::InversionConfig;
use netinv::models::train::{evaluate, EpochRecord, TrainConfig, Trainer};
use netinv::models::{load_frozen, save_checkpoint, Classifier, ClassifierConfig};
use netinv::models::{VaeConfig, VaeTrainConfig};
use serde::Serialize;
use serde_json::json;

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

#[derive(Debug, Clone, Serialize)]
struct Row {
    optimizer: String,
    data: String,
    seed: u64,
    epochs: usize,
    test_accuracy: f64,
    judge_accuracy: f64,
    class_mean_corr: f64,
    self_confidence: f64,
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
    args.apply_quick();
    validate(&args)?;
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
    write_json(
        args.out.join("config.json"),
        &json!({
            "epochs": args.epochs,
            "seeds": args.seeds,
            "interp": source.config(),
            "inversion": inv,
            "vae": args.vae,
            "judge": args.judge,
        }),
    )?;
    let mut rows = Vec::new();
    for &epochs in &args.epochs {
        for seed in 0..args.seeds {
            for (opt, recipe) in [("sgd", TrainConfig::sgd()), ("adam", TrainConfig::adam())] {
                for data in ["real", "real+interp"] {
                    let cfg = TrainConfig {
                        epochs,
                        seed,
                        ..recipe.clone()
                    };
                    let tag = if data == "real" { "real" } else { "interp" };
                    let name = format!("{opt}-{tag}-e{epochs}-s{seed}");
                    let net_dir = args.out.join("nets").join(&name);
                    let (net, test_accuracy) = if data == "real" {
                        support::load_or_train_net(&cfg, seed, &mnist, &net_dir, &name)?
                    } else {
                        load_or_train_on_interp(&cfg, seed, &source, &mnist, &net_dir, &name)?
                    };
                    let dir = args.out.join("runs").join(&name);
                    let t1 =
                        support::task1(&net, judge.as_ref(), mnist.train(), &inv, &dir, false)?;
                    let row = Row {
                        optimizer: opt.to_string(),
                        data: data.to_string(),
                        seed,
                        epochs,
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
                        row.class_mean_corr,
                        row.self_confidence
                    );
                    rows.push(row);
                    write_json(args.out.join("study.json"), &rows)?;
                    atomic_write_bytes(args.out.join("study.md"), table(&rows).as_bytes())?;
                }
            }
        }
    }
    println!("{}", table(&rows));
    println!("wrote {}/study.json and study.md", args.out.display());
    Ok(())
}
