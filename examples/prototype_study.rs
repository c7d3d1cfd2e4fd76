//! Prototype networks study (thesis chapter 4, issues 7 and 18): for each D in `--dims` and
//! each seed, trains a hyperspherical and a Busemann prototype head on netinv-small (D
//! outputs) and a plain cross-entropy net, reports macro precision / recall / F1 on the test
//! split, and inverts every cross-entropy net and every prototype net whose D is in
//! `--invert-dims` (default: all of `--dims`): Task 1 (seeded noise towards each class
//! prototype; the start of seed s is the Gaussian start of seed s) and Task 2 (the s-th test
//! image of each class towards the class `netinv::prototypes::study::TASK2_PAIRS` gives
//! it, 9 -> 8 among them; one batch of 10). The images are scored by the judge panel (each
//! judge, the majority as headline, their agreement) and model-free (nearest class mean,
//! 5-NN, class-mean correlation).
//!
//! ```text
//! cargo run --release --example prototype_study -- --seeds 10 --dims 2,3,5 --out runs/prototypes \
//!     [--epochs 10 --lr 1e-3 --constant-lr --shift 2 --slope 0.75 --steps 1000 \
//!      --judge runs/judge --train N \
//!      --invert-dims 2,3,5 --quick]
//! cargo run --release --example prototype_study -- --gap-search --seeds 2 --out runs/gap
//! ```
//!
//! `--quick` (a smoke test, not a result): one seed, D in {2, 5}, one epoch on the first
//! 1,000 training digits, 50 inversion steps; the judges only if the whole panel is cached
//! in `--judge` (otherwise the majority and judges are null / empty). It cannot be combined
//! with the flags it sets.
//!
//! `--gap-search`: the 2-D hyperspherical learning-rate / schedule / epochs search
//! (`netinv::prototypes::study::gap_recipes`), each recipe and seed trained on the first
//! 6,000 training digits and scored on the last 2,000 (never on test digits); writes
//! `gap_search.json` and prints the table.
//!
//! Writes to `--out`: `study.json` (a list of `{"kind", "dim", "seed", "precision",
//! "recall", "f1", "task1", "task2"}`, fractions in [0, 1], the tasks' scores null when not
//! inverted), `baseline.json` (the cross-entropy nets, same fields), one folder per run
//! with the checkpoint, `prototypes.json` and, for inverted nets, `task1.png` (start row,
//! final row; captions: net's class, majority class, judges agreeing), `task2.png` (source
//! row captioned with the target, final row), `task1.npy` / `task2.npy` (float32
//! `[10, 28, 28]`) and `scores.json`; `embedding_<kind>_d2_s<seed>.png` and
//! `embedding_<kind>_d3_s<seed>.png` (test embeddings on the circle / Poincare disk, the 3-D
//! ones projected on the first two coordinates). `tables.md` holds the docs' tables
//! (`netinv::prototypes::study::tables`; `prototype_tables DIR` prints them again).
//!
//! Many machines: the study is the job list of `netinv::prototypes::study` (one net per
//! job). `--shard K/N` runs shard K's share and records it in `--out/shard.json`;
//! `--merge DIR... --out OUT` checks the shards belong together and writes into OUT what
//! one run writes (`study.json`, `baseline.json`, `tables.md` byte-identical, the job
//! folders and plots copied). See docs/scaling.md.

#[path = "flag_support/mod.rs"]
mod flag_support;
#[path = "plot_support/mod.rs"]
mod plot_support;
#[path = "invert_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use clap::Parser;
use ndarray::{Array4, Axis};
use netinv::core::shard::{self, Shard, ShardManifest};
use netinv::core::{write_json, ImageGrid, ImageRef, Monitor};
use netinv::data::Dataset;
use netinv::invert::{CrossEntropy, InversionConfig, Inverter, Objective, Reduction};
use netinv::models::judge::{JudgePanel, PixelReference, DEFAULT_KNN_K};
use netinv::models::train::{evaluate, evaluate_with, Trainer};
use netinv::models::{load_frozen, Classifier, ClassifierConfig};
use netinv::prototypes::study::{
    self, Baseline, GapRecipe, GapRow, PrototypeJob, PrototypeOutput, PrototypeStudy, Row, Scores,
};
use netinv::prototypes::{
    place_prototypes, PlacementConfig, PrototypeHead, PrototypeKind, PrototypeObjective,
};
use plotters::prelude::*;

