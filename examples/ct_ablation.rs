//! The CT hybrid's ablation done right (issue 18): full (class + priors), priors-only and
//! class-only arms each tuned on its own, SIRT-100 and SIRT at the hybrid's own budget
//! (SIRT-88), three classifier seeds, CIs that include the seed-to-seed variance.
//!
//! ```text
//! cargo run --release --example ct_ablation -- --out runs/ct_ablation --quick
//! cargo run --release --example ct_ablation -- --out runs/ct_ablation \
//!     [--n-images 200 --angles 3,4 --noise-i0 none,1e3 --val-images 50 --candidates 16 \
//!      --classifier-seeds 0,1,2 --threads 2]
//! python3 tools/ct/ablation_tables.py runs/ct_ablation      # the docs tables
//! ```
//!
//! The arms, the random search (the same candidates and budget for every arm), the
//! statistics and the seeds are documented in `netinv::ct::study::ablation`. One job is a
//! classifier seed at a setting (angle count x noise level): it tunes the three hybrid arms
//! on `--val-images` validation digits (the last digits of the embedded training split,
//! which no classifier trains on; never test digits) and runs all five arms on the first
//! `--n-images` test digits. Jobs run in parallel, one per thread (candle single-threaded
//! inside), so the results do not depend on `--threads`.
//!
//! Classifiers: a BatchNorm netinv-small per `--classifier-seeds` entry `s`, trained with
//! ct_study's recipe (SGD, 2 epochs, the first 7,500 training digits) with the
//! initialisation and shuffling seed `s` (seed 0 is ct_study's classifier), cached in
//! `--out/models/seed<s>` with its `recipe.json` (a cache whose recipe differs is
//! retrained).
//!
//! Writes into `--out`: `per_image.json` (seed, arm, digit, angles, noise, PSNR, SSIM),
//! `tuning.json` (every candidate's validation PSNR per seed, setting and arm, and the
//! choice), `summary.json` (`netinv::ct::study::ablation::summarize_ablation`),
//! `config.json` (flags, settings, the candidate list, recipes, test accuracies, seconds)
//! and `summary.md`.
//!
//! Every flag is checked before any work. `--quick` (4 test digits, 4 validation digits,
//! 4 angles noiseless, 3 candidates, seeds 0 and 1, 1 training epoch on 2,000 digits)
//! refuses `--angles`, `--noise-i0`, `--candidates`, `--classifier-seeds` and `--epochs`.
//! `--shard K/N` runs shard K's share of the jobs (balanced by estimated cost) and writes
//! `--out/shard.json` (and the classifiers it needed); `--merge DIR... --out OUT` merges the
//! shards into what one run writes (refusing shards of other settings, missing or repeated
//! jobs); the merged JSON files equal a single run's except `config.json`'s `seconds`.

#[path = "ct_classifier_support/mod.rs"]
mod ct_classifier_support;
#[path = "flag_support/mod.rs"]
mod flag_support;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use candle_core::Device;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use netinv::core::shard::{self, Shard, ShardManifest};
use netinv::core::{atomic_write_bytes, write_json};
use netinv::ct::study::ablation::{
    run_ablation_job, summarize_ablation, summary_line, AblationConfig, AblationImage,
    AblationJobOutput, SeedSummary, BOOTSTRAP_REPS, BOOTSTRAP_SEED, SHARD_ABLATION,
};
use netinv::ct::study::{parse_noise, Setting};
use netinv::data::Mnist;
use netinv::models::train::evaluate;
use netinv::models::{load_frozen, Classifier};
use serde::{Deserialize, Serialize};
use serde_json::json;

use ct_classifier_support::{bn_recipe, digits, train_or_reuse, val_digits, Recipe, VAL_RESERVE};

/// The last training digits, never trained on, from which the validation digits come.

