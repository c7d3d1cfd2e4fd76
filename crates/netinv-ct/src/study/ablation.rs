//! The hybrid's ablation done right (issue 18): every arm tuned on its own, a SIRT arm with
//! the hybrid's own SIRT budget, several classifier seeds, and CIs that include the
//! seed-to-seed variance.
//!
//! Arms ([`AblationArm`]), each reconstructing the same test digits at one setting (angle
//! count x noise level) with one classifier:
//!
//! | arm | what |
//! | --- | --- |
//! | `sirt100` | 100 SIRT iterations, box [0, 1] |
//! | `sirt88` | as many SIRT iterations as the hybrid schedule spends ([`HybridConfig::sirt_iterations`], 50 + 38 = 88 at the defaults) |
//! | `full` | the hybrid, class term (label-free, the net's prediction) + TV + L2 + BN priors |
//! | `priors_only` | the same schedule, TV + L2 + BN priors only |
//! | `class_only` | the same schedule, class term only (label-free) |
//!
//! Tuning, the same procedure and budget for the three hybrid arms ([`tune_arm`]): a seeded
//! random search over [`SearchSpace`] (the inversion optimiser and its lr, and the TV, L2
//! and BN-statistics weights), [`AblationConfig::candidates`] candidates, candidate 0 the
//! shipped defaults ([`HybridConfig::default`]). The candidate list is drawn once from
//! `search_seed` and shared by every arm, setting and classifier (common random numbers):
//! candidate `k` of the priors-only arm is candidate `k` of the full arm without the class
//! term, and the class-only arm uses its optimiser and lr (it has no prior weights). The
//! class weight stays 1: the prior weights set the ratio of the terms and the lr the scale.
//! Each candidate reconstructs all validation digits (training digits the classifiers never
//! saw; never test digits) as one batch; the arm takes the best mean PSNR (first of equals).
//! Every (classifier seed, setting) pair tunes its own arms.
//!
//! Statistics ([`summarize_ablation`]): per setting, the paired per-digit PSNR differences
//! of [`PAIRS`] over every classifier seed and digit, with two 95% intervals:
//! * a crossed bootstrap ([`crossed_bootstrap_ci`]): [`BOOTSTRAP_REPS`] resamples, each
//!   drawing the seeds with replacement and the digits with replacement (one digit draw
//!   shared by every seed, since every seed reconstructs the same digits), the percentile
//!   interval of the resampled means; the draws come from splitmix64 seeded with
//!   [`BOOTSTRAP_SEED`], so `tools/ct/ablation_tables.py` computes the same numbers;
//! * a Student-t interval over the per-seed mean differences (`n_seeds - 1` degrees of
//!   freedom): the seed as the unit, conservative with few seeds.

use ndarray::{Array2, ArrayView2};
use netinv_invert::{ImageOptimizer, InvertibleNet};
use netinv_tomo::{CsrOperator, Sirt, SirtConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::baselines::sinogram;
use super::stats::metrics;
use super::tuning::{best_of, mean_psnr, val_sinograms};
use super::{Digits, Setting, SIZE};
use crate::error::invalid;
use crate::{HybridConfig, HybridReconstructor, InversionTerms, LabelMode, Result};

/// The study's name in shard manifests.
pub const SHARD_ABLATION: &str = "ct_ablation";

/// Resamples of the crossed bootstrap.
pub const BOOTSTRAP_REPS: usize = 2000;

/// Seed of the crossed bootstrap's splitmix64 stream (the same for every cell).
pub const BOOTSTRAP_SEED: u64 = 2026;

/// An arm of the ablation. The serde names are the `arm` column of `per_image.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AblationArm {
    /// 100 SIRT iterations, box [0, 1].
    Sirt100,
    /// As many SIRT iterations as the hybrid schedule spends (88 at the defaults).
    Sirt88,
    /// The hybrid with class term (label-free) and priors, tuned on its own.
    Full,
    /// The hybrid with the priors only, tuned on its own.
    PriorsOnly,
    /// The hybrid with the class term only (label-free), tuned on its own.
    ClassOnly,
}

impl AblationArm {
    /// Every arm, in the order of the tables and of a job's rows.
    pub const ALL: [Self; 5] = [
        Self::Sirt100,
        Self::Sirt88,
        Self::Full,
        Self::PriorsOnly,
        Self::ClassOnly,
    ];

    /// The arms that are tuned (the hybrid ones).
    pub const TUNED: [Self; 3] = [Self::Full, Self::PriorsOnly, Self::ClassOnly];

