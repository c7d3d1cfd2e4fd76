//! The CT case study (thesis chapter 5) as library code: the arms ([`Method`], [`ARMS`]),
//! the classical baselines, the tuning on validation digits, the statistics, and the study
//! as a list of independent [`Job`]s.
//!
//! Test digits are forward projected (ASTRA-convention parallel beam, `ceil(sqrt 2 * 28) + 2`
//! detectors, uniform angles over a half turn), with Poisson noise of `I0` photons per ray
//! (attenuation scale 4 / 28) or none, and reconstructed by every arm:
//!
//! | method | label_mode | what |
//! | --- | --- | --- |
//! | `fbp` | none | filtered back-projection (Ram-Lak), clipped to [0, 1] |
//! | `sirt100` | none | 100 SIRT iterations, box [0, 1] |
//! | `box_ls_pdhg` | none | box-constrained least squares, PDHG |
//! | `tv_pdhg` | none | TV + box by PDHG, TV weight tuned on validation digits |
//! | `sirt_inv` | oracle / predicted | the hybrid schedule ([`crate::HybridConfig`]), both terms; its optimiser and lr tuned on validation digits |
//! | `sirt_inv_priors_only` | none | same schedule, TV + L2 + BN priors only |
//! | `sirt_inv_class_only` | predicted | same schedule, class term only |
//! | `pg_priors` | none | projected gradient from SIRT-100, data + TV2 (no class), first `pg_images` digits |
//! | `pg_class` | predicted | the same + class term through the net, its weight tuned on validation digits at 4 angles per noise level |
//!
//! A study is a grid of settings (angle count x noise level). It runs in three phases,
//! each a list of jobs that do not depend on each other:
//!
//! ```text
//! 1. TuneTv(setting)        the TV weight on validation digits (no network)
//! 2. TunePgClass(noise)     the class weight of pg_class (at 4 angles, or the first count)
//!    TuneHybrid(setting)    the hybrid's inversion optimiser and learning rate
//! 3. Run(setting)           every arm on every test digit
//! ```
//!
//! Every job's output is serialisable and depends only on the [`StudyConfig`], the digits,
//! the classifier and the outputs of the earlier phases; outputs are merged by job index,
//! so the result is the same on one thread, several threads or several machines.
//! [`Study::run_phase`] runs a phase on the current rayon pool, longest jobs first.
//!
//! Seeds: the test digit `i` of setting `s` gets the noise seed `seed ^ (s << 32) ^ i`;
//! validation digit `i` gets `seed ^ 0x5eed_0000 ^ i` at every setting.

pub mod ablation;
mod baselines;
mod figure;
mod generative;
mod jobs;
mod method;
mod setting;
mod shard;
mod stats;
mod tuning;
pub mod verdicts;

use ndarray::Array2;
use netinv_invert::InvertibleNet;
use netinv_tomo::CsrOperator;
use serde::{Deserialize, Serialize};

pub use baselines::{classical_arms, sinogram, sirt100, tv_config, ATTENUATION_SCALE};
pub use generative::{
    tune_generative, DigitClass, Failure, GenerativeConfig, GenerativePriors, GenerativeSetting,
    GenerativeTuning, ModelLog, ValidationSet,
};
pub use jobs::{longest_first, par_longest_first, setting_cost, Job, JobOutput};
pub use method::{Arm, ArmLabels, Family, Method, ARMS, ARM_COLORS};
pub use setting::{KeptDigit, SettingChoices, SettingResult};
pub use shard::{shard_settings, SHARD_STUDY};
pub use stats::{
    markdown_table, mean_ci, metrics, noise_name, parse_noise, summarize, Metric, PerImage, Row,
    CI95_RULE, PSNR_CAP,
};
pub use tuning::{
    best_of, hybrid_candidates, mean_psnr, optimizer_name, pg_solver, tune_hybrid, tune_pg_class,
    tune_tv, val_sinograms, HybridTuning, PgClassTuning, TvTuning, PG_CLASS_WEIGHTS, TV_WEIGHTS,
};

use crate::error::invalid;
use crate::{scan_operator, HybridConfig, Result};

/// Image rows and columns of the study's digits.
pub const SIZE: usize = 28;

/// The reconstructions of one digit: `(arm index, image)` pairs.
pub type ArmImages = Vec<(usize, Array2<f32>)>;

