//! Tuning on validation digits (training digits the classifier never saw; the test digits
//! are never looked at): the TV weight, the hybrid's inversion optimiser and the class
//! weight of `pg_class`, each the candidate with the best mean PSNR.

use ndarray::{Array2, ArrayView2};
use netinv_invert::{ImageOptimizer, InvertibleNet};
use netinv_metrics::psnr;
use netinv_tomo::{CsrOperator, TvPdhg};
use serde::{Deserialize, Serialize};

use super::baselines::{sinogram, sirt100, tv_config};
use super::stats::PSNR_CAP;
use crate::{
    ClassPriorConfig, ClassPriorSolver, Error, HybridConfig, HybridReconstructor, LabelMode, Result,
};

/// The TV weights the TV baseline is tuned over.
pub const TV_WEIGHTS: [f32; 7] = [1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0];

/// Class weights `pg_class` is tuned over: the data term `0.5 ||Ax - b||^2` is summed over
/// all rays, so a weight of 1 barely moves the solution.
pub const PG_CLASS_WEIGHTS: [f64; 3] = [1.0, 10.0, 100.0];

/// The tuned TV weight of a setting and the mean validation PSNR of every candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TvTuning {
    /// The chosen weight.
    pub weight: f32,
    /// `(weight, mean PSNR)` per candidate.
    pub val_psnr: Vec<(f32, f64)>,
}

/// The tuned class weight of `pg_class` at one noise level (a `pg_class_tuning` entry of
/// `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PgClassTuning {
    /// Photons per ray (`None`: noiseless).
    pub noise_i0: Option<f64>,
    /// The angle count it was tuned at.
    pub n_angles: usize,
    /// The chosen weight (0 when the pg arms are off).
    pub class_weight: f64,
    /// `(weight, mean PSNR)` per candidate.
    pub val_psnr: Vec<(f64, f64)>,
}

/// The tuned hybrid schedule of a setting and the mean validation PSNR of every
/// candidate optimiser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HybridTuning {
    /// The chosen schedule.
    pub hybrid: HybridConfig,
    /// `(optimizer name, mean PSNR)` per candidate.
    pub val_psnr: Vec<(String, f64)>,
}

/// The validation truths' sinograms at one setting (the noise seeded apart from the test
/// digits').
///
/// # Errors
/// As [`sinogram`].
pub fn val_sinograms(
    truths: &[Array2<f32>],
    op: &CsrOperator,
    noise: Option<f64>,
    seed: u64,
) -> Result<Vec<Array2<f32>>> {
    truths
        .iter()
        .enumerate()
        .map(|(i, t)| sinogram(op, t.view(), noise, seed ^ 0x5eed_0000 ^ i as u64))
        .collect()
}

/// Mean PSNR (capped at [`PSNR_CAP`]) of reconstructions against their truths.
///
/// # Errors
/// [`crate::Error::Metrics`] if shapes differ.
pub fn mean_psnr<'a>(
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

/// The candidate with the highest score (the first of equals).
///
/// # Errors
/// [`Error::InvalidConfig`] for an empty list.
pub fn best_of<T: Copy>(scores: &[(T, f64)]) -> Result<T> {
    scores
        .iter()
        .copied()
        .fold(None, |b: Option<(T, f64)>, s| match b {
            Some(b) if b.1 >= s.1 => Some(b),
            _ => Some(s),
        })
        .map(|b| b.0)
        .ok_or_else(|| crate::error::invalid("candidates", "no candidate to tune over"))
}