/// The study's name in shard manifests.
const STUDY: &str = "prototype_study";

#[derive(Parser, Debug)]
struct Args {
    /// Number of seeds (0..N).
    #[arg(long, default_value_t = 10, value_parser = flag_support::at_least_one_u64)]
    seeds: u64,
    /// Embedding dimensions, comma-separated.
    #[arg(long, default_value = "2,3,5", value_delimiter = ',', value_parser = flag_support::at_least_one)]
    dims: Vec<usize>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Training epochs (Adam; cosine schedule unless --constant-lr; --shift-pixel shifts).
    #[arg(long, default_value_t = 10, value_parser = flag_support::at_least_one)]
    epochs: usize,
    /// Keep the learning rate constant instead of the cosine decay to 0.
    #[arg(long)]
    constant_lr: bool,
    /// Training augmentation: random shifts of up to this many pixels (0: none).
    #[arg(long, default_value_t = 2)]
    shift: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3, value_parser = flag_support::positive)]
    lr: f64,
    /// Busemann penalty slope s (phi = s D).
    #[arg(long, default_value_t = 0.75, value_parser = flag_support::positive)]
    slope: f64,
    /// Inversion steps (reference settings otherwise).
    #[arg(long, default_value_t = 1000, value_parser = flag_support::at_least_one)]
    steps: usize,
    /// Judge panel folder (each judge trained there if missing).
    #[arg(long, default_value = "runs/judge")]
    judge: PathBuf,
    /// Use only the first N training images (default: all).
    #[arg(long, value_parser = flag_support::at_least_one)]
    train: Option<usize>,
    /// D whose prototype nets are inverted (each one of `--dims`; default: all of them).
    #[arg(long, value_delimiter = ',', value_parser = flag_support::at_least_one)]
    invert_dims: Option<Vec<usize>>,
    /// Smoke-test settings (see the header); judges only with a cached panel.
    #[arg(long, conflicts_with_all = ["seeds", "dims", "epochs", "constant_lr", "shift", "steps", "train", "invert_dims", "gap_search"])]
    quick: bool,
    /// The 2-D hyperspherical recipe search on a validation split (see the header).
    #[arg(long, conflicts_with_all = ["dims", "epochs", "lr", "constant_lr", "shift", "steps", "train", "invert_dims", "shard"])]
    gap_search: bool,
    /// Run only shard K of N of the job list (K in 1..=N) and record it in --out/shard.json.
    #[arg(long, value_parser = flag_support::shard)]
    shard: Option<Shard>,
    /// Merge these finished shard folders into --out (the settings come from the shards).
    #[arg(long, num_args = 1.., conflicts_with_all = ["seeds", "dims", "epochs", "lr", "constant_lr", "shift", "slope", "steps", "train", "invert_dims", "quick", "shard", "gap_search"])]
    merge: Vec<PathBuf>,
}

impl Args {
    /// The `--quick` settings in place of the defaults.
    fn apply_quick(&mut self) {
        if self.quick {
            (self.seeds, self.dims, self.epochs) = (1, vec![2, 5], 1);
            (self.steps, self.train, self.invert_dims) = (50, Some(1000), None);
        }
    }

    /// The job list's settings.
    fn study(&self) -> PrototypeStudy {
        PrototypeStudy {
            seeds: self.seeds,
            dims: self.dims.clone(),
            invert_dims: self
                .invert_dims
                .clone()
                .unwrap_or_else(|| self.dims.clone()),
        }
    }

    /// Everything that sets the results, for the shard manifest.
    fn manifest_config(&self, judged: bool) -> serde_json::Value {
        serde_json::json!({
            "study": self.study(),
            "epochs": self.epochs,
            "lr": self.lr,
            "cosine": !self.constant_lr,
            "shift": self.shift,
            "slope": self.slope,
            "steps": self.steps,
            "train": self.train,
            "judged": judged,
        })
    }

