//! One setting (angle count x noise level) of the study: every arm on every test digit.

use ndarray::{Array2, ArrayView2};
use netinv_invert::InvertibleNet;
use netinv_tomo::CsrOperator;
use serde::{Deserialize, Serialize};

use super::baselines::{classical_arms, sinogram};
use super::generative::{generative_arms, GenerativeContext, GenerativeSetting};
use super::method::{Arm, ArmLabels, Method};
use super::stats::{metrics, PerImage};
use super::tuning::pg_solver;
use super::{ArmImages, Digits, Setting};
use crate::{HybridConfig, HybridReconstructor, InversionTerms, LabelMode, Result};

/// The choices tuned for one setting before its run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingChoices {
    /// The TV weight of `tv_pdhg`.
    pub tv_weight: f32,
    /// The hybrid schedule of the `sirt_inv*` arms.
    pub hybrid: HybridConfig,
    /// The class weight of `pg_class`.
    pub pg_class_weight: f64,
}

/// The reconstructions of one test digit kept for the grid figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeptDigit {
    /// The setting's index.
    pub setting: usize,
    /// The test digit's index.
    pub digit: usize,
    /// `(arm index, image)` in arm order.
    pub images: ArmImages,
}

/// What the run of one setting produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingResult {
    /// The metrics of every arm on every digit, digit-major, arms in order.
    pub per_image: Vec<PerImage>,
    /// The reconstructions of the first digits.
    pub kept: Vec<KeptDigit>,
    /// The generative arms' tuning, class choices and failures (when they ran).
    #[serde(default)]
    pub generative: Option<GenerativeSetting>,
}

/// What the run of a setting needs besides its choices.
pub(crate) struct RunContext<'a, N: ?Sized> {
    pub net: &'a N,
    pub test: &'a Digits,
    pub seed: u64,
    pub pdhg_iterations: usize,
    pub pg_iterations: usize,
    pub pg_images: usize,
    pub grid_digits: usize,
    /// The generative arms' context (`None`: they do not run).
    pub generative: Option<GenerativeContext<'a>>,
}

/// The index of the arm of `method` with `labels`.
fn arm(method: Method, labels: ArmLabels) -> usize {
    Arm::new(method, labels).index()
}

/// Every arm on every test digit of `setting`: the per-image metrics, and the
/// reconstructions of the first digits for the grid.
pub(crate) fn run_setting<N: InvertibleNet + ?Sized>(
    setting: &Setting,
    choices: &SettingChoices,
    cx: &RunContext<'_, N>,
) -> Result<SettingResult> {
    let op = CsrOperator::new(&crate::scan_operator(super::SIZE, setting.n_angles)?);
    let sinograms: Vec<Array2<f32>> = cx
        .test
        .images
        .iter()
        .enumerate()
        .map(|(i, truth)| {
            let seed = cx.seed ^ ((setting.index as u64) << 32) ^ i as u64;
            sinogram(&op, truth.view(), setting.noise, seed)
        })
        .collect::<Result<_>>()?;
    let views: Vec<ArrayView2<f32>> = sinograms.iter().map(|s| s.view()).collect();
    let (mut arms, sirt) = classical_arms(&op, &views, choices.tv_weight, cx.pdhg_iterations)?;
    if cx.pg_iterations > 0 {
        pg_arms(cx, &op, &views, &sirt, choices.pg_class_weight, &mut arms)?;
    }
    hybrid_arms(cx, &choices.hybrid, &op, &views, &mut arms)?;
    let tv_arm = arm(Method::TvPdhg, ArmLabels::None);
    let generative = match &cx.generative {
        Some(gx) => {
            let tv: Vec<Array2<f32>> = arms
                .iter()
                .map(|recs| {
                    recs.iter()
                        .find(|(a, _)| *a == tv_arm)
                        .map(|(_, x)| x.clone())
                        .ok_or_else(|| crate::error::invalid("arms", "the TV arm is missing"))
                })
                .collect::<Result<_>>()?;
            Some(generative_arms(gx, setting, &op, &views, &tv, &mut arms)?)
        }
        None => None,
    };
    let mut per_image = Vec::new();
    let mut kept = Vec::new();
    for (i, mut recs) in arms.into_iter().enumerate() {
        recs.sort_by_key(|(arm, _)| *arm);
        let truth = cx.test.images[i].view();
        for (arm, rec) in &recs {
            let (mse, psnr, ssim) = metrics(truth, rec.view())?;
            per_image.push(PerImage {
                arm: *arm,
                image: i,
                n_angles: setting.n_angles,
                noise_i0: setting.noise,
                mse,
                psnr,
                ssim,
            });
        }
        if i < cx.grid_digits {
            kept.push(KeptDigit {
                setting: setting.index,
                digit: i,
                images: recs,
            });
        }
    }
    Ok(SettingResult {
        per_image,
        kept,
        generative,
    })
}

