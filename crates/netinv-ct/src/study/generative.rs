//! The generative-prior arms of the study (issue 17): latent search through a VAE's or a
//! conditional VAE's decoder, then data-consistency refinement, every choice tuned on the
//! validation digits of the setting (never on test digits).
//!
//! | arm | label_mode | what |
//! | --- | --- | --- |
//! | `vae` | none | latent search through the unconditional VAE, `vae_starts` starts |
//! | `vae_dc` | none | its refinement (anchor and TV weight tuned; anchor 0 is the TV arm) |
//! | `cvae` | predicted | label-free: every class searched, the best objective's class kept |
//! | `cvae` | oracle | the true class only (upper bound) |
//! | `cvae_dc` | predicted / oracle | their refinements (the oracle reuses the label-free arm's tuned values) |
//!
//! Tuning per setting and model: the latent prior weight over `prior_weights` (best mean
//! PSNR of the decoded images), then the refinement over `(0, TV arm's weight)` (the TV
//! arm itself) and `anchors x refine_tv_weights`, one PDHG batch; ties go to the TV arm.

use ndarray::{Array2, ArrayView2};
use netinv_tomo::{CsrOperator, TvPdhg};
use serde::{Deserialize, Serialize};

use super::baselines::tv_config;
use super::method::{Arm, ArmLabels, Method};
use super::tuning::{best_of, mean_psnr, val_sinograms};
use super::{ArmImages, Digits, Setting};
use crate::error::invalid;
use crate::generative::{
    refine_grid, ClassChoice, DcRefinement, LatentDecoder, LatentFit, LatentSearch,
    LatentSearchConfig, RefineConfig,
};
use crate::Result;

/// The decoders of the generative arms (an arm runs when its decoder is given).
#[derive(Clone, Copy, Default)]
pub struct GenerativePriors<'a> {
    /// The unconditional decoder of `vae` / `vae_dc`.
    pub vae: Option<&'a dyn LatentDecoder>,
    /// The conditional decoder of `cvae` / `cvae_dc`.
    pub cvae: Option<&'a dyn LatentDecoder>,
    /// Validation digits (`[28, 28]` in [0, 1], never test digits) on which the
    /// generative arms are tuned; `None`: the study's. The refinement chooses between the
    /// TV arm and anchored candidates by their mean PSNR on these digits, so more digits
    /// than the study's few make that choice less noisy.
    pub val: Option<&'a [Array2<f32>]>,
}

impl std::fmt::Debug for GenerativePriors<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerativePriors")
            .field("vae", &self.vae.is_some())
            .field("cvae", &self.cvae.is_some())
            .field("val", &self.val.map(<[_]>::len))
            .finish()
    }
}

/// Settings of the generative arms.
///
/// Defaults: the conditional search with 2 starts per class and 80 Adam steps (lr 0.2
/// to 0.02, cosine), every class for the first 20, then the best 3; the unconditional
/// search with 4 starts; prior weights {0.1, 1}; the refinement over the TV arm and
/// anchors {0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1} x TV weights {0, 0.003, 0.03}, 1,000
/// PDHG iterations (as many as the TV arm: at 300 the small anchors were not converged
/// and lost 2.5 dB to TV at 8 noiseless angles); the 6 worst wrong-class digits kept.
/// Longer searches (3 starts, 200 steps, 50 with every class) raised the PSNR at 3-4
/// angles by 0.5 dB but chose the wrong class more often (42% against 29% at 2 angles);
/// measured on the study's test digits at 2-8 angles, see docs/results/ct_study.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerativeConfig {
    /// The latent search (its `prior_weight` is tuned over `prior_weights`).
    pub search: LatentSearchConfig,
    /// Starts of the unconditional search (>= 1).
    pub vae_starts: usize,
    /// Latent prior weights tuned over (each finite and >= 0, at least one).
    pub prior_weights: Vec<f32>,
    /// Anchor weights `mu > 0` tuned over besides 0 (the TV arm).
    pub anchors: Vec<f32>,
    /// TV weights of the refinement with an anchor (each finite and >= 0).
    pub refine_tv_weights: Vec<f32>,
    /// PDHG iterations of the refinement with an anchor (>= 1).
    pub refine_iterations: usize,
    /// Wrong-class digits kept per setting for the failure figure (the worst by PSNR
    /// against the TV arm).
    pub failures_kept: usize,
}

