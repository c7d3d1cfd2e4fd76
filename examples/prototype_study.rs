//! Prototype networks study (thesis chapter 4, issue 7): for each D in `--dims` and each
//! seed, trains a hyperspherical and a Busemann prototype head on netinv-small (D outputs),
//! reports macro precision / recall / F1 on the test split, inverts every 5-D net towards
//! the ten class prototypes (Task 1) and scores the images with the judge; a plain
//! cross-entropy net per seed gives the inversion baseline.
//!
//! ```text
//! cargo run --example prototype_study -- --seeds 3 --dims 2,3,5 --out runs/prototypes \
//!     [--epochs 10 --lr 1e-3 --slope 0.75 --steps 1000 --judge runs/judge --train N --quick]
//! ```
//!
//! `--quick` (a smoke test, not a result): one seed, D in {2, 5}, one epoch on the first
//! 1,000 training digits, 50 inversion steps; the judge only if one is cached in `--judge`
//! (otherwise `judge_accuracy` is null). It cannot be combined with the flags it sets.
//!
//! Writes to `--out`: `study.json` (a list of `{"kind", "dim", "seed", "precision",
//! "recall", "f1", "judge_accuracy"}`, fractions in [0, 1], `judge_accuracy` null when not
//! inverted or not judged), `baseline.json` (the cross-entropy nets' F1 and judge
//! accuracy), one folder
//! per run with the checkpoint, `prototypes.json` and, for inverted nets, `images.npy`
//! (float32 `[10, 28, 28]`, classes 0..9); `embedding_<kind>_d2_s<seed>.png` (test
//! embeddings coloured by class on the circle / Poincare disk, prototypes as large dots)
//! and `embedding_<kind>_d3_s<seed>.png` (the same in 3-D, projected on the first two
//! coordinates).
//!
//! Many machines: the study is the job list of `netinv::prototypes::study` (one net per
//! job). `--shard K/N` runs shard K's share and records it in `--out/shard.json`;
//! `--merge DIR... --out OUT` checks the shards belong together and writes into OUT what
//! one run writes (`study.json`, `baseline.json` byte-identical, the job folders and plots
//! copied). See docs/scaling.md.

#[path = "flag_support/mod.rs"]
mod flag_support;
#[path = "plot_support/mod.rs"]
mod plot_support;
#[path = "invert_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use candle_core::Device;
use candle_nn::VarMap;
use clap::Parser;
use netinv::core::shard::{self, Shard, ShardManifest};
use netinv::core::{write_json, Monitor};
use netinv::data::Dataset;
use netinv::invert::{InversionConfig, Inverter};
use netinv::models::train::{evaluate, evaluate_with, OptimizerKind, TrainConfig, Trainer};
use netinv::models::Judge;
use netinv::models::{load_frozen, Classifier, ClassifierConfig};
use netinv::prototypes::study::{Baseline, PrototypeJob, PrototypeOutput, PrototypeStudy, Row};
use netinv::prototypes::{
    place_prototypes, PlacementConfig, PrototypeHead, PrototypeKind, PrototypeObjective,
};
use plotters::prelude::*;

/// The study's name in shard manifests.
const STUDY: &str = "prototype_study";

