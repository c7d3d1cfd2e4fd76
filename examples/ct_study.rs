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
//! Test digits from the embedded test split are forward projected (ASTRA-convention
//! parallel beam, `ceil(sqrt 2 * 28) + 2` detectors, uniform angles over a half turn), with
//! Poisson noise of `I0` photons per ray (attenuation scale 4 / 28) or none, and
//! reconstructed by every method:
//!
//! | method | label_mode | what |
//! | --- | --- | --- |
//! | `fbp` | none | filtered back-projection (Ram-Lak), clipped to [0, 1] |
//! | `sirt100` | none | 100 SIRT iterations, box [0, 1] |
//! | `box_ls_pdhg` | none | box-constrained least squares, PDHG, `--pdhg-iterations` |
//! | `tv_pdhg` | none | TV + box by PDHG, TV weight tuned on `--val-images` training digits |
//! | `sirt_inv` | oracle / predicted | 50 SIRT + 50 alternating SIRT:inversion 3:1, both terms; inversion optimiser and lr tuned on the validation digits |
//! | `sirt_inv_priors_only` | none | same schedule, TV + L2 + BN priors only |
//! | `sirt_inv_class_only` | predicted | same schedule, class term only |
//! | `pg_priors` | none | projected gradient from SIRT-100, data + TV2 (no class), first `--pg-images` digits |
//! | `pg_class` | predicted | the same + class term through the net, its weight tuned on the validation digits at 4 angles per noise level |
//!
//! Writes into `--out`: `results.json` (one row per method, label mode, angle count and
//! noise level: `method`, `label_mode`, `n_angles`, `noise_i0` (null = none), `mse_mean`,
//! `mse_ci95`, `psnr_mean`, `psnr_ci95`, `ssim_mean`, `ssim_ci95`, plus `n`),
//! `per_image.json`, `config.json` (all settings, the tuned TV weights, the legend of the
//! plots), `{psnr,ssim,mse}_vs_angles_<noise>.png` (one line per method with 95% CI bars),
//! `grid_<noise>.png` (reconstructions of a few digits at a few angle counts) and
//! `summary.md`. Without `--model`, a BatchNorm netinv-small is trained on the embedded
//! training digits (and cached in `--out/model`). The 95% CI is `1.96 s / sqrt(n)`.
//! PSNR is capped at 100 dB (exact reconstructions).

#[path = "plot_support/mod.rs"]
mod plot_support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use candle_nn::VarMap;
use clap::Parser;
use ndarray::Array2;
use netinv::core::{
    atomic_write_bytes, write_json, ImageGrid, ImageRef, Monitor, ProgressObserver,
};
use netinv::ct::{
    scan_operator, ClassPriorConfig, ClassPriorSolver, HybridConfig, HybridReconstructor,
    InversionTerms, LabelMode,
};
use netinv::data::{Dataset, Mnist};
use netinv::invert::ImageOptimizer;
use netinv::metrics::{mse, psnr, ssim, SsimConfig};
use netinv::models::train::{evaluate, EpochRecord, TrainConfig, Trainer};
use netinv::models::{load_frozen, save_checkpoint, Classifier, ClassifierConfig};
use netinv::tomo::{
    poisson_noise, CsrOperator, Fbp, FbpConfig, LinearOperator, Sirt, SirtConfig, TvConfig, TvPdhg,
};

use serde::Serialize;
use serde_json::json;

/// The reconstructions of one digit: (method arm, image).
type ArmImages = Vec<(usize, Array2<f32>)>;

const SIZE: usize = 28;
/// The last training digits, never trained on, from which the validation digits come.
const VAL_RESERVE: usize = 500;
const PSNR_CAP: f64 = 100.0;

#[derive(Parser, Debug, Clone, Serialize)]
#[command(about = "CT case study: SIRT + network inversion vs classical baselines, with ablation")]
struct Args {
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Test digits (the first N of the embedded test split).
    #[arg(long, default_value_t = 200)]
    n_images: usize,
    /// Angle counts, comma separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "2,3,4,6,8,10,15,20,30,45,90"
    )]
    angles: Vec<usize>,
    /// Poisson I0 per ray, comma separated; `none` for noiseless data.
    #[arg(long, value_delimiter = ',', default_value = "none,1e4,1e3")]
    noise_i0: Vec<String>,
    /// Small run for tests: 6 digits, angles 2,4,8, noise none,1e3, short solvers.
    #[arg(long)]
    quick: bool,
    /// A trained BatchNorm classifier (netinv_models checkpoint folder) instead of training.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Training digits of the validation split that tunes the TV weight, the hybrid's
    /// optimiser and pg_class's class weight (taken from the last 500 digits of the
    /// embedded training split, which the classifier does not train on; never test
    /// digits; at most 500).
    #[arg(long, default_value_t = 8)]
    val_images: usize,
    /// PDHG iterations of the converged baselines (box-LS and TV).
    #[arg(long, default_value_t = 1000)]
    pdhg_iterations: usize,
    /// Iterations of the projected-gradient solvers with the network terms (0: skip them).
    #[arg(long, default_value_t = 200)]
    pg_iterations: usize,
    /// Run the projected-gradient arms on the first K digits only (0: all); each costs
    /// hundreds of single-image network gradients.
    #[arg(long, default_value_t = 50)]
    pg_images: usize,
    /// Training epochs when no --model is given.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Worker threads: the (angles, noise) settings are tuned and run in parallel, each
    /// on one thread with every method batched over the digits (candle single-threaded
    /// inside). The results do not depend on it.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// One method arm of the study.
#[derive(Debug, Clone, Serialize)]
struct Arm {
    method: &'static str,
    label_mode: &'static str,
}

