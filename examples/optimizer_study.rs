//! Tests the thesis's central claim: an Adam-trained net cannot be inverted, an SGD-trained
//! one can, and FGSM training fixes Adam; and the image-optimiser swap (Adam, SGD or L-BFGS
//! on the image had "no influence", thesis section 2.6).
//!
//! ```text
//! cargo run --release --example optimizer_study -- --judge /work/runs/panel --out DIR
//!     [--seeds 10 --epochs 2,4,8,12,20 --steps 1000 --swap-epochs 4,20
//!      --swap-optimizers sgd,lbfgs --no-swap --grid --quick --shard K/N]
//! cargo run --release --example optimizer_study -- --merge SHARD_DIR... --out DIR
//! cargo run --release --example optimizer_study -- --tables results/optimizer_study
//! ```
//!
//! Recipes (`netinv::invert::study::OptimizerStudy::recipes`): SGD (lr 0.05, momentum
//! 0.9), Adam (lr 2e-3), Adam + FGSM eps 0.1 and 0.2 (alpha 0.5), all with a constant
//! learning rate. Per recipe and seed `0..seeds` one run trains for the last `--epochs`
//! value; the net is taken after each `--epochs` value (the epoch axis is checkpoints of
//! that one run) and inverted: Task 1 (seeded noise, seed = the training seed, becomes
//! 0..9) and Task 2 (the first test image of each source class of `TASK2_PAIRS` becomes
//! its target) with Adam on the image at the reference priors (and over the TV / L2 grid
//! with `--grid`), and at `--swap-epochs` also with each `--swap-optimizers` image
//! optimiser. Every run is scored by the judge panel (`--judge`: every judge must be
//! cached and accepted there; this example never trains one) and by the two model-free
//! scores (nearest class mean, 5-NN in pixel space).
//!
//! Writes into `--out`: `study.json` (one `netinv::invert::study::Row` per run, rewritten
//! after every job), `study.md` (the docs tables, the verdict rows and the full table),
//! `timing.json` (wall and process CPU seconds, load averages at start and end). Nets are
//! not saved. `--tables DIR` prints the docs tables and verdict rows from `DIR/study.json`
//! (what docs/results/optimizer.md holds).
//!
//! `--quick`: one seed, epochs 1,2, 100 steps, the swap at epoch 2, and the panel only if
//! cached (judge accuracies are otherwise null). Every flag is checked before any work.
//! `--shard K/N` runs only shard K's share of the jobs (balanced by estimated cost) and
//! writes its rows with a manifest to `--out/shard.json`; `--merge` checks the shards
//! belong together and writes what one run writes (only the timing fields differ).

#[path = "flag_support/mod.rs"]
mod flag_support;
#[path = "invert_support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use clap::Parser;
use ndarray::{Array4, Axis};
use netinv::core::shard::{self, Shard, ShardManifest};
use netinv::core::{atomic_write_bytes, write_json, IterState, Monitor};
use netinv::data::Mnist;
use netinv::invert::study::{
    docs_tables, task2_sources, task2_targets, verdict_rows, OptimizerJob, OptimizerStudy, Row,
    Scores, Task1, Task1Run, Task2Pairs,
};
use netinv::models::judge::{JudgePanel, PixelReference, DEFAULT_KNN_K};
use netinv::models::train::{evaluate, EpochRecord, Trainer};
use netinv::models::{Classifier, ClassifierConfig};
use serde_json::json;

/// The study's name in shard manifests.
const STUDY: &str = "optimizer_study";

/// The verdict rows' link to the docs file.
const LINK: &str = "[optimizer](results/optimizer.md)";