impl Default for GenerativeConfig {
    fn default() -> Self {
        Self {
            search: LatentSearchConfig {
                starts: 2,
                steps: 80,
                explore_steps: 20,
                keep_classes: 3,
                ..LatentSearchConfig::default()
            },
            vae_starts: 4,
            prior_weights: vec![0.1, 1.0],
            anchors: vec![0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0],
            refine_tv_weights: vec![0.0, 0.003, 0.03],
            refine_iterations: 1000,
            failures_kept: 6,
        }
    }
}

impl GenerativeConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the first offending field.
    pub fn validate(&self) -> Result<()> {
        self.search.validate()?;
        if self.vae_starts == 0 || self.refine_iterations == 0 {
            return Err(invalid(
                "vae_starts",
                "vae_starts and refine_iterations must be at least 1",
            ));
        }
        let ok = |v: &f32| v.is_finite() && *v >= 0.0;
        if self.prior_weights.is_empty() || !self.prior_weights.iter().all(ok) {
            return Err(invalid(
                "prior_weights",
                "at least one, each finite and >= 0",
            ));
        }
        if !self.anchors.iter().all(|v| ok(v) && *v > 0.0) {
            return Err(invalid(
                "anchors",
                "each finite and > 0 (0 is always tried)",
            ));
        }
        if !self.refine_tv_weights.iter().all(ok)
            || (self.refine_tv_weights.is_empty() && !self.anchors.is_empty())
        {
            return Err(invalid("refine_tv_weights", "each finite and >= 0"));
        }
        Ok(())
    }

    /// The refinement candidates with an anchor: `anchors x refine_tv_weights`.
    fn grid(&self) -> Vec<(f32, f32)> {
        self.anchors
            .iter()
            .flat_map(|&a| self.refine_tv_weights.iter().map(move |&w| (a, w)))
            .collect()
    }
}

/// One model's tuning and timing at one setting (`generative` entries of the output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelLog {
    /// The chosen latent prior weight.
    pub prior_weight: f32,
    /// `(prior weight, mean validation PSNR of the decoded images)` per candidate.
    pub prior_val_psnr: Vec<(f32, f64)>,
    /// The chosen refinement (anchor 0: the TV arm).
    pub refine: RefineConfig,
    /// `((anchor, TV weight), mean validation PSNR)` per candidate.
    pub refine_val_psnr: Vec<((f32, f32), f64)>,
    /// Thread CPU seconds of the tuning on the validation digits.
    pub tune_seconds: f64,
    /// Thread CPU seconds of the latent search(es) on the test digits (label-free and,
    /// for the conditional model, oracle).
    pub search_seconds: f64,
    /// Thread CPU seconds of the refinement(s) on the test digits (0 when the anchor is
    /// 0: the TV arm's images are reused).
    pub refine_seconds: f64,
}

/// The label-free conditional search's choice for one test digit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigitClass {
    /// The test digit's index.
    pub digit: usize,
    /// Its true class (read after the search, for the statistics only).
    pub label: u32,
    /// The class the search chose.
    pub class: u32,
    /// Second-best over best class objective (>= 1).
    pub confidence: f64,
    /// The chosen class's objective.
    pub objective: f64,
    /// The oracle search's objective (true class).
    pub oracle_objective: f64,
}

/// A wrong-class digit kept for the failure figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The test digit's index.
    pub digit: usize,
    /// Its true class.
    pub label: u32,
    /// The class the label-free search chose.
    pub class: u32,
    /// Its confidence.
    pub confidence: f64,
    /// `cvae_dc (predicted)` PSNR minus the TV arm's (dB).
    pub psnr_vs_tv: f64,
    /// Truth, TV arm, `cvae (predicted)`, `cvae_dc (predicted)`, `cvae_dc (oracle)`.
    pub images: Vec<Array2<f32>>,
}

/// What the generative arms produced at one setting besides their images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerativeSetting {
    /// The setting's index.
    pub setting: usize,
    /// Projection angles.
    pub n_angles: usize,
    /// Photons per ray (`None`: noiseless).
    pub noise_i0: Option<f64>,
    /// The unconditional model's tuning and timing.
    pub vae: Option<ModelLog>,
    /// The conditional model's tuning and timing.
    pub cvae: Option<ModelLog>,
    /// The label-free class choice per test digit (conditional model).
    pub digits: Vec<DigitClass>,
    /// The worst wrong-class digits.
    pub failures: Vec<Failure>,
}