const ARMS: [Arm; 10] = [
    Arm {
        method: "fbp",
        label_mode: "none",
    },
    Arm {
        method: "sirt100",
        label_mode: "none",
    },
    Arm {
        method: "box_ls_pdhg",
        label_mode: "none",
    },
    Arm {
        method: "tv_pdhg",
        label_mode: "none",
    },
    Arm {
        method: "sirt_inv",
        label_mode: "oracle",
    },
    Arm {
        method: "sirt_inv",
        label_mode: "predicted",
    },
    Arm {
        method: "sirt_inv_priors_only",
        label_mode: "none",
    },
    Arm {
        method: "sirt_inv_class_only",
        label_mode: "predicted",
    },
    Arm {
        method: "pg_priors",
        label_mode: "none",
    },
    Arm {
        method: "pg_class",
        label_mode: "predicted",
    },
];

#[derive(Debug, Clone, Serialize)]
struct PerImage {
    arm: usize,
    image: usize,
    n_angles: usize,
    noise_i0: Option<f64>,
    mse: f64,
    psnr: f64,
    ssim: f64,
}

#[derive(Debug, Clone, Serialize)]
struct Row {
    method: String,
    label_mode: String,
    n_angles: usize,
    noise_i0: Option<f64>,
    n: usize,
    mse_mean: f64,
    mse_ci95: f64,
    psnr_mean: f64,
    psnr_ci95: f64,
    ssim_mean: f64,
    ssim_ci95: f64,
}

fn parse_noise(values: &[String]) -> Result<Vec<Option<f64>>> {
    values
        .iter()
        .map(|v| {
            let v = v.trim().to_lowercase();
            if v == "none" || v == "0" || v == "inf" {
                Ok(None)
            } else {
                let f: f64 = v
                    .parse()
                    .with_context(|| format!("bad --noise-i0 value {v}"))?;
                if !(f > 0.0 && f.is_finite()) {
                    bail!("--noise-i0 must be > 0 or `none`, got {v}");
                }
                Ok(Some(f))
            }
        })
        .collect()
}

fn noise_name(n: Option<f64>) -> String {
    n.map_or("none".to_string(), |v| format!("{v:.0e}"))
}

fn mean_ci(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (m, f64::NAN);
    }
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, 1.96 * (var / n).sqrt())
}

fn metrics(truth: &Array2<f32>, rec: &Array2<f32>) -> Result<(f64, f64, f64)> {
    let m = mse(truth.view(), rec.view())?;
    let p = psnr(truth.view(), rec.view(), 1.0)?.min(PSNR_CAP);
    let s = ssim(truth.view(), rec.view(), &SsimConfig::gaussian())?;
    Ok((m, p, s))
}

/// The data of one digit at one setting.
fn sinogram(
    op: &CsrOperator,
    truth: &Array2<f32>,
    noise: Option<f64>,
    seed: u64,
) -> Result<Array2<f32>> {
    let clean = op.apply(truth.view());
    Ok(match noise {
        None => clean,
        Some(i0) => poisson_noise(clean.view(), i0, 4.0 / SIZE as f64, seed)?,
    })
}

fn tv_config(weight: f32, iterations: usize) -> TvConfig {
    TvConfig {
        weight,
        iterations,
        min: Some(0.0),
        max: Some(1.0),
        ..TvConfig::default()
    }
}

/// The sinograms of a set of digits, in digit order.
type Sinograms = Vec<Array2<f32>>;

/// The validation digits and their data at one setting (the noise seeded apart from the
/// test digits').
fn val_data(
    val: &Dataset,
    op: &CsrOperator,
    noise: Option<f64>,
    seed: u64,
) -> Result<(Vec<Array2<f32>>, Sinograms)> {
    let truths: Vec<Array2<f32>> = (0..val.len()).map(|i| val.image(i).to_owned()).collect();
    let sinos = truths
        .iter()
        .enumerate()
        .map(|(i, t)| sinogram(op, t, noise, seed ^ 0x5eed_0000 ^ i as u64))
        .collect::<Result<_>>()?;
    Ok((truths, sinos))
}

/// Mean PSNR (capped) of reconstructions against their truths.
fn mean_psnr<'a>(
    truths: &[Array2<f32>],
    recs: impl IntoIterator<Item = &'a Array2<f32>>,
) -> Result<f64> {
    let psnrs: Vec<f64> = truths
        .iter()
        .zip(recs)
        .map(|(t, r)| Ok(psnr(t.view(), r.view(), 1.0)?.min(PSNR_CAP)))
        .collect::<Result<_>>()?;
    Ok(psnrs.iter().sum::<f64>() / psnrs.len() as f64)
}

/// The candidate with the highest score.
fn best_of<T: Copy>(scores: &[(T, f64)]) -> Result<T> {
    scores
        .iter()
        .copied()
        .fold(None, |b: Option<(T, f64)>, s| match b {
            Some(b) if b.1 >= s.1 => Some(b),
            _ => Some(s),
        })
        .map(|b| b.0)
        .context("no candidate to tune over")
}

/// Tunes the TV weight on validation (training) digits: the grid value with the best mean
/// PSNR.
fn tune_tv(
    val: &Dataset,
    op: &CsrOperator,
    noise: Option<f64>,
    iterations: usize,
    seed: u64,
) -> Result<(f32, Vec<(f32, f64)>)> {
    let grid = [1e-3f32, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0];
    let (truths, sinos) = val_data(val, op, noise, seed)?;
    // One batch with every validation sinogram once per weight (weight-major): each image
    // is the one a batch at its weight alone gives, and one large batch is cheaper.
    let views: Vec<_> = grid
        .iter()
        .flat_map(|_| sinos.iter().map(|s| s.view()))
        .collect();
    let weights: Vec<f32> = grid
        .iter()
        .flat_map(|&w| std::iter::repeat_n(w, sinos.len()))
        .collect();
    let recs = TvPdhg::new(tv_config(grid[0], iterations))?
        .reconstruct_batch_weighted(op, &views, &weights)?;
    let scores = grid
        .iter()
        .zip(recs.chunks(sinos.len()))
        .map(|(&w, recs)| Ok((w, mean_psnr(&truths, recs.iter().map(|r| &r.image))?)))
        .collect::<Result<Vec<_>>>()?;
    Ok((best_of(&scores)?, scores))
}