    /// The training recipe of every net of the study (Adam; by default cosine, 2-pixel
    /// shifts).
    fn recipe(&self) -> GapRecipe {
        GapRecipe {
            lr: self.lr,
            epochs: self.epochs,
            cosine: !self.constant_lr,
            shift: self.shift,
        }
    }
}

/// Checks what clap's value parsers cannot: flags against each other, the data size and
/// the folders, before a judge or a net is trained.
fn validate(args: &Args, training_digits: usize) -> Result<()> {
    // the training settings' own checks (shift, epochs, lr), before any judge or net
    args.recipe()
        .train_config(0)
        .validate()
        .map_err(|err| match err {
            netinv::models::Error::InvalidConfig { field, reason } => {
                anyhow::anyhow!("invalid --{}: {reason}", field.replace('_', "-"))
            }
            other => other.into(),
        })?;
    flag_support::distinct("--dims", &args.dims)?;
    if let Some(inv) = &args.invert_dims {
        flag_support::distinct("--invert-dims", inv)?;
        if let Some(d) = inv.iter().find(|d| !args.dims.contains(d)) {
            let dims: Vec<String> = args.dims.iter().map(usize::to_string).collect();
            anyhow::bail!(
                "--invert-dims {d} is not one of --dims {}: that net is not trained",
                dims.join(",")
            );
        }
    }
    if let Some(n) = args.train.filter(|&n| n > training_digits) {
        anyhow::bail!("--train {n}: only {training_digits} training digits are embedded");
    }
    for &dim in &args.dims {
        place_prototypes(10, dim, &PlacementConfig::default())
            .with_context(|| format!("--dims {dim}"))?;
    }
    flag_support::output_folder("--out", &args.out)?;
    flag_support::cache_folder("--judge", &args.judge, netinv::models::JUDGE_FILE, "judge")
}

/// What every job needs besides its own settings.
struct RunContext<'a> {
    args: &'a Args,
    study: &'a PrototypeStudy,
    train: &'a Dataset,
    test: &'a Dataset,
    panel: Option<&'a JudgePanel>,
    reference: &'a PixelReference,
    inv_cfg: &'a InversionConfig,
}

fn main() -> Result<()> {
    netinv::core::install_cleanup_handler()?;
    let mut args = Args::parse();
    if !args.merge.is_empty() {
        return merge(&args);
    }
    args.apply_quick();
    let mnist = netinv::data::Mnist::embedded()?;
    validate(&args, mnist.train().len())?;
    if args.gap_search {
        return gap_search(&args, mnist.train());
    }
    let study = args.study();
    let jobs = study.jobs()?;
    let shard = args.shard.unwrap_or_else(Shard::whole);
    let costs: Vec<f64> = jobs.iter().map(|j| study.cost(j)).collect();
    let mine = shard.jobs_of(&costs)?;
    let train = match args.train {
        Some(n) => mnist.train().take(n),
        None => mnist.train().clone(),
    };
    let panel = if args.quick {
        let cached = support::cached_panel(&args.judge)?;
        if cached.is_none() {
            eprintln!(
                "--quick: the judge panel is not (all) cached in {}, the images are not judged",
                args.judge.display()
            );
        }
        cached
    } else {
        Some(support::panel(&args.judge, &mnist)?)
    };
    let reference = PixelReference::new(mnist.train())?;
    let inv_cfg = InversionConfig {
        steps: args.steps,
        ..Default::default()
    };
    let cx = RunContext {
        args: &args,
        study: &study,
        train: &train,
        test: mnist.test(),
        panel: panel.as_ref(),
        reference: &reference,
        inv_cfg: &inv_cfg,
    };
    let mut outputs = Vec::with_capacity(mine.len());
    let started = std::time::Instant::now();
    for &j in &mine {
        let out = run_job(&cx, &jobs[j])?;
        eprintln!(
            "[{:.0} s] {}: {}",
            started.elapsed().as_secs_f64(),
            jobs[j].folder(),
            output_text(&out)
        );
        outputs.push(out);
        // the rows so far, rewritten after every job
        let (rows, baselines) = PrototypeStudy::merge(outputs.clone());
        write_json(args.out.join("study.json"), &rows)?;
        write_json(args.out.join("baseline.json"), &baselines)?;
    }
    if let Some(shard) = args.shard {
        let config = args.manifest_config(panel.is_some());
        let manifest = ShardManifest::new(STUDY, config, shard, jobs.len(), mine);
        shard::write_shard(&args.out, &manifest, &(), &outputs)?;
        println!(
            "shard {shard}: {} of {} jobs in {}/shard.json; combine the shards with --merge",
            outputs.len(),
            jobs.len(),
            args.out.display()
        );
        return Ok(());
    }
    let (rows, baselines) = PrototypeStudy::merge(outputs);
    write_tables(&args.out, &rows, &baselines)
}