#[derive(Parser, Debug, Clone, Serialize, Deserialize)]
#[command(about = "CT hybrid ablation: every arm tuned alike, SIRT-88, several classifier seeds")]
struct Args {
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Test digits (the first N of the embedded test split).
    #[arg(long, default_value_t = 200, value_parser = flag_support::at_least_one)]
    n_images: usize,
    /// Angle counts, comma separated (not with --quick).
    #[arg(long, value_delimiter = ',', default_value = "3,4", value_parser = flag_support::at_least_one)]
    angles: Vec<usize>,
    /// Poisson I0 per ray, comma separated; `none` for noiseless (not with --quick).
    #[arg(long, value_delimiter = ',', default_value = "none,1e3")]
    noise_i0: Vec<String>,
    /// Validation digits the arms are tuned on (the last of the training split; 1 to 500).
    #[arg(long, default_value_t = 50)]
    val_images: usize,
    /// Candidates of the random search per arm (candidate 0 is the shipped default).
    #[arg(long, default_value_t = 16, value_parser = flag_support::at_least_one)]
    candidates: usize,
    /// Seed of the random search's candidate draws.
    #[arg(long, default_value_t = 0)]
    search_seed: u64,
    /// Classifier training seeds, comma separated (not with --quick).
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    classifier_seeds: Vec<u64>,
    /// Training epochs of the classifiers (not with --quick).
    #[arg(long, default_value_t = 2, value_parser = flag_support::at_least_one)]
    epochs: usize,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads (the results do not depend on it).
    #[arg(long, default_value_t = 2, value_parser = flag_support::at_least_one)]
    threads: usize,
    /// Small run for tests: 4 test and 4 validation digits, 4 angles noiseless, 3
    /// candidates, seeds 0 and 1, 1 training epoch on 2,000 digits.
    #[arg(long)]
    quick: bool,
    /// Run only shard K of N of the jobs (K in 1..=N); writes --out/shard.json for --merge.
    #[arg(long, value_parser = flag_support::shard)]
    #[serde(skip)]
    shard: Option<Shard>,
    /// Merge these finished shard folders into --out.
    #[arg(long, num_args = 1.., conflicts_with_all = [
        "n_images", "angles", "noise_i0", "val_images", "candidates", "search_seed",
        "classifier_seeds", "epochs", "seed", "quick", "shard",
    ])]
    #[serde(skip)]
    merge: Vec<PathBuf>,
}

/// Parses the command line and checks every flag; nothing is read or written before.
fn parse_args(mnist: &Mnist) -> Result<(Args, AblationConfig)> {
    let matches: ArgMatches = Args::command().get_matches();
    let mut args = Args::from_arg_matches(&matches)?;
    flag_support::output_folder("--out", &args.out)?;
    if !args.merge.is_empty() {
        for dir in &args.merge {
            ensure!(
                dir.join(shard::SHARD_FILE).is_file(),
                "--merge {}: no {} (not a shard's folder, or its shard has not finished)",
                dir.display(),
                shard::SHARD_FILE
            );
        }
        return Ok((args, AblationConfig::default()));
    }
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    if args.quick {
        for flag in [
            "angles",
            "noise_i0",
            "candidates",
            "classifier_seeds",
            "epochs",
        ] {
            if given(flag) {
                bail!(
                    "--quick sets --{} itself: drop one of the two",
                    flag.replace('_', "-")
                );
            }
        }
        args.n_images = args.n_images.min(4);
        args.val_images = args.val_images.min(4);
        args.classifier_seeds = vec![0, 1];
    }
    let n_test = mnist.test().len();
    ensure!(
        (1..=n_test).contains(&args.n_images),
        "--n-images must be in 1..={n_test}, got {}",
        args.n_images
    );
    ensure!(
        (1..=VAL_RESERVE).contains(&args.val_images),
        "--val-images must be in 1..={VAL_RESERVE}, got {}",
        args.val_images
    );
    ensure!(
        !args.classifier_seeds.is_empty(),
        "--classifier-seeds: give at least one"
    );
    flag_support::distinct("--classifier-seeds", &args.classifier_seeds)?;
    flag_support::distinct("--angles", &args.angles)?;
    flag_support::distinct("--noise-i0", &args.noise_i0)?;
    let cfg = ablation_config(&args)?;
    cfg.validate().context("bad ablation settings")?;
    if let Some(shard) = args.shard {
        shard
            .jobs_of(&job_costs(&args, &cfg))
            .with_context(|| format!("--shard {shard}"))?;
    }
    Ok((args, cfg))
}

fn ablation_config(args: &Args) -> Result<AblationConfig> {
    if args.quick {
        return Ok(AblationConfig {
            search_seed: args.search_seed,
            seed: args.seed,
            ..AblationConfig::quick()
        });
    }
    let noises = args
        .noise_i0
        .iter()
        .map(|v| parse_noise(v).with_context(|| format!("--noise-i0 {v}")))
        .collect::<Result<Vec<_>>>()?;
    Ok(AblationConfig {
        angles: args.angles.clone(),
        noises,
        candidates: args.candidates,
        search_seed: args.search_seed,
        seed: args.seed,
        ..AblationConfig::default()
    })
}

/// The jobs: `(classifier seed, setting)`, seed-major.
fn jobs(args: &Args, cfg: &AblationConfig) -> Vec<(u64, Setting)> {
    args.classifier_seeds
        .iter()
        .flat_map(|&s| cfg.settings().into_iter().map(move |x| (s, x)))
        .collect()
}

