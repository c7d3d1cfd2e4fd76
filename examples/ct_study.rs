//! The CT case study (thesis chapter 5, issue 9): does network inversion help few-angle
//! CT of digits, label-free, and is it the class knowledge or the priors?
//!
//! ```text
//! cargo run --release --example ct_study -- --out runs/ct_study --quick
//! cargo run --release --example ct_study -- --out runs/ct_study \
//!     [--n-images 200 --angles 2,3,4,6,8,10,15,20,30,45,90 --noise-i0 none,1e4,1e3 \
//!      --model DIR --val-images 8 --threads 2 --pg-images 50]
//! ```
//!
//! Test digits from the embedded test split are scanned at each angle count and noise
//! level and reconstructed by every arm of `netinv::ct::study` (FBP, SIRT-100, box-LS and
//! TV by PDHG, SIRT alternating with inversion steps and its ablation, projected gradient
//! with and without the class term; the table of arms, the tuning on validation digits and
//! the statistics are documented there). This file holds the command line, the model cache
//! and the files; `ct_study_support` the figures and the shard files.
//!
//! Writes into `--out`: `results.json` (one row per method, label mode, angle count and
//! noise level: `method`, `label_mode`, `n_angles`, `noise_i0` (null = none), `mse_mean`,
//! `mse_ci95`, `psnr_mean`, `psnr_ci95`, `ssim_mean`, `ssim_ci95`, plus `n`),
//! `per_image.json`, `config.json` (all settings, the tuned TV weights, the legend of the
//! plots, the classifier's training recipe), `{psnr,ssim,mse}_vs_angles_<noise>.png` (one
//! panel per family of methods, 95% CI bars, log angle axis), `grid_<noise>.png`
//! (reconstructions of a few digits at a few angle counts) and `summary.md`. Without
//! `--model`, a BatchNorm netinv-small is trained on the embedded training digits and
//! cached in `--out/model` with its recipe (`recipe.json`); a cached model whose recipe
//! differs is retrained. The 95% CI is `1.96 s / sqrt(n)`; PSNR is capped at 100 dB.
//!
//! Every flag is checked before any work: `--quick` (6 digits, angles 2,4,8, noise
//! none,1e3, 1 training epoch on 2,000 digits, short solvers) refuses `--angles`,
//! `--noise-i0` and `--epochs`, and caps `--n-images` at 6, `--val-images` and
//! `--generative-val-images` at 4, `--pdhg-iterations` at 300 and `--pg-iterations` at 60.
//!
//! The generative-prior arms (issue 17; `vae`, `vae_dc`, `cvae`, `cvae_dc`): a VAE and a
//! class-conditional VAE (`examples/vae_support`: conv encoder, MLP decoder, latent 16,
//! `--vae-epochs` 40) train on the first 7,500 training digits beside the classifier and
//! are cached in `--out/vae` and `--out/cvae` (or given by `--vae` / `--cvae`); their
//! latent prior weight and refinement are tuned per setting on `--generative-val-images`
//! (32) validation digits; `generative.json` holds the tuning, the CPU time per phase, the
//! label-free class and confidence of every test digit, and `failures_<noise>.png` the
//! worst wrong-class digits. `--no-generative` skips them.
//!
//! Many machines (see docs/scaling.md): `--shard K/N` runs the tuning (phases 1 and 2,
//! recomputed by every shard, deterministically) and then only shard K's share of the
//! settings (balanced by estimated cost, `netinv::ct::study::shard_settings`), and writes
//! the tuning and its settings' results with a manifest to `--out/shard.json` (and the
//! model caches, as a single run; no figures or tables). `--merge DIR... --out OUT` takes
//! every setting from the shards (refusing shards of other settings, a different tuning
//! or classifier, and missing or repeated settings) and writes into OUT what one run
//! writes, the model caches copied from the first shard. The merged `results.json`,
//! `per_image.json` and figures equal a single run's byte for byte; `generative.json`
//! differs only in its CPU-time fields (`tune_seconds`, `search_seconds`,
//! `refine_seconds`, as between any two runs) and `config.json` only in `seconds` (the
//! merge's own time) and `args.out` / `args.threads` when those differ.

