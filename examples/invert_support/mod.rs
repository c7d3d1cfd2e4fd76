//! Shared code of the inversion examples (`invert_noise`, `morph_digit`, `quickstart`,
//! `optimizer_study`): training or loading nets and the judge, Task 1 and Task 2, and their
//! outputs (PNG grids, JSON, `images.npy`, `targets.json`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use ndarray::{Array3, Array4, Axis};
use ndarray_npy::WriteNpyExt;
use netinv::core::{
    atomic_write_bytes, write_json, ImageGrid, ImageRef, Monitor, ProgressObserver,
};
use netinv::data::{Dataset, Mnist};
use netinv::invert::study::{first_iteration_of, Task1, Task1Run, Task2};
use netinv::invert::InversionConfig;
use netinv::models::judge::{class_mean_correlation, Judge, JudgeRecipe, Verdict};
use netinv::models::train::{evaluate, EpochRecord, TrainConfig, Trainer};
use netinv::models::{load_frozen, save_checkpoint, Classifier, ClassifierConfig};
use serde::Serialize;
use serde_json::json;

/// Writes `images` `[n, 1, h, w]` as float32 `[n, h, w]` `.npy`, atomically.
pub fn write_images_npy(path: &Path, images: &Array4<f32>) -> Result<()> {
    let (n, _, h, w) = images.dim();
    let flat: Array3<f32> = images
        .to_owned()
        .into_shape_with_order((n, h, w))
        .context("images are [n, 1, h, w]")?;
    let mut bytes = Vec::new();
    flat.write_npy(&mut bytes).context("encoding npy")?;
    atomic_write_bytes(path, &bytes)?;
    Ok(())
}

/// The judge cached in `dir`, trained there first if missing (long: PGD training).
pub fn judge(dir: &Path, mnist: &Mnist) -> Result<Judge> {
    let cfg = JudgeRecipe::default();
    let cached = Judge::is_cached(dir, &cfg);
    if !cached {
        eprintln!(
            "training the judge ({} epochs of PGD training, cached in {})",
            cfg.epochs,
            dir.display()
        );
    }
    let mut monitor: Monitor<EpochRecord> =
        Monitor::new().with_observer(ProgressObserver::new(cfg.epochs, "judge"));
    let judge = Judge::load_or_train(dir, &cfg, mnist, &Device::Cpu, &mut monitor)
        .with_context(|| format!("judge in {}", dir.display()))?;
    let r = judge.report();
    eprintln!(
        "judge: clean {:.4}, PGD-10 eps 0.2 {:.4}, noise hits {} / 10",
        r.clean_accuracy, r.attack_accuracy, r.noise_hits
    );
    Ok(judge)
}

/// Trains a netinv-small classifier and saves it to `dir`; returns the frozen net and its
/// test accuracy.
pub fn train_net(
    cfg: &TrainConfig,
    weight_seed: u64,
    mnist: &Mnist,
    dir: &Path,
    label: &str,
) -> Result<(Classifier, f64)> {
    let model_cfg = ClassifierConfig::netinv_small();
    let varmap = VarMap::new();
    let net = Classifier::init(&model_cfg, &varmap, weight_seed, &Device::Cpu)?;
    let mut monitor: Monitor<EpochRecord> =
        Monitor::new().with_observer(ProgressObserver::new(cfg.epochs, label));
    Trainer::new(cfg.clone())?.fit(&net, &varmap, mnist.train(), None, &mut monitor)?;
    save_checkpoint(dir, &varmap, &model_cfg)?;
    write_json(dir.join("train_config.json"), cfg)?;
    let frozen = load_frozen(dir, &Device::Cpu)?;
    let acc = evaluate(&frozen, mnist.test(), &Device::Cpu)?.accuracy;
    write_json(
        dir.join("test_accuracy.json"),
        &json!({ "test_accuracy": acc }),
    )?;
    Ok((frozen, acc))
}

/// Loads the net in `dir` if it has a checkpoint, else trains and saves it.
pub fn load_or_train_net(
    cfg: &TrainConfig,
    weight_seed: u64,
    mnist: &Mnist,
    dir: &Path,
    label: &str,
) -> Result<(Classifier, f64)> {
    if dir.join("test_accuracy.json").exists() {
        let net = load_frozen(dir, &Device::Cpu)?;
        let text = std::fs::read_to_string(dir.join("test_accuracy.json"))?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        let acc = v["test_accuracy"].as_f64().unwrap_or(f64::NAN);
        return Ok((net, acc));
    }
    train_net(cfg, weight_seed, mnist, dir, label)
}