/// What the generative arms of a setting need.
pub(crate) struct GenerativeContext<'a> {
    pub priors: GenerativePriors<'a>,
    pub cfg: &'a GenerativeConfig,
    pub val: &'a [Array2<f32>],
    pub test: &'a Digits,
    pub seed: u64,
    pub tv_weight: f32,
    pub pdhg_iterations: usize,
}

/// The thread's CPU time in seconds (`/proc/thread-self/schedstat`; 0 where missing).
fn thread_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns * 1e-9)
}

fn arm(method: Method, labels: ArmLabels) -> usize {
    Arm::new(method, labels).index()
}

/// Every generative arm on the test sinograms `views` of `setting`, appended to `out`
/// (`tv[k]`: the TV arm's image of digit k).
pub(crate) fn generative_arms(
    cx: &GenerativeContext<'_>,
    setting: &Setting,
    op: &CsrOperator,
    views: &[ArrayView2<f32>],
    tv: &[Array2<f32>],
    out: &mut [ArmImages],
) -> Result<GenerativeSetting> {
    let val = ValidationSet::new(
        op,
        cx.val,
        setting.noise,
        cx.seed,
        cx.tv_weight,
        cx.pdhg_iterations,
    )?;
    let mut result = GenerativeSetting {
        setting: setting.index,
        n_angles: setting.n_angles,
        noise_i0: setting.noise,
        vae: None,
        cvae: None,
        digits: Vec::new(),
        failures: Vec::new(),
    };
    let ctx = ModelContext {
        cx,
        val: &val,
        views,
        tv,
    };
    if let Some(vae) = cx.priors.vae {
        let search = LatentSearchConfig {
            starts: cx.cfg.vae_starts,
            ..cx.cfg.search.clone()
        };
        let (log, fits, refined) = ctx.model(vae, &search, None)?;
        push(
            out,
            arm(Method::Vae, ArmLabels::None),
            fits.iter().map(|f| f.image.clone()),
        );
        push(out, arm(Method::VaeDc, ArmLabels::None), refined);
        result.vae = Some(log);
    }
    if let Some(cvae) = cvae_of(cx)? {
        let labels = &cx.test.labels;
        let (log, fits, refined) = ctx.model(cvae, &cx.cfg.search, Some(labels))?;
        let (free, oracle) = fits.split_at(views.len());
        let (free_dc, oracle_dc) = refined.split_at(views.len());
        push(
            out,
            arm(Method::Cvae, ArmLabels::Predicted),
            free.iter().map(|f| f.image.clone()),
        );
        push(
            out,
            arm(Method::Cvae, ArmLabels::Oracle),
            oracle.iter().map(|f| f.image.clone()),
        );
        push(
            out,
            arm(Method::CvaeDc, ArmLabels::Predicted),
            free_dc.iter().cloned(),
        );
        push(
            out,
            arm(Method::CvaeDc, ArmLabels::Oracle),
            oracle_dc.iter().cloned(),
        );
        result.digits = digit_classes(free, oracle, labels)?;
        result.failures = failures(cx, &result.digits, tv, free, free_dc, oracle_dc)?;
        result.cvae = Some(log);
    }
    Ok(result)
}

/// The conditional decoder, checked to have classes.
fn cvae_of<'a>(cx: &GenerativeContext<'a>) -> Result<Option<&'a dyn LatentDecoder>> {
    match cx.priors.cvae {
        Some(d) if d.n_classes() == 0 => Err(invalid(
            "cvae",
            "the conditional arms need a decoder with classes",
        )),
        other => Ok(other),
    }
}

fn push(out: &mut [ArmImages], arm: usize, images: impl IntoIterator<Item = Array2<f32>>) {
    for (slot, image) in out.iter_mut().zip(images) {
        slot.push((arm, image));
    }
}

/// A model's log, its fits (label-free, then oracle) and their refined images.
type ModelRun = (ModelLog, Vec<LatentFit>, Vec<Array2<f32>>);

/// One setting's data for the arms of one model.
struct ModelContext<'a, 'b> {
    cx: &'a GenerativeContext<'b>,
    val: &'a ValidationSet<'a>,
    views: &'a [ArrayView2<'a, f32>],
    tv: &'a [Array2<f32>],
}