/// The projected-gradient arms on the first `pg_images` digits, from their SIRT-100
/// images: `pg_priors` (no class) and `pg_class` (`class_weight`).
fn pg_arms<N: InvertibleNet + ?Sized>(
    cx: &RunContext<'_, N>,
    op: &CsrOperator,
    views: &[ArrayView2<f32>],
    sirt: &[Array2<f32>],
    class_weight: f64,
    out: &mut [ArmImages],
) -> Result<()> {
    let n = cx.pg_images.min(views.len());
    let inits: Vec<_> = sirt[..n].iter().map(|x| x.view()).collect();
    let labels = vec![LabelMode::Predicted; n];
    let priors = pg_solver(cx.pg_iterations, 0.0)?;
    let class = pg_solver(cx.pg_iterations, class_weight)?;
    for (arm, solver) in [
        (arm(Method::PgPriors, ArmLabels::None), priors),
        (arm(Method::PgClass, ArmLabels::Predicted), class),
    ] {
        let recs = solver.reconstruct_batch(cx.net, op, &views[..n], &labels, Some(&inits))?;
        for (k, rec) in recs.into_iter().enumerate() {
            out[k].push((arm, rec.image));
        }
    }
    Ok(())
}

/// The four hybrid arms (both terms with oracle and predicted labels, priors only, class
/// only) on all sinograms at once, one network batch per inversion iteration.
fn hybrid_arms<N: InvertibleNet + ?Sized>(
    cx: &RunContext<'_, N>,
    hybrid: &HybridConfig,
    op: &CsrOperator,
    views: &[ArrayView2<f32>],
    out: &mut [ArmImages],
) -> Result<()> {
    let with_terms = |terms| {
        HybridReconstructor::new(HybridConfig {
            terms,
            ..hybrid.clone()
        })
    };
    let both = with_terms(InversionTerms::Both)?;
    let priors_only = with_terms(InversionTerms::PriorsOnly)?;
    let class_only = with_terms(InversionTerms::ClassOnly)?;
    let oracle: Vec<LabelMode> = cx
        .test
        .labels
        .iter()
        .map(|&c| LabelMode::Oracle(c))
        .collect();
    let free = vec![LabelMode::Predicted; cx.test.labels.len()];
    for (arm, reconstructor, modes) in [
        (arm(Method::SirtInv, ArmLabels::Oracle), &both, &oracle),
        (arm(Method::SirtInv, ArmLabels::Predicted), &both, &free),
        (
            arm(Method::SirtInvPriorsOnly, ArmLabels::None),
            &priors_only,
            &free,
        ),
        (
            arm(Method::SirtInvClassOnly, ArmLabels::Predicted),
            &class_only,
            &free,
        ),
    ] {
        let recs = reconstructor.reconstruct_batch(cx.net, op, views, modes)?;
        for (k, rec) in recs.into_iter().enumerate() {
            out[k].push((arm, rec.image));
        }
    }
    Ok(())
}