/// Digits with their classes.
#[derive(Debug, Clone, Default)]
pub struct Digits {
    /// The images `[28, 28]`, values in [0, 1].
    pub images: Vec<Array2<f32>>,
    /// The class of each image.
    pub labels: Vec<u32>,
}

/// One setting of the study.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    /// The setting's index (angle-major: `angle index * noise levels + noise index`).
    pub index: usize,
    /// Projection angles.
    pub n_angles: usize,
    /// Photons per ray (`None`: noiseless).
    pub noise: Option<f64>,
}

/// The settings of a study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyConfig {
    /// Angle counts (each at least 1, no repeats).
    pub angles: Vec<usize>,
    /// Noise levels: photons per ray, `None` for noiseless data (no repeats).
    pub noises: Vec<Option<f64>>,
    /// PDHG iterations of the converged baselines (box-LS and TV), at least 1.
    pub pdhg_iterations: usize,
    /// Iterations of the projected-gradient arms (0: skip them).
    pub pg_iterations: usize,
    /// The projected-gradient arms run on the first `pg_images` test digits.
    pub pg_images: usize,
    /// The first `grid_digits` test digits keep their reconstructions (for a figure).
    pub grid_digits: usize,
    /// Seed of the noise.
    pub seed: u64,
    /// The hybrid schedule the tuning starts from.
    pub hybrid: HybridConfig,
    /// The generative arms' settings (they run when [`Study::with_priors`] gave decoders).
    #[serde(default)]
    pub generative: GenerativeConfig,
}

impl StudyConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for no angle counts or noise levels, a zero angle
    /// count, a repeated setting, a photon count that is not finite and > 0, zero PDHG
    /// iterations, or an invalid hybrid schedule.
    pub fn validate(&self) -> Result<()> {
        if self.angles.is_empty() {
            return Err(invalid("angles", "at least one angle count is needed"));
        }
        if self.angles.contains(&0) {
            return Err(invalid(
                "angles",
                "zero angles is not a scan (need at least 1)",
            ));
        }
        if let Some(a) = first_repeat(&self.angles) {
            return Err(invalid("angles", format!("{a} is listed twice")));
        }
        if self.noises.is_empty() {
            return Err(invalid("noises", "at least one noise level is needed"));
        }
        if let Some(i0) = self
            .noises
            .iter()
            .flatten()
            .find(|v| !(v.is_finite() && **v > 0.0))
        {
            return Err(invalid(
                "noises",
                format!("photons per ray must be > 0, got {i0}"),
            ));
        }
        if first_repeat(&self.noises).is_some() {
            return Err(invalid("noises", "a noise level is listed twice"));
        }
        if self.pdhg_iterations == 0 {
            return Err(invalid("pdhg_iterations", "must be at least 1"));
        }
        self.hybrid.validate()?;
        self.generative.validate()
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

    /// The angle count `pg_class` is tuned at: 4 if listed, else the first.
    pub fn pg_angles(&self) -> usize {
        if self.angles.contains(&4) {
            4
        } else {
            self.angles.first().copied().unwrap_or(4)
        }
    }
}

/// The first value listed twice.
fn first_repeat<T: PartialEq + Copy>(values: &[T]) -> Option<T> {
    values
        .iter()
        .enumerate()
        .find(|(k, v)| values[..*k].contains(v))
        .map(|(_, v)| *v)
}

/// The tuned choices of every setting and noise level (phases 1 and 2 merged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    /// Per setting, in setting order.
    pub tv: Vec<TvTuning>,
    /// Per noise level, in the config's order.
    pub pg_class: Vec<PgClassTuning>,
    /// Per setting, in setting order.
    pub hybrid: Vec<HybridTuning>,
}

/// One setting's entry of the tuning log of `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingTuningLog {
    /// Projection angles.
    pub n_angles: usize,
    /// Photons per ray (`None`: noiseless).
    pub noise_i0: Option<f64>,
    /// The chosen TV weight.
    pub tv_weight: f32,
    /// `(weight, mean validation PSNR)` per TV candidate.
    pub tv_val_psnr: Vec<(f32, f64)>,
    /// The chosen hybrid optimiser (`adam lr 0.003`).
    pub hybrid: String,
    /// `(optimizer, mean validation PSNR)` per hybrid candidate.
    pub hybrid_val_psnr: Vec<(String, f64)>,
}