/// Writes `tables.md` (the docs' tables) and prints it.
fn write_tables(out: &Path, rows: &[Row], baselines: &[Baseline]) -> Result<()> {
    let text = study::tables(rows, baselines);
    netinv::core::atomic_write_bytes(out.join("tables.md"), text.as_bytes())?;
    println!("{text}");
    Ok(())
}

/// One job's net: trained, evaluated, and (if the study says so) inverted and scored.
fn run_job(cx: &RunContext<'_>, job: &PrototypeJob) -> Result<PrototypeOutput> {
    let dev = Device::Cpu;
    let dir = cx.args.out.join(job.folder());
    let recipe = cx.args.recipe();
    match *job {
        PrototypeJob::CrossEntropy { seed } => {
            let net_cfg = ClassifierConfig::default();
            let varmap = VarMap::new();
            let net = Classifier::init(&net_cfg, &varmap, seed, &dev)?;
            Trainer::new(recipe.train_config(seed))?
                .with_checkpoints(&dir, net_cfg.clone())
                .fit(&net, &varmap, cx.train, None, &mut Monitor::new())?;
            let ev = evaluate(&net, cx.test, &dev)?;
            let frozen = load_frozen(&dir, &dev)?;
            let (task1, task2) = invert_both(cx, &frozen, None, seed, &dir)?;
            Ok(PrototypeOutput::CrossEntropy(Baseline {
                seed,
                precision: ev.macro_precision,
                recall: ev.macro_recall,
                f1: ev.macro_f1,
                task1,
                task2,
            }))
        }
        PrototypeJob::Prototype { kind, dim, seed } => {
            let placement = place_prototypes(
                10,
                dim,
                &PlacementConfig {
                    seed,
                    ..Default::default()
                },
            )?;
            if let Some(w) = &placement.warning {
                eprintln!("warning: {w}");
            }
            let head = PrototypeHead::new(kind, &placement, cx.args.slope, &dev)?;
            let net_cfg = ClassifierConfig {
                outputs: dim,
                ..Default::default()
            };
            let varmap = VarMap::new();
            let net = Classifier::init(&net_cfg, &varmap, seed, &dev)?;
            Trainer::new(recipe.train_config(seed))?
                .with_loss(Arc::new(head.clone()))
                .with_checkpoints(&dir, net_cfg)
                .fit(&net, &varmap, cx.train, None, &mut Monitor::new())
                .with_context(|| format!("training {} D{dim} seed {seed}", kind.name()))?;
            head.save(&dir)?;
            let ev = evaluate_with(&net, cx.test, &dev, &head)?;
            if dim == 2 || dim == 3 {
                plot_embeddings(
                    &cx.args
                        .out
                        .join(format!("embedding_{}_d{dim}_s{seed}.png", kind.name())),
                    &net,
                    &head,
                    cx.test,
                )?;
            }
            let (task1, task2) = if cx.study.inverts(job) {
                let frozen = load_frozen(&dir, &dev)?;
                let head = PrototypeHead::load(&dir, &dev)?;
                let (a, b) = invert_both(cx, &frozen, Some(&head), seed, &dir)?;
                (Some(a), Some(b))
            } else {
                (None, None)
            };
            Ok(PrototypeOutput::Prototype(Row {
                kind: kind.name().to_string(),
                dim,
                seed,
                precision: ev.macro_precision,
                recall: ev.macro_recall,
                f1: ev.macro_f1,
                task1,
                task2,
            }))
        }
    }
}

