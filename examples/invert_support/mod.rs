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
use netinv::invert::{
    class_mean_correlation, InversionConfig, Inverter, Judge, JudgeConfig, Verdict,
};
use netinv::models::train::{evaluate, Adversarial, EpochRecord, TrainConfig, Trainer};
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
    let cfg = JudgeConfig::default();
    let cached = dir.join(netinv::invert::JUDGE_FILE).exists();
    if !cached {
        eprintln!(
            "training the judge ({} epochs of PGD training, cached in {})",
            cfg.train.epochs,
            dir.display()
        );
    }
    let mut monitor: Monitor<EpochRecord> =
        Monitor::new().with_observer(ProgressObserver::new(cfg.train.epochs, "judge"));
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

/// Names a training recipe for tables and folders.
pub fn recipe_name(cfg: &TrainConfig) -> String {
    let opt = format!("{:?}", cfg.optimizer).to_lowercase();
    match cfg.adversarial {
        Adversarial::Fgsm { epsilon, .. } => format!("{opt}-fgsm{epsilon}"),
        Adversarial::Pgd { epsilon, .. } => format!("{opt}-pgd{epsilon}"),
        _ => opt,
    }
}

/// The outcome of Task 1 (noise -> digits 0..9).
#[derive(Debug, Clone, Serialize)]
pub struct Task1 {
    pub judge_accuracy: Option<f64>,
    pub judge_predictions: Option<Vec<u32>>,
    pub class_mean_corr: f64,
    pub class_mean_corr_per_image: Vec<f64>,
    pub self_confidence: f64,
    pub net_predictions: Vec<u32>,
    pub ms_per_step: f64,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn caption(net: u32, judge: Option<&Verdict>, i: usize) -> String {
    match judge {
        Some(v) => format!("n{} j{}", net, v.predictions[i]),
        None => format!("n{net}"),
    }
}

/// Task 1: a batch of 10 seeded noise images becomes digits 0..9 through `net`. Writes
/// `task1.png` (rows: initial, snapshots, final), `task1.json`, `images.npy` and
/// `targets.json` into `out`.
pub fn task1(
    net: &Classifier,
    judge: Option<&Judge>,
    train: &Dataset,
    cfg: &InversionConfig,
    out: &Path,
    progress: bool,
) -> Result<Task1> {
    let targets: Vec<u32> = (0..10).collect();
    let inverter = Inverter::new(cfg.clone())?;
    let mut monitor: Monitor<Tensor> = Monitor::new();
    if progress {
        monitor.add_observer(ProgressObserver::new(cfg.steps, "task 1"));
    }
    let result = inverter.invert_classes(net, &targets, None, &Device::Cpu, &mut monitor)?;
    let ms_per_step = 1000.0 * result.state.elapsed_seconds / result.state.iteration as f64;
    let verdict = judge
        .map(|j| j.verdict(result.images.view(), &targets))
        .transpose()?;
    let corr = class_mean_correlation(result.images.view(), &targets, train)?;
    let net_predictions = result.predictions();
    let self_conf: Vec<f64> = result
        .probabilities
        .iter()
        .zip(&targets)
        .map(|(p, &t)| f64::from(p[t as usize]))
        .collect();

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
    write_json(out.join("targets.json"), &targets)?;

    let summary = Task1 {
        judge_accuracy: verdict.as_ref().map(|v| v.accuracy),
        judge_predictions: verdict.as_ref().map(|v| v.predictions.clone()),
        class_mean_corr: mean(&corr),
        class_mean_corr_per_image: corr.clone(),
        self_confidence: mean(&self_conf),
        net_predictions: net_predictions.clone(),
        ms_per_step,
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

/// The outcome of Task 2 (a 9 becomes an 8).
#[derive(Debug, Clone, Serialize)]
pub struct Task2 {
    pub source_index: usize,
    pub judge_final: Option<u32>,
    pub net_final: u32,
    pub judge_first_8: Option<usize>,
    pub net_first_8: Option<usize>,
    pub ms_per_step: f64,
}

/// Task 2: the first test image of `from` becomes `to`. Snapshots at every iteration are
/// judged; the PNG row shows the source and iterations 1, 10, 20, 30, 40 and the final one.
/// Writes `task2.png`, `task2.json`, `images.npy`, `targets.json` into `out`.
pub fn task2(
    net: &Classifier,
    judge: Option<&Judge>,
    test: &Dataset,
    cfg: &InversionConfig,
    out: &Path,
    progress: bool,
) -> Result<Task2> {
    let (from, to) = (9u8, 8u32);
    let source_index = test
        .labels()
        .iter()
        .position(|&l| l == from)
        .context("no 9 in the test set")?;
    let source: Vec<f32> = test.image(source_index).iter().copied().collect();
    let init = Tensor::from_vec(source.clone(), (1, 1, 28, 28), &Device::Cpu)?;
    let cfg = InversionConfig {
        snapshots: (1..=cfg.steps).collect(),
        ..cfg.clone()
    };
    let inverter = Inverter::new(cfg.clone())?;
    let mut monitor: Monitor<Tensor> = Monitor::new();
    if progress {
        monitor.add_observer(ProgressObserver::new(cfg.steps, "task 2"));
    }
    let result = inverter.invert_classes(net, &[to], Some(&init), &Device::Cpu, &mut monitor)?;
    let ms_per_step = 1000.0 * result.state.elapsed_seconds / result.state.iteration as f64;

    // Net and judge on every snapshot.
    let views: Vec<_> = result.snapshots.iter().map(|s| s.images.view()).collect();
    let all = ndarray::concatenate(Axis(0), &views)?;
    let n = all.dim().0;
    let x = Tensor::from_vec(
        all.iter().copied().collect::<Vec<f32>>(),
        (n, 1, 28, 28),
        &Device::Cpu,
    )?;
    let net_preds: Vec<u32> = netinv::invert::softmax_rows(&net.forward(&x)?)?
        .iter()
        .map(|p| netinv::invert::argmax(p) as u32)
        .collect();
    let judge_preds: Option<Vec<u32>> = judge
        .map(|j| j.verdict(all.view(), &vec![to; n]).map(|v| v.predictions))
        .transpose()?;
    let first = |preds: &[u32]| preds.iter().position(|&p| p == to).map(|i| i + 1);
    let net_first_8 = first(&net_preds);
    let judge_first_8 = judge_preds.as_deref().and_then(first);

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
    let summary = Task2 {
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
            "config": InversionConfig { snapshots: Vec::new(), ..cfg.clone() },
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
    /// Number of inversion steps.
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// Learning rate of Adam on the image.
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    /// Weight of the squared TV prior (summed over the batch).
    #[arg(long, default_value_t = 1e-3)]
    pub tv: f64,
    /// Weight of the L2 prior (summed over the batch).
    #[arg(long, default_value_t = 1e-4)]
    pub l2: f64,
    /// Judge folder (trained there if missing).
    #[arg(long, default_value = "runs/judge")]
    pub judge: PathBuf,
    /// Skip the judge.
    #[arg(long)]
    pub no_judge: bool,
}

impl InvertArgs {
    /// The embedded digits, the frozen net of `--model` and the judge (unless
    /// `--no-judge`).
    pub fn load(&self) -> Result<(Mnist, Classifier, Option<Judge>)> {
        let mnist = Mnist::embedded()?;
        let net = load_frozen(&self.model, &Device::Cpu)
            .with_context(|| format!("model in {}", self.model.display()))?;
        let judge = if self.no_judge {
            None
        } else {
            Some(judge(&self.judge, &mnist)?)
        };
        Ok((mnist, net, judge))
    }

    /// The reference inversion settings with the flags' steps, lr, TV and L2 weights.
    pub fn config(&self) -> InversionConfig {
        InversionConfig {
            steps: self.steps,
            lr: self.lr,
            tv: self.tv,
            l2: self.l2,
            ..Default::default()
        }
    }
}
