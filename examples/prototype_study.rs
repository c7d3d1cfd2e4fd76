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
use netinv::core::{write_json, Monitor};
use netinv::data::Dataset;
use netinv::invert::{InversionConfig, Inverter};
use netinv::models::train::{evaluate, evaluate_with, OptimizerKind, TrainConfig, Trainer};
use netinv::models::Judge;
use netinv::models::{load_frozen, Classifier, ClassifierConfig};
use netinv::prototypes::{
    place_prototypes, PlacementConfig, PrototypeHead, PrototypeKind, PrototypeObjective,
};
use plotters::prelude::*;
use serde::Serialize;

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

#[derive(Serialize)]
struct Row {
    kind: &'static str,
    dim: usize,
    seed: u64,
    precision: f64,
    recall: f64,
    f1: f64,
    judge_accuracy: Option<f64>,
}

#[derive(Serialize)]
struct Baseline {
    seed: u64,
    precision: f64,
    recall: f64,
    f1: f64,
    judge_accuracy: Option<f64>,
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
    args.apply_quick();
    let mnist = netinv::data::Mnist::embedded()?;
    validate(&args, mnist.train().len())?;
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
    let dev = Device::Cpu;
    let train_cfg = |seed: u64| TrainConfig {
        epochs: args.epochs,
        optimizer: OptimizerKind::Adam,
        lr: args.lr,
        seed,
        ..Default::default()
    };
    let inv_cfg = InversionConfig {
        steps: args.steps,
        ..Default::default()
    };
    let targets: Vec<u32> = (0..10).collect();
    let mut rows = Vec::new();
    let mut baselines = Vec::new();
    for seed in 0..args.seeds {
        // Cross-entropy baseline.
        let dir = args.out.join(format!("cross_entropy_s{seed}"));
        let net_cfg = ClassifierConfig::default();
        let varmap = VarMap::new();
        let net = Classifier::init(&net_cfg, &varmap, seed, &dev)?;
        Trainer::new(train_cfg(seed))?
            .with_checkpoints(&dir, net_cfg.clone())
            .fit(&net, &varmap, &train, None, &mut Monitor::new())?;
        let ev = evaluate(&net, test, &dev)?;
        let frozen = load_frozen(&dir, &dev)?;
        let inverted = Inverter::new(inv_cfg.clone())?.invert_classes(
            &frozen,
            &targets,
            None,
            &dev,
            &mut Monitor::new(),
        )?;
        support::write_images_npy(&dir.join("images.npy"), &inverted.images)?;
        let judge_accuracy = match &judge {
            Some(judge) => Some(judge.verdict(inverted.images.view(), &targets)?.accuracy),
            None => None,
        };
        eprintln!(
            "seed {seed} cross-entropy: F1 {:.4}, judge {}",
            ev.macro_f1,
            judged_text(judge_accuracy)
        );
        baselines.push(Baseline {
            seed,
            precision: ev.macro_precision,
            recall: ev.macro_recall,
            f1: ev.macro_f1,
            judge_accuracy,
        });
        for &dim in &args.dims {
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
            for kind in [PrototypeKind::Hyperspherical, PrototypeKind::Busemann] {
                let row = run_one(
                    &args,
                    kind,
                    dim,
                    seed,
                    &placement,
                    &train,
                    test,
                    judge.as_ref(),
                    &inv_cfg,
                )?;
                eprintln!(
                    "seed {seed} {} D{dim}: P {:.4} R {:.4} F1 {:.4} judge {}",
                    row.kind,
                    row.precision,
                    row.recall,
                    row.f1,
                    judged_text(row.judge_accuracy)
                );
                rows.push(row);
                write_json(args.out.join("study.json"), &rows)?;
            }
        }
        write_json(args.out.join("baseline.json"), &baselines)?;
    }
    summary(&rows, &baselines, &args.dims);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_one(
    args: &Args,
    kind: PrototypeKind,
    dim: usize,
    seed: u64,
    placement: &netinv::prototypes::Placement,
    train: &Dataset,
    test: &Dataset,
    judge: Option<&Judge>,
    inv_cfg: &InversionConfig,
) -> Result<Row> {
    let dev = Device::Cpu;
    let dir = args.out.join(format!("{}_d{dim}_s{seed}", kind.name()));
    let head = PrototypeHead::new(kind, placement, args.slope, &dev)?;
    let net_cfg = ClassifierConfig {
        outputs: dim,
        ..Default::default()
    };
    let varmap = VarMap::new();
    let net = Classifier::init(&net_cfg, &varmap, seed, &dev)?;
    let trainer = Trainer::new(TrainConfig {
        epochs: args.epochs,
        optimizer: OptimizerKind::Adam,
        lr: args.lr,
        seed,
        ..Default::default()
    })?
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
        kind: kind.name(),
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