    /// `sirt100`, `sirt88`, `full`, `priors_only` or `class_only`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sirt100 => "sirt100",
            Self::Sirt88 => "sirt88",
            Self::Full => "full",
            Self::PriorsOnly => "priors_only",
            Self::ClassOnly => "class_only",
        }
    }

    /// The terms of a hybrid arm (`None` for the SIRT arms).
    pub fn terms(self) -> Option<InversionTerms> {
        match self {
            Self::Full => Some(InversionTerms::Both),
            Self::PriorsOnly => Some(InversionTerms::PriorsOnly),
            Self::ClassOnly => Some(InversionTerms::ClassOnly),
            Self::Sirt100 | Self::Sirt88 => None,
        }
    }
}

/// The paired differences `(a, b)` (a minus b) the summary reports, in table order: the
/// class term's effect (full - priors_only), the priors' (full - class_only), the hybrid
/// against SIRT-100 and against SIRT at its own budget, the priors-only arm against that
/// budget, and the schedule's SIRT deficit (sirt88 - sirt100).
pub const PAIRS: [(AblationArm, AblationArm); 6] = [
    (AblationArm::Full, AblationArm::PriorsOnly),
    (AblationArm::Full, AblationArm::ClassOnly),
    (AblationArm::Full, AblationArm::Sirt100),
    (AblationArm::Full, AblationArm::Sirt88),
    (AblationArm::PriorsOnly, AblationArm::Sirt88),
    (AblationArm::Sirt88, AblationArm::Sirt100),
];

/// The ranges of the random search (log-uniform in each; the optimiser Adam or SGD with
/// heavy-ball momentum 0.9, each with probability 1/2).
///
/// Defaults: Adam lr [1e-4, 3e-2], SGD lr [0.1, 30], TV [1e-5, 1e-1], L2 [1e-6, 1e-2], BN
/// [1e-4, 1]: two decades or more on each side of the shipped defaults (Adam 3e-3, TV
/// 1e-3, L2 1e-4, BN 1e-2), and the ranges of the study's former grid (Adam 3e-4 to 1e-2,
/// SGD 1 and 10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchSpace {
    /// Adam's lr range `[lo, hi]`.
    pub adam_lr: [f64; 2],
    /// SGD's lr range.
    pub sgd_lr: [f64; 2],
    /// The squared-TV weight's range.
    pub tv: [f64; 2],
    /// The squared-L2 weight's range.
    pub l2: [f64; 2],
    /// The BatchNorm-statistics weight's range.
    pub bn: [f64; 2],
}

impl Default for SearchSpace {
    fn default() -> Self {
        Self {
            adam_lr: [1e-4, 3e-2],
            sgd_lr: [0.1, 30.0],
            tv: [1e-5, 1e-1],
            l2: [1e-6, 1e-2],
            bn: [1e-4, 1.0],
        }
    }
}

impl SearchSpace {
    /// Checks every range.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a range that is not finite with `0 < lo <= hi`.
    pub fn validate(&self) -> Result<()> {
        for (field, [lo, hi]) in [
            ("search.adam_lr", self.adam_lr),
            ("search.sgd_lr", self.sgd_lr),
            ("search.tv", self.tv),
            ("search.l2", self.l2),
            ("search.bn", self.bn),
        ] {
            if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
                return Err(invalid(
                    field,
                    format!("[{lo}, {hi}] is not a finite range with 0 < lo <= hi"),
                ));
            }
        }
        Ok(())
    }
}

/// The settings of an ablation study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AblationConfig {
    /// Angle counts (each at least 1, no repeats).
    pub angles: Vec<usize>,
    /// Noise levels: photons per ray, `None` for noiseless (no repeats).
    pub noises: Vec<Option<f64>>,
    /// Candidates of the random search per arm (at least 1; candidate 0 is `hybrid`).
    pub candidates: usize,
    /// Seed of the candidate draws.
    pub search_seed: u64,
    /// The ranges of the search.
    pub search: SearchSpace,
    /// Seed of the noise (test digit `i` of setting `s`: `seed ^ (s << 32) ^ i`; validation
    /// digit `i`: `seed ^ 0x5eed_0000 ^ i`, as in the study).
    pub seed: u64,
    /// The hybrid schedule: candidate 0 of every arm, and the schedule every candidate
    /// keeps (iterations, steps, clamp).
    pub hybrid: HybridConfig,
}