/// Loads `--model` or trains a BatchNorm netinv-small (cached in `out/model`).
fn classifier(args: &Args, mnist: &Mnist) -> Result<(Classifier, f64)> {
    let dir = match &args.model {
        Some(d) => d.clone(),
        None => args.out.join("model"),
    };
    if !dir.join(netinv::models::WEIGHTS_FILE).exists() {
        if args.model.is_some() {
            bail!("no checkpoint in {}", dir.display());
        }
        let cfg = ClassifierConfig {
            batch_norm: true,
            ..ClassifierConfig::netinv_small()
        };
        let n_fit = mnist.train().len().saturating_sub(VAL_RESERVE);
        let train = mnist.train().take(if args.quick { 2000 } else { n_fit });
        let epochs = if args.quick { 1 } else { args.epochs };
        let tcfg = TrainConfig {
            epochs,
            ..TrainConfig::sgd()
        };
        let varmap = VarMap::new();
        let net = Classifier::init(&cfg, &varmap, 0, &Device::Cpu)?;
        let mut monitor: Monitor<EpochRecord> =
            Monitor::new().with_observer(ProgressObserver::new(epochs, "train BN net"));
        Trainer::new(tcfg.clone())?.fit(&net, &varmap, &train, None, &mut monitor)?;
        save_checkpoint(&dir, &varmap, &cfg)?;
        write_json(dir.join("train_config.json"), &tcfg)?;
    }
    let net = load_frozen(&dir, &Device::Cpu)?;
    if !net.config().batch_norm {
        bail!(
            "the classifier in {} has no BatchNorm (the BN prior needs one)",
            dir.display()
        );
    }
    let acc = evaluate(&net, mnist.test(), &Device::Cpu)?.accuracy;
    Ok((net, acc))
}

struct Methods {
    hybrid: HybridReconstructor,
    priors_only: HybridReconstructor,
    class_only: HybridReconstructor,
    pg_priors: Option<ClassPriorSolver>,
    pg_class: Option<ClassPriorSolver>,
    pdhg_iterations: usize,
}

impl Methods {
    /// The arms of one setting: the hybrid schedule `hybrid` (its three term sets) and the
    /// projected-gradient solvers (`pg_iterations` 0: none).
    fn new(
        hybrid: &HybridConfig,
        pg_iterations: usize,
        pg_class_weight: f64,
        pdhg_iterations: usize,
    ) -> Result<Self> {
        let with_terms = |terms| {
            HybridReconstructor::new(HybridConfig {
                terms,
                ..hybrid.clone()
            })
        };
        let pg = |class_weight: f64| -> Result<Option<ClassPriorSolver>> {
            if pg_iterations == 0 {
                return Ok(None);
            }
            Ok(Some(pg_solver(pg_iterations, class_weight)?))
        };
        Ok(Self {
            hybrid: with_terms(InversionTerms::Both)?,
            priors_only: with_terms(InversionTerms::PriorsOnly)?,
            class_only: with_terms(InversionTerms::ClassOnly)?,
            pg_priors: pg(0.0)?,
            pg_class: pg(pg_class_weight)?,
            pdhg_iterations,
        })
    }
}

/// The projected-gradient solver of the `pg_*` arms (`class_weight` 0: priors only).
fn pg_solver(iterations: usize, class_weight: f64) -> Result<ClassPriorSolver> {
    Ok(ClassPriorSolver::new(ClassPriorConfig {
        iterations,
        class_weight,
        ..ClassPriorConfig::default()
    })?)
}

/// Class weights `pg_class` is tuned over: the data term `0.5 ||Ax - b||^2` is summed over
/// all rays, so a weight of 1 barely moves the solution.
const PG_CLASS_WEIGHTS: [f64; 3] = [1.0, 10.0, 100.0];

/// Tunes the class weight of `pg_class` on validation digits (best mean PSNR), starting
/// from SIRT-100 as in the study.
fn tune_pg_class(
    val: &Dataset,
    net: &Classifier,
    op: &CsrOperator,
    noise: Option<f64>,
    iterations: usize,
    seed: u64,
) -> Result<(f64, Vec<(f64, f64)>)> {
    let (truths, sinos) = val_data(val, op, noise, seed)?;
    let views: Vec<_> = sinos.iter().map(|s| s.view()).collect();
    let inits = sirt100()?.reconstruct_batch(op, &views, None)?;
    let init_views: Vec<_> = inits.iter().map(|r| r.image.view()).collect();
    let labels = vec![LabelMode::Predicted; views.len()];
    let mut scores = Vec::new();
    for &w in &PG_CLASS_WEIGHTS {
        let recs = pg_solver(iterations, w)?.reconstruct_batch(
            net,
            op,
            &views,
            &labels,
            Some(&init_views),
        )?;
        scores.push((w, mean_psnr(&truths, recs.iter().map(|r| &r.image))?));
    }
    Ok((best_of(&scores)?, scores))
}

/// SIRT-100 with the box [0, 1].
fn sirt100() -> Result<Sirt> {
    Ok(Sirt::new(SirtConfig {
        iterations: 100,
        min: Some(0.0),
        max: Some(1.0),
        ..Default::default()
    })?)
}