/// Task 1 and Task 2 of `net` (a prototype net when `head` is given, else a 10-class
/// cross-entropy net) for `seed`, each written to `dir` and scored.
fn invert_both(
    cx: &RunContext<'_>,
    net: &Classifier,
    head: Option<&PrototypeHead>,
    seed: u64,
    dir: &Path,
) -> Result<(Scores, Scores)> {
    let dev = Device::Cpu;
    let inverter = Inverter::new(InversionConfig {
        seed: study::task1_start_seed(seed),
        ..cx.inv_cfg.clone()
    })?;
    let objective = |targets: Vec<u32>| -> Result<Box<dyn Objective>> {
        Ok(match head {
            Some(h) => Box::new(PrototypeObjective::new(h.clone(), targets)?),
            None => Box::new(CrossEntropy::new(targets, Reduction::Mean)),
        })
    };
    // Task 1: seeded noise towards 0..9.
    let targets1: Vec<u32> = (0..10).collect();
    let start1 = inverter.gaussian_init(10, (1, 28, 28), &dev)?;
    let out1 = inverter.run(
        net,
        objective(targets1.clone())?.as_ref(),
        &start1,
        &mut Monitor::new(),
    )?;
    // Task 2: the seed-th test image of each source class towards its pair's target.
    let sources = study::task2_sources(cx.test.labels(), seed)?;
    let targets2 = study::task2_targets();
    let pixels: Vec<f32> = sources
        .iter()
        .flat_map(|&i| cx.test.image(i).iter().copied().collect::<Vec<_>>())
        .collect();
    let start2 = Tensor::from_vec(pixels, (10, 1, 28, 28), &dev)?;
    let out2 = inverter.run(
        net,
        objective(targets2.clone())?.as_ref(),
        &start2,
        &mut Monitor::new(),
    )?;
    let mut result = Vec::new();
    for (name, out, targets) in [("task1", &out1, &targets1), ("task2", &out2, &targets2)] {
        let net_classes = net_classes(net, head, &out.images)?;
        let verdict = cx
            .panel
            .map(|p| p.verdict(out.images.view(), targets))
            .transpose()?;
        let model_free = cx
            .reference
            .scores(out.images.view(), targets, DEFAULT_KNN_K)?;
        let hits = net_classes
            .iter()
            .zip(targets)
            .filter(|(a, b)| a == b)
            .count();
        let scores = Scores {
            majority: verdict.as_ref().map(|v| v.accuracy),
            judges: verdict.as_ref().map(|v| v.accuracies()).unwrap_or_default(),
            unanimous: verdict.as_ref().map(|v| v.unanimous),
            nearest_mean: model_free.nearest_mean_accuracy,
            knn: model_free.knn_accuracy,
            class_mean_corr: model_free.mean_class_mean_corr,
            net: hits as f64 / targets.len() as f64,
        };
        write_grid(
            &dir.join(format!("{name}.png")),
            out,
            targets,
            &net_classes,
            verdict.as_ref(),
            name == "task2",
        )?;
        support::write_images_npy(&dir.join(format!("{name}.npy")), &out.images)?;
        write_json(
            dir.join(format!("{name}.json")),
            &serde_json::json!({
                "targets": targets,
                "sources_test_index": (name == "task2").then_some(&sources),
                "start_seed": study::task1_start_seed(seed),
                "net_classes": net_classes,
                "scores": scores,
                "panel": verdict,
                "model_free": model_free,
                "seconds": out.state.elapsed_seconds,
            }),
        )?;
        result.push(scores);
    }
    let task2 = result.pop().context("two tasks")?;
    let task1 = result.pop().context("two tasks")?;
    Ok((task1, task2))
}

/// The inverted net's class of each image `[n, 1, 28, 28]`.
fn net_classes(
    net: &Classifier,
    head: Option<&PrototypeHead>,
    images: &Array4<f32>,
) -> Result<Vec<u32>> {
    let x = netinv::models::bridge::array4_to_tensor(images.view(), &Device::Cpu)?;
    let out = net.forward(&x)?;
    let classes = match head {
        Some(h) => h.predict(&out)?,
        None => out.argmax(1)?,
    };
    Ok(classes.to_vec1::<u32>()?)
}