/// What Task 1 gave: the net's side from the study, the judge's and the class-mean
/// correlation from here.
#[derive(Debug, Clone, Serialize)]
pub struct Task1Summary {
    pub judge_accuracy: Option<f64>,
    pub judge_predictions: Option<Vec<u32>>,
    pub class_mean_corr: f64,
    pub class_mean_corr_per_image: Vec<f64>,
    pub self_confidence: f64,
    pub net_predictions: Vec<u32>,
    pub ms_per_step: f64,
    /// The study's run (the inversion and the net's side).
    pub run: Task1Run,
}

fn caption(net: u32, judge: Option<&Verdict>, i: usize) -> String {
    match judge {
        Some(v) => format!("n{} j{}", net, v.predictions[i]),
        None => format!("n{net}"),
    }
}

/// A progress bar for `steps` steps labelled `label`, or nothing.
fn monitor(progress: bool, steps: usize, label: &str) -> Monitor<'static, Tensor> {
    let mut monitor: Monitor<Tensor> = Monitor::new();
    if progress {
        monitor.add_observer(ProgressObserver::new(steps, label));
    }
    monitor
}

/// Task 1 (`netinv::invert::study::Task1`) plus the judge's verdict and the class-mean
/// correlation. Writes `task1.png` (rows: initial, snapshots, final), `task1.json`,
/// `images.npy` and `targets.json` into `out`.
pub fn task1(
    net: &Classifier,
    judge: Option<&Judge>,
    train: &Dataset,
    cfg: &InversionConfig,
    out: &Path,
    progress: bool,
) -> Result<Task1Summary> {
    let task = Task1::new(cfg.clone())?;
    let run = task.run(net, &mut monitor(progress, cfg.steps, "task 1"))?;
    let (result, targets) = (&run.inversion, &run.targets);
    let ms_per_step = run.ms_per_step();
    let verdict = judge
        .map(|j| j.verdict(result.images.view(), targets))
        .transpose()?;
    let corr = class_mean_correlation(result.images.view(), targets, train)?;
    let net_predictions = run.net_predictions.clone();

    // PNG: initial, snapshots, final.
    let mut rows = vec![("init".to_string(), result.initial.clone())];
    for s in &result.snapshots {
        rows.push((format!("it {}", s.iteration), s.images.clone()));
    }
    rows.push(("final".to_string(), result.images.clone()));
    let views: Vec<_> = rows.iter().map(|(_, a)| a.view()).collect();
    let stacked = ndarray::concatenate(Axis(0), &views)?;
    let pixels: Vec<f32> = stacked.iter().copied().collect();
    let mut captions = vec![String::new(); 10 * (rows.len() - 1)];
    captions.extend((0..10).map(|i| caption(net_predictions[i], verdict.as_ref(), i)));
    let grid = ImageGrid::new(10)
        .with_column_labels(targets.iter().map(|t| t.to_string()).collect())
        .with_row_labels(rows.iter().map(|(l, _)| l.clone()).collect())
        .with_captions(captions);
    grid.write_png(
        out.join("task1.png"),
        ImageRef::new(&pixels, stacked.dim().0, 28, 28)?,
    )?;
    write_images_npy(&out.join("images.npy"), &result.images)?;
    write_json(out.join("targets.json"), targets)?;

    let summary = Task1Summary {
        judge_accuracy: verdict.as_ref().map(|v| v.accuracy),
        judge_predictions: verdict.as_ref().map(|v| v.predictions.clone()),
        class_mean_corr: netinv::metrics::stats::mean(&corr),
        class_mean_corr_per_image: corr.clone(),
        self_confidence: run.self_confidence(),
        net_predictions: net_predictions.clone(),
        ms_per_step,
        run: run.clone(),
    };
    write_json(
        out.join("task1.json"),
        &json!({
            "config": cfg,
            "targets": targets,
            "losses": result.history,
            "net_probabilities": result.probabilities,
            "net_predictions": net_predictions,
            "self_confidence": summary.self_confidence,
            "judge": verdict.as_ref().map(|v| json!({
                "predictions": v.predictions,
                "target_probabilities": v.target_probabilities,
                "accuracy": v.accuracy,
                "report": judge.map(Judge::report),
            })),
            "judge_accuracy": summary.judge_accuracy,
            "class_mean_corr": summary.class_mean_corr,
            "class_mean_corr_per_image": corr,
            "steps_run": result.state.iteration,
            "termination": result.state.termination,
            "seconds": result.state.elapsed_seconds,
            "ms_per_step": ms_per_step,
            "threads": std::env::var("RAYON_NUM_THREADS").ok(),
        }),
    )?;
    Ok(summary)
}