/// Train nets with SGD / Adam / Adam + FGSM, invert checkpoints of each, judge the images.
#[derive(Debug, Parser)]
struct Args {
    /// Seeds per recipe [default: 10, 1 with --quick].
    #[arg(long)]
    seeds: Option<u64>,
    /// Output folder.
    #[arg(long, default_value = "runs/optimizer_study")]
    out: PathBuf,
    /// The epoch axis: checkpoints of one run per recipe and seed [default: 2,4,8,12,20;
    /// 1,2 with --quick].
    #[arg(long, value_delimiter = ',')]
    epochs: Option<Vec<usize>>,
    /// Inversion steps per task [default: 1000, 100 with --quick].
    #[arg(long)]
    steps: Option<usize>,
    /// Also invert (Adam on the image) over the 12-setting TV / L2 grid.
    #[arg(long)]
    grid: bool,
    /// Checkpoints also inverted with the swap's image optimisers [default: 4,20; 2 with
    /// --quick].
    #[arg(long, value_delimiter = ',', conflicts_with = "no_swap")]
    swap_epochs: Option<Vec<usize>>,
    /// No image-optimiser swap.
    #[arg(long)]
    no_swap: bool,
    /// The swap's other image optimisers.
    #[arg(long, value_delimiter = ',', default_value = "sgd,lbfgs")]
    swap_optimizers: Vec<String>,
    /// Folder of the judge panel (every judge cached and accepted; never trained here).
    #[arg(long, default_value = "runs/judge")]
    judge: PathBuf,
    /// Smoke-test settings (see the header).
    #[arg(long)]
    quick: bool,
    /// Run only shard K of N of the job list (K in 1..=N) and record it in --out/shard.json.
    #[arg(long, value_parser = flag_support::shard)]
    shard: Option<Shard>,
    /// Merge these finished shard folders into --out (the settings come from the shards).
    #[arg(long, num_args = 1.., conflicts_with_all = ["seeds", "epochs", "steps", "grid", "quick", "shard", "tables"])]
    merge: Vec<PathBuf>,
    /// Print the docs tables and verdict rows from DIR/study.json and exit.
    #[arg(long, conflicts_with_all = ["seeds", "epochs", "steps", "grid", "quick", "shard"])]
    tables: Option<PathBuf>,
}

impl Args {
    /// The study the flags ask for, checked before any work.
    fn study(&self) -> Result<OptimizerStudy> {
        let full = OptimizerStudy::full();
        let study = OptimizerStudy {
            seeds: self
                .seeds
                .unwrap_or(if self.quick { 1 } else { full.seeds }),
            epochs: self.epochs.clone().unwrap_or(if self.quick {
                vec![1, 2]
            } else {
                full.epochs
            }),
            steps: self
                .steps
                .unwrap_or(if self.quick { 100 } else { full.steps }),
            grid: self.grid,
            swap_epochs: if self.no_swap {
                Vec::new()
            } else {
                self.swap_epochs.clone().unwrap_or(if self.quick {
                    vec![2]
                } else {
                    full.swap_epochs
                })
            },
            swap_optimizers: self.swap_optimizers.clone(),
        };
        study.validate().map_err(support::config_flag_error)?;
        flag_support::output_folder("--out", &self.out)?;
        flag_support::cache_folder("--judge", &self.judge, netinv::models::JUDGE_FILE, "judge")?;
        Ok(study)
    }
}

/// What every job shares: the data, the judges, the model-free reference, Task 2's sources.
struct Context_<'a> {
    mnist: &'a Mnist,
    panel: Option<&'a JudgePanel>,
    pixels: &'a PixelReference,
    sources: Array4<f32>,
    targets: Vec<u32>,
}