/// The study's results (phase 3 merged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Every arm on every digit at every setting, in setting order.
    pub per_image: Vec<PerImage>,
    /// The kept reconstructions, in setting order.
    pub kept: Vec<KeptDigit>,
    /// The summary rows, in setting order, arms in [`ARMS`] order.
    pub rows: Vec<Row>,
    /// The generative arms' per-setting outputs, in setting order (empty when they did
    /// not run).
    #[serde(default)]
    pub generative: Vec<GenerativeSetting>,
}

/// A study: its settings, the validation digits it tunes on and the test digits it
/// reports on.
#[derive(Debug)]
pub struct Study<'a> {
    cfg: StudyConfig,
    settings: Vec<Setting>,
    val: &'a [Array2<f32>],
    test: &'a Digits,
    priors: Option<GenerativePriors<'a>>,
}

impl<'a> Study<'a> {
    /// A study with a checked configuration.
    ///
    /// # Errors
    /// As [`StudyConfig::validate`]; [`crate::Error::InvalidConfig`] if there are no
    /// validation or test digits, or the test labels do not match the images.
    pub fn new(cfg: StudyConfig, val: &'a [Array2<f32>], test: &'a Digits) -> Result<Self> {
        cfg.validate()?;
        if val.is_empty() {
            return Err(invalid("val", "at least one validation digit is needed"));
        }
        if test.images.is_empty() || test.images.len() != test.labels.len() {
            return Err(invalid(
                "test",
                format!(
                    "{} images and {} labels (need at least one of each, as many labels as images)",
                    test.images.len(),
                    test.labels.len()
                ),
            ));
        }
        let settings = cfg.settings();
        Ok(Self {
            cfg,
            settings,
            val,
            test,
            priors: None,
        })
    }