#[path = "ct_classifier_support/mod.rs"]
mod ct_classifier_support;
#[path = "ct_study_support/mod.rs"]
mod ct_study_support;
#[path = "flag_support/mod.rs"]
mod flag_support;
#[path = "plot_support/mod.rs"]
mod plot_support;
#[path = "vae_support/mod.rs"]
mod vae_support;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, ensure, Context, Result};
use candle_core::Device;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use netinv::core::shard::Shard;
use netinv::core::{atomic_write_bytes, write_json, ImageRef, ProgressObserver};
use netinv::ct::generative::{ConditionalVae, LatentDecoder, LatentSearchConfig, UnconditionalVae};
use netinv::ct::study::{
    markdown_table, noise_name, parse_noise, shard_settings, GenerativeConfig, GenerativePriors,
    Job, JobOutput, Metric, Outcome, Row, Study, StudyConfig, Tuning, ARMS, ARM_COLORS, CI95_RULE,
    PSNR_CAP,
};
use netinv::ct::{ClassPriorConfig, HybridConfig};
use netinv::data::Mnist;
use netinv::models::train::evaluate;
use netinv::models::{load_frozen, Classifier};
use serde::{Deserialize, Serialize};
use serde_json::json;

use ct_classifier_support::{bn_recipe, digits, train_or_reuse, val_digits, Recipe, VAL_RESERVE};

/// The last training digits, never trained on, from which the validation digits come.

#[derive(Parser, Debug, Clone, Serialize, Deserialize)]
#[command(about = "CT case study: SIRT + network inversion vs classical baselines, with ablation")]
struct Args {
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Test digits (the first N of the embedded test split).
    #[arg(long, default_value_t = 200, value_parser = flag_support::at_least_one)]
    n_images: usize,
    /// Angle counts, comma separated (not with --quick).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "2,3,4,6,8,10,15,20,30,45,90",
        value_parser = flag_support::at_least_one
    )]
    angles: Vec<usize>,
    /// Poisson I0 per ray, comma separated; `none` for noiseless data (not with --quick).
    #[arg(long, value_delimiter = ',', default_value = "none,1e4,1e3")]
    noise_i0: Vec<String>,
    /// Small run for tests: 6 digits, angles 2,4,8, noise none,1e3, short solvers.
    #[arg(long)]
    quick: bool,
    /// A trained BatchNorm classifier (netinv_models checkpoint folder) instead of training.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Training digits of the validation split that tunes the TV weight, the hybrid's
    /// optimiser and pg_class's class weight (the last 500 digits of the embedded training
    /// split, which the classifier does not train on; never test digits; 1 to 500).
    #[arg(long, default_value_t = 8)]
    val_images: usize,
    /// Validation digits (from the same reserve; 1 to 500) on which the generative arms
    /// are tuned: more than --val-images, since their refinement chooses between the TV
    /// arm and an anchored candidate by a small difference in mean PSNR.
    #[arg(long, default_value_t = 32)]
    generative_val_images: usize,
    /// PDHG iterations of the converged baselines (box-LS and TV).
    #[arg(long, default_value_t = 1000, value_parser = flag_support::at_least_one)]
    pdhg_iterations: usize,
    /// Iterations of the projected-gradient solvers with the network terms (0: skip them).
    #[arg(long, default_value_t = 200)]
    pg_iterations: usize,
    /// Run the projected-gradient arms on the first K digits only (0: all).
    #[arg(long, default_value_t = 50)]
    pg_images: usize,
    /// Training epochs when no --model is given (not with --model or --quick).
    #[arg(long, default_value_t = 2, value_parser = flag_support::at_least_one)]
    epochs: usize,
    /// Worker threads: jobs run in parallel, each on one thread (candle single-threaded
    /// inside). The results do not depend on it.
    #[arg(long, default_value_t = 2, value_parser = flag_support::at_least_one)]
    threads: usize,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A trained unconditional VAE (netinv_models checkpoint folder) for the `vae*` arms
    /// instead of training one (cached in `--out/vae` with its recipe).
    #[arg(long)]
    vae: Option<PathBuf>,
    /// A trained conditional VAE (10 classes) for the `cvae*` arms instead of training one
    /// (cached in `--out/cvae` with its recipe).
    #[arg(long)]
    cvae: Option<PathBuf>,
    /// Training epochs of the study's VAE and conditional VAE when not given (not with
    /// --quick).
    #[arg(long, default_value_t = 40, value_parser = flag_support::at_least_one)]
    vae_epochs: usize,
    /// Skip the generative-prior arms (vae*, cvae*).
    #[arg(long)]
    no_generative: bool,
    /// The generative arms' settings as JSON (netinv_ct::study::GenerativeConfig; missing
    /// fields keep their defaults) instead of the defaults (or --quick's).
    #[arg(long)]
    generative_config: Option<PathBuf>,
    /// Run the tuning and then only shard K of N of the settings (K in 1..=N); writes
    /// --out/shard.json for --merge instead of the tables and figures.
    #[arg(long, value_parser = flag_support::shard)]
    #[serde(skip)]
    shard: Option<Shard>,
    /// Merge these finished shard folders into --out (the settings come from the shards).
    #[arg(long, num_args = 1.., conflicts_with_all = [
        "n_images", "angles", "noise_i0", "quick", "model", "val_images",
        "generative_val_images", "pdhg_iterations", "pg_iterations", "pg_images", "epochs",
        "seed", "vae", "cvae", "vae_epochs", "no_generative", "generative_config", "shard",
    ])]
    #[serde(skip)]
    merge: Vec<PathBuf>,
}