/// Two rows of 10: the starts (captioned with the target for Task 2) and the final images
/// (captioned `n<net class> j<majority class> <judges agreeing>/<judges>`).
fn write_grid(
    path: &Path,
    out: &netinv::invert::Inversion,
    targets: &[u32],
    net_classes: &[u32],
    verdict: Option<&netinv::models::judge::PanelVerdict>,
    morph: bool,
) -> Result<()> {
    let stacked = ndarray::concatenate(Axis(0), &[out.initial.view(), out.images.view()])?;
    let pixels: Vec<f32> = stacked.iter().copied().collect();
    let mut captions: Vec<String> = targets
        .iter()
        .map(|t| {
            if morph {
                format!("to {t}")
            } else {
                String::new()
            }
        })
        .collect();
    captions.extend((0..targets.len()).map(|i| match verdict {
        Some(v) => {
            let votes = v.judges.values().filter(|j| j.correct[i]).count();
            format!(
                "n{} j{} {votes}/{}",
                net_classes[i],
                support::class_text(v.majority[i]),
                v.judges.len()
            )
        }
        None => format!("n{}", net_classes[i]),
    }));
    ImageGrid::new(targets.len())
        .with_column_labels(targets.iter().map(|t| t.to_string()).collect())
        .with_row_labels(vec![
            if morph { "source" } else { "start" }.to_string(),
            "final".to_string(),
        ])
        .with_captions(captions)
        .write_png(path, ImageRef::new(&pixels, stacked.dim().0, 28, 28)?)?;
    Ok(())
}

/// A job's one-line summary.
fn output_text(out: &PrototypeOutput) -> String {
    let majority = |s: Option<&Scores>| {
        s.map_or("-".to_string(), |s| {
            s.majority
                .map_or("not judged".to_string(), |m| format!("{:.0}/10", 10.0 * m))
        })
    };
    match out {
        PrototypeOutput::CrossEntropy(b) => format!(
            "F1 {:.4}, task 1 {}, task 2 {}",
            b.f1,
            majority(Some(&b.task1)),
            majority(Some(&b.task2))
        ),
        PrototypeOutput::Prototype(r) => format!(
            "F1 {:.4}, task 1 {}, task 2 {}",
            r.f1,
            majority(r.task1.as_ref()),
            majority(r.task2.as_ref())
        ),
    }
}

/// `--merge`: the shards' rows in job order and their job files, as one run writes them.
fn merge(args: &Args) -> Result<()> {
    flag_support::output_folder("--out", &args.out)?;
    let merged = shard::merge::<(), PrototypeOutput>(&args.merge, STUDY, &args.out)?;
    let study: PrototypeStudy = serde_json::from_value(merged.config["study"].clone())?;
    let jobs = study.jobs()?;
    anyhow::ensure!(
        jobs.len() == merged.outputs.len(),
        "the shards list {} jobs, their settings give {}",
        merged.outputs.len(),
        jobs.len()
    );
    for (job, source) in jobs.iter().zip(&merged.sources) {
        for file in job.files() {
            shard::copy_job_files(source, &args.out, Path::new(&file))?;
        }
    }
    let (rows, baselines) = PrototypeStudy::merge(merged.outputs);
    write_json(args.out.join("study.json"), &rows)?;
    write_json(args.out.join("baseline.json"), &baselines)?;
    write_tables(&args.out, &rows, &baselines)?;
    println!(
        "merged {} shards into {}",
        args.merge.len(),
        args.out.display()
    );
    Ok(())
}