impl Default for AblationConfig {
    /// 3 and 4 angles, noiseless and I0 = 1e3, 16 candidates (the `ct_ablation` example's
    /// default), search seed 0, noise seed 0, the default hybrid schedule.
    fn default() -> Self {
        Self {
            angles: vec![3, 4],
            noises: vec![None, Some(1e3)],
            candidates: 16,
            search_seed: 0,
            search: SearchSpace::default(),
            seed: 0,
            hybrid: HybridConfig::default(),
        }
    }
}

impl AblationConfig {
    /// The `--quick` settings: 4 angles, noiseless, 3 candidates.
    pub fn quick() -> Self {
        Self {
            angles: vec![4],
            noises: vec![None],
            candidates: 3,
            ..Self::default()
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for no angle counts or noise levels, a zero angle
    /// count, a repeat, a photon count that is not finite and > 0, zero candidates, a bad
    /// search range, or a hybrid schedule that is invalid or does no inversion.
    pub fn validate(&self) -> Result<()> {
        // the study's checks of the same fields
        super::StudyConfig {
            angles: self.angles.clone(),
            noises: self.noises.clone(),
            pdhg_iterations: 1,
            pg_iterations: 0,
            pg_images: 0,
            grid_digits: 0,
            seed: self.seed,
            hybrid: self.hybrid.clone(),
            generative: Default::default(),
        }
        .validate()?;
        if self.candidates == 0 {
            return Err(invalid("candidates", "at least one candidate is needed"));
        }
        if !self.hybrid.inverts() {
            return Err(invalid(
                "hybrid",
                "the schedule does no inversion (steps, inversion_per_cycle or alternating is 0)",
            ));
        }
        self.search.validate()
    }

    /// The settings, angle-major (their index is their position).
    pub fn settings(&self) -> Vec<Setting> {
        self.angles
            .iter()
            .flat_map(|&n_angles| self.noises.iter().map(move |&noise| (n_angles, noise)))
            .enumerate()
            .map(|(index, (n_angles, noise))| Setting {
                index,
                n_angles,
                noise,
            })
            .collect()
    }

    /// The candidates of the search, with the full arm's terms: candidate 0 is
    /// `self.hybrid`, then `candidates - 1` draws from one [`StdRng`] seeded with
    /// `search_seed` (per draw: the optimiser, its lr, then TV, L2, BN, each log-uniform).
    pub fn candidate_list(&self) -> Vec<HybridConfig> {
        fn log_uniform(rng: &mut StdRng, [lo, hi]: [f64; 2]) -> f64 {
            let u: f64 = rng.random();
            (lo.ln() + u * (hi.ln() - lo.ln())).exp()
        }
        let mut rng = StdRng::seed_from_u64(self.search_seed);
        let mut out = vec![HybridConfig {
            terms: InversionTerms::Both,
            ..self.hybrid.clone()
        }];
        let s = &self.search;
        for _ in 1..self.candidates {
            let mut cfg = out[0].clone();
            if rng.random::<f64>() < 0.5 {
                cfg.inversion.optimizer = ImageOptimizer::adam();
                cfg.inversion.lr = log_uniform(&mut rng, s.adam_lr);
            } else {
                cfg.inversion.optimizer = ImageOptimizer::Sgd { momentum: 0.9 };
                cfg.inversion.lr = log_uniform(&mut rng, s.sgd_lr);
            }
            cfg.inversion.tv = log_uniform(&mut rng, s.tv);
            cfg.inversion.l2 = log_uniform(&mut rng, s.l2);
            cfg.inversion.bn = log_uniform(&mut rng, s.bn);
            out.push(cfg);
        }
        out
    }

    /// The SIRT iterations of the `sirt88` arm: those the hybrid schedule spends.
    pub fn sirt_budget(&self) -> usize {
        self.hybrid.sirt_iterations()
    }

    /// Estimated relative cost of a job at `n_angles` (tuning dominates; only the order
    /// and the shard balance use it).
    pub fn job_cost(&self, n_angles: usize) -> f64 {
        10.0 + 0.1 * n_angles as f64
    }
}

/// One candidate of a tuning log, with the weights the arm actually uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateScore {
    /// `adam` or `sgd`.
    pub optimizer: String,
    /// The lr.
    pub lr: f64,
    /// TV weight (0 where the arm has no priors).
    pub tv: f64,
    /// L2 weight.
    pub l2: f64,
    /// BN-statistics weight.
    pub bn: f64,
    /// Mean validation PSNR (dB, capped as in the study).
    pub val_psnr: f64,
}

/// The tuning of one arm at one setting with one classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmTuning {
    /// The arm.
    pub arm: AblationArm,
    /// The index of the chosen candidate.
    pub chosen: usize,
    /// Every candidate's score, in candidate order.
    pub scores: Vec<CandidateScore>,
}