    /// The study with the generative arms (`vae*` with `priors.vae`, `cvae*` with
    /// `priors.cvae`), run in every setting's [`Job::Run`].
    pub fn with_priors(mut self, priors: GenerativePriors<'a>) -> Self {
        self.priors = Some(priors);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &StudyConfig {
        &self.cfg
    }

    /// The settings, in index order.
    pub fn settings(&self) -> &[Setting] {
        &self.settings
    }

    /// The test digits.
    pub fn test(&self) -> &Digits {
        self.test
    }

    /// The jobs of phase 1 (TV tunings, no network), longest first.
    pub fn tv_jobs(&self) -> Vec<Job> {
        self.by_cost()
            .into_iter()
            .map(|setting| Job::TuneTv { setting })
            .collect()
    }

    /// The jobs of phase 2 (network tunings): the `pg_class` tunings first, as the
    /// longest, then the hybrid tunings, longest first.
    pub fn tuning_jobs(&self) -> Vec<Job> {
        (0..self.cfg.noises.len())
            .map(|noise| Job::TunePgClass { noise })
            .chain(
                self.by_cost()
                    .into_iter()
                    .map(|setting| Job::TuneHybrid { setting }),
            )
            .collect()
    }

    /// The jobs of phase 3 (runs), longest first.
    pub fn run_jobs(&self) -> Vec<Job> {
        self.by_cost()
            .into_iter()
            .map(|setting| Job::Run { setting })
            .collect()
    }

    /// Setting indices by estimated cost, longest first.
    fn by_cost(&self) -> Vec<usize> {
        let costs: Vec<f64> = self
            .settings
            .iter()
            .map(|s| setting_cost(s.n_angles))
            .collect();
        longest_first(&costs)
    }

    fn setting(&self, index: usize) -> Result<&Setting> {
        self.settings
            .get(index)
            .ok_or_else(|| invalid("setting", format!("no setting {index}")))
    }

    fn operator(&self, n_angles: usize) -> Result<CsrOperator> {
        Ok(CsrOperator::new(&scan_operator(SIZE, n_angles)?))
    }

    /// Runs one job. `net` is needed by every job but [`Job::TuneTv`]; `tuning` (the
    /// merged phases 1 and 2) by [`Job::Run`].
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for an index out of range or a missing `net` /
    /// `tuning`; the errors of the solvers.
    pub fn run_job<N: InvertibleNet + ?Sized>(
        &self,
        job: Job,
        net: Option<&N>,
        tuning: Option<&Tuning>,
    ) -> Result<JobOutput> {
        let need_net =
            || net.ok_or_else(|| invalid("net", format!("{job:?} needs the classifier")));
        let cfg = &self.cfg;
        match job {
            Job::TuneTv { setting } => {
                let s = self.setting(setting)?;
                let op = self.operator(s.n_angles)?;
                let t = tune_tv(self.val, &op, s.noise, cfg.pdhg_iterations, cfg.seed)?;
                Ok(JobOutput::TuneTv(t))
            }
            Job::TunePgClass { noise } => {
                let level = *cfg
                    .noises
                    .get(noise)
                    .ok_or_else(|| invalid("noise", format!("no noise level {noise}")))?;
                let n_angles = cfg.pg_angles();
                if cfg.pg_iterations == 0 {
                    return Ok(JobOutput::TunePgClass(PgClassTuning {
                        noise_i0: level,
                        n_angles,
                        class_weight: 0.0,
                        val_psnr: Vec::new(),
                    }));
                }
                let op = self.operator(n_angles)?;
                let t = tune_pg_class(
                    self.val,
                    need_net()?,
                    &op,
                    n_angles,
                    level,
                    cfg.pg_iterations,
                    cfg.seed,
                )?;
                Ok(JobOutput::TunePgClass(t))
            }
            Job::TuneHybrid { setting } => {
                let s = self.setting(setting)?;
                let op = self.operator(s.n_angles)?;
                let t = tune_hybrid(self.val, need_net()?, &op, s.noise, &cfg.hybrid, cfg.seed)?;
                Ok(JobOutput::TuneHybrid(t))
            }
            Job::Run { setting } => {
                let s = self.setting(setting)?;
                let tuning =
                    tuning.ok_or_else(|| invalid("tuning", format!("{job:?} needs the tuning")))?;
                let choices = tuning.choices(s)?;
                let cx = setting::RunContext {
                    net: need_net()?,
                    test: self.test,
                    seed: cfg.seed,
                    pdhg_iterations: cfg.pdhg_iterations,
                    pg_iterations: cfg.pg_iterations,
                    pg_images: cfg.pg_images,
                    grid_digits: cfg.grid_digits,
                    generative: self.priors.map(|priors| generative::GenerativeContext {
                        priors,
                        cfg: &cfg.generative,
                        val: priors.val.unwrap_or(self.val),
                        test: self.test,
                        seed: cfg.seed,
                        tv_weight: choices.tv_weight,
                        pdhg_iterations: cfg.pdhg_iterations,
                    }),
                };
                Ok(JobOutput::Run(setting::run_setting(s, &choices, &cx)?))
            }
        }
    }

    /// Runs `jobs` on the current rayon pool in the order given (each worker takes the
    /// next job when free) and returns their outputs in the order of `jobs`;
    /// `on_done(job, done)` is called after each job with the number done so far.
    ///
    /// # Errors
    /// The first failing job's error (in the order of `jobs`).
    pub fn run_phase<N: InvertibleNet + Sync + ?Sized>(
        &self,
        jobs: &[Job],
        net: Option<&N>,
        tuning: Option<&Tuning>,
        on_done: &(dyn Fn(&Job, usize) + Sync),
    ) -> Result<Vec<JobOutput>>
    where
        Self: Sync,
    {
        let done = std::sync::atomic::AtomicUsize::new(0);
        let order: Vec<usize> = (0..jobs.len()).collect();
        par_longest_first(&order, |k| {
            let out = self.run_job(jobs[k], net, tuning)?;
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            on_done(&jobs[k], d);
            Ok(out)
        })
    }

    /// Merges the outputs of phases 1 and 2 (`jobs[k]` produced `outputs[k]`, any order)
    /// into the [`Tuning`], by setting and noise index.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] if a setting or noise level has no output or two.
    pub fn merge_tuning(&self, jobs: &[Job], outputs: Vec<JobOutput>) -> Result<Tuning> {
        let n = self.settings.len();
        let mut tv: Vec<Option<TvTuning>> = vec![None; n];
        let mut hybrid: Vec<Option<HybridTuning>> = vec![None; n];
        let mut pg: Vec<Option<PgClassTuning>> = vec![None; self.cfg.noises.len()];
        for (job, out) in jobs.iter().zip(outputs) {
            let slot_ok = match (job, out) {
                (Job::TuneTv { setting }, JobOutput::TuneTv(t)) => put(&mut tv, *setting, t),
                (Job::TuneHybrid { setting }, JobOutput::TuneHybrid(t)) => {
                    put(&mut hybrid, *setting, t)
                }
                (Job::TunePgClass { noise }, JobOutput::TunePgClass(t)) => put(&mut pg, *noise, t),
                _ => return Err(jobs::wrong_output(job)),
            };
            if !slot_ok {
                return Err(invalid(
                    "jobs",
                    format!("{job:?} is out of range or repeated"),
                ));
            }
        }
        Ok(Tuning {
            tv: complete(tv, "a TV tuning")?,
            pg_class: complete(pg, "a pg_class tuning")?,
            hybrid: complete(hybrid, "a hybrid tuning")?,
        })
    }

    /// Merges the outputs of phase 3 (`jobs[k]` produced `outputs[k]`, any order) in
    /// setting order and summarises them.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] if a setting has no run or two.
    pub fn merge_runs(&self, jobs: &[Job], outputs: Vec<JobOutput>) -> Result<Outcome> {
        let mut runs: Vec<Option<SettingResult>> = vec![None; self.settings.len()];
        for (job, out) in jobs.iter().zip(outputs) {
            match (job, out) {
                (Job::Run { setting }, JobOutput::Run(r)) => {
                    if !put(&mut runs, *setting, r) {
                        return Err(invalid(
                            "jobs",
                            format!("{job:?} is out of range or repeated"),
                        ));
                    }
                }
                _ => return Err(jobs::wrong_output(job)),
            }
        }
        let (mut per_image, mut kept, mut generative) = (Vec::new(), Vec::new(), Vec::new());
        for run in complete(runs, "a run")? {
            per_image.extend(run.per_image);
            kept.extend(run.kept);
            generative.extend(run.generative);
        }
        let rows = summarize(&self.settings, &per_image);
        Ok(Outcome {
            per_image,
            kept,
            rows,
            generative,
        })
    }
}

/// Puts `value` into the empty slot `index`; false if out of range or already filled.
fn put<T>(slots: &mut [Option<T>], index: usize, value: T) -> bool {
    match slots.get_mut(index) {
        Some(slot @ None) => {
            *slot = Some(value);
            true
        }
        _ => false,
    }
}

/// Every slot's value, or an error naming what is missing.
fn complete<T>(slots: Vec<Option<T>>, what: &str) -> Result<Vec<T>> {
    slots
        .into_iter()
        .enumerate()
        .map(|(k, v)| v.ok_or_else(|| invalid("jobs", format!("{what} is missing for index {k}"))))
        .collect()
}

impl Tuning {
    /// The choices of `setting`: its TV weight and hybrid schedule, and the class weight
    /// of `pg_class` at its noise level (1 if that level was not tuned).
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] if the setting has no tuning.
    pub fn choices(&self, setting: &Setting) -> Result<SettingChoices> {
        let missing = || invalid("tuning", format!("no tuning for setting {}", setting.index));
        let tv = self.tv.get(setting.index).ok_or_else(missing)?;
        let hybrid = self.hybrid.get(setting.index).ok_or_else(missing)?;
        let pg_class_weight = self
            .pg_class
            .iter()
            .find(|p| p.noise_i0 == setting.noise)
            .map_or(1.0, |p| p.class_weight);
        Ok(SettingChoices {
            tv_weight: tv.weight,
            hybrid: hybrid.hybrid.clone(),
            pg_class_weight,
        })
    }

    /// The per-setting tuning log (the `tuning` entry of `config.json`).
    pub fn log(&self, settings: &[Setting]) -> Vec<SettingTuningLog> {
        settings
            .iter()
            .zip(&self.tv)
            .zip(&self.hybrid)
            .map(|((s, tv), h)| SettingTuningLog {
                n_angles: s.n_angles,
                noise_i0: s.noise,
                tv_weight: tv.weight,
                tv_val_psnr: tv.val_psnr.clone(),
                hybrid: optimizer_name(&h.hybrid),
                hybrid_val_psnr: h.val_psnr.clone(),
            })
            .collect()
    }
}