/// Parses the command line and checks every flag; nothing is read or written before.
fn parse_args(mnist: &Mnist) -> Result<(Args, Vec<Option<f64>>)> {
    let matches: ArgMatches = Args::command().get_matches();
    let mut args = Args::from_arg_matches(&matches)?;
    if !args.merge.is_empty() {
        flag_support::output_folder("--out", &args.out)?;
        ct_study_support::check_shard_folders(&args.merge)?;
        return Ok((args, Vec::new()));
    }
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    if args.quick {
        for flag in ["angles", "noise_i0", "epochs"] {
            if given(flag) {
                bail!(
                    "--quick sets --{} itself (angles 2,4,8, noise none,1e3, 1 epoch): drop one of the two",
                    flag.replace('_', "-")
                );
            }
        }
        args.n_images = args.n_images.min(6);
        args.angles = vec![2, 4, 8];
        args.noise_i0 = vec!["none".into(), "1e3".into()];
        args.val_images = args.val_images.min(4);
        args.generative_val_images = args.generative_val_images.min(4);
        args.pdhg_iterations = args.pdhg_iterations.min(300);
        args.pg_iterations = args.pg_iterations.min(60);
    }
    ensure!(
        !(args.model.is_some() && given("epochs")),
        "--epochs trains a model: it does not apply with --model"
    );
    ensure!(
        args.pg_iterations > 0 || !given("pg_images"),
        "--pg-images does not apply with --pg-iterations 0 (the pg arms are off)"
    );
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
        (1..=VAL_RESERVE).contains(&args.generative_val_images),
        "--generative-val-images must be in 1..={VAL_RESERVE}, got {}",
        args.generative_val_images
    );
    flag_support::output_folder("--out", &args.out)?;
    flag_support::distinct("--angles", &args.angles)?;
    flag_support::distinct("--noise-i0", &args.noise_i0)?;
    let noises = args
        .noise_i0
        .iter()
        .map(|v| parse_noise(v).with_context(|| format!("--noise-i0 {v}")))
        .collect::<Result<Vec<_>>>()?;
    if let Some(path) = &args.generative_config {
        let bytes = std::fs::read(path)
            .with_context(|| format!("--generative-config {}", path.display()))?;
        serde_json::from_slice::<GenerativeConfig>(&bytes).with_context(|| {
            format!(
                "--generative-config {}: not a GenerativeConfig",
                path.display()
            )
        })?;
    }
    let cfg = study_config(&args, &noises);
    cfg.validate().context("bad study settings")?;
    if let Some(shard) = args.shard {
        shard_settings(&cfg, shard).map_err(|e| anyhow!("--shard {shard}: {e}"))?;
    }
    Ok((args, noises))
}