impl ArmTuning {
    /// The chosen candidate's score.
    ///
    /// # Panics
    /// Never for a tuning from [`tune_arm`] (`chosen` indexes `scores`).
    pub fn best(&self) -> &CandidateScore {
        &self.scores[self.chosen]
    }
}

/// `cfg` as the hybrid arm `arm` runs it.
///
/// # Errors
/// [`crate::Error::InvalidConfig`] for a SIRT arm.
pub fn arm_config(cfg: &HybridConfig, arm: AblationArm) -> Result<HybridConfig> {
    let terms = arm
        .terms()
        .ok_or_else(|| invalid("arm", format!("{} is not a hybrid arm", arm.name())))?;
    Ok(HybridConfig {
        terms,
        ..cfg.clone()
    })
}

/// The labels of an arm's digits: label-free (the net's prediction) for every hybrid arm
/// (the priors-only arm ignores it).
fn free_labels(n: usize) -> Vec<LabelMode> {
    vec![LabelMode::Predicted; n]
}

/// Tunes the hybrid arm `arm` over `candidates` (from [`AblationConfig::candidate_list`]) on
/// the validation digits `truths` scanned by `op` with `noise`: each candidate
/// reconstructs every digit as one batch; the best mean PSNR wins (first of equals).
///
/// # Errors
/// [`crate::Error::InvalidConfig`] for a SIRT arm or no candidates; tomography, network
/// and metric errors.
pub fn tune_arm<N: InvertibleNet + ?Sized>(
    truths: &[Array2<f32>],
    net: &N,
    op: &CsrOperator,
    noise: Option<f64>,
    arm: AblationArm,
    candidates: &[HybridConfig],
    seed: u64,
) -> Result<ArmTuning> {
    let sinos = val_sinograms(truths, op, noise, seed)?;
    let views: Vec<_> = sinos.iter().map(|s| s.view()).collect();
    let labels = free_labels(views.len());
    let mut scores = Vec::with_capacity(candidates.len());
    for cand in candidates {
        let cfg = arm_config(cand, arm)?;
        let recs =
            HybridReconstructor::new(cfg.clone())?.reconstruct_batch(net, op, &views, &labels)?;
        let w = cfg.net_terms();
        scores.push(CandidateScore {
            optimizer: match cfg.inversion.optimizer {
                ImageOptimizer::Adam { .. } => "adam".into(),
                ImageOptimizer::Sgd { .. } => "sgd".into(),
                ImageOptimizer::Lbfgs { .. } => "lbfgs".into(),
            },
            lr: cfg.inversion.lr,
            tv: w.tv,
            l2: w.l2,
            bn: w.bn,
            val_psnr: mean_psnr(truths, recs.iter().map(|r| &r.image))?,
        });
    }
    let indexed: Vec<(usize, f64)> = scores.iter().map(|s| s.val_psnr).enumerate().collect();
    let chosen = best_of(&indexed)?;
    Ok(ArmTuning {
        arm,
        chosen,
        scores,
    })
}

/// One reconstruction's metrics: a row of the ablation's `per_image.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AblationImage {
    /// The classifier's training seed.
    pub classifier_seed: u64,
    /// The arm.
    pub arm: AblationArm,
    /// The test digit's index.
    pub image: usize,
    /// Projection angles.
    pub n_angles: usize,
    /// Photons per ray (`None`: noiseless).
    pub noise_i0: Option<f64>,
    /// PSNR (dB, data range 1, capped at [`super::PSNR_CAP`]).
    pub psnr: f64,
    /// SSIM (Gaussian window).
    pub ssim: f64,
}

/// What one job (a classifier seed at a setting) produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AblationJobOutput {
    /// The classifier's training seed.
    pub classifier_seed: u64,
    /// The setting.
    pub setting: Setting,
    /// The tuning of each hybrid arm, in [`AblationArm::TUNED`] order.
    pub tuning: Vec<ArmTuning>,
    /// Every arm on every test digit, digit-major, arms in [`AblationArm::ALL`] order.
    pub per_image: Vec<AblationImage>,
}