#[derive(Parser, Debug)]
struct Args {
    /// Number of seeds (0..N).
    #[arg(long, default_value_t = 3, value_parser = flag_support::at_least_one_u64)]
    seeds: u64,
    /// Embedding dimensions, comma-separated.
    #[arg(long, default_value = "2,3,5", value_delimiter = ',', value_parser = flag_support::at_least_one)]
    dims: Vec<usize>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Training epochs (Adam).
    #[arg(long, default_value_t = 10, value_parser = flag_support::at_least_one)]
    epochs: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3, value_parser = flag_support::positive)]
    lr: f64,
    /// Busemann penalty slope s (phi = s D).
    #[arg(long, default_value_t = 0.75, value_parser = flag_support::positive)]
    slope: f64,
    /// Inversion steps (reference settings otherwise).
    #[arg(long, default_value_t = 1000, value_parser = flag_support::at_least_one)]
    steps: usize,
    /// Judge folder (trained there if missing).
    #[arg(long, default_value = "runs/judge")]
    judge: PathBuf,
    /// Use only the first N training images (default: all).
    #[arg(long, value_parser = flag_support::at_least_one)]
    train: Option<usize>,
    /// D whose nets are inverted (one of `--dims`).
    #[arg(long, default_value_t = 5)]
    invert_dim: usize,
    /// Smoke-test settings (see the header); judges only with a cached judge.
    #[arg(long, conflicts_with_all = ["seeds", "dims", "epochs", "steps", "train", "invert_dim"])]
    quick: bool,
    /// Run only shard K of N of the job list (K in 1..=N) and record it in --out/shard.json.
    #[arg(long, value_parser = flag_support::shard)]
    shard: Option<Shard>,
    /// Merge these finished shard folders into --out (the settings come from the shards).
    #[arg(long, num_args = 1.., conflicts_with_all = ["seeds", "dims", "epochs", "lr", "slope", "steps", "train", "invert_dim", "quick", "shard"])]
    merge: Vec<PathBuf>,
}

impl Args {
    /// The `--quick` settings in place of the defaults.
    fn apply_quick(&mut self) {
        if self.quick {
            (self.seeds, self.dims, self.epochs) = (1, vec![2, 5], 1);
            (self.steps, self.train, self.invert_dim) = (50, Some(1000), 5);
        }
    }
}

impl Args {
    /// The job list's settings.
    fn study(&self) -> PrototypeStudy {
        PrototypeStudy {
            seeds: self.seeds,
            dims: self.dims.clone(),
            invert_dim: self.invert_dim,
        }
    }

    /// Everything that sets the results, for the shard manifest.
    fn manifest_config(&self, judged: bool) -> serde_json::Value {
        serde_json::json!({
            "study": self.study(),
            "epochs": self.epochs,
            "lr": self.lr,
            "slope": self.slope,
            "steps": self.steps,
            "train": self.train,
            "judged": judged,
        })
    }
}

