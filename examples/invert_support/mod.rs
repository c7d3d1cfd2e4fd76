//! Shared code of the inversion examples (`invert_noise`, `morph_digit`, `quickstart`,
//! `optimizer_study`): training or loading nets and the judge, Task 1 and Task 2, and their
//! outputs (PNG grids, JSON, `images.npy`, `targets.json`).
#![allow(dead_code)]

use std::collections::BTreeMap;
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
use netinv::models::judge::{
    default_panel, member_dir, Judge, JudgePanel, JudgeRecipe, ModelFreeScores, PanelVerdict,
    PixelReference, DEFAULT_KNN_K,
};
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

/// The judge panel (`default_panel`) cached in `dir` (the netinv-small judge in `dir`, the
/// others in subfolders), each judge trained there first if missing (long: PGD training);
/// prints each judge's acceptance test and training time, and the panel's.
pub fn panel(dir: &Path, mnist: &Mnist) -> Result<JudgePanel> {
    let members = default_panel();
    for (i, m) in members.iter().enumerate() {
        let at = member_dir(dir, &members, i);
        if !Judge::is_cached(&at, &m.recipe) {
            eprintln!(
                "training judge {} ({} epochs of PGD training, cached in {})",
                m.name,
                m.recipe.epochs,
                at.display()
            );
        }
    }
    let panel = JudgePanel::load_or_train(
        dir,
        &members,
        mnist.train(),
        mnist.test(),
        &Device::Cpu,
        |m| Monitor::new().with_observer(ProgressObserver::new(m.recipe.epochs, &m.name)),
    )
    .with_context(|| format!("judge panel in {}", dir.display()))?;
    let mut trained_seconds = 0.0;
    for (name, r) in panel.reports() {
        trained_seconds += r.train_seconds;
        let trained = if r.train_seconds > 0.0 {
            format!("trained in {:.0} s", r.train_seconds)
        } else {
            "cached".to_string()
        };
        eprintln!(
            "judge {name}: clean {:.4}, PGD-10 eps 0.2 {:.4}, noise hits {} / 10, {trained}",
            r.clean_accuracy, r.attack_accuracy, r.noise_hits
        );
    }
    if trained_seconds > 0.0 {
        eprintln!("judge panel: {trained_seconds:.0} s of training (wall clock)");
    }
    Ok(panel)
}

/// The judge panel in `dir` if every judge is cached there and accepted; never trains.
pub fn cached_panel(dir: &Path) -> Result<Option<JudgePanel>> {
    Ok(JudgePanel::load_cached(
        dir,
        &default_panel(),
        &Device::Cpu,
    )?)
}

/// What scores inverted images: a panel, or a single judge (a panel of one, named
/// `netinv-small`).
pub trait Judges {
    /// The panel.
    fn panel(&self) -> Result<JudgePanel>;
}

impl Judges for JudgePanel {
    fn panel(&self) -> Result<JudgePanel> {
        Ok(self.clone())
    }
}

impl Judges for Judge {
    fn panel(&self) -> Result<JudgePanel> {
        Ok(JudgePanel::from_judges(vec![(
            "netinv-small".to_string(),
            self.clone(),
        )])?)
    }
}

/// The `judges` object of the JSON outputs (judge name -> accuracy), the panel's majority
/// and agreement, and each judge's verdict and acceptance test.
fn panel_json(panel: &JudgePanel, verdict: &PanelVerdict) -> serde_json::Value {
    json!({
        "majority_accuracy": verdict.accuracy,
        "majority": verdict.majority,
        "unanimous": verdict.unanimous,
        "verdicts": verdict.judges,
        "reports": panel.reports(),
    })
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
    /// The panel's majority accuracy (the headline).
    pub judge_accuracy: Option<f64>,
    /// The panel's majority class per image (`None`: no majority).
    pub judge_predictions: Option<Vec<Option<u32>>>,
    /// Each judge's accuracy by name.
    pub judges: Option<BTreeMap<String, f64>>,
    /// Fraction of images every judge puts in the same class.
    pub judges_unanimous: Option<f64>,
    /// Nearest class mean, k-NN and class-mean correlation.
    pub model_free: ModelFreeScores,
    pub class_mean_corr: f64,
    pub class_mean_corr_per_image: Vec<f64>,
    pub self_confidence: f64,
    pub net_predictions: Vec<u32>,
    pub ms_per_step: f64,
    /// The study's run (the inversion and the net's side).
    pub run: Task1Run,
}

/// A PNG caption of image `i`: the net's class, the panel majority's (`j-` for no
/// majority) and how many of the judges say the target (`2/3`).
fn caption(net: u32, panel: Option<&PanelVerdict>, i: usize) -> String {
    match panel {
        Some(v) => {
            let votes = v.judges.values().filter(|j| j.correct[i]).count();
            let n = v.judges.len();
            format!("n{net} j{} {votes}/{n}", class_text(v.majority[i]))
        }
        None => format!("n{net}"),
    }
}