/// The test digits' sinograms at `setting` (noise seeded as in the study).
fn test_sinograms(
    op: &CsrOperator,
    test: &Digits,
    setting: &Setting,
    seed: u64,
) -> Result<Vec<Array2<f32>>> {
    test.images
        .iter()
        .enumerate()
        .map(|(i, truth)| {
            let s = seed ^ ((setting.index as u64) << 32) ^ i as u64;
            sinogram(op, truth.view(), setting.noise, s)
        })
        .collect()
}

/// SIRT with `iterations` and the box [0, 1] on every sinogram.
fn sirt_images(
    op: &CsrOperator,
    views: &[ArrayView2<f32>],
    iterations: usize,
) -> Result<Vec<Array2<f32>>> {
    let sirt = Sirt::new(SirtConfig {
        iterations,
        min: Some(0.0),
        max: Some(1.0),
        ..Default::default()
    })?;
    Ok(sirt
        .reconstruct_batch(op, views, None)?
        .into_iter()
        .map(|r| r.image)
        .collect())
}

/// One job of the ablation: with the classifier `net` (trained with `classifier_seed`) at
/// `setting`, tunes the three hybrid arms on `val` (over `candidates`), then runs every arm
/// on every test digit.
///
/// # Errors
/// [`crate::Error::InvalidConfig`] for an invalid configuration, no validation or test
/// digits, or labels that do not match the test images; solver, network and metric errors.
pub fn run_ablation_job<N: InvertibleNet + ?Sized>(
    cfg: &AblationConfig,
    candidates: &[HybridConfig],
    classifier_seed: u64,
    net: &N,
    setting: &Setting,
    val: &[Array2<f32>],
    test: &Digits,
) -> Result<AblationJobOutput> {
    cfg.validate()?;
    if val.is_empty() || test.images.is_empty() || test.images.len() != test.labels.len() {
        return Err(invalid(
            "digits",
            "need validation digits, and test digits with one label each",
        ));
    }
    let op = CsrOperator::new(&crate::scan_operator(SIZE, setting.n_angles)?);
    let tuning = AblationArm::TUNED
        .iter()
        .map(|&arm| tune_arm(val, net, &op, setting.noise, arm, candidates, cfg.seed))
        .collect::<Result<Vec<_>>>()?;
    let sinos = test_sinograms(&op, test, setting, cfg.seed)?;
    let views: Vec<ArrayView2<f32>> = sinos.iter().map(|s| s.view()).collect();
    let mut images: Vec<(AblationArm, Vec<Array2<f32>>)> = vec![
        (AblationArm::Sirt100, sirt_images(&op, &views, 100)?),
        (
            AblationArm::Sirt88,
            sirt_images(&op, &views, cfg.sirt_budget())?,
        ),
    ];
    let labels = free_labels(views.len());
    for t in &tuning {
        let chosen = candidates
            .get(t.chosen)
            .ok_or_else(|| invalid("candidates", "the chosen candidate is missing"))?;
        let recs = HybridReconstructor::new(arm_config(chosen, t.arm)?)?
            .reconstruct_batch(net, &op, &views, &labels)?;
        images.push((t.arm, recs.into_iter().map(|r| r.image).collect()));
    }
    let mut per_image = Vec::with_capacity(views.len() * images.len());
    for (i, truth) in test.images.iter().enumerate() {
        for (arm, recs) in &images {
            let (_, psnr, ssim) = metrics(truth.view(), recs[i].view())?;
            per_image.push(AblationImage {
                classifier_seed,
                arm: *arm,
                image: i,
                n_angles: setting.n_angles,
                noise_i0: setting.noise,
                psnr,
                ssim,
            });
        }
    }
    Ok(AblationJobOutput {
        classifier_seed,
        setting: *setting,
        tuning,
        per_image,
    })
}