/// Checks what clap's value parsers cannot: flags against each other, the data size and
/// the folders, before a judge or a net is trained.
fn validate(args: &Args, training_digits: usize) -> Result<()> {
    flag_support::distinct("--dims", &args.dims)?;
    if !args.dims.contains(&args.invert_dim) {
        let dims: Vec<String> = args.dims.iter().map(usize::to_string).collect();
        anyhow::bail!(
            "--invert-dim {} is not one of --dims {}: no prototype net would be inverted",
            args.invert_dim,
            dims.join(",")
        );
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

fn main() -> Result<()> {
    netinv::core::install_cleanup_handler()?;
    let mut args = Args::parse();
    if !args.merge.is_empty() {
        return merge(&args);
    }
    args.apply_quick();
    let mnist = netinv::data::Mnist::embedded()?;
    validate(&args, mnist.train().len())?;
    let study = args.study();
    let jobs = study.jobs()?;
    let shard = args.shard.unwrap_or_else(Shard::whole);
    let costs: Vec<f64> = jobs.iter().map(|j| study.cost(j)).collect();
    let mine = shard.jobs_of(&costs)?;
    let train = match args.train {
        Some(n) => mnist.train().take(n),
        None => mnist.train().clone(),
    };
    let test = mnist.test();
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
    let inv_cfg = InversionConfig {
        steps: args.steps,
        ..Default::default()
    };
    let mut outputs = Vec::with_capacity(mine.len());
    for &j in &mine {
        let out = match jobs[j] {
            PrototypeJob::CrossEntropy { seed } => PrototypeOutput::CrossEntropy(run_baseline(
                &args,
                seed,
                &train,
                test,
                judge.as_ref(),
                &inv_cfg,
            )?),
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
                let cx = RunContext {
                    args: &args,
                    train: &train,
                    test,
                    judge: judge.as_ref(),
                    inv_cfg: &inv_cfg,
                };
                let row = run_one(&cx, kind, dim, seed, &placement)?;
                eprintln!(
                    "seed {seed} {} D{dim}: P {:.4} R {:.4} F1 {:.4} judge {}",
                    row.kind,
                    row.precision,
                    row.recall,
                    row.f1,
                    judged_text(row.judge_accuracy)
                );
                PrototypeOutput::Prototype(row)
            }
        };
        outputs.push(out);
        // the rows so far, rewritten after every job
        let (rows, baselines) = PrototypeStudy::merge(outputs.clone());
        write_json(args.out.join("study.json"), &rows)?;
        write_json(args.out.join("baseline.json"), &baselines)?;
    }
    if let Some(shard) = args.shard {
        let config = args.manifest_config(judge.is_some());
        let manifest = ShardManifest::new(STUDY, config, shard, jobs.len(), mine);
        shard::write_shard(&args.out, &manifest, &(), &outputs)?;
        println!(
            "shard {shard}: {} of {} jobs in {}/shard.json; combine the shards with --merge",
            outputs.len(),
            jobs.len(),
            args.out.display()
        );
    }
    let (rows, baselines) = PrototypeStudy::merge(outputs);
    summary(&rows, &baselines, &args.dims);
    Ok(())
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
    summary(&rows, &baselines, &study.dims);
    println!(
        "merged {} shards into {}",
        args.merge.len(),
        args.out.display()
    );
    Ok(())
}

/// The cross-entropy net of `seed`: trained, evaluated, inverted and judged.
fn run_baseline(
    args: &Args,
    seed: u64,
    train: &Dataset,
    test: &Dataset,
    judge: Option<&Judge>,
    inv_cfg: &InversionConfig,
) -> Result<Baseline> {
    let dev = Device::Cpu;
    let dir = args.out.join(PrototypeJob::CrossEntropy { seed }.folder());
    let net_cfg = ClassifierConfig::default();
    let varmap = VarMap::new();
    let net = Classifier::init(&net_cfg, &varmap, seed, &dev)?;
    Trainer::new(train_config(args, seed))?
        .with_checkpoints(&dir, net_cfg.clone())
        .fit(&net, &varmap, train, None, &mut Monitor::new())?;
    let ev = evaluate(&net, test, &dev)?;
    let frozen = load_frozen(&dir, &dev)?;
    let targets: Vec<u32> = (0..10).collect();
    let inverted = Inverter::new(inv_cfg.clone())?.invert_classes(
        &frozen,
        &targets,
        None,
        &dev,
        &mut Monitor::new(),
    )?;
    support::write_images_npy(&dir.join("images.npy"), &inverted.images)?;
    let judge_accuracy = match judge {
        Some(judge) => Some(judge.verdict(inverted.images.view(), &targets)?.accuracy),
        None => None,
    };
    eprintln!(
        "seed {seed} cross-entropy: F1 {:.4}, judge {}",
        ev.macro_f1,
        judged_text(judge_accuracy)
    );
    Ok(Baseline {
        seed,
        precision: ev.macro_precision,
        recall: ev.macro_recall,
        f1: ev.macro_f1,
        judge_accuracy,
    })
}

/// The Adam recipe of every net of the study.
fn train_config(args: &Args, seed: u64) -> TrainConfig {
    TrainConfig {
        epochs: args.epochs,
        optimizer: OptimizerKind::Adam,
        lr: args.lr,
        seed,
        ..Default::default()
    }
}

/// What every prototype job needs besides its own settings.
struct RunContext<'a> {
    args: &'a Args,
    train: &'a Dataset,
    test: &'a Dataset,
    judge: Option<&'a Judge>,
    inv_cfg: &'a InversionConfig,
}