/// The inversion-step optimisers the hybrid schedule is tuned over (on validation digits,
/// per angle count and noise level, as the TV weight is): Adam moves every pixel by about
/// `lr` per step whatever its gradient, SGD in proportion to the gradient.
fn hybrid_candidates(base: &HybridConfig) -> Vec<HybridConfig> {
    let adam = [3e-4, 1e-3, 3e-3, 1e-2].map(|lr| HybridConfig {
        optimizer: ImageOptimizer::adam(),
        lr,
        ..base.clone()
    });
    let sgd = [1.0, 10.0].map(|lr| HybridConfig {
        optimizer: ImageOptimizer::Sgd { momentum: 0.9 },
        lr,
        ..base.clone()
    });
    adam.into_iter().chain(sgd).collect()
}

/// Tunes the hybrid's inversion optimiser and learning rate on validation (training)
/// digits, label-free with both terms: the candidate with the best mean PSNR.
fn tune_hybrid(
    val: &Dataset,
    net: &Classifier,
    op: &CsrOperator,
    noise: Option<f64>,
    base: &HybridConfig,
    seed: u64,
) -> Result<(HybridConfig, Vec<(String, f64)>)> {
    let (truths, sinos) = val_data(val, op, noise, seed)?;
    let views: Vec<_> = sinos.iter().map(|s| s.view()).collect();
    let labels = vec![LabelMode::Predicted; views.len()];
    let candidates = hybrid_candidates(base);
    let mut scores = Vec::new();
    for (k, cand) in candidates.iter().enumerate() {
        let recs =
            HybridReconstructor::new(cand.clone())?.reconstruct_batch(net, op, &views, &labels)?;
        scores.push((k, mean_psnr(&truths, recs.iter().map(|r| &r.image))?));
    }
    let best = candidates[best_of(&scores)?].clone();
    let named = scores
        .iter()
        .map(|&(k, p)| (optimizer_name(&candidates[k]), p))
        .collect();
    Ok((best, named))
}

/// `adam lr 0.001` / `sgd lr 10`.
fn optimizer_name(cfg: &HybridConfig) -> String {
    match cfg.optimizer {
        ImageOptimizer::Adam { .. } => format!("adam lr {}", cfg.lr),
        ImageOptimizer::Sgd { .. } => format!("sgd lr {}", cfg.lr),
    }
}

/// The classical arms and the projected-gradient ones on all sinograms of one setting,
/// batched where the method allows (`out[k]`: digit k's (arm, image) pairs); the pg arms on
/// the first `pg_images` digits only.
fn classical_arms(
    m: &Methods,
    net: &Classifier,
    op: &CsrOperator,
    sinograms: &[Array2<f32>],
    tv_weight: f32,
    pg_images: usize,
) -> Result<Vec<ArmImages>> {
    let views: Vec<_> = sinograms.iter().map(|s| s.view()).collect();
    let fbp = Fbp::new(FbpConfig::default())?;
    let mut out: Vec<ArmImages> = views
        .iter()
        .map(|b| {
            Ok(vec![(
                0,
                fbp.reconstruct(op, *b)?.mapv(|v| v.clamp(0.0, 1.0)),
            )])
        })
        .collect::<Result<_>>()?;
    let sirt = sirt100()?.reconstruct_batch(op, &views, None)?;
    let ls = TvPdhg::new(TvConfig::least_squares(
        m.pdhg_iterations,
        Some(0.0),
        Some(1.0),
    ))?;
    let tv = TvPdhg::new(tv_config(tv_weight, m.pdhg_iterations))?;
    let (ls, tv) = (
        ls.reconstruct_batch(op, &views)?,
        tv.reconstruct_batch(op, &views)?,
    );
    for (k, ((s, l), t)) in sirt.iter().zip(ls).zip(tv).enumerate() {
        out[k].extend([(1, s.image.clone()), (2, l.image), (3, t.image)]);
    }
    if let (Some(pp), Some(pc)) = (&m.pg_priors, &m.pg_class) {
        let n = pg_images.min(views.len());
        let inits: Vec<_> = sirt[..n].iter().map(|r| r.image.view()).collect();
        let labels = vec![LabelMode::Predicted; n];
        for (arm, solver) in [(8, pp), (9, pc)] {
            let recs = solver.reconstruct_batch(net, op, &views[..n], &labels, Some(&inits))?;
            for (k, rec) in recs.into_iter().enumerate() {
                out[k].push((arm, rec.image));
            }
        }
    }
    Ok(out)
}

/// The four hybrid arms (4: oracle, 5: predicted, 6: priors only, 7: class only) on all
/// sinograms at once, one network batch per inversion iteration; `out[k]` gets digit k's.
fn hybrid_arms(
    m: &Methods,
    net: &Classifier,
    op: &CsrOperator,
    sinograms: &[Array2<f32>],
    labels: &[u32],
    out: &mut [ArmImages],
) -> Result<()> {
    let views: Vec<_> = sinograms.iter().map(|s| s.view()).collect();
    let oracle: Vec<LabelMode> = labels.iter().map(|&c| LabelMode::Oracle(c)).collect();
    let free = vec![LabelMode::Predicted; labels.len()];
    for (arm, hybrid, modes) in [
        (4, &m.hybrid, &oracle),
        (5, &m.hybrid, &free),
        (6, &m.priors_only, &free),
        (7, &m.class_only, &free),
    ] {
        let recs = hybrid.reconstruct_batch(net, op, &views, modes)?;
        for (k, rec) in recs.into_iter().enumerate() {
            out[k].push((arm, rec.image));
        }
    }
    Ok(())
}