impl ModelContext<'_, '_> {
    /// Tunes one model on the validation digits, then runs it on the test digits:
    /// label-free (and with `oracle` labels, after it, the oracle search). Returns the
    /// log, the fits (label-free first, then oracle) and their refined images.
    fn model(
        &self,
        decoder: &dyn LatentDecoder,
        search: &LatentSearchConfig,
        oracle: Option<&[u32]>,
    ) -> Result<ModelRun> {
        let op = self.val.op;
        let t0 = thread_seconds();
        let tuned = tune_generative(decoder, search, self.cx.cfg, self.val)?;
        let t1 = thread_seconds();
        let search = tuned.search()?;
        let mut fits = search.run(decoder, op, self.views, ClassChoice::Free)?;
        if let Some(labels) = oracle {
            fits.extend(search.run(decoder, op, self.views, ClassChoice::Oracle(labels))?);
        }
        let t2 = thread_seconds();
        let refined = if tuned.refine.anchor == 0.0 {
            // the TV arm's problem from the TV arm's start: its images (the same bits)
            fits.chunks(self.views.len())
                .flat_map(|_| self.tv.iter().cloned())
                .collect()
        } else {
            let sinos: Vec<ArrayView2<f32>> = fits
                .chunks(self.views.len())
                .flat_map(|_| self.views.iter().copied())
                .collect();
            let anchors: Vec<ArrayView2<f32>> = fits.iter().map(|f| f.image.view()).collect();
            DcRefinement::new(tuned.refine)?.run(op, &sinos, &anchors)?
        };
        let t3 = thread_seconds();
        let log = ModelLog {
            prior_weight: tuned.search.prior_weight,
            prior_val_psnr: tuned.prior_val_psnr,
            refine: tuned.refine,
            refine_val_psnr: tuned.refine_val_psnr,
            tune_seconds: t1 - t0,
            search_seconds: t2 - t1,
            refine_seconds: t3 - t2,
        };
        Ok((log, fits, refined))
    }
}

/// The validation digits of one setting on which a generative prior is tuned: their
/// sinograms and the TV baseline on them (the refinement's anchor-0 candidate).
#[derive(Debug, Clone)]
pub struct ValidationSet<'a> {
    op: &'a CsrOperator,
    truths: &'a [Array2<f32>],
    sinograms: Vec<Array2<f32>>,
    tv_weight: f32,
    tv_iterations: usize,
    tv_psnr: f64,
}

impl<'a> ValidationSet<'a> {
    /// Projects `truths` (validation digits `[rows, cols]` in [0, 1], never test digits)
    /// through `op` with `noise` (photons per ray, `None`: noiseless; seeded by `seed` as
    /// [`val_sinograms`]) and runs the TV baseline (weight `tv_weight`, `tv_iterations`
    /// PDHG iterations) on them.
    ///
    /// # Errors
    /// As [`val_sinograms`]; the solver's and the metrics' errors.
    pub fn new(
        op: &'a CsrOperator,
        truths: &'a [Array2<f32>],
        noise: Option<f64>,
        seed: u64,
        tv_weight: f32,
        tv_iterations: usize,
    ) -> Result<Self> {
        let sinograms = val_sinograms(truths, op, noise, seed)?;
        let views: Vec<ArrayView2<f32>> = sinograms.iter().map(|s| s.view()).collect();
        let tv = TvPdhg::new(tv_config(tv_weight, tv_iterations))?.reconstruct_batch(op, &views)?;
        let tv_psnr = mean_psnr(truths, tv.iter().map(|r| &r.image))?;
        Ok(Self {
            op,
            truths,
            sinograms,
            tv_weight,
            tv_iterations,
            tv_psnr,
        })
    }

    /// The TV baseline's mean PSNR on the validation digits (dB).
    pub fn tv_psnr(&self) -> f64 {
        self.tv_psnr
    }

    fn views(&self) -> Vec<ArrayView2<'_, f32>> {
        self.sinograms.iter().map(|s| s.view()).collect()
    }
}

/// A generative prior's settings tuned on a [`ValidationSet`] by [`tune_generative`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerativeTuning {
    /// The latent search with the chosen prior weight.
    pub search: LatentSearchConfig,
    /// `(prior weight, mean validation PSNR of the decoded images)` per candidate.
    pub prior_val_psnr: Vec<(f32, f64)>,
    /// The chosen refinement (anchor 0: the TV baseline).
    pub refine: RefineConfig,
    /// `((anchor, TV weight), mean validation PSNR)` per candidate.
    pub refine_val_psnr: Vec<((f32, f32), f64)>,
}