fn main() -> Result<()> {
    netinv::core::install_cleanup_handler()?;
    let args = Args::parse();
    if let Some(dir) = &args.tables {
        return print_tables(dir);
    }
    if !args.merge.is_empty() {
        return merge(&args);
    }
    let study = args.study()?;
    let jobs = study.jobs()?;
    let shard = args.shard.unwrap_or_else(Shard::whole);
    let costs: Vec<f64> = jobs.iter().map(OptimizerJob::cost).collect();
    let mine = shard.jobs_of(&costs)?;
    let started = Instant::now();
    let load_start = load_average();
    let mnist = Mnist::embedded()?;
    let panel = support::cached_panel(&args.judge)?;
    match &panel {
        Some(p) => eprintln!("judges: {}", p.names().join(", ")),
        None if args.quick => eprintln!(
            "--quick: the judge panel is not (all) cached in {}, so judge accuracies are null",
            args.judge.display()
        ),
        None => bail!(
            "the judge panel in {} is not (all) cached and accepted; train it first (e.g. invert_noise --judge {0}), this study never trains judges",
            args.judge.display()
        ),
    }
    let pixels = PixelReference::new(mnist.train())?;
    let test = mnist.test();
    let indices = task2_sources(test.labels())?;
    let views: Vec<_> = indices
        .iter()
        .map(|&i| test.image(i).insert_axis(Axis(0)).insert_axis(Axis(0)))
        .collect();
    let sources = ndarray::concatenate(Axis(0), &views)?;
    let cx = Context_ {
        mnist: &mnist,
        panel: panel.as_ref(),
        pixels: &pixels,
        sources,
        targets: task2_targets(),
    };
    let mut done: Vec<(usize, Vec<Row>)> = Vec::with_capacity(mine.len());
    for (k, job) in mine.iter().map(|&j| &jobs[j]).enumerate() {
        let rows = run_job(&cx, job, k + 1, mine.len(), started)?;
        done.push((job.index, rows));
        write_rows(&args.out, &OptimizerStudy::merge(done.clone()))?;
    }
    let timing = json!({
        "wall_seconds": started.elapsed().as_secs_f64(),
        "process_cpu_seconds": netinv::core::process_cpu_seconds(),
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "threads": std::env::var("RAYON_NUM_THREADS").ok(),
        "jobs": mine.len(),
    });
    write_json(args.out.join("timing.json"), &timing)?;
    if let Some(shard) = args.shard {
        let config = serde_json::json!({ "study": study, "judged": panel.is_some() });
        let manifest = ShardManifest::new(STUDY, config, shard, jobs.len(), mine);
        let outputs: Vec<&Vec<Row>> = done.iter().map(|(_, rows)| rows).collect();
        shard::write_shard(&args.out, &manifest, &(), &outputs)?;
        println!(
            "shard {shard}: {} of {} jobs in {}/shard.json; combine the shards with --merge",
            outputs.len(),
            jobs.len(),
            args.out.display()
        );
    }
    let rows = OptimizerStudy::merge(done);
    println!("{}", docs_tables(&rows)?);
    println!("{}", verdict_rows(&rows, LINK)?);
    println!("timing: {timing}");
    println!(
        "wrote {}/study.json, study.md, timing.json",
        args.out.display()
    );
    Ok(())
}

/// The 1-, 5- and 15-minute load averages (`/proc/loadavg`), if readable.
fn load_average() -> Option<Vec<f64>> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace()
        .take(3)
        .map(|t| t.parse().ok())
        .collect()
}

/// A deep copy of every variable of `varmap` (the weights after an epoch).
fn copy_weights(varmap: &VarMap) -> Result<HashMap<String, Tensor>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("the VarMap's lock is poisoned"))?;
    data.iter()
        .map(|(name, var)| Ok((name.clone(), var.as_tensor().copy()?)))
        .collect()
}

/// Trains the job's net once, keeps the weights at each checkpoint, and inverts each.
fn run_job(
    cx: &Context_<'_>,
    job: &OptimizerJob,
    k: usize,
    of: usize,
    started: Instant,
) -> Result<Vec<Row>> {
    let name = job.name();
    let model_cfg = ClassifierConfig::netinv_small();
    let varmap = VarMap::new();
    let net = Classifier::init(&model_cfg, &varmap, job.weight_seed, &Device::Cpu)?;
    let wanted: Vec<usize> = job.checkpoints.iter().map(|c| c.epochs).collect();
    let mut saved: Vec<(usize, HashMap<String, Tensor>)> = Vec::new();
    let train_started = Instant::now();
    {
        let observer = |s: &IterState, _: &EpochRecord| -> netinv::core::Result<()> {
            if wanted.contains(&s.iteration) {
                let weights = copy_weights(&varmap)
                    .map_err(|e| netinv::core::Error::Observer(e.to_string()))?;
                saved.push((s.iteration, weights));
            }
            Ok(())
        };
        let mut monitor: Monitor<EpochRecord> = Monitor::new().with_observer(observer);
        Trainer::new(job.train.clone())?.fit(
            &net,
            &varmap,
            cx.mnist.train(),
            None,
            &mut monitor,
        )?;
    }
    let train_seconds = train_started.elapsed().as_secs_f64();
    ensure!(
        saved.len() == job.checkpoints.len(),
        "{name}: {} checkpoints kept, {} wanted",
        saved.len(),
        job.checkpoints.len()
    );
    let mut rows = Vec::new();
    for (checkpoint, (epochs, weights)) in job.checkpoints.iter().zip(saved) {
        ensure!(epochs == checkpoint.epochs, "{name}: checkpoint order");
        let frozen = Classifier::new(
            &model_cfg,
            VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu),
        )?;
        let test_accuracy = evaluate(&frozen, cx.mnist.test(), &Device::Cpu)?.accuracy;
        let mut line = format!("e{epochs} test {test_accuracy:.4}");
        for inv in &checkpoint.inversions {
            let t1 = Task1::new(inv.config.clone())?
                .run(&frozen, &mut Monitor::new())
                .with_context(|| format!("{name} e{epochs} task 1"))?;
            let t2 = Task2Pairs::new(&inv.config)?
                .run(&frozen, cx.sources.view(), &cx.targets, &mut Monitor::new())
                .with_context(|| format!("{name} e{epochs} task 2"))?;
            for (task, run) in [(1u8, &t1), (2u8, &t2)] {
                let row = job.row(epochs, inv, task, test_accuracy, &scores(cx, run)?);
                if row.at_reference_priors() {
                    let judged = if row.judge_accuracy.is_nan() {
                        "-".to_string()
                    } else {
                        format!("{:.0}", 10.0 * row.judge_accuracy)
                    };
                    line.push_str(&format!(
                        ", T{task} {} {judged}/{:.0}/{:.0}",
                        inv.image_optimizer,
                        10.0 * row.nearest_mean_accuracy,
                        10.0 * row.net_accuracy
                    ));
                }
                rows.push(row);
            }
        }
        println!(
            "[{k}/{of} {:.0} s] {name} {line} (majority/nearest mean/own net of 10)",
            started.elapsed().as_secs_f64()
        );
    }
    println!("[{k}/{of}] {name}: trained in {train_seconds:.1} s");
    Ok(rows)
}