/// The tuned choices of one setting: angle count, noise, TV weight, hybrid schedule.
type Tuned = (usize, Option<f64>, f32, HybridConfig);
/// Reconstructions kept for the grid figure: (setting, digit, arms).
type Kept = (usize, usize, ArmImages);

/// Tunes the TV weight of one (angles, noise) setting on the validation digits (the test
/// digits are never looked at); needs no network.
fn tune_setting_tv(
    val: &Dataset,
    na: usize,
    noise: Option<f64>,
    args: &Args,
) -> Result<(f32, Vec<(f32, f64)>)> {
    let op = CsrOperator::new(&scan_operator(SIZE, na)?);
    tune_tv(val, &op, noise, args.pdhg_iterations, args.seed)
}

/// Tunes the hybrid's inversion optimiser of one (angles, noise) setting on the validation
/// digits.
fn tune_setting_hybrid(
    val: &Dataset,
    net: &Classifier,
    na: usize,
    noise: Option<f64>,
    args: &Args,
    base: &HybridConfig,
) -> Result<(HybridConfig, Vec<(String, f64)>)> {
    let op = CsrOperator::new(&scan_operator(SIZE, na)?);
    tune_hybrid(val, net, &op, noise, base, args.seed)
}

/// The tuning log entry and the tuned choices of one setting from its two tunings.
fn tuned_setting(
    (na, noise): (usize, Option<f64>),
    (w, tv_scores): (f32, Vec<(f32, f64)>),
    (hybrid, hybrid_scores): (HybridConfig, Vec<(String, f64)>),
) -> (serde_json::Value, Tuned) {
    let log = json!({
        "n_angles": na,
        "noise_i0": noise,
        "tv_weight": w,
        "tv_val_psnr": tv_scores,
        "hybrid": optimizer_name(&hybrid),
        "hybrid_val_psnr": hybrid_scores,
    });
    (log, (na, noise, w, hybrid))
}