/// Tunes the TV weight over [`TV_WEIGHTS`] with `iterations` PDHG iterations.
///
/// # Errors
/// Tomography and metric errors.
pub fn tune_tv(
    truths: &[Array2<f32>],
    op: &CsrOperator,
    noise: Option<f64>,
    iterations: usize,
    seed: u64,
) -> Result<TvTuning> {
    let grid = TV_WEIGHTS;
    let sinos = val_sinograms(truths, op, noise, seed)?;
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
    let val_psnr = grid
        .iter()
        .zip(recs.chunks(sinos.len()))
        .map(|(&w, recs)| Ok((w, mean_psnr(truths, recs.iter().map(|r| &r.image))?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(TvTuning {
        weight: best_of(&val_psnr)?,
        val_psnr,
    })
}

/// The projected-gradient solver of the `pg_*` arms (`class_weight` 0: priors only).
///
/// # Errors
/// [`Error::InvalidConfig`] for `iterations` 0 or a bad weight.
pub fn pg_solver(iterations: usize, class_weight: f64) -> Result<ClassPriorSolver> {
    ClassPriorSolver::new(ClassPriorConfig {
        iterations,
        class_weight,
        ..ClassPriorConfig::default()
    })
}

/// Tunes the class weight of `pg_class` over [`PG_CLASS_WEIGHTS`], starting from SIRT-100
/// as in the study; `op` scans at `n_angles`.
///
/// # Errors
/// Tomography, network and metric errors.
#[allow(clippy::too_many_arguments)]
pub fn tune_pg_class<N: InvertibleNet + ?Sized>(
    truths: &[Array2<f32>],
    net: &N,
    op: &CsrOperator,
    n_angles: usize,
    noise: Option<f64>,
    iterations: usize,
    seed: u64,
) -> Result<PgClassTuning> {
    let sinos = val_sinograms(truths, op, noise, seed)?;
    let views: Vec<_> = sinos.iter().map(|s| s.view()).collect();
    let inits = sirt100()?.reconstruct_batch(op, &views, None)?;
    let init_views: Vec<ArrayView2<f32>> = inits.iter().map(|r| r.image.view()).collect();
    let labels = vec![LabelMode::Predicted; views.len()];
    let mut val_psnr = Vec::new();
    for &w in &PG_CLASS_WEIGHTS {
        let recs = pg_solver(iterations, w)?.reconstruct_batch(
            net,
            op,
            &views,
            &labels,
            Some(&init_views),
        )?;
        val_psnr.push((w, mean_psnr(truths, recs.iter().map(|r| &r.image))?));
    }
    Ok(PgClassTuning {
        noise_i0: noise,
        n_angles,
        class_weight: best_of(&val_psnr)?,
        val_psnr,
    })
}

/// The inversion-step optimisers the hybrid schedule is tuned over (per angle count and
/// noise level, as the TV weight is): Adam moves every pixel by about `lr` per step
/// whatever its gradient, SGD in proportion to the gradient.
pub fn hybrid_candidates(base: &HybridConfig) -> Vec<HybridConfig> {
    let with = |optimizer, lr| {
        let mut cfg = base.clone();
        cfg.inversion.optimizer = optimizer;
        cfg.inversion.lr = lr;
        cfg
    };
    let adam = [3e-4, 1e-3, 3e-3, 1e-2].map(|lr| with(ImageOptimizer::adam(), lr));
    let sgd = [1.0, 10.0].map(|lr| with(ImageOptimizer::Sgd { momentum: 0.9 }, lr));
    adam.into_iter().chain(sgd).collect()
}

/// `adam lr 0.001` / `sgd lr 10`.
pub fn optimizer_name(cfg: &HybridConfig) -> String {
    let lr = cfg.inversion.lr;
    match cfg.inversion.optimizer {
        ImageOptimizer::Adam { .. } => format!("adam lr {lr}"),
        ImageOptimizer::Sgd { .. } => format!("sgd lr {lr}"),
        ImageOptimizer::Lbfgs { .. } => format!("lbfgs lr {lr}"),
    }
}

/// Tunes the hybrid's inversion optimiser and learning rate over [`hybrid_candidates`],
/// label-free with both terms.
///
/// # Errors
/// Tomography, network and metric errors.
pub fn tune_hybrid<N: InvertibleNet + ?Sized>(
    truths: &[Array2<f32>],
    net: &N,
    op: &CsrOperator,
    noise: Option<f64>,
    base: &HybridConfig,
    seed: u64,
) -> Result<HybridTuning> {
    let sinos = val_sinograms(truths, op, noise, seed)?;
    let views: Vec<_> = sinos.iter().map(|s| s.view()).collect();
    let labels = vec![LabelMode::Predicted; views.len()];
    let candidates = hybrid_candidates(base);
    let mut scores = Vec::new();
    for (k, cand) in candidates.iter().enumerate() {
        let recs =
            HybridReconstructor::new(cand.clone())?.reconstruct_batch(net, op, &views, &labels)?;
        scores.push((k, mean_psnr(truths, recs.iter().map(|r| &r.image))?));
    }
    let best = best_of(&scores)?;
    let hybrid = candidates.get(best).cloned().ok_or_else(|| Error::Shape {
        what: "hybrid candidates",
        expected: format!("an index below {}", candidates.len()),
        got: best.to_string(),
    })?;
    let val_psnr = scores
        .iter()
        .map(|&(k, p)| (optimizer_name(&candidates[k]), p))
        .collect();
    Ok(HybridTuning { hybrid, val_psnr })
}