/// What Task 2 gave (a 9 becomes an 8).
#[derive(Debug, Clone, Serialize)]
pub struct Task2Summary {
    pub source_index: usize,
    pub judge_final: Option<u32>,
    pub net_final: u32,
    pub judge_first_8: Option<usize>,
    pub net_first_8: Option<usize>,
    pub ms_per_step: f64,
}

/// Task 2 (`netinv::invert::study::Task2`) from the first test image of a 9, plus the
/// judge on every snapshot; the PNG row shows the source and iterations 1, 10, 20, 30, 40
/// and the final one. Writes `task2.png`, `task2.json`, `images.npy`, `targets.json`
/// into `out`.
pub fn task2(
    net: &Classifier,
    judge: Option<&Judge>,
    test: &Dataset,
    cfg: &InversionConfig,
    out: &Path,
    progress: bool,
) -> Result<Task2Summary> {
    let task = Task2::new(cfg)?;
    let (from, to) = (task.from, task.to);
    let source_index = task
        .source_index(test.labels())
        .context("no 9 in the test set")?;
    let source: Vec<f32> = test.image(source_index).iter().copied().collect();
    let run = task.run(
        net,
        test.image(source_index),
        &mut monitor(progress, task.config().steps, "task 2"),
    )?;
    let result = &run.inversion;
    let ms_per_step = run.ms_per_step();

    // Judge on every snapshot.
    let all = run.snapshot_images()?;
    let n = all.dim().0;
    let net_preds = &run.net_predictions;
    let judge_preds: Option<Vec<u32>> = judge
        .map(|j| j.verdict(all.view(), &vec![to; n]).map(|v| v.predictions))
        .transpose()?;
    let net_first_8 = run.net_first;
    let judge_first_8 = judge_preds
        .as_deref()
        .and_then(|p| first_iteration_of(p, to));

    let shown: Vec<usize> = [1usize, 10, 20, 30, 40]
        .into_iter()
        .filter(|&i| i < result.state.iteration)
        .chain(std::iter::once(result.state.iteration))
        .collect();
    let mut pixels = source.clone();
    let mut labels = vec!["source".to_string()];
    let mut captions = vec![format!("label {from}")];
    for &it in &shown {
        pixels.extend(result.snapshots[it - 1].images.iter().copied());
        labels.push(if it == result.state.iteration {
            format!("final {it}")
        } else {
            format!("it {it}")
        });
        captions.push(match &judge_preds {
            Some(j) => format!("n{} j{}", net_preds[it - 1], j[it - 1]),
            None => format!("n{}", net_preds[it - 1]),
        });
    }
    let grid = ImageGrid::new(labels.len())
        .with_scale(3)
        .with_column_labels(labels)
        .with_captions(captions);
    grid.write_png(
        out.join("task2.png"),
        ImageRef::new(&pixels, shown.len() + 1, 28, 28)?,
    )?;
    write_images_npy(&out.join("images.npy"), &result.images)?;
    write_json(out.join("targets.json"), &[to])?;
    let summary = Task2Summary {
        source_index,
        judge_final: judge_preds.as_ref().map(|j| j[n - 1]),
        net_final: net_preds[n - 1],
        judge_first_8,
        net_first_8,
        ms_per_step,
    };
    let thin: Vec<_> = result
        .history
        .iter()
        .filter(|r| r.iteration <= 100 || r.iteration % 10 == 0)
        .collect();
    write_json(
        out.join("task2.json"),
        &json!({
            "config": InversionConfig { snapshots: Vec::new(), ..task.config().clone() },
            "source_test_index": source_index,
            "source_label": from,
            "target": to,
            "net_predictions_per_iteration": net_preds,
            "judge_predictions_per_iteration": judge_preds,
            "net_first_8": net_first_8,
            "judge_first_8": judge_first_8,
            "net_final": summary.net_final,
            "judge_final": summary.judge_final,
            "net_probabilities": result.probabilities,
            "losses": thin,
            "steps_run": result.state.iteration,
            "ms_per_step": ms_per_step,
        }),
    )?;
    Ok(summary)
}

/// "iteration N", or "never" (for a first iteration that may not exist).
pub fn iteration_text(iteration: Option<usize>) -> String {
    match iteration {
        Some(i) => format!("iteration {i}"),
        None => "never".to_string(),
    }
}