/// The judges' and model-free scores of a run's final images.
fn scores(cx: &Context_<'_>, run: &Task1Run) -> Result<Scores> {
    let images = run.inversion.images.view();
    let verdict = cx
        .panel
        .map(|p| p.verdict(images, &run.targets))
        .transpose()?;
    let model_free = cx.pixels.scores(images, &run.targets, DEFAULT_KNN_K)?;
    let hits = run
        .net_predictions
        .iter()
        .zip(&run.targets)
        .filter(|(p, t)| p == t)
        .count();
    Ok(Scores {
        judge_accuracy: verdict.as_ref().map(|v| v.accuracy),
        judges: verdict.as_ref().map(|v| v.accuracies()).unwrap_or_default(),
        nearest_mean_accuracy: model_free.nearest_mean_accuracy,
        knn_accuracy: model_free.knn_accuracy,
        class_mean_corr: model_free.mean_class_mean_corr,
        net_accuracy: hits as f64 / run.targets.len() as f64,
        self_confidence: run.self_confidence(),
        ms_per_step: run.ms_per_step(),
    })
}

/// The docs tables and verdict rows of `rows`, then the full table.
fn report(rows: &[Row]) -> Result<String> {
    Ok(format!(
        "{}\n## Verdicts\n\n{}\n## All runs\n\n{}",
        docs_tables(rows)?,
        verdict_rows(rows, LINK)?,
        Row::table(rows)
    ))
}

/// `study.json` and `study.md` of `rows`.
fn write_rows(out: &Path, rows: &[Row]) -> Result<()> {
    write_json(out.join("study.json"), rows)?;
    atomic_write_bytes(out.join("study.md"), report(rows)?.as_bytes())?;
    Ok(())
}

/// `--tables DIR`: the docs tables and verdict rows from `DIR/study.json`.
fn print_tables(dir: &Path) -> Result<()> {
    flag_support::input_folder("--tables", dir)?;
    let path = dir.join("study.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let rows: Vec<Row> =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    print!("{}", docs_tables(&rows)?);
    println!("Verdicts\n");
    print!("{}", verdict_rows(&rows, LINK)?);
    Ok(())
}

/// `--merge`: the shards' rows in job order, as one run writes them.
fn merge(args: &Args) -> Result<()> {
    flag_support::output_folder("--out", &args.out)?;
    let merged = shard::merge::<(), Vec<Row>>(&args.merge, STUDY, &args.out)?;
    let study: OptimizerStudy = serde_json::from_value(merged.config["study"].clone())?;
    let jobs = study.jobs()?;
    ensure!(
        jobs.len() == merged.outputs.len(),
        "the shards list {} jobs, their settings give {}",
        merged.outputs.len(),
        jobs.len()
    );
    let rows = OptimizerStudy::merge(merged.outputs.into_iter().enumerate().collect());
    write_rows(&args.out, &rows)?;
    println!("{}", docs_tables(&rows)?);
    println!("{}", verdict_rows(&rows, LINK)?);
    println!(
        "merged {} shards: wrote {}/study.json and study.md",
        args.merge.len(),
        args.out.display()
    );
    Ok(())
}