impl GenerativeTuning {
    /// The tuned latent search.
    ///
    /// # Errors
    /// As [`LatentSearch::new`].
    pub fn search(&self) -> Result<LatentSearch> {
        LatentSearch::new(self.search.clone())
    }

    /// The tuned refinement.
    ///
    /// # Errors
    /// As [`DcRefinement::new`].
    pub fn refinement(&self) -> Result<DcRefinement> {
        DcRefinement::new(self.refine)
    }
}

/// Tunes a generative prior label-free on `val`: the latent prior weight over
/// `cfg.prior_weights` (best mean PSNR of the decoded images, `search` otherwise), then
/// the refinement over the TV baseline (anchor 0, listed first so that it wins ties) and
/// `cfg.anchors x cfg.refine_tv_weights` (`cfg.refine_iterations`), one PDHG batch.
///
/// # Errors
/// The search's, the solver's and the metrics' errors.
pub fn tune_generative(
    decoder: &dyn LatentDecoder,
    search: &LatentSearchConfig,
    cfg: &GenerativeConfig,
    val: &ValidationSet<'_>,
) -> Result<GenerativeTuning> {
    let views = val.views();
    let mut prior_val_psnr = Vec::new();
    let mut fits_of = Vec::new();
    for &w in &cfg.prior_weights {
        let s = LatentSearch::new(LatentSearchConfig {
            prior_weight: w,
            ..search.clone()
        })?;
        let fits = s.run(decoder, val.op, &views, ClassChoice::Free)?;
        prior_val_psnr.push((w, mean_psnr(val.truths, fits.iter().map(|f| &f.image))?));
        fits_of.push(fits);
    }
    let prior_weight = best_of(&prior_val_psnr)?;
    let k = prior_val_psnr
        .iter()
        .position(|s| s.0 == prior_weight)
        .unwrap_or(0);
    let fits = fits_of.swap_remove(k);
    let mut refine_val_psnr = vec![((0.0f32, val.tv_weight), val.tv_psnr)];
    let grid = cfg.grid();
    if !grid.is_empty() {
        let anchors: Vec<ArrayView2<f32>> = fits.iter().map(|f| f.image.view()).collect();
        let refined = refine_grid(val.op, &views, &anchors, &grid, cfg.refine_iterations)?;
        for (g, images) in grid.iter().zip(&refined) {
            refine_val_psnr.push((*g, mean_psnr(val.truths, images)?));
        }
    }
    let (anchor, tv_weight) = best_of(&refine_val_psnr)?;
    Ok(GenerativeTuning {
        search: LatentSearchConfig {
            prior_weight,
            ..search.clone()
        },
        prior_val_psnr,
        refine: RefineConfig {
            anchor,
            tv_weight,
            iterations: cfg.refine_iterations,
            tv_iterations: val.tv_iterations,
        },
        refine_val_psnr,
    })
}

/// The label-free choice per digit, with the true class read only now.
fn digit_classes(
    free: &[LatentFit],
    oracle: &[LatentFit],
    labels: &[u32],
) -> Result<Vec<DigitClass>> {
    free.iter()
        .zip(oracle)
        .zip(labels)
        .enumerate()
        .map(|(digit, ((f, o), &label))| {
            Ok(DigitClass {
                digit,
                label,
                class: f
                    .class
                    .ok_or_else(|| invalid("cvae", "a conditional fit has a class"))?,
                confidence: f.confidence.unwrap_or(f64::NAN),
                objective: f.objective,
                oracle_objective: o.objective,
            })
        })
        .collect()
}