fn run_one(
    cx: &RunContext<'_>,
    kind: PrototypeKind,
    dim: usize,
    seed: u64,
    placement: &netinv::prototypes::Placement,
) -> Result<Row> {
    let RunContext {
        args,
        train,
        test,
        judge,
        inv_cfg,
    } = *cx;
    let dev = Device::Cpu;
    let dir = args
        .out
        .join(PrototypeJob::Prototype { kind, dim, seed }.folder());
    let head = PrototypeHead::new(kind, placement, args.slope, &dev)?;
    let net_cfg = ClassifierConfig {
        outputs: dim,
        ..Default::default()
    };
    let varmap = VarMap::new();
    let net = Classifier::init(&net_cfg, &varmap, seed, &dev)?;
    let trainer = Trainer::new(train_config(args, seed))?
        .with_loss(Arc::new(head.clone()))
        .with_checkpoints(&dir, net_cfg);
    trainer
        .fit(&net, &varmap, train, None, &mut Monitor::new())
        .with_context(|| format!("training {} D{dim} seed {seed}", kind.name()))?;
    head.save(&dir)?;
    let ev = evaluate_with(&net, test, &dev, &head)?;
    if dim == 2 || dim == 3 {
        plot_embeddings(
            &args
                .out
                .join(format!("embedding_{}_d{dim}_s{seed}.png", kind.name())),
            &net,
            &head,
            test,
        )?;
    }
    let judge_accuracy = if dim == args.invert_dim {
        let frozen = load_frozen(&dir, &dev)?;
        let targets: Vec<u32> = (0..10).collect();
        let objective = PrototypeObjective::new(PrototypeHead::load(&dir, &dev)?, targets.clone())?;
        let inverter = Inverter::new(inv_cfg.clone())?;
        let start = inverter.gaussian_init(10, (1, 28, 28), &dev)?;
        let out = inverter.run(&frozen, &objective, &start, &mut Monitor::new())?;
        support::write_images_npy(&dir.join("images.npy"), &out.images)?;
        match judge {
            Some(judge) => Some(judge.verdict(out.images.view(), &targets)?.accuracy),
            None => None,
        }
    } else {
        None
    };
    Ok(Row {
        kind: kind.name().to_string(),
        dim,
        seed,
        precision: ev.macro_precision,
        recall: ev.macro_recall,
        f1: ev.macro_f1,
        judge_accuracy,
    })
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

fn summary(rows: &[Row], baselines: &[Baseline], dims: &[usize]) {
    use netinv::metrics::stats::mean;
    println!("kind            D   P      R      F1     judge (mean over seeds)");
    for kind in ["hyperspherical", "busemann"] {
        for &d in dims {
            let sel: Vec<&Row> = rows
                .iter()
                .filter(|r| r.kind == kind && r.dim == d)
                .collect();
            let p: Vec<f64> = sel.iter().map(|r| r.precision).collect();
            let r: Vec<f64> = sel.iter().map(|r| r.recall).collect();
            let f: Vec<f64> = sel.iter().map(|r| r.f1).collect();
            let j: Vec<f64> = sel.iter().filter_map(|r| r.judge_accuracy).collect();
            let judge = if j.is_empty() {
                "-".to_string()
            } else {
                format!("{:.1} / 10", 10.0 * mean(&j))
            };
            println!(
                "{kind:<15} {d}  {:.4} {:.4} {:.4} {judge}",
                mean(&p),
                mean(&r),
                mean(&f)
            );
        }
    }
    let f: Vec<f64> = baselines.iter().map(|b| b.f1).collect();
    let j: Vec<f64> = baselines.iter().filter_map(|b| b.judge_accuracy).collect();
    let judge = if j.is_empty() {
        "-".to_string()
    } else {
        format!("{:.1} / 10", 10.0 * mean(&j))
    };
    println!("cross-entropy   10 F1 {:.4}, judge {judge}", mean(&f));
}

/// A judge accuracy as "7.0 / 10", or "-" for images not inverted or not judged.
fn judged_text(accuracy: Option<f64>) -> String {
    accuracy.map_or("-".into(), |a| format!("{:.1} / 10", 10.0 * a))
}