/// A splitmix64 stream (Steele, Lea and Flood 2014): the bootstrap's draws, simple enough
/// to repeat exactly in the docs script.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A stream from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 bits.
    ///
    /// ```text
    /// s += 0x9e3779b97f4a7c15; z = s
    /// z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
    /// z = (z ^ (z >> 27)) * 0x94d049bb133111eb
    /// z ^ (z >> 31)
    /// ```
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// An index in `0..n` (`next_u64() % n`; the bias is below `n / 2^64`).
    ///
    /// # Panics
    /// If `n` is 0.
    pub fn index(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// The 95% percentile interval of the crossed bootstrap of the grand mean of `d`
/// (`d[s][i]`: seed `s`, digit `i`; every seed has the same digits): `reps` resamples, each
/// drawing `S` seeds with replacement then `n` digit indices with replacement (shared by the
/// drawn seeds) from [`SplitMix64`]`(seed)`, the mean summed seed by seed in draw order; the
/// interval is the sorted means' entries `floor(0.025 reps)` and `ceil(0.975 reps) - 1`.
///
/// # Errors
/// [`crate::Error::InvalidConfig`] if `d` is empty, a seed has no digits or seeds differ
/// in digit count, or `reps` is 0.
pub fn crossed_bootstrap_ci(d: &[Vec<f64>], reps: usize, seed: u64) -> Result<(f64, f64)> {
    let n = d.first().map_or(0, Vec::len);
    if n == 0 || d.iter().any(|v| v.len() != n) || reps == 0 {
        return Err(invalid(
            "bootstrap",
            "need at least one seed, the same number (>= 1) of digits per seed, reps >= 1",
        ));
    }
    let s = d.len();
    let mut rng = SplitMix64::new(seed);
    let mut means = Vec::with_capacity(reps);
    let (mut seeds, mut digits) = (vec![0usize; s], vec![0usize; n]);
    for _ in 0..reps {
        seeds.iter_mut().for_each(|k| *k = rng.index(s));
        digits.iter_mut().for_each(|k| *k = rng.index(n));
        let mut acc = 0.0f64;
        for &k in &seeds {
            for &i in &digits {
                acc += d[k][i];
            }
        }
        means.push(acc / (s * n) as f64);
    }
    means.sort_by(f64::total_cmp);
    let lo = (0.025 * reps as f64).floor() as usize;
    let hi = ((0.975 * reps as f64).ceil() as usize).saturating_sub(1);
    Ok((means[lo], means[hi.min(reps - 1)]))
}

/// The summary of one quantity (an arm's PSNR or a paired difference) at one setting over
/// every classifier seed and digit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedSummary {
    /// `sirt100`, ... for an arm; `full - priors_only`, ... for a difference.
    pub name: String,
    /// Projection angles.
    pub n_angles: usize,
    /// Photons per ray (`None`: noiseless).
    pub noise_i0: Option<f64>,
    /// Classifier seeds.
    pub n_seeds: usize,
    /// Digits per seed.
    pub n_digits: usize,
    /// The mean over seeds and digits (dB).
    pub mean: f64,
    /// The crossed bootstrap's 95% interval.
    pub boot_ci: (f64, f64),
    /// The Student-t 95% interval over the per-seed means (NaN with one seed).
    #[serde(deserialize_with = "pair_nan_from_null")]
    pub t_ci: (f64, f64),
    /// The mean of each seed, in seed order.
    pub seed_means: Vec<f64>,
    /// The digits with a positive value, summed over seeds (wins of a difference).
    pub positive: usize,
}

fn pair_nan_from_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<(f64, f64), D::Error> {
    let (a, b) = <(Option<f64>, Option<f64>)>::deserialize(d)?;
    Ok((a.unwrap_or(f64::NAN), b.unwrap_or(f64::NAN)))
}

/// The [`SeedSummary`] of `d[s][i]` (seed `s`, digit `i`).
///
/// # Errors
/// As [`crossed_bootstrap_ci`].
pub fn seed_summary(
    name: String,
    setting: (usize, Option<f64>),
    d: &[Vec<f64>],
) -> Result<SeedSummary> {
    let boot_ci = crossed_bootstrap_ci(d, BOOTSTRAP_REPS, BOOTSTRAP_SEED)?;
    let seed_means: Vec<f64> = d
        .iter()
        .map(|v| v.iter().sum::<f64>() / v.len() as f64)
        .collect();
    let total: f64 = d.iter().map(|v| v.iter().sum::<f64>()).sum();
    let n_digits = d[0].len();
    let t = netinv_metrics::stats::mean_ci95_t(&seed_means);
    Ok(SeedSummary {
        name,
        n_angles: setting.0,
        noise_i0: setting.1,
        n_seeds: d.len(),
        n_digits,
        mean: total / (d.len() * n_digits) as f64,
        boot_ci,
        t_ci: (t.mean - t.half_width, t.mean + t.half_width),
        seed_means,
        positive: d.iter().flatten().filter(|v| **v > 0.0).count(),
    })
}