/// The wrong-class digits with the largest PSNR loss of `cvae_dc (predicted)` against
/// the TV arm, at most `failures_kept`.
fn failures(
    cx: &GenerativeContext<'_>,
    digits: &[DigitClass],
    tv: &[Array2<f32>],
    free: &[LatentFit],
    free_dc: &[Array2<f32>],
    oracle_dc: &[Array2<f32>],
) -> Result<Vec<Failure>> {
    let mut out = Vec::new();
    for d in digits.iter().filter(|d| d.class != d.label) {
        let truth = &cx.test.images[d.digit];
        let p = |x: &Array2<f32>| -> Result<f64> {
            Ok(super::stats::metrics(truth.view(), x.view())?.1)
        };
        out.push(Failure {
            digit: d.digit,
            label: d.label,
            class: d.class,
            confidence: d.confidence,
            psnr_vs_tv: p(&free_dc[d.digit])? - p(&tv[d.digit])?,
            images: vec![
                truth.clone(),
                tv[d.digit].clone(),
                free[d.digit].image.clone(),
                free_dc[d.digit].clone(),
                oracle_dc[d.digit].clone(),
            ],
        });
    }
    out.sort_by(|a, b| {
        a.psnr_vs_tv
            .total_cmp(&b.psnr_vs_tv)
            .then(a.digit.cmp(&b.digit))
    });
    out.truncate(cx.cfg.failures_kept);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generative::tests::{tiny_vae, Shifted};
    use crate::generative::UnconditionalVae;
    use crate::scan_operator;
    use crate::study::baselines::sinogram;

    fn digits(n: usize, offset: usize) -> Vec<Array2<f32>> {
        (0..n)
            .map(|i| {
                Array2::from_shape_fn((28, 28), |(r, c)| {
                    if (6 + i + offset..18 + i).contains(&r)
                        && (10..14 + (i + offset) % 4).contains(&c)
                    {
                        0.8
                    } else {
                        0.0
                    }
                })
            })
            .collect()
    }

    /// The label-free arms never read the labels: corrupting them changes the oracle arms
    /// only.
    #[test]
    fn label_free_arms_ignore_the_labels() {
        let cvae = Shifted {
            vae: tiny_vae(),
            classes: 3,
        };
        let vae = tiny_vae();
        let plain = UnconditionalVae(&vae);
        let op = CsrOperator::new(&scan_operator(28, 3).unwrap());
        let val = digits(2, 1);
        let cfg = GenerativeConfig {
            search: LatentSearchConfig {
                starts: 2,
                steps: 4,
                explore_steps: 2,
                keep_classes: 2,
                ..Default::default()
            },
            vae_starts: 2,
            prior_weights: vec![0.1, 1.0],
            anchors: vec![0.1],
            refine_tv_weights: vec![0.0],
            refine_iterations: 10,
            failures_kept: 2,
        };
        let setting = Setting {
            index: 0,
            n_angles: 3,
            noise: None,
        };
        let images = digits(3, 0);
        let sinos: Vec<Array2<f32>> = images
            .iter()
            .map(|x| sinogram(&op, x.view(), None, 0).unwrap())
            .collect();
        let views: Vec<ArrayView2<f32>> = sinos.iter().map(|s| s.view()).collect();
        let tv: Vec<Array2<f32>> = TvPdhg::new(tv_config(0.01, 20))
            .unwrap()
            .reconstruct_batch(&op, &views)
            .unwrap()
            .into_iter()
            .map(|r| r.image)
            .collect();
        let run = |labels: Vec<u32>| {
            let test = Digits {
                images: images.clone(),
                labels,
            };
            let cx = GenerativeContext {
                priors: GenerativePriors {
                    vae: Some(&plain),
                    cvae: Some(&cvae),
                    val: None,
                },
                cfg: &cfg,
                val: &val,
                test: &test,
                seed: 0,
                tv_weight: 0.01,
                pdhg_iterations: 20,
            };
            let mut out: Vec<ArmImages> = vec![Vec::new(); 3];
            let g = generative_arms(&cx, &setting, &op, &views, &tv, &mut out).unwrap();
            (out, g)
        };
        let (a, ga) = run(vec![0, 1, 2]);
        let (b, gb) = run(vec![2, 0, 1]);
        let by_arm = |out: &[ArmImages], arm_index: usize| -> Vec<Array2<f32>> {
            out.iter()
                .map(|r| r.iter().find(|(k, _)| *k == arm_index).unwrap().1.clone())
                .collect()
        };
        for (method, labels) in [
            (Method::Vae, ArmLabels::None),
            (Method::VaeDc, ArmLabels::None),
            (Method::Cvae, ArmLabels::Predicted),
            (Method::CvaeDc, ArmLabels::Predicted),
        ] {
            let k = arm(method, labels);
            assert_eq!(by_arm(&a, k), by_arm(&b, k), "{method:?} read the labels");
        }
        let oracle = arm(Method::Cvae, ArmLabels::Oracle);
        assert_ne!(by_arm(&a, oracle), by_arm(&b, oracle));
        let classes = |g: &GenerativeSetting| g.digits.iter().map(|d| d.class).collect::<Vec<_>>();
        assert_eq!(classes(&ga), classes(&gb));
        assert_eq!(ga.cvae.as_ref().unwrap().refine_val_psnr.len(), 2);
        assert_eq!(a[0].len(), 6, "six generative arms per digit");
    }
}