/// Runs `task(i)` for every index of `order` (a permutation of `0..order.len()`) on the
/// rayon pool: every worker takes the next index of `order` when it is free, so listing
/// the longest tasks first keeps the threads busy to the end. Returns the results by index
/// (`out[i] = task(i)`), whatever the order they ran in; after a failure no new task
/// starts and the first failure (by index) is returned.
fn par_longest_first<R: Send>(
    order: &[usize],
    task: impl Fn(usize) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let n = order.len();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Vec<Mutex<Option<Result<R>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let worker = || {
        while !failed.load(Ordering::Relaxed) {
            let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            let out = task(i);
            failed.fetch_or(out.is_err(), Ordering::Relaxed);
            if let Some(slot) = slots.get(i) {
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(out);
            }
        }
    };
    rayon::scope(|scope| {
        for _ in 0..rayon::current_num_threads().min(n) {
            scope.spawn(|_| worker());
        }
    });
    let (mut results, mut failure, mut missing) = (Vec::with_capacity(n), None, None);
    for (i, slot) in slots.into_iter().enumerate() {
        match slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(Ok(out)) => results.push(out),
            Some(Err(e)) => {
                failure.get_or_insert(e);
            }
            None => {
                missing.get_or_insert(i);
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some(i) = missing {
        bail!("task {i} did not run (the order is not a permutation)");
    }
    Ok(results)
}

/// The indices of `costs` from the highest estimated cost to the lowest (ties in index
/// order).
fn longest_first(costs: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by(|&a, &b| costs[b].total_cmp(&costs[a]));
    order
}

/// Estimated seconds of one setting of the study at `na` angles (200 digits, defaults):
/// from the per-setting times of a full run (about 25 s at 2 angles, 45 s at 45, 75 s at
/// 90); only the order matters.
fn setting_cost(na: usize) -> f64 {
    24.0 + 0.6 * na as f64
}

/// What every setting shares.
struct SettingContext<'a> {
    net: &'a Classifier,
    test: &'a Dataset,
    args: &'a Args,
    pg_class_weight: f64,
    pg_images: usize,
    grid_digits: usize,
}

/// Every arm on every test digit of setting `s`: the per-image metrics, and the
/// reconstructions of the first digits for the grid.
fn run_setting(
    s: usize,
    setting: &Tuned,
    cx: &SettingContext,
) -> Result<(Vec<PerImage>, Vec<Kept>)> {
    let (na, noise, tv_w, hybrid) = setting;
    let (na, noise) = (*na, *noise);
    let (args, test) = (cx.args, cx.test);
    let op = CsrOperator::new(&scan_operator(SIZE, na)?);
    let methods = Methods::new(
        hybrid,
        args.pg_iterations,
        cx.pg_class_weight,
        args.pdhg_iterations,
    )?;
    let sinograms: Vec<Array2<f32>> = (0..test.len())
        .map(|i| {
            let seed = args.seed ^ ((s as u64) << 32) ^ i as u64;
            sinogram(&op, &test.image(i).to_owned(), noise, seed)
        })
        .collect::<Result<_>>()?;
    let mut arms = classical_arms(&methods, cx.net, &op, &sinograms, *tv_w, cx.pg_images)?;
    let labels: Vec<u32> = test.labels().iter().map(|&c| u32::from(c)).collect();
    hybrid_arms(&methods, cx.net, &op, &sinograms, &labels, &mut arms)?;
    let mut per_image = Vec::new();
    let mut kept = Vec::new();
    for (i, mut recs) in arms.into_iter().enumerate() {
        recs.sort_by_key(|(arm, _)| *arm);
        let truth = test.image(i).to_owned();
        for (arm, rec) in &recs {
            let (m, p, q) = metrics(&truth, rec)?;
            per_image.push(PerImage {
                arm: *arm,
                image: i,
                n_angles: na,
                noise_i0: noise,
                mse: m,
                psnr: p,
                ssim: q,
            });
        }
        if i < cx.grid_digits {
            kept.push((s, i, recs));
        }
    }
    Ok((per_image, kept))
}

fn main() -> Result<()> {
    netinv::core::retain_freed_memory();
    let mut args = Args::parse();
    if args.quick {
        args.n_images = args.n_images.min(6);
        args.angles = vec![2, 4, 8];
        args.noise_i0 = vec!["none".into(), "1e3".into()];
        args.val_images = args.val_images.min(4);
        args.pdhg_iterations = args.pdhg_iterations.min(300);
        args.pg_iterations = args.pg_iterations.min(60);
    }
    if args.angles.contains(&0) {
        bail!("--angles: zero angles is not a scan (need at least 1)");
    }
    if args.n_images == 0 {
        bail!("--n-images must be at least 1");
    }
    if args.val_images == 0 || args.val_images > VAL_RESERVE {
        bail!("--val-images must be in 1..={VAL_RESERVE}");
    }
    let noises = parse_noise(&args.noise_i0)?;
    // Parallel over settings: each worker runs candle single-threaded (candle sizes its
    // splits by RAYON_NUM_THREADS, read once at the first op; unset it cost 5x at 1
    // thread), and the settings are independent, so results do not depend on --threads.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.max(1))
        .build_global()?;
    std::fs::create_dir_all(&args.out)?;
    let start = Instant::now();
    let mnist = Mnist::embedded()?;
    let test = mnist.test().take(args.n_images);
    let n_train = mnist.train().len();
    let val_idx: Vec<usize> = (n_train - args.val_images.max(1)..n_train).collect();
    let val = mnist.train().select(&val_idx)?;

    let base = HybridConfig::default();
    let pg_images = if args.pg_images == 0 {
        args.n_images
    } else {
        args.pg_images.min(args.n_images)
    };
    let pairs: Vec<(usize, Option<f64>)> = args
        .angles
        .iter()
        .flat_map(|&na| noises.iter().map(move |&noise| (na, noise)))
        .collect();
    // the settings by estimated cost, longest first (tuning and runs grow with the angles)
    let costs: Vec<f64> = pairs.iter().map(|&(na, _)| setting_cost(na)).collect();
    let settings_order = longest_first(&costs);

    // Tune the TV weight, the hybrid's inversion optimiser and pg_class's class weight on
    // the validation split; the test digits are never looked at. The TV weight (once per
    // (angles, noise)) needs no network, so it is tuned while the classifier trains or
    // loads (single-threaded; the other thread tunes, and both tune once it is ready).
    let (classifier, tv_tuned) = rayon::join(
        || -> Result<(Classifier, f64)> {
            let (net, accuracy) = classifier(&args, &mnist)?;
            println!(
                "BatchNorm classifier: test accuracy {accuracy:.4} ({:.0} s)",
                start.elapsed().as_secs_f64()
            );
            Ok((net, accuracy))
        },
        || {
            par_longest_first(&settings_order, |i| {
                let (na, noise) = pairs[i];
                tune_setting_tv(&val, na, noise, &args)
            })
        },
    );
    let (net, accuracy) = classifier?;
    let tv_tuned = tv_tuned?;
    println!(
        "TV weights tuned on {} validation digits ({:.0} s)",
        val.len(),
        start.elapsed().as_secs_f64()
    );

    // Then, in one parallel pass, the network tunings: the class weight of pg_class, once
    // per noise level at 4 angles (or the first angle count), as each pg run costs
    // hundreds of network gradients (these first, as the longest), and the hybrid's
    // optimiser once per (angles, noise).
    let pg_angles = if args.angles.contains(&4) {
        4
    } else {
        args.angles[0]
    };
    /// One network tuning's outcome: pg_class's log entry of a noise level, or a
    /// setting's hybrid schedule and its scores.
    enum NetTuning {
        PgClass(serde_json::Value),
        Hybrid(HybridConfig, Vec<(String, f64)>),
    }
    let n_pg = noises.len();
    let net_order: Vec<usize> = (0..n_pg)
        .chain(settings_order.iter().map(|&i| n_pg + i))
        .collect();
    let net_tuned = par_longest_first(&net_order, |t| -> Result<NetTuning> {
        if let Some(&noise) = noises.get(t) {
            let (w, scores) = if args.pg_iterations == 0 {
                (0.0, Vec::new())
            } else {
                let op = CsrOperator::new(&scan_operator(SIZE, pg_angles)?);
                tune_pg_class(&val, &net, &op, noise, args.pg_iterations, args.seed)?
            };
            return Ok(NetTuning::PgClass(json!({
                "noise_i0": noise,
                "n_angles": pg_angles,
                "class_weight": w,
                "val_psnr": scores,
            })));
        }
        let (na, noise) = pairs[t - n_pg];
        let (hybrid, scores) = tune_setting_hybrid(&val, &net, na, noise, &args, &base)?;
        Ok(NetTuning::Hybrid(hybrid, scores))
    })?;
    let mut pg_weights: Vec<serde_json::Value> = Vec::new();
    let mut hybrid_tuned = Vec::new();
    for t in net_tuned {
        match t {
            NetTuning::PgClass(log) => pg_weights.push(log),
            NetTuning::Hybrid(hybrid, scores) => hybrid_tuned.push((hybrid, scores)),
        }
    }
    let (tuning_log, tuned): (Vec<serde_json::Value>, Vec<Tuned>) = pairs
        .iter()
        .zip(tv_tuned)
        .zip(hybrid_tuned)
        .map(|((&pair, tv), hybrid)| tuned_setting(pair, tv, hybrid))
        .unzip();
    println!(
        "pg_class weights and hybrid optimisers tuned ({:.0} s)",
        start.elapsed().as_secs_f64()
    );
    let pg_weight = |noise: Option<f64>| -> f64 {
        pg_weights
            .iter()
            .find(|p| p["noise_i0"].as_f64() == noise)
            .and_then(|p| p["class_weight"].as_f64())
            .unwrap_or(1.0)
    };

    let settings: Vec<(usize, Option<f64>, f32)> = tuned.iter().map(|t| (t.0, t.1, t.2)).collect();
    let progress = ProgressObserver::new(settings.len(), "ct_study");
    let done = AtomicUsize::new(0);
    let grid_digits = 3.min(test.len());
    // longest first, so the threads finish together; each setting keeps its index `s`
    // (its noise seed) and the results come back in setting order
    let results: Vec<(Vec<PerImage>, Vec<Kept>)> = par_longest_first(&settings_order, |s| {
        let setting = &tuned[s];
        let context = SettingContext {
            net: &net,
            test: &test,
            args: &args,
            pg_class_weight: pg_weight(setting.1),
            pg_images,
            grid_digits,
        };
        let out = run_setting(s, setting, &context)?;
        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
        progress.bar().set_position(d as u64);
        // a plain line too: the bar is invisible when stderr is not a terminal
        println!(
            "setting {d}/{} done ({} angles, noise {}), {:.0} s",
            settings.len(),
            setting.0,
            noise_name(setting.1),
            start.elapsed().as_secs_f64()
        );
        Ok(out)
    })?;
    let mut per_image: Vec<PerImage> = Vec::new();
    let mut kept: Vec<Kept> = Vec::new();
    for (rows, k) in results {
        per_image.extend(rows);
        kept.extend(k);
    }
    progress.bar().finish();

    // Aggregate.
    let mut rows = Vec::new();
    for &(na, noise, _) in &settings {
        for (a, arm) in ARMS.iter().enumerate() {
            let sel: Vec<&PerImage> = per_image
                .iter()
                .filter(|r| r.arm == a && r.n_angles == na && r.noise_i0 == noise)
                .collect();
            if sel.is_empty() {
                continue;
            }
            let col =
                |f: fn(&PerImage) -> f64| mean_ci(&sel.iter().map(|r| f(r)).collect::<Vec<_>>());
            let (mse_mean, mse_ci95) = col(|r| r.mse);
            let (psnr_mean, psnr_ci95) = col(|r| r.psnr);
            let (ssim_mean, ssim_ci95) = col(|r| r.ssim);
            rows.push(Row {
                method: arm.method.into(),
                label_mode: arm.label_mode.into(),
                n_angles: na,
                noise_i0: noise,
                n: sel.len(),
                mse_mean,
                mse_ci95,
                psnr_mean,
                psnr_ci95,
                ssim_mean,
                ssim_ci95,
            });
        }
    }
    write_json(args.out.join("results.json"), &rows)?;
    write_json(args.out.join("per_image.json"), &per_image)?;
    let legend: Vec<String> = ARMS
        .iter()
        .enumerate()
        .map(|(a, arm)| format!("{} {}", arm_name(arm), COLOR_NAMES[a]))
        .collect();
    write_json(
        args.out.join("config.json"),
        &json!({
            "args": args,
            "hybrid": base,
            "class_prior": ClassPriorConfig { iterations: args.pg_iterations, ..ClassPriorConfig::default() },
            "pg_images": pg_images,
            "classifier_test_accuracy": accuracy,
            "tuning": tuning_log,
            "pg_class_tuning": pg_weights,
            "arms": ARMS,
            "plot_legend": legend,
            "ci95": "1.96 * sample sd / sqrt(n)",
            "psnr_cap_db": PSNR_CAP,
            "seconds": start.elapsed().as_secs_f64(),
        }),
    )?;
    let font = plot_support::register_font();
    for &noise in &noises {
        for metric in ["psnr", "ssim", "mse"] {
            let path = args
                .out
                .join(format!("{metric}_vs_angles_{}.png", noise_name(noise)));
            plot_metric(&path, &rows, noise, metric, &args.angles, font)?;
        }
        write_grid(&args.out, &kept, &settings, noise, &test)?;
    }
    let md = summary(&rows, &args, accuracy, start.elapsed().as_secs_f64());
    atomic_write_bytes(args.out.join("summary.md"), md.as_bytes())?;
    println!("{md}");
    println!(
        "done in {:.0} s; outputs in {}",
        start.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}

fn arm_name(arm: &Arm) -> String {
    if arm.label_mode == "none" {
        arm.method.to_string()
    } else {
        format!("{} ({})", arm.method, arm.label_mode)
    }
}

const COLORS: [(u8, u8, u8); 10] = [
    (128, 128, 128),
    (0, 0, 0),
    (140, 86, 75),
    (31, 119, 180),
    (214, 39, 40),
    (255, 127, 14),
    (44, 160, 44),
    (148, 103, 189),
    (23, 190, 207),
    (227, 119, 194),
];
const COLOR_NAMES: [&str; 10] = [
    "grey", "black", "brown", "blue", "red", "orange", "green", "purple", "cyan", "pink",
];

fn plot_metric(
    path: &Path,
    rows: &[Row],
    noise: Option<f64>,
    metric: &str,
    angles: &[usize],
    font: bool,
) -> Result<()> {
    use plotters::prelude::*;
    let get = |r: &Row| match metric {
        "psnr" => (r.psnr_mean, r.psnr_ci95),
        "ssim" => (r.ssim_mean, r.ssim_ci95),
        _ => (r.mse_mean, r.mse_ci95),
    };
    let sel: Vec<&Row> = rows.iter().filter(|r| r.noise_i0 == noise).collect();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for r in &sel {
        let (m, c) = get(r);
        let c = if c.is_finite() { c } else { 0.0 };
        lo = lo.min(m - c);
        hi = hi.max(m + c);
    }
    if !(lo.is_finite() && hi.is_finite()) {
        return Ok(());
    }
    let pad = (hi - lo).max(1e-6) * 0.05;
    let xmax = *angles.iter().max().unwrap_or(&1) as f64;
    let xs = |n: usize| (n as f64).ln();
    let (w, h) = (900u32, 600u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut b = ChartBuilder::on(&root);
        b.margin(20)
            .x_label_area_size(if font { 40 } else { 10 })
            .y_label_area_size(if font { 60 } else { 10 });
        if font {
            b.caption(
                format!("{metric} vs angles, noise {}", noise_name(noise)),
                ("sans-serif", 22),
            );
        }
        let mut chart = b.build_cartesian_2d(
            xs(1).min(xs(*angles.iter().min().unwrap_or(&1))) - 0.1..xs(xmax as usize) + 0.1,
            lo - pad..hi + pad,
        )?;
        if font {
            chart
                .configure_mesh()
                .x_desc("number of angles (log scale)")
                .y_desc(metric)
                .x_label_formatter(&|v| format!("{:.0}", v.exp()))
                .draw()?;
        } else {
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(0)
                .y_labels(0)
                .draw()?;
        }
        for (a, arm) in ARMS.iter().enumerate() {
            let pts: Vec<(f64, f64, f64)> = angles
                .iter()
                .filter_map(|&na| {
                    sel.iter()
                        .find(|r| {
                            r.method == arm.method
                                && r.label_mode == arm.label_mode
                                && r.n_angles == na
                        })
                        .map(|r| {
                            let (m, c) = get(r);
                            (xs(na), m, if c.is_finite() { c } else { 0.0 })
                        })
                })
                .collect();
            if pts.is_empty() {
                continue;
            }
            let (r, g, bl) = COLORS[a];
            let color = RGBColor(r, g, bl);
            let series = chart.draw_series(LineSeries::new(
                pts.iter().map(|p| (p.0, p.1)),
                color.stroke_width(2),
            ))?;
            if font {
                series.label(arm_name(arm)).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            }
            chart.draw_series(pts.iter().map(|p| {
                PathElement::new(
                    vec![(p.0, p.1 - p.2), (p.0, p.1 + p.2)],
                    color.stroke_width(1),
                )
            }))?;
            chart.draw_series(
                pts.iter()
                    .map(|p| Circle::new((p.0, p.1), 3, color.filled())),
            )?;
        }
        if font {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::LowerRight)
                .draw()?;
        }
        root.present()?;
    }
    plot_support::write_rgb_png(path, w, h, buf)
}

/// Grid: one row per (digit, angle count) of the first digits, columns truth + every arm.
fn write_grid(
    out: &Path,
    kept: &[(usize, usize, ArmImages)],
    settings: &[(usize, Option<f64>, f32)],
    noise: Option<f64>,
    test: &Dataset,
) -> Result<()> {
    let mut data = Vec::new();
    let mut row_labels = Vec::new();
    let mut captions = Vec::new();
    let cols = ARMS.len() + 1;
    for (s, i, recs) in kept {
        let (na, nz, _) = settings[*s];
        if nz != noise {
            continue;
        }
        let truth = test.image(*i).to_owned();
        data.extend(truth.iter().copied());
        captions.push(format!("digit {}", test.labels()[*i]));
        for a in 0..ARMS.len() {
            match recs.iter().find(|(arm, _)| *arm == a) {
                Some((_, img)) => {
                    data.extend(img.iter().copied());
                    let (_, p, q) = metrics(&truth, img)?;
                    captions.push(format!("{p:.1}/{q:.2}"));
                }
                None => {
                    data.extend(std::iter::repeat_n(0.0f32, SIZE * SIZE));
                    captions.push("-".into());
                }
            }
        }
        row_labels.push(format!("{na} ang"));
    }
    if row_labels.is_empty() {
        return Ok(());
    }
    let n = data.len() / (SIZE * SIZE);
    let mut labels = vec!["truth".to_string()];
    labels.extend(ARMS.iter().map(|a| match (a.method, a.label_mode) {
        ("sirt_inv", "oracle") => "inv-orc".to_string(),
        ("sirt_inv", _) => "inv-pred".to_string(),
        ("sirt_inv_priors_only", _) => "priors".to_string(),
        ("sirt_inv_class_only", _) => "class".to_string(),
        ("box_ls_pdhg", _) => "box-ls".to_string(),
        ("tv_pdhg", _) => "tv".to_string(),
        (m, _) => m.to_string(),
    }));
    ImageGrid::new(cols)
        .with_scale(3)
        .with_column_labels(labels)
        .with_row_labels(row_labels)
        .with_captions(captions)
        .write_png(
            out.join(format!("grid_{}.png", noise_name(noise))),
            ImageRef::new(&data, n, SIZE, SIZE)?,
        )?;
    Ok(())
}

fn summary(rows: &[Row], args: &Args, accuracy: f64, seconds: f64) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "CT study: {} test digits, angles {:?}, noise {:?}, classifier accuracy {:.4}, {:.0} s\n\n",
        args.n_images, args.angles, args.noise_i0, accuracy, seconds
    ));
    s.push_str("| noise | angles | method | label | n | PSNR (dB) | SSIM | MSE |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.2} +- {:.2} | {:.3} +- {:.3} | {:.4} +- {:.4} |\n",
            noise_name(r.noise_i0),
            r.n_angles,
            r.method,
            r.label_mode,
            r.n,
            r.psnr_mean,
            r.psnr_ci95,
            r.ssim_mean,
            r.ssim_ci95,
            r.mse_mean,
            r.mse_ci95
        ));
    }
    s
}