/// The summary of an ablation's rows: per setting (angles ascending, then noise levels in
/// order of first appearance), every arm's PSNR (in [`AblationArm::ALL`] order) then every
/// difference of [`PAIRS`]; seeds ascending, digits by index.
///
/// # Errors
/// [`crate::Error::InvalidConfig`] if an arm misses a digit or seed that another has, or
/// there are no rows.
pub fn summarize_ablation(rows: &[AblationImage]) -> Result<Vec<SeedSummary>> {
    if rows.is_empty() {
        return Err(invalid("per_image", "no rows to summarise"));
    }
    let mut angles: Vec<usize> = rows.iter().map(|r| r.n_angles).collect();
    angles.sort_unstable();
    angles.dedup();
    let mut noises: Vec<Option<f64>> = Vec::new();
    let mut seeds: Vec<u64> = Vec::new();
    let mut digits: Vec<usize> = Vec::new();
    for r in rows {
        if !noises.contains(&r.noise_i0) {
            noises.push(r.noise_i0);
        }
        if !seeds.contains(&r.classifier_seed) {
            seeds.push(r.classifier_seed);
        }
        if !digits.contains(&r.image) {
            digits.push(r.image);
        }
    }
    seeds.sort_unstable();
    digits.sort_unstable();
    let lookup: std::collections::HashMap<(u64, AblationArm, usize, usize, u64), f64> = rows
        .iter()
        .map(|r| {
            let key = (
                r.classifier_seed,
                r.arm,
                r.image,
                r.n_angles,
                r.noise_i0.map_or(0, f64::to_bits),
            );
            (key, r.psnr)
        })
        .collect();
    let mut out = Vec::new();
    for &a in &angles {
        for &noise in &noises {
            let grid = |arm: AblationArm| -> Result<Vec<Vec<f64>>> {
                seeds
                    .iter()
                    .map(|&s| {
                        digits
                            .iter()
                            .map(|&i| {
                                lookup
                                    .get(&(s, arm, i, a, noise.map_or(0, f64::to_bits)))
                                    .copied()
                                    .ok_or_else(|| {
                                        invalid(
                                            "per_image",
                                            format!(
                                                "{} has no digit {i} for seed {s} at {a} angles",
                                                arm.name()
                                            ),
                                        )
                                    })
                            })
                            .collect()
                    })
                    .collect()
            };
            let present = |arm: AblationArm| {
                rows.iter()
                    .any(|r| r.arm == arm && r.n_angles == a && r.noise_i0 == noise)
            };
            if !AblationArm::ALL.iter().any(|&arm| present(arm)) {
                continue;
            }
            for arm in AblationArm::ALL {
                if present(arm) {
                    out.push(seed_summary(arm.name().into(), (a, noise), &grid(arm)?)?);
                }
            }
            for (x, y) in PAIRS {
                if !(present(x) && present(y)) {
                    continue;
                }
                let (gx, gy) = (grid(x)?, grid(y)?);
                let d: Vec<Vec<f64>> = gx
                    .iter()
                    .zip(&gy)
                    .map(|(u, v)| u.iter().zip(v).map(|(p, q)| p - q).collect())
                    .collect();
                out.push(seed_summary(
                    format!("{} - {}", x.name(), y.name()),
                    (a, noise),
                    &d,
                )?);
            }
        }
    }
    Ok(out)
}