fn job_costs(args: &Args, cfg: &AblationConfig) -> Vec<f64> {
    jobs(args, cfg)
        .iter()
        .map(|(_, s)| cfg.job_cost(s.n_angles))
        .collect()
}

fn model_dir(out: &Path, seed: u64) -> PathBuf {
    out.join("models").join(format!("seed{seed}"))
}

/// What a shard records as its configuration; shards merge only if theirs are equal.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ShardConfig {
    /// The flags without `out` and `threads`.
    args: serde_json::Value,
    /// The settings.
    ablation: AblationConfig,
}

fn shard_args(args: &Args) -> Result<serde_json::Value> {
    let mut value = serde_json::to_value(args)?;
    if let Some(map) = value.as_object_mut() {
        map.remove("out");
        map.remove("threads");
    }
    Ok(value)
}

fn main() -> Result<()> {
    netinv::core::install_cleanup_handler()?;
    netinv::core::retain_freed_memory();
    let mnist = Mnist::embedded()?;
    let (args, cfg) = parse_args(&mnist)?;
    if !args.merge.is_empty() {
        return merge(&args);
    }
    std::env::set_var("RAYON_NUM_THREADS", "1");
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global()?;
    std::fs::create_dir_all(&args.out)?;
    let start = Instant::now();
    let cpu0 = netinv::core::process_cpu_seconds().unwrap_or(0.0);
    let test = digits(&mnist.test().take(args.n_images));
    let val = val_digits(&mnist, args.val_images)?;
    let all_jobs = jobs(&args, &cfg);
    let mine: Vec<usize> = match args.shard {
        Some(shard) => shard.jobs_of(&job_costs(&args, &cfg))?,
        None => (0..all_jobs.len()).collect(),
    };
    // the classifiers this run needs, trained (or loaded) in parallel
    let mut seeds: Vec<u64> = mine.iter().map(|&j| all_jobs[j].0).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let nets: Vec<(u64, Classifier, f64)> =
        netinv::ct::study::par_longest_first(&(0..seeds.len()).collect::<Vec<_>>(), |k| {
            let s = seeds[k];
            let recipe = bn_recipe(&mnist, args.epochs, args.quick, s);
            let label = format!("train BN net seed {s}");
            let net =
                train_or_reuse(&model_dir(&args.out, s), &recipe, &mnist, &label).map_err(|e| {
                    netinv::ct::Error::InvalidConfig {
                        field: "classifier",
                        reason: format!("seed {s}: {e:#}"),
                    }
                })?;
            let acc = evaluate(&net, mnist.test(), &Device::Cpu)
                .map_err(netinv::ct::Error::from)?
                .accuracy;
            Ok((s, net, acc))
        })?;
    for (s, _, acc) in &nets {
        println!(
            "classifier seed {s}: test accuracy {acc:.4} ({:.0} s)",
            start.elapsed().as_secs_f64()
        );
    }
    let candidates = cfg.candidate_list();
    // longest jobs first
    let mut order: Vec<usize> = (0..mine.len()).collect();
    order.sort_by(|&a, &b| {
        let cost = |k: usize| cfg.job_cost(all_jobs[mine[k]].1.n_angles);
        cost(b).total_cmp(&cost(a))
    });
    let done = std::sync::atomic::AtomicUsize::new(0);
    let outputs = netinv::ct::study::par_longest_first(&order, |k| {
        let (s, setting) = all_jobs[mine[k]];
        let net = &nets
            .iter()
            .find(|(seed, _, _)| *seed == s)
            .ok_or_else(|| netinv::ct::Error::InvalidConfig {
                field: "classifier",
                reason: format!("no classifier of seed {s}"),
            })?
            .1;
        let out = run_ablation_job(&cfg, &candidates, s, net, &setting, &val, &test)?;
        let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        println!(
            "job {d}/{} done (classifier seed {s}, {} angles, noise {}), {:.0} s",
            mine.len(),
            setting.n_angles,
            netinv::ct::study::noise_name(setting.noise),
            start.elapsed().as_secs_f64()
        );
        Ok(out)
    })?;
    let accuracies: Vec<(u64, f64)> = nets.iter().map(|(s, _, a)| (*s, *a)).collect();
    if let Some(shard) = args.shard {
        let config = ShardConfig {
            args: shard_args(&args)?,
            ablation: cfg.clone(),
        };
        let manifest = ShardManifest::new(
            SHARD_ABLATION,
            serde_json::to_value(&config)?,
            shard,
            all_jobs.len(),
            mine.clone(),
        );
        shard::write_shard(&args.out, &manifest, &(), &outputs)?;
        println!(
            "shard {shard}: {} of {} jobs in {}/shard.json ({:.0} s); combine the shards with --merge",
            mine.len(),
            all_jobs.len(),
            args.out.display(),
            start.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let seconds = (
        start.elapsed().as_secs_f64(),
        netinv::core::process_cpu_seconds().unwrap_or(0.0) - cpu0,
    );
    write_outputs(&args, &cfg, &outputs, &accuracies, &mnist, seconds)
}

/// `--merge`: the shards' jobs written into `--out` as one run writes them.
fn merge(args: &Args) -> Result<()> {
    let start = Instant::now();
    let merged = shard::merge::<(), AblationJobOutput>(&args.merge, SHARD_ABLATION, &args.out)?;
    let config: ShardConfig = serde_json::from_value(merged.config.clone())?;
    let mut run_value = config.args.clone();
    if let Some(map) = run_value.as_object_mut() {
        map.insert("out".into(), json!(args.out));
        map.insert("threads".into(), json!(args.threads));
    }
    let run: Args = serde_json::from_value(run_value).context("the shards' recorded flags")?;
    std::fs::create_dir_all(&args.out)?;
    let mnist = Mnist::embedded()?;
    let mut accuracies = Vec::new();
    for &s in &run.classifier_seeds {
        let k = merged
            .outputs
            .iter()
            .position(|o| o.classifier_seed == s)
            .context("a classifier seed has no job")?;
        let rel = PathBuf::from("models").join(format!("seed{s}"));
        shard::copy_job_files(&merged.sources[k], &args.out, &rel)?;
        let net = load_frozen(&args.out.join(&rel), &Device::Cpu)?;
        accuracies.push((s, evaluate(&net, mnist.test(), &Device::Cpu)?.accuracy));
    }
    let seconds = (start.elapsed().as_secs_f64(), 0.0);
    write_outputs(
        &run,
        &config.ablation,
        &merged.outputs,
        &accuracies,
        &mnist,
        seconds,
    )?;
    println!(
        "merged {} shards; outputs in {}",
        args.merge.len(),
        args.out.display()
    );
    Ok(())
}

/// The tuning log entry of one job.
#[derive(Serialize)]
struct TuningEntry<'a> {
    classifier_seed: u64,
    n_angles: usize,
    noise_i0: Option<f64>,
    arms: &'a [netinv::ct::study::ablation::ArmTuning],
}

fn write_outputs(
    args: &Args,
    cfg: &AblationConfig,
    outputs: &[AblationJobOutput],
    accuracies: &[(u64, f64)],
    mnist: &Mnist,
    (wall, cpu): (f64, f64),
) -> Result<()> {
    let per_image: Vec<AblationImage> = outputs
        .iter()
        .flat_map(|o| o.per_image.iter().cloned())
        .collect();
    let summary: Vec<SeedSummary> = summarize_ablation(&per_image)?;
    let tuning: Vec<TuningEntry> = outputs
        .iter()
        .map(|o| TuningEntry {
            classifier_seed: o.classifier_seed,
            n_angles: o.setting.n_angles,
            noise_i0: o.setting.noise,
            arms: &o.tuning,
        })
        .collect();
    write_json(args.out.join("per_image.json"), &per_image)?;
    write_json(args.out.join("tuning.json"), &tuning)?;
    write_json(args.out.join("summary.json"), &summary)?;
    let recipes: Vec<Recipe> = args
        .classifier_seeds
        .iter()
        .map(|&s| bn_recipe(mnist, args.epochs, args.quick, s))
        .collect();
    write_json(
        args.out.join("config.json"),
        &json!({
            "args": args,
            "ablation": cfg,
            "sirt_budget": cfg.sirt_budget(),
            "candidates": cfg.candidate_list(),
            "classifier_recipes": recipes,
            "classifier_test_accuracy": accuracies,
            "bootstrap": { "reps": BOOTSTRAP_REPS, "seed": BOOTSTRAP_SEED, "rng": "splitmix64" },
            "seconds": wall,
            "cpu_seconds": cpu,
        }),
    )?;
    let mut md = format!(
        "CT ablation: {} test digits, {} validation digits, {} candidates per arm, classifier seeds {:?}, {wall:.0} s wall, {cpu:.0} s CPU\n\n| noise | angles | arm or difference | mean PSNR (dB) | 95% CI, crossed bootstrap | 95% CI, t over seed means | seed means |\n| --- | --- | --- | --- | --- | --- | --- |\n",
        args.n_images, args.val_images, cfg.candidates, args.classifier_seeds
    );
    for s in &summary {
        md.push_str(&summary_line(s));
        md.push('\n');
    }
    atomic_write_bytes(args.out.join("summary.md"), md.as_bytes())?;
    println!("{md}");
    Ok(())
}
