//! Tests the thesis's central claim: an Adam-trained net cannot be inverted, an SGD-trained
//! one can, and FGSM training fixes Adam.
//!
//! ```text
//! cargo run --release --example optimizer_study -- --seeds N --out DIR
//!     [--epochs 4,20 --steps 1000 --no-grid --judge runs/judge --quick]
//! ```
//!
//! Recipes: SGD (lr 0.05, momentum 0.9), Adam (lr 2e-3), Adam + FGSM eps 0.1 and 0.2
//! (alpha 0.5), each for every `--epochs` value (default short 4 and long 20) and seed
//! `0..N` (the seed sets the weights and the shuffling). Every net is inverted (Task 1) at
//! the reference settings and, unless `--no-grid`, over the grid TV in {0, 1e-4, 1e-3,
//! 1e-2} x L2 in {0, 1e-4, 1e-3} (12 settings, the reference included).
//!
//! Writes `study.json` (a list of `{"optimizer", "adversarial", "epsilon", "epochs",
//! "seed", "tv", "l2", "test_accuracy", "judge_accuracy", "class_mean_corr",
//! "self_confidence"}`, rewritten after every run), `study.md` (a table of the judge
//! accuracy mean and min-max over seeds, class-mean correlation, own-network confidence
//! and test accuracy per recipe, length and prior setting), and per run its folder
//! `runs/<recipe>-e<epochs>-s<seed>/tv<tv>-l2<l2>/` with `task1.png`, `task1.json`,
//! `images.npy`, `targets.json`. Trained nets are cached under `nets/`.
//!
//! The study is `netinv::invert::study::OptimizerStudy`: a list of independent jobs (one
//! trained net each, inverted at every prior setting), merged in job order. `--quick`: one
//! seed, 1 epoch, 100 steps, no grid (each overridable by its flag), and the judge only if
//! one is already cached in `--judge` (never trained; judge accuracies are then null).
//! Every flag is checked before any work starts (seeds, epochs and steps >= 1, no repeated
//! epochs).
//!
//! Many machines: `--shard K/N` runs only shard K's share of the jobs (balanced by
//! estimated cost, see `netinv::core::shard`) and writes its rows with a manifest to
//! `--out/shard.json`; `--merge DIR... --out OUT` checks the shards belong together (same
//! settings, every job exactly once) and writes into OUT what one run writes: `study.json`
//! (rows in job order; only the timing field `ms_per_step` differs between any two runs),
//! `study.md`, and each job's `nets/` and `runs/` folders copied from its shard. See
//! docs/scaling.md.

#[path = "flag_support/mod.rs"]
mod flag_support;
#[path = "invert_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};

use anyhow::{ensure, Result};
use clap::Parser;
use netinv::core::shard::{self, Shard, ShardManifest};
use netinv::core::{atomic_write_bytes, write_json};
use netinv::invert::study::{OptimizerJob, OptimizerStudy, Row};

/// The study's name in shard manifests.
const STUDY: &str = "optimizer_study";

/// Train nets with SGD / Adam / Adam + FGSM and invert each.
#[derive(Debug, Parser)]
struct Args {
    /// Seeds per recipe [default: 3, 1 with --quick].
    #[arg(long)]
    seeds: Option<u64>,
    /// Output folder.
    #[arg(long, default_value = "runs/optimizer_study")]
    out: PathBuf,
    /// Training lengths in epochs [default: 4,20; 1 with --quick].
    #[arg(long, value_delimiter = ',')]
    epochs: Option<Vec<usize>>,
    /// Inversion steps [default: 1000, 100 with --quick].
    #[arg(long)]
    steps: Option<usize>,
    /// Only the reference prior weights (no TV / L2 grid; always so with --quick).
    #[arg(long)]
    no_grid: bool,
    /// Judge folder (trained there if missing, unless --quick).
    #[arg(long, default_value = "runs/judge")]
    judge: PathBuf,
    /// Smoke-test settings (see the header).
    #[arg(long)]
    quick: bool,
    /// Run only shard K of N of the job list (K in 1..=N) and record it in --out/shard.json.
    #[arg(long, value_parser = flag_support::shard)]
    shard: Option<Shard>,
    /// Merge these finished shard folders into --out (the settings come from the shards).
    #[arg(long, num_args = 1.., conflicts_with_all = ["seeds", "epochs", "steps", "no_grid", "quick", "shard"])]
    merge: Vec<PathBuf>,
}