/// A class, or `-` for none.
pub fn class_text(class: Option<u32>) -> String {
    class.map_or_else(|| "-".to_string(), |c| c.to_string())
}

/// A progress bar for `steps` steps labelled `label`, or nothing.
fn monitor(progress: bool, steps: usize, label: &str) -> Monitor<'static, Tensor> {
    let mut monitor: Monitor<Tensor> = Monitor::new();
    if progress {
        monitor.add_observer(ProgressObserver::new(steps, label));
    }
    monitor
}

/// Task 1 (`netinv::invert::study::Task1`) plus the judges' verdicts (headline: the panel's
/// majority) and the model-free scores. Writes `task1.png` (rows: initial, snapshots,
/// final; captions: the net's class and the majority's), `task1.json`, `images.npy` and
/// `targets.json` into `out`.
pub fn task1<J: Judges>(
    net: &Classifier,
    judges: Option<&J>,
    train: &Dataset,
    cfg: &InversionConfig,
    out: &Path,
    progress: bool,
) -> Result<Task1Summary> {
    let task = Task1::new(cfg.clone())?;
    let run = task.run(net, &mut monitor(progress, cfg.steps, "task 1"))?;
    let (result, targets) = (&run.inversion, &run.targets);
    let ms_per_step = run.ms_per_step();
    let panel = judges.map(Judges::panel).transpose()?;
    let verdict = panel
        .as_ref()
        .map(|p| p.verdict(result.images.view(), targets))
        .transpose()?;
    let model_free =
        PixelReference::new(train)?.scores(result.images.view(), targets, DEFAULT_KNN_K)?;
    let corr = model_free.class_mean_corr.clone();
    let majority = verdict.as_ref().map(|v| v.majority.clone());
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
        judge_predictions: majority.clone(),
        judges: verdict.as_ref().map(PanelVerdict::accuracies),
        judges_unanimous: verdict.as_ref().map(|v| v.unanimous),
        model_free: model_free.clone(),
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
            "judges": summary.judges,
            "panel": panel.as_ref().zip(verdict.as_ref()).map(|(p, v)| panel_json(p, v)),
            "judge_accuracy": summary.judge_accuracy,
            "model_free": model_free,
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
    /// The panel majority's class of the final image (`Some(None)`: no majority).
    pub judge_final: Option<Option<u32>>,
    pub net_final: u32,
    /// The first iteration the panel's majority says 8.
    pub judge_first_8: Option<usize>,
    /// The first iteration each judge says 8, by name.
    pub judges_first_8: Option<BTreeMap<String, Option<usize>>>,
    /// The first iteration the nearest class mean and the k-NN vote say 8.
    pub nearest_mean_first_8: Option<usize>,
    pub knn_first_8: Option<usize>,
    /// The final image's nearest class mean and k-NN class.
    pub nearest_mean_final: u32,
    pub knn_final: u32,
    pub net_first_8: Option<usize>,
    pub ms_per_step: f64,
}

/// The first iteration (1-based) whose class is `class`.
fn first_of(classes: &[Option<u32>], class: u32) -> Option<usize> {
    classes
        .iter()
        .position(|&c| c == Some(class))
        .map(|i| i + 1)
}

/// Each judge's classes per iteration of Task 2, the first iteration it says `to`, its
/// final class and accuracy over the iterations, by name.
fn judges_per_iteration(verdict: &PanelVerdict, to: u32) -> BTreeMap<String, serde_json::Value> {
    verdict
        .judges
        .iter()
        .map(|(name, j)| {
            let value = json!({
                "predictions_per_iteration": j.predictions,
                "first_8": first_iteration_of(&j.predictions, to),
                "final": j.predictions.last(),
                "accuracy": j.accuracy,
            });
            (name.clone(), value)
        })
        .collect()
}

/// `task2.png`: the source (captioned with its label `from`) and iterations 1, 10, 20, 30,
/// 40 and the final one of `result`, captioned as [`caption`] says (when judged).
fn task2_png(
    out: &Path,
    source: &[f32],
    from: u8,
    result: &netinv::invert::Inversion,
    net_preds: &[u32],
    panel: Option<&PanelVerdict>,
) -> Result<()> {
    let shown: Vec<usize> = [1usize, 10, 20, 30, 40]
        .into_iter()
        .filter(|&i| i < result.state.iteration)
        .chain(std::iter::once(result.state.iteration))
        .collect();
    let mut pixels = source.to_vec();
    let mut labels = vec!["source".to_string()];
    let mut captions = vec![format!("label {from}")];
    for &it in &shown {
        pixels.extend(result.snapshots[it - 1].images.iter().copied());
        labels.push(if it == result.state.iteration {
            format!("final {it}")
        } else {
            format!("it {it}")
        });
        captions.push(caption(net_preds[it - 1], panel, it - 1));
    }
    let grid = ImageGrid::new(labels.len())
        .with_scale(3)
        .with_column_labels(labels)
        .with_captions(captions);
    grid.write_png(
        out.join("task2.png"),
        ImageRef::new(&pixels, shown.len() + 1, 28, 28)?,
    )?;
    Ok(())
}