fn study_config(args: &Args, noises: &[Option<f64>]) -> StudyConfig {
    StudyConfig {
        angles: args.angles.clone(),
        noises: noises.to_vec(),
        pdhg_iterations: args.pdhg_iterations,
        pg_iterations: args.pg_iterations,
        pg_images: if args.pg_images == 0 {
            args.n_images
        } else {
            args.pg_images.min(args.n_images)
        },
        grid_digits: 3.min(args.n_images),
        seed: args.seed,
        hybrid: HybridConfig::default(),
        generative: match &args.generative_config {
            // read and checked in parse_args
            Some(path) => std::fs::read(path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_else(|| generative_config(args.quick)),
            None => generative_config(args.quick),
        },
    }
}

/// The generative arms' settings; `--quick` shortens the searches and refinements.
fn generative_config(quick: bool) -> GenerativeConfig {
    let full = GenerativeConfig::default();
    if !quick {
        return full;
    }
    GenerativeConfig {
        search: LatentSearchConfig {
            starts: 2,
            steps: 30,
            explore_steps: 10,
            ..full.search
        },
        vae_starts: 4,
        refine_iterations: 100,
        ..full
    }
}

/// Loads a frozen BatchNorm classifier from `dir`.
fn load_bn(dir: &Path) -> Result<Classifier> {
    let net =
        load_frozen(dir, &Device::Cpu).with_context(|| format!("--model {}", dir.display()))?;
    ensure!(
        net.config().batch_norm,
        "the classifier in {} has no BatchNorm (the BN prior needs one)",
        dir.display()
    );
    Ok(net)
}

fn main() -> Result<()> {
    netinv::core::install_cleanup_handler()?;
    netinv::core::retain_freed_memory();
    let mnist = Mnist::embedded()?;
    let (args, noises) = parse_args(&mnist)?;
    if !args.merge.is_empty() {
        return merge(&args, &mnist);
    }
    // a given model is checked (and loaded) before any work
    let given_model = args.model.as_deref().map(load_bn).transpose()?;
    // Each worker runs candle single-threaded (candle sizes its splits by
    // RAYON_NUM_THREADS, read once at the first op; unset it cost 5x at 1 thread); the
    // jobs are independent, so results do not depend on --threads.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global()?;
    std::fs::create_dir_all(&args.out)?;
    let start = Instant::now();
    let secs = || start.elapsed().as_secs_f64();
    let test = digits(&mnist.test().take(args.n_images));
    let val = val_digits(&mnist, args.val_images)?;
    let generative_val = val_digits(&mnist, args.generative_val_images)?;
    let study = Study::new(study_config(&args, &noises), &val, &test)?;
    let recipe = bn_recipe(&mnist, args.epochs, args.quick, 0);
    let model_dir = args.out.join("model");
    let n_fit = mnist.train().len().saturating_sub(VAL_RESERVE);
    let vae_recipe = vae_support::vae_recipe(args.quick, args.vae_epochs, n_fit, false);
    let cvae_recipe = vae_support::vae_recipe(args.quick, args.vae_epochs, n_fit, true);
    let prior =
        |given: &Option<PathBuf>, recipe, folder: &str| -> Result<Option<netinv::models::Vae>> {
            let conditional = folder == "cvae";
            let vae = match (given, args.no_generative) {
                (_, true) => None,
                (Some(dir), false) => Some(vae_support::load_vae(dir, conditional)?),
                (None, false) => Some(vae_support::train_or_reuse_vae(
                    &args.out.join(folder),
                    recipe,
                    &mnist,
                )?),
            };
            println!("{folder} ready ({:.0} s)", secs());
            Ok(vae)
        };

    // Phase 1 (the TV weights, no network) runs while the classifier trains or loads.
    let tv_jobs = study.tv_jobs();
    // ... and the VAE trains (or loads) beside them, on the training digits only
    let (net, (tv_out, vae)) = rayon::join(
        || -> Result<(Classifier, f64)> {
            let net = match given_model {
                Some(net) => net,
                None => train_or_reuse(&model_dir, &recipe, &mnist, "train BN net")?,
            };
            let accuracy = evaluate(&net, mnist.test(), &Device::Cpu)?.accuracy;
            println!(
                "BatchNorm classifier: test accuracy {accuracy:.4} ({:.0} s)",
                secs()
            );
            Ok((net, accuracy))
        },
        || {
            rayon::join(
                || study.run_phase::<Classifier>(&tv_jobs, None, None, &|_, _| {}),
                || {
                    rayon::join(
                        || prior(&args.vae, &vae_recipe, "vae"),
                        || prior(&args.cvae, &cvae_recipe, "cvae"),
                    )
                },
            )
        },
    );
    let (net, accuracy) = net?;
    let tv_out = tv_out?;
    let (vae, cvae) = (vae.0?, vae.1?);
    let vae_decoder = vae.as_ref().map(UnconditionalVae);
    let cvae_decoder = cvae.as_ref().map(ConditionalVae);
    let study = if args.no_generative {
        study
    } else {
        study.with_priors(GenerativePriors {
            vae: vae_decoder.as_ref().map(|d| d as &dyn LatentDecoder),
            cvae: cvae_decoder.as_ref().map(|d| d as &dyn LatentDecoder),
            val: Some(&generative_val),
        })
    };
    println!(
        "TV weights tuned on {} validation digits ({:.0} s)",
        val.len(),
        secs()
    );
    // Phase 2: the network tunings (pg_class's class weight per noise level, the hybrid's
    // optimiser per setting).
    let net_jobs = study.tuning_jobs();
    let net_out = study.run_phase(&net_jobs, Some(&net), None, &|_, _| {})?;
    let jobs: Vec<Job> = tv_jobs.iter().chain(&net_jobs).copied().collect();
    let tuning = study.merge_tuning(&jobs, tv_out.into_iter().chain(net_out).collect())?;
    println!(
        "pg_class weights and hybrid optimisers tuned ({:.0} s)",
        secs()
    );
    // Phase 3: every arm on every digit of every setting (of this shard's settings).
    let run_jobs = match args.shard {
        Some(shard) => study.shard_run_jobs(shard)?,
        None => study.run_jobs(),
    };
    let n_settings = run_jobs.len();
    let progress = ProgressObserver::new(n_settings, "ct_study");
    let report = |job: &Job, done: usize| {
        progress.bar().set_position(done as u64);
        if let Job::Run { setting } = job {
            let s = study.settings()[*setting];
            // a plain line too: the bar is invisible when stderr is not a terminal
            println!(
                "setting {done}/{n_settings} done ({} angles, noise {}), {:.0} s",
                s.n_angles,
                noise_name(s.noise),
                secs()
            );
        }
    };
    let run_out = study.run_phase(&run_jobs, Some(&net), Some(&tuning), &report)?;
    progress.bar().finish();
    if let Some(shard) = args.shard {
        let (n_mine, n_all) = (run_jobs.len(), study.settings().len());
        write_shard(&args, &study, shard, &tuning, accuracy, &run_jobs, &run_out)?;
        println!(
            "shard {shard}: {n_mine} of {n_all} settings in {}/shard.json ({:.0} s); combine the shards with --merge",
            args.out.display(),
            secs()
        );
        return Ok(());
    }
    let outcome = study.merge_runs(&run_jobs, run_out)?;
    write_study(&args, &study, &tuning, &outcome, &recipe, accuracy, secs())?;
    println!("done in {:.0} s; outputs in {}", secs(), args.out.display());
    Ok(())
}

/// `--shard`: the shard's tuning and runs, with its manifest, in `--out/shard.json`.
fn write_shard(
    args: &Args,
    study: &Study,
    shard: Shard,
    tuning: &Tuning,
    accuracy: f64,
    jobs: &[Job],
    outputs: &[JobOutput],
) -> Result<()> {
    let config = ct_study_support::ShardConfig {
        args: ct_study_support::shard_args(args)?,
        study: study.config().clone(),
        classifier_test_accuracy: accuracy,
    };
    ct_study_support::write_shard(&args.out, shard, &config, tuning, jobs, outputs)
}

/// `--merge`: the shards' tuning and runs, written into `--out` as one run writes them.
fn merge(args: &Args, mnist: &Mnist) -> Result<()> {
    let start = Instant::now();
    let (shards, merged) = ct_study_support::read_shards(&args.merge, &args.out)?;
    let first_shard = merged.sources.first().cloned();
    let run = merged_args(args, &shards.args)?;
    let test = digits(&mnist.test().take(run.n_images));
    let val = val_digits(mnist, run.val_images)?;
    let study = Study::new(shards.study, &val, &test)?;
    let (tuning, outcome) = study.merge_shards(merged)?;
    std::fs::create_dir_all(&args.out)?;
    if let Some(from) = first_shard {
        ct_study_support::copy_model_caches(&from, &args.out)?;
    }
    let recipe = bn_recipe(mnist, run.epochs, run.quick, 0);
    let accuracy = shards.classifier_test_accuracy;
    let seconds = start.elapsed().as_secs_f64();
    write_study(&run, &study, &tuning, &outcome, &recipe, accuracy, seconds)?;
    println!(
        "merged {} shards in {seconds:.0} s; outputs in {}",
        args.merge.len(),
        args.out.display()
    );
    Ok(())
}

/// The merged run's command line: the shards' (checked) flags with this run's `--out` and
/// `--threads`.
fn merged_args(args: &Args, recorded: &serde_json::Value) -> Result<Args> {
    let mut value = recorded.clone();
    let map = value
        .as_object_mut()
        .context("the shards' recorded flags are not a JSON object")?;
    map.insert("out".into(), json!(args.out));
    map.insert("threads".into(), json!(args.threads));
    serde_json::from_value(value).context("the shards' recorded flags")
}

/// Every output of a finished study: the JSON files and figures, `generative.json` and its
/// figures, and `summary.md` (also printed).
fn write_study(
    args: &Args,
    study: &Study,
    tuning: &Tuning,
    outcome: &Outcome,
    recipe: &Recipe,
    accuracy: f64,
    seconds: f64,
) -> Result<()> {
    write_outputs(args, study, tuning, outcome, recipe, accuracy, seconds)?;
    let mut md = summary(&outcome.rows, args, accuracy, seconds);
    md.push_str(&ct_study_support::write_generative(
        &args.out,
        outcome,
        args.n_images,
    )?);
    atomic_write_bytes(args.out.join("summary.md"), md.as_bytes())?;
    println!("{md}");
    Ok(())
}

fn write_outputs(
    args: &Args,
    study: &Study,
    tuning: &Tuning,
    outcome: &Outcome,
    recipe: &Recipe,
    accuracy: f64,
    seconds: f64,
) -> Result<()> {
    write_json(args.out.join("results.json"), &outcome.rows)?;
    write_json(args.out.join("per_image.json"), &outcome.per_image)?;
    let legend: Vec<String> = ARMS
        .iter()
        .zip(ARM_COLORS)
        .map(|(a, (_, c))| format!("{} {c}", a.name()))
        .collect();
    let cfg = study.config();
    write_json(
        args.out.join("config.json"),
        &json!({
            "args": args,
            "hybrid": cfg.hybrid,
            "class_prior": ClassPriorConfig { iterations: args.pg_iterations, ..ClassPriorConfig::default() },
            "pg_images": cfg.pg_images,
            "classifier_test_accuracy": accuracy,
            "classifier_recipe": if args.model.is_some() { None } else { Some(recipe) },
            "tuning": tuning.log(study.settings()),
            "generative": cfg.generative,
            "pg_class_tuning": tuning.pg_class,
            "arms": ARMS,
            "plot_legend": legend,
            "ci95": CI95_RULE,
            "psnr_cap_db": PSNR_CAP,
            "seconds": seconds,
        }),
    )?;
    let font = plot_support::register_font();
    for &noise in &cfg.noises {
        for metric in Metric::ALL {
            let path = args.out.join(format!(
                "{}_vs_angles_{}.png",
                metric.name(),
                noise_name(noise)
            ));
            ct_study_support::plot_metric(&path, &outcome.rows, noise, metric, &cfg.angles, font)?;
        }
        let (grid, pixels, n) = outcome.grid(study.settings(), noise, study.test())?;
        if n > 0 {
            let path = args.out.join(format!("grid_{}.png", noise_name(noise)));
            grid.with_scale(3)
                .write_png(path, ImageRef::new(&pixels, n, 28, 28)?)?;
        }
    }
    Ok(())
}

fn summary(rows: &[Row], args: &Args, accuracy: f64, seconds: f64) -> String {
    let noises: Vec<&str> = args.noise_i0.iter().map(String::as_str).collect();
    let angles: Vec<String> = args.angles.iter().map(usize::to_string).collect();
    let mut s = format!(
        "CT study: {} test digits, angles {}, noise {}, classifier accuracy {accuracy:.4}, {seconds:.0} s\n\n",
        args.n_images,
        angles.join(", "),
        noises.join(", "),
    );
    s.push_str(&markdown_table(rows));
    s
}