impl Args {
    /// The study the flags ask for, checked before any work.
    fn study(&self) -> Result<OptimizerStudy> {
        let study = OptimizerStudy {
            seeds: self.seeds.unwrap_or(if self.quick { 1 } else { 3 }),
            epochs: self
                .epochs
                .clone()
                .unwrap_or(if self.quick { vec![1] } else { vec![4, 20] }),
            steps: self.steps.unwrap_or(if self.quick { 100 } else { 1000 }),
            grid: !(self.no_grid || self.quick),
        };
        study.validate().map_err(support::config_flag_error)?;
        flag_support::output_folder("--out", &self.out)?;
        flag_support::output_folder("--judge", &self.judge)?;
        Ok(study)
    }
}

fn main() -> Result<()> {
    netinv::core::install_cleanup_handler()?;
    let args = Args::parse();
    if !args.merge.is_empty() {
        return merge(&args);
    }
    let study = args.study()?;
    let jobs = study.jobs()?;
    let shard = args.shard.unwrap_or_else(Shard::whole);
    let costs: Vec<f64> = jobs.iter().map(OptimizerJob::cost).collect();
    let mine = shard.jobs_of(&costs)?;
    let mnist = netinv::data::Mnist::embedded()?;
    let judge = if args.quick {
        let judge = support::cached_judge(&args.judge)?;
        if judge.is_none() {
            eprintln!(
                "--quick: no accepted judge cached in {}, so judge accuracies are null",
                args.judge.display()
            );
        }
        judge
    } else {
        Some(support::judge(&args.judge, &mnist)?)
    };
    let mut done: Vec<(usize, Vec<Row>)> = Vec::with_capacity(mine.len());
    for job in mine.iter().map(|&j| &jobs[j]) {
        let name = job.name();
        let (net, test_accuracy) = support::load_or_train_net(
            &job.train,
            job.weight_seed,
            &mnist,
            &args.out.join("nets").join(&name),
            &name,
        )?;
        let mut rows = Vec::with_capacity(job.inversions.len());
        for inv in &job.inversions {
            let (tv, l2) = (inv.tv, inv.l2);
            let dir = args
                .out
                .join("runs")
                .join(&name)
                .join(format!("tv{tv:e}-l2{l2:e}"));
            let t1 = support::task1(&net, judge.as_ref(), mnist.train(), inv, &dir, false)?;
            let row = job.row(
                inv,
                test_accuracy,
                &t1.run,
                t1.judge_accuracy,
                t1.class_mean_corr,
            );
            let judge_text = if row.judge_accuracy.is_nan() {
                "no judge".to_string()
            } else {
                format!("{:.0}/10", 10.0 * row.judge_accuracy)
            };
            println!(
                "{name} tv {tv:e} l2 {l2:e}: test acc {test_accuracy:.4}, judge {judge_text}, corr {:.3}, own conf {:.3}",
                row.class_mean_corr, row.self_confidence
            );
            rows.push(row);
            // the merged table so far, rewritten after every run
            let mut so_far = done.clone();
            so_far.push((job.index, rows.clone()));
            write_rows(&args.out, &OptimizerStudy::merge(so_far))?;
        }
        done.push((job.index, rows));
    }
    if let Some(shard) = args.shard {
        let config = serde_json::json!({ "study": study, "judged": judge.is_some() });
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
    println!("{}", Row::table(&rows));
    println!("wrote {}/study.json and study.md", args.out.display());
    Ok(())
}

/// `study.json` and `study.md` of `rows`.
fn write_rows(out: &Path, rows: &[Row]) -> Result<()> {
    write_json(out.join("study.json"), rows)?;
    atomic_write_bytes(out.join("study.md"), Row::table(rows).as_bytes())?;
    Ok(())
}

/// `--merge`: the shards' rows in job order and their per-job folders, as one run writes
/// them.
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
    for (job, source) in jobs.iter().zip(&merged.sources) {
        for part in ["nets", "runs"] {
            shard::copy_job_files(source, &args.out, &Path::new(part).join(job.name()))?;
        }
    }
    let rows = OptimizerStudy::merge(merged.outputs.into_iter().enumerate().collect());
    write_rows(&args.out, &rows)?;
    println!("{}", Row::table(&rows));
    println!(
        "merged {} shards: wrote {}/study.json and study.md",
        args.merge.len(),
        args.out.display()
    );
    Ok(())
}