/// The table line of a summary as the docs print it:
/// `| noise | angles | name | mean | [boot lo, hi] | [t lo, hi] | seed means |`, two decimals
/// (signed for differences).
pub fn summary_line(s: &SeedSummary) -> String {
    let diff = s.name.contains(" - ");
    let num = |v: f64| {
        if diff {
            format!("{v:+.2}")
        } else {
            format!("{v:.2}")
        }
    };
    let seeds: Vec<String> = s.seed_means.iter().map(|&v| num(v)).collect();
    let t = if s.t_ci.0.is_finite() {
        format!("[{}, {}]", num(s.t_ci.0), num(s.t_ci.1))
    } else {
        "-".into()
    };
    format!(
        "| {} | {} | {} | {} | [{}, {}] | {} | {} |",
        super::noise_name(s.noise_i0),
        s.n_angles,
        s.name,
        num(s.mean),
        num(s.boot_ci.0),
        num(s.boot_ci.1),
        t,
        seeds.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_known_values() {
        // the reference stream of Vigna's splitmix64.c from seed 1234567
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn bootstrap_of_a_constant_is_the_constant_and_wider_with_seed_spread() {
        let flat = vec![vec![1.5; 20]; 3];
        assert_eq!(crossed_bootstrap_ci(&flat, 200, 1).unwrap(), (1.5, 1.5));
        // digits identical, seeds apart: the interval comes from the seeds alone
        let seeds = vec![vec![0.0; 20], vec![1.0; 20], vec![2.0; 20]];
        let (lo, hi) = crossed_bootstrap_ci(&seeds, 2000, 1).unwrap();
        assert!(lo < 0.5 && hi > 1.5, "{lo} {hi}");
        assert!(crossed_bootstrap_ci(&[], 10, 1).is_err());
        assert!(crossed_bootstrap_ci(&[vec![1.0], vec![]], 10, 1).is_err());
    }

    #[test]
    fn candidates_start_at_the_defaults_and_repeat() {
        let cfg = AblationConfig::default();
        let a = cfg.candidate_list();
        assert_eq!(a.len(), 16);
        assert_eq!(a[0], HybridConfig::default());
        assert_eq!(a, cfg.candidate_list());
        let s = &cfg.search;
        for c in &a[1..] {
            let lr = c.inversion.lr;
            let range = match c.inversion.optimizer {
                ImageOptimizer::Adam { .. } => s.adam_lr,
                ImageOptimizer::Sgd { .. } => s.sgd_lr,
                ImageOptimizer::Lbfgs { .. } => panic!("the search never draws L-BFGS"),
            };
            assert!(lr >= range[0] && lr <= range[1]);
            assert!(c.inversion.tv >= s.tv[0] && c.inversion.tv <= s.tv[1]);
            assert!(c.inversion.bn >= s.bn[0] && c.inversion.bn <= s.bn[1]);
            // the schedule is kept
            assert_eq!(c.sirt_iterations(), 88);
        }
        assert!(a[1..]
            .iter()
            .any(|c| matches!(c.inversion.optimizer, ImageOptimizer::Sgd { .. })));
        let other = AblationConfig {
            search_seed: 1,
            ..cfg.clone()
        };
        assert_ne!(other.candidate_list()[1], a[1]);
    }

    #[test]
    fn each_rule_is_checked() {
        let field = |c: AblationConfig| match c.validate() {
            Err(crate::Error::InvalidConfig { field, .. }) => field.to_string(),
            other => panic!("{other:?}"),
        };
        let ok = AblationConfig::default();
        ok.validate().unwrap();
        assert_eq!(
            field(AblationConfig {
                candidates: 0,
                ..ok.clone()
            }),
            "candidates"
        );
        assert_eq!(
            field(AblationConfig {
                angles: vec![],
                ..ok.clone()
            }),
            "angles"
        );
        let mut bad = ok.clone();
        bad.search.tv = [1e-2, 1e-3];
        assert_eq!(field(bad), "search.tv");
        let mut bad = ok.clone();
        bad.search.bn = [0.0, 1.0];
        assert_eq!(field(bad), "search.bn");
        let mut bad = ok.clone();
        bad.hybrid.inversion.steps = 0;
        assert_eq!(field(bad), "hybrid");
        assert!(arm_config(&ok.hybrid, AblationArm::Sirt88).is_err());
    }

    #[test]
    fn summary_of_known_rows() {
        let mut rows = Vec::new();
        for seed in [0u64, 1] {
            for image in 0..4 {
                for (arm, psnr) in [
                    (AblationArm::PriorsOnly, 10.0),
                    (AblationArm::Full, 10.0 + seed as f64 + image as f64 * 0.5),
                ] {
                    rows.push(AblationImage {
                        classifier_seed: seed,
                        arm,
                        image,
                        n_angles: 4,
                        noise_i0: None,
                        psnr,
                        ssim: 1.0,
                    });
                }
            }
        }
        let s = summarize_ablation(&rows).unwrap();
        let names: Vec<&str> = s.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["full", "priors_only", "full - priors_only"]);
        let d = &s[2];
        // seed 0: 0, .5, 1, 1.5 (mean .75); seed 1: 1.75
        assert_eq!(d.seed_means, vec![0.75, 1.75]);
        assert!((d.mean - 1.25).abs() < 1e-12);
        assert_eq!(d.positive, 7);
        // t with 1 df: 12.706 * sd(0.75, 1.75) / sqrt 2 = 12.706 * 0.5
        assert!(
            (d.t_ci.1 - 1.25 - 12.7062 * 0.5).abs() < 1e-3,
            "{:?}",
            d.t_ci
        );
        assert_eq!(
            summary_line(&s[1]),
            "| none | 4 | priors_only | 10.00 | [10.00, 10.00] | [10.00, 10.00] | 10.00, 10.00 |"
        );
        rows.pop();
        assert!(summarize_ablation(&rows).is_err());
    }
}