/// Task 2 (`netinv::invert::study::Task2`) from the first test image of a 9, plus the
/// judges (headline: the panel's majority) and the model-free scores (against `train`) on
/// every snapshot; the PNG row shows the source and iterations 1, 10, 20, 30, 40 and the
/// final one (captions: the net's class and the majority's). Writes `task2.png`,
/// `task2.json`, `images.npy`, `targets.json` into `out`.
pub fn task2<J: Judges>(
    net: &Classifier,
    judges: Option<&J>,
    train: &Dataset,
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

    // Judges and model-free scores on every snapshot.
    let all = run.snapshot_images()?;
    let n = all.dim().0;
    let net_preds = &run.net_predictions;
    let panel = judges.map(Judges::panel).transpose()?;
    let verdict = panel
        .as_ref()
        .map(|p| p.verdict(all.view(), &vec![to; n]))
        .transpose()?;
    let judge_preds: Option<Vec<Option<u32>>> = verdict.as_ref().map(|v| v.majority.clone());
    let model_free = PixelReference::new(train)?.scores(all.view(), &vec![to; n], DEFAULT_KNN_K)?;
    let net_first_8 = run.net_first;
    let judge_first_8 = judge_preds.as_deref().and_then(|p| first_of(p, to));
    let judges_first_8 = verdict.as_ref().map(|v| {
        v.judges
            .iter()
            .map(|(name, j)| (name.clone(), first_iteration_of(&j.predictions, to)))
            .collect::<BTreeMap<_, _>>()
    });

    task2_png(out, &source, from, result, net_preds, verdict.as_ref())?;
    write_images_npy(&out.join("images.npy"), &result.images)?;
    write_json(out.join("targets.json"), &[to])?;
    let summary = Task2Summary {
        source_index,
        judge_final: judge_preds.as_ref().map(|j| j[n - 1]),
        net_final: net_preds[n - 1],
        judge_first_8,
        judges_first_8,
        nearest_mean_first_8: first_iteration_of(&model_free.nearest_mean_predictions, to),
        knn_first_8: first_iteration_of(&model_free.knn_predictions, to),
        nearest_mean_final: model_free.nearest_mean_predictions[n - 1],
        knn_final: model_free.knn_predictions[n - 1],
        net_first_8,
        ms_per_step,
    };
    let judges_json = verdict.as_ref().map(|v| judges_per_iteration(v, to));
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
            "judges": judges_json,
            "judges_unanimous": verdict.as_ref().map(|v| v.unanimous),
            "judge_reports": panel.as_ref().map(JudgePanel::reports),
            "model_free": json!({
                "knn_k": model_free.knn_k,
                "nearest_mean_predictions_per_iteration": model_free.nearest_mean_predictions,
                "knn_predictions_per_iteration": model_free.knn_predictions,
                "nearest_mean_first_8": summary.nearest_mean_first_8,
                "knn_first_8": summary.knn_first_8,
                "nearest_mean_final": summary.nearest_mean_final,
                "knn_final": summary.knn_final,
                "class_mean_corr_final": model_free.class_mean_corr[n - 1],
            }),
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

/// Classes as digits separated by spaces (`-` for none: no majority).
pub fn classes_text<C: Copy + Into<Option<u32>>>(classes: &[C]) -> String {
    classes
        .iter()
        .map(|&c| class_text(c.into()))
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
    /// Folder of the judge panel (netinv-small there, the others in subfolders; each
    /// trained there if missing, unless --quick).
    #[arg(long, default_value = "runs/judge")]
    pub judge: PathBuf,
    /// Skip the judges.
    #[arg(long, conflicts_with = "judge")]
    pub no_judge: bool,
    /// Smoke-test settings: 100 steps, and the judges only if all are already cached in
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

    /// The embedded digits, the frozen net of `--model` and the judge panel (unless
    /// `--no-judge`; with `--quick` only a cached one).
    pub fn load(&self) -> Result<(Mnist, Classifier, Option<JudgePanel>)> {
        let mnist = Mnist::embedded()?;
        let net = load_frozen(&self.model, &Device::Cpu)
            .with_context(|| format!("model in {}", self.model.display()))?;
        let judge = if self.no_judge {
            None
        } else if self.quick {
            let panel = cached_panel(&self.judge)?;
            if panel.is_none() {
                eprintln!(
                    "--quick: the judge panel is not (all) cached in {}, so no judge verdicts (run without --quick once to train it)",
                    self.judge.display()
                );
            }
            panel
        } else {
            Some(panel(&self.judge, &mnist)?)
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