/// Classes as digits separated by spaces.
pub fn classes_text(classes: &[u32]) -> String {
    classes
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `PathBuf` from a string argument (clap helper).
pub fn path(s: &str) -> PathBuf {
    PathBuf::from(s)
}

/// The flags shared by the single-net inversion examples (`invert_noise`, `morph_digit`);
/// their defaults are the reference settings.
#[derive(Debug, clap::Args)]
pub struct InvertArgs {
    /// Checkpoint folder of the classifier to invert.
    #[arg(long)]
    pub model: PathBuf,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of inversion steps [default: 1000, 100 with --quick].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Learning rate of Adam on the image.
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    /// Weight of the squared TV prior (summed over the batch).
    #[arg(long, default_value_t = 1e-3)]
    pub tv: f64,
    /// Weight of the L2 prior (summed over the batch).
    #[arg(long, default_value_t = 1e-4)]
    pub l2: f64,
    /// Judge folder (trained there if missing, unless --quick).
    #[arg(long, default_value = "runs/judge")]
    pub judge: PathBuf,
    /// Skip the judge.
    #[arg(long, conflicts_with = "judge")]
    pub no_judge: bool,
    /// Smoke-test settings: 100 steps, and the judge only if one is already cached in
    /// --judge (never trained).
    #[arg(long)]
    pub quick: bool,
}

/// A refused flag value: `--<flag> <value>: <reason>`.
pub fn flag_error(flag: &str, value: impl std::fmt::Display, reason: &str) -> anyhow::Error {
    anyhow::anyhow!("invalid value {value} for --{flag}: {reason}")
}

/// Maps an invalid inversion setting to the flag of the same name.
pub fn config_flag_error(err: netinv::invert::Error) -> anyhow::Error {
    match err {
        netinv::invert::Error::InvalidConfig { field, reason } => {
            anyhow::anyhow!("invalid --{}: {reason}", field.replace('_', "-"))
        }
        other => other.into(),
    }
}

/// The judge in `dir` if one is cached there and passes its acceptance criteria; never
/// trains one.
pub fn cached_judge(dir: &Path) -> Result<Option<Judge>> {
    let Some(judge) = Judge::load_matching(dir, &JudgeRecipe::default(), &Device::Cpu)? else {
        return Ok(None);
    };
    Ok(judge.report().accepted.then_some(judge))
}

impl InvertArgs {
    /// Checks every flag before any work (no file is read or written): the inversion
    /// settings, a `--model` that is no folder, output or judge folders that are files.
    /// (clap refuses `--judge` with `--no-judge`.)
    pub fn validate(&self) -> Result<InversionConfig> {
        let cfg = self.config();
        cfg.validate().map_err(config_flag_error)?;
        if !self.model.is_dir() {
            return Err(flag_error(
                "model",
                self.model.display(),
                "is not a folder (a checkpoint folder with model.safetensors and config.json)",
            ));
        }
        crate::flag_support::output_folder("--out", &self.out)?;
        crate::flag_support::output_folder("--judge", &self.judge)?;
        Ok(cfg)
    }

    /// The embedded digits, the frozen net of `--model` and the judge (unless
    /// `--no-judge`; with `--quick` only a cached one).
    pub fn load(&self) -> Result<(Mnist, Classifier, Option<Judge>)> {
        let mnist = Mnist::embedded()?;
        let net = load_frozen(&self.model, &Device::Cpu)
            .with_context(|| format!("model in {}", self.model.display()))?;
        let judge = if self.no_judge {
            None
        } else if self.quick {
            let judge = cached_judge(&self.judge)?;
            if judge.is_none() {
                eprintln!(
                    "--quick: no accepted judge cached in {}, so no judge verdicts (run without --quick once to train it)",
                    self.judge.display()
                );
            }
            judge
        } else {
            Some(judge(&self.judge, &mnist)?)
        };
        Ok((mnist, net, judge))
    }

    /// The number of inversion steps (`--steps`, else 1000, or 100 with `--quick`).
    pub fn steps(&self) -> usize {
        self.steps.unwrap_or(if self.quick { 100 } else { 1000 })
    }

    /// The reference inversion settings with the flags' steps, lr, TV and L2 weights.
    pub fn config(&self) -> InversionConfig {
        InversionConfig {
            steps: self.steps(),
            lr: self.lr,
            tv: self.tv,
            l2: self.l2,
            ..Default::default()
        }
    }
}