/// `--gap-search`: every recipe of `study::gap_recipes` and seed `0..--seeds`, a 2-D
/// hyperspherical net trained on all but the last `VALIDATION_DIGITS` training digits and
/// scored on those.
fn gap_search(args: &Args, all_train: &Dataset) -> Result<()> {
    let dev = Device::Cpu;
    let n = all_train.len();
    anyhow::ensure!(
        n > study::VALIDATION_DIGITS,
        "too few training digits to hold out"
    );
    let fit: Vec<usize> = (0..n - study::VALIDATION_DIGITS).collect();
    let val: Vec<usize> = (n - study::VALIDATION_DIGITS..n).collect();
    let (fit, val) = (all_train.select(&fit)?, all_train.select(&val)?);
    let mut rows = Vec::new();
    let started = std::time::Instant::now();
    for recipe in study::gap_recipes() {
        for seed in 0..args.seeds {
            let placement = place_prototypes(
                10,
                2,
                &PlacementConfig {
                    seed,
                    ..Default::default()
                },
            )?;
            let head =
                PrototypeHead::new(PrototypeKind::Hyperspherical, &placement, args.slope, &dev)?;
            let net_cfg = ClassifierConfig {
                outputs: 2,
                ..Default::default()
            };
            let varmap = VarMap::new();
            let net = Classifier::init(&net_cfg, &varmap, seed, &dev)?;
            let report = Trainer::new(recipe.train_config(seed))?
                .with_loss(Arc::new(head.clone()))
                .fit(&net, &varmap, &fit, None, &mut Monitor::new())?;
            let ev = evaluate_with(&net, &val, &dev, &head)?;
            let final_loss = report.history.last().map_or(f64::NAN, |r| r.train_loss);
            eprintln!(
                "[{:.0} s] {} seed {seed}: validation F1 {:.4}, loss {final_loss:.4}",
                started.elapsed().as_secs_f64(),
                recipe.name(),
                ev.macro_f1
            );
            rows.push(GapRow {
                recipe: recipe.clone(),
                seed,
                val_f1: ev.macro_f1,
                final_loss,
            });
            write_json(args.out.join("gap_search.json"), &rows)?;
        }
    }
    println!("{}", study::gap_table(&rows));
    Ok(())
}

/// Test embeddings (first 1,000 test images) on the unit circle (hyperspherical, outputs
/// normalised) or in the Poincare disk (Busemann), first two coordinates, coloured by
/// class; prototypes as large dots. No text (no font needed).
fn plot_embeddings(
    path: &Path,
    net: &Classifier,
    head: &PrototypeHead,
    test: &Dataset,
) -> Result<()> {
    let dev = Device::Cpu;
    let data = test.take(1000);
    let mut points: Vec<(f64, f64, usize)> = Vec::new();
    for batch in data.batches(250, None)? {
        let (x, _) = batch.to_tensors(&dev)?;
        let out = net.forward(&x)?;
        let z = match head.kind() {
            PrototypeKind::Hyperspherical => {
                let n = out.sqr()?.sum_keepdim(1)?.sqrt()?;
                out.broadcast_div(&n)?
            }
            PrototypeKind::Busemann => head.embed(&out)?,
        };
        for (row, &label) in z.to_vec2::<f32>()?.iter().zip(&batch.labels) {
            points.push((f64::from(row[0]), f64::from(row[1]), usize::from(label)));
        }
    }
    let protos: Vec<Vec<f32>> = head.prototypes().to_vec2::<f32>()?;
    let (w, h) = (600u32, 600u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .build_cartesian_2d(-1.1f64..1.1f64, -1.1f64..1.1f64)?;
        let circle: Vec<(f64, f64)> = (0..=360)
            .map(|i| {
                let t = f64::from(i).to_radians();
                (t.cos(), t.sin())
            })
            .collect();
        chart.draw_series(LineSeries::new(circle, &BLACK))?;
        let colour = |c: usize| Palette99::pick(c).to_rgba();
        chart.draw_series(
            points
                .iter()
                .map(|&(x, y, c)| Circle::new((x, y), 2, colour(c).filled())),
        )?;
        chart.draw_series(protos.iter().enumerate().map(|(c, p)| {
            Circle::new((f64::from(p[0]), f64::from(p[1])), 9, colour(c).filled())
        }))?;
        chart.draw_series(
            protos
                .iter()
                .map(|p| Circle::new((f64::from(p[0]), f64::from(p[1])), 9, BLACK.stroke_width(2))),
        )?;
        root.present()?;
    }
    plot_support::write_rgb_png(path, w, h, buf)
}
