//! The latent search: Adam on the latent codes of many chains (digits x classes x starts)
//! as one batch, the data term's gradient through the projector's adjoint, the decoder's
//! through candle.

use candle_core::Device;
use ndarray::{Array2, Array3, ArrayView2};
use netinv_models::standard_normal;
use netinv_tomo::{stack_images, LinearOperator};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::{ClassChoice, LatentDecoder, LatentSearchConfig};
use crate::error::invalid;
use crate::{Error, Result};

/// Adam's moment decay rates and denominator guard.
const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const ADAM_EPS: f64 = 1e-8;

/// The latent search of [`LatentSearchConfig`] (Bora et al. 2017, "Compressed Sensing
/// using Generative Models", with class choice by the objective):
///
/// ```text
/// minimise over z   ||A D(z, c) - b||^2 + lambda ||z||^2     (per digit, class c, start)
/// grad = J_D(z)^T 2 A^T (A D(z, c) - b) + 2 lambda z
/// ```
///
/// The data term's gradient `g = 2 A^T (A x - b)` comes from the operator's batched
/// projection and adjoint; the decoder's Jacobian product from candle's backward pass of
/// `sum(D(z) * g)` (with `g` a constant). Every chain keeps the best objective it has
/// reached and its code and image.
///
/// # Examples
/// See [`crate::generative`].
#[derive(Debug, Clone)]
pub struct LatentSearch {
    cfg: LatentSearchConfig,
}

/// One chain: its digit and its class (`None` for an unconditional decoder).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Chain {
    digit: usize,
    class: Option<u32>,
}

/// The best point a chain has reached.
#[derive(Debug, Clone)]
struct Best {
    objective: f64,
    misfit: f64,
    z: Vec<f32>,
    image: Vec<f32>,
}

/// A latent search in progress: the chains' codes and Adam moments, their best points,
/// and the class objectives of the classes pruned so far. [`step`](Self::step) does one
/// Adam step on every chain; [`finish`](Self::finish) picks each digit's class and image.
pub struct LatentRun<'a, D: ?Sized, O: ?Sized> {
    cfg: LatentSearchConfig,
    decoder: &'a D,
    op: &'a O,
    /// `[angles, detectors, digits]`.
    sinograms: Array3<f32>,
    n_digits: usize,
    /// Classes of the decoder (0: unconditional).
    n_classes: usize,
    chains: Vec<Chain>,
    z: Vec<f32>,
    m: Vec<f64>,
    v: Vec<f64>,
    best: Vec<Best>,
    /// Per digit and class: the best objective of a class pruned by successive halving.
    pruned: Vec<Vec<Option<f64>>>,
    /// Whether the classes are chosen by the objective (label-free, conditional).
    choose_class: bool,
    t: usize,
}

impl<D: ?Sized, O: ?Sized> std::fmt::Debug for LatentRun<'_, D, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatentRun")
            .field("chains", &self.chains.len())
            .field("digits", &self.n_digits)
            .field("step", &self.t)
            .finish()
    }
}

/// A digit's result: the best decoded image of the chosen class, and the objectives that
/// chose it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatentFit {
    /// The decoded image `D(z*, c*)` `[s, s]` in (0, 1).
    pub image: Array2<f32>,
    /// Its latent code `z*` (length k).
    pub z: Vec<f32>,
    /// The chosen class `c*` (`None`: unconditional decoder).
    pub class: Option<u32>,
    /// Its objective `||A D(z*, c*) - b||^2 + lambda ||z*||^2`.
    pub objective: f64,
    /// Its data misfit `||A D(z*, c*) - b||^2`.
    pub misfit: f64,
    /// The best objective of every class searched (`None`: not searched), indexed by
    /// class; empty for an unconditional decoder.
    pub class_objectives: Vec<Option<f64>>,
    /// Confidence in the class: the second-best class objective over the best (>= 1;
    /// near 1 means two classes explain the data about equally well). `None` when only
    /// one class was searched (oracle, unconditional).
    pub confidence: Option<f64>,
}

impl LatentSearch {
    /// A search with checked settings.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] as [`LatentSearchConfig::validate`].
    pub fn new(cfg: LatentSearchConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self { cfg })
    }

    /// The settings.
    pub fn config(&self) -> &LatentSearchConfig {
        &self.cfg
    }

    /// A search on every sinogram (`op.range_shape()`), ready to [`step`](LatentRun::step):
    /// with an unconditional decoder `starts` chains per digit; with a conditional one and
    /// [`ClassChoice::Free`] `starts` chains for every class (no label is read), with
    /// [`ClassChoice::Oracle`] `starts` chains of the given class.
    ///
    /// # Errors
    /// [`Error::Shape`] for no sinograms, a sinogram that does not fit `op`, or a decoder
    /// image size that is not `op`'s domain; [`Error::InvalidConfig`] for oracle classes
    /// with an unconditional decoder, a wrong number of classes or a class out of range;
    /// candle errors.
    pub fn start<'a, D: LatentDecoder + ?Sized, O: LinearOperator + ?Sized>(
        &self,
        decoder: &'a D,
        op: &'a O,
        sinograms: &[ArrayView2<f32>],
        classes: ClassChoice<'_>,
    ) -> Result<LatentRun<'a, D, O>> {
        for b in sinograms {
            op.check_range_array(*b)?;
        }
        let s = decoder.image_size();
        if op.domain_shape() != (s, s) {
            return Err(Error::Shape {
                what: "decoder images",
                expected: format!("the operator's domain {:?}", op.domain_shape()),
                got: format!("{s} x {s}"),
            });
        }
        let n_classes = decoder.n_classes();
        let per_digit = digit_classes(n_classes, sinograms.len(), classes)?;
        let starts = start_codes(&self.cfg, decoder.latent_dim())?;
        let k = decoder.latent_dim();
        let mut chains = Vec::new();
        let mut z = Vec::new();
        for (digit, list) in per_digit.iter().enumerate() {
            for &class in list {
                for start in &starts {
                    chains.push(Chain { digit, class });
                    z.extend_from_slice(start);
                }
            }
        }
        let n = chains.len();
        let best = vec![
            Best {
                objective: f64::INFINITY,
                misfit: f64::INFINITY,
                z: vec![0.0; k],
                image: Vec::new(),
            };
            n
        ];
        Ok(LatentRun {
            cfg: self.cfg.clone(),
            decoder,
            op,
            sinograms: stack_images(sinograms)?,
            n_digits: sinograms.len(),
            n_classes,
            choose_class: n_classes > 0 && matches!(classes, ClassChoice::Free),
            chains,
            m: vec![0.0; z.len()],
            v: vec![0.0; z.len()],
            z,
            best,
            pruned: vec![vec![None; n_classes]; sinograms.len()],
            t: 0,
        })
    }

    /// Runs the search to the end ([`LatentSearch::start`], then every step).
    ///
    /// # Errors
    /// As [`LatentSearch::start`] and [`LatentRun::step`].
    pub fn run<D: LatentDecoder + ?Sized, O: LinearOperator + ?Sized>(
        &self,
        decoder: &D,
        op: &O,
        sinograms: &[ArrayView2<f32>],
        classes: ClassChoice<'_>,
    ) -> Result<Vec<LatentFit>> {
        let mut run = self.start(decoder, op, sinograms, classes)?;
        while run.running() {
            run.step()?;
        }
        run.finish()
    }
}

/// The classes searched for each digit.
fn digit_classes(
    n_classes: usize,
    n_digits: usize,
    classes: ClassChoice<'_>,
) -> Result<Vec<Vec<Option<u32>>>> {
    if n_digits == 0 {
        return Err(Error::Shape {
            what: "sinograms",
            expected: "at least one".into(),
            got: "none".into(),
        });
    }
    match classes {
        ClassChoice::Free if n_classes == 0 => Ok(vec![vec![None]; n_digits]),
        ClassChoice::Free => Ok(vec![(0..n_classes as u32).map(Some).collect(); n_digits]),
        ClassChoice::Oracle(_) if n_classes == 0 => Err(invalid(
            "classes",
            "an unconditional decoder has no classes to give",
        )),
        ClassChoice::Oracle(labels) => {
            if labels.len() != n_digits {
                return Err(invalid(
                    "classes",
                    format!("{} classes for {n_digits} sinograms", labels.len()),
                ));
            }
            if let Some(c) = labels.iter().find(|&&c| c as usize >= n_classes) {
                return Err(invalid(
                    "classes",
                    format!("class {c} is out of range (the decoder has {n_classes})"),
                ));
            }
            Ok(labels.iter().map(|&c| vec![Some(c)]).collect())
        }
    }
}

/// The start codes: zero, then seeded `N(0, scale^2 I)` draws.
fn start_codes(cfg: &LatentSearchConfig, k: usize) -> Result<Vec<Vec<f32>>> {
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let draws = standard_normal(
        &mut rng,
        cfg.starts.saturating_sub(1).max(1),
        k,
        &Device::Cpu,
    )?
    .flatten_all()?
    .to_vec1::<f32>()?;
    let mut out = vec![vec![0.0f32; k]];
    out.extend(
        draws
            .chunks_exact(k)
            .take(cfg.starts - 1)
            .map(|d| d.iter().map(|v| v * cfg.start_scale).collect()),
    );
    Ok(out)
}

impl<D: LatentDecoder + ?Sized, O: LinearOperator + ?Sized> LatentRun<'_, D, O> {
    /// Whether steps remain.
    pub fn running(&self) -> bool {
        self.t < self.cfg.steps
    }

    /// Steps done.
    pub fn iteration(&self) -> usize {
        self.t
    }

    /// Chains still running.
    pub fn chains(&self) -> usize {
        self.chains.len()
    }

    /// One Adam step on every chain (after `explore_steps` steps of a label-free
    /// conditional search, first the pruning to each digit's best `keep_classes`
    /// classes). A run past its last step does nothing.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if an objective or gradient is NaN or infinite; decoder and
    /// candle errors.
    pub fn step(&mut self) -> Result<()> {
        if !self.running() {
            return Ok(());
        }
        if self.choose_class
            && self.t == self.cfg.explore_steps
            && self.cfg.keep_classes < self.n_classes
        {
            self.prune();
        }
        let k = self.decoder.latent_dim();
        let mut grad = vec![0.0f32; self.z.len()];
        let chunk = self.cfg.chunk;
        for start in (0..self.chains.len()).step_by(chunk) {
            let end = (start + chunk).min(self.chains.len());
            let (g, misfit, images) = self.chunk_gradient(start, end)?;
            grad[start * k..end * k].copy_from_slice(&g);
            let pixels = images.len() / (end - start);
            for (c, ((misfit, image), z)) in misfit
                .iter()
                .zip(images.chunks_exact(pixels))
                .zip(self.z[start * k..end * k].chunks_exact(k))
                .enumerate()
            {
                let prior: f64 = z.iter().map(|&v| f64::from(v).powi(2)).sum();
                let objective = misfit + f64::from(self.cfg.prior_weight) * prior;
                if !objective.is_finite() {
                    return Err(Error::NonFinite {
                        what: "latent objective",
                        iteration: self.t + 1,
                    });
                }
                let best = &mut self.best[start + c];
                if objective < best.objective {
                    *best = Best {
                        objective,
                        misfit: *misfit,
                        z: z.to_vec(),
                        image: image.to_vec(),
                    };
                }
            }
        }
        self.adam(&grad)?;
        self.t += 1;
        Ok(())
    }

    /// The gradient of the objective in `z` of chains `start..end`, their misfits and
    /// decoded images (`[chains, s * s]`).
    fn chunk_gradient(&self, start: usize, end: usize) -> Result<(Vec<f32>, Vec<f64>, Vec<f32>)> {
        let k = self.decoder.latent_dim();
        let n = end - start;
        let classes: Option<Vec<u32>> = self.chains[start..end].iter().map(|c| c.class).collect();
        let mut misfit = Vec::new();
        let z = &self.z[start * k..end * k];
        let (images, dz) = self
            .decoder
            .decode_and_pull(z, classes.as_deref(), &mut |images| {
                let (g, m) = self.data_gradient(images, start, n);
                misfit = m;
                Ok(g)
            })?;
        let lam = self.cfg.prior_weight;
        let dz = dz.iter().zip(z).map(|(&d, &z)| d + 2.0 * lam * z).collect();
        Ok((dz, misfit, images))
    }

    /// `g = 2 A^T (A x - b)` of `n` decoded images (`[n, s * s]`, chains from `start`)
    /// in the same layout, and each chain's misfit `||A x - b||^2`.
    fn data_gradient(&self, images: &[f32], start: usize, n: usize) -> (Vec<f32>, Vec<f64>) {
        let (rows, cols) = self.op.domain_shape();
        let (angles, detectors) = self.op.range_shape();
        let pixels = rows * cols;
        // chains are the fastest axis of the operator's batch layout
        let mut x = Array3::<f32>::zeros((rows, cols, n));
        let flat = x.as_slice_mut().expect("a fresh array is contiguous");
        for (c, image) in images.chunks_exact(pixels).enumerate() {
            for (p, &v) in image.iter().enumerate() {
                flat[p * n + c] = v;
            }
        }
        let mut ax = Array3::<f32>::zeros((angles, detectors, n));
        self.op.apply_batch_into(x.view(), ax.view_mut());
        let mut misfit = vec![0.0f64; n];
        let digits: Vec<usize> = self.chains[start..start + n]
            .iter()
            .map(|c| c.digit)
            .collect();
        let b = self
            .sinograms
            .as_slice()
            .expect("stacked sinograms are contiguous");
        let nd = self.n_digits;
        let r = ax.as_slice_mut().expect("a fresh array is contiguous");
        for (ray, residuals) in r.chunks_exact_mut(n).enumerate() {
            let data = &b[ray * nd..(ray + 1) * nd];
            for ((r, &d), m) in residuals.iter_mut().zip(&digits).zip(&mut misfit) {
                *r -= data[d];
                *m += f64::from(*r).powi(2);
                *r *= 2.0;
            }
        }
        self.op.adjoint_batch_into(ax.view(), x.view_mut());
        let flat = x.as_slice().expect("a fresh array is contiguous");
        let mut g = vec![0.0f32; n * pixels];
        for (c, out) in g.chunks_exact_mut(pixels).enumerate() {
            for (p, o) in out.iter_mut().enumerate() {
                *o = flat[p * n + c];
            }
        }
        (g, misfit)
    }

    /// One Adam step on every code (bias-corrected, lr of the cosine schedule).
    fn adam(&mut self, grad: &[f32]) -> Result<()> {
        let t = self.t as i32 + 1;
        let lr = self.cfg.lr_at(self.t);
        let (c1, c2) = (1.0 - BETA1.powi(t), 1.0 - BETA2.powi(t));
        for ((z, &g), (m, v)) in self
            .z
            .iter_mut()
            .zip(grad)
            .zip(self.m.iter_mut().zip(self.v.iter_mut()))
        {
            let g = f64::from(g);
            if !g.is_finite() {
                return Err(Error::NonFinite {
                    what: "latent gradient",
                    iteration: self.t + 1,
                });
            }
            *m = BETA1 * *m + (1.0 - BETA1) * g;
            *v = BETA2 * *v + (1.0 - BETA2) * g * g;
            let step = lr * (*m / c1) / ((*v / c2).sqrt() + ADAM_EPS);
            *z = (f64::from(*z) - step) as f32;
        }
        Ok(())
    }

    /// Each digit's best objective per class over its current chains.
    fn class_best(&self) -> Vec<Vec<Option<f64>>> {
        let mut out = self.pruned.clone();
        for (chain, best) in self.chains.iter().zip(&self.best) {
            if let Some(c) = chain.class {
                let slot = &mut out[chain.digit][c as usize];
                *slot = Some(slot.map_or(best.objective, |o: f64| o.min(best.objective)));
            }
        }
        out
    }

    /// Successive halving: keeps the chains of each digit's `keep_classes` best classes
    /// (ties to the lower class) and records the others' objectives.
    fn prune(&mut self) {
        let per_class = self.class_best();
        let mut keep = vec![vec![false; self.n_classes]; self.n_digits];
        for (d, objectives) in per_class.iter().enumerate() {
            for c in ranked(objectives).into_iter().take(self.cfg.keep_classes) {
                keep[d][c] = true;
            }
            for (c, o) in objectives.iter().enumerate() {
                if !keep[d][c] {
                    self.pruned[d][c] = *o;
                }
            }
        }
        let k = self.decoder.latent_dim();
        let kept: Vec<usize> = (0..self.chains.len())
            .filter(|&i| {
                let ch = self.chains[i];
                ch.class.is_none_or(|c| keep[ch.digit][c as usize])
            })
            .collect();
        let pick = |v: &[f32]| -> Vec<f32> {
            kept.iter()
                .flat_map(|&i| v[i * k..(i + 1) * k].to_vec())
                .collect()
        };
        let pick64 = |v: &[f64]| -> Vec<f64> {
            kept.iter()
                .flat_map(|&i| v[i * k..(i + 1) * k].to_vec())
                .collect()
        };
        self.z = pick(&self.z);
        self.m = pick64(&self.m);
        self.v = pick64(&self.v);
        self.chains = kept.iter().map(|&i| self.chains[i]).collect();
        self.best = kept.iter().map(|&i| self.best[i].clone()).collect();
    }

    /// Each digit's fit: the chain with the best objective (of the best class when the
    /// class is chosen), its class objectives and confidence.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if no step was taken.
    pub fn finish(self) -> Result<Vec<LatentFit>> {
        if self.t == 0 {
            return Err(invalid("steps", "finish needs at least one step"));
        }
        let per_class = self.class_best();
        let s = self.decoder.image_size();
        let mut winner: Vec<Option<usize>> = vec![None; self.n_digits];
        for (i, (chain, best)) in self.chains.iter().zip(&self.best).enumerate() {
            let w = &mut winner[chain.digit];
            if w.is_none_or(|j| best.objective < self.best[j].objective) {
                *w = Some(i);
            }
        }
        winner
            .into_iter()
            .enumerate()
            .map(|(d, w)| {
                let i = w.ok_or_else(|| invalid("chains", format!("digit {d} has no chain")))?;
                let best = &self.best[i];
                let objectives = if self.n_classes > 0 {
                    per_class[d].clone()
                } else {
                    Vec::new()
                };
                let order = ranked(&objectives);
                let confidence = (order.len() >= 2).then(|| {
                    let first = objectives[order[0]].unwrap_or(f64::INFINITY);
                    let second = objectives[order[1]].unwrap_or(f64::INFINITY);
                    second / first.max(f64::MIN_POSITIVE)
                });
                Ok(LatentFit {
                    image: Array2::from_shape_vec((s, s), best.image.clone())
                        .map_err(|e| invalid("decoder", e.to_string()))?,
                    z: best.z.clone(),
                    class: self.chains[i].class,
                    objective: best.objective,
                    misfit: best.misfit,
                    class_objectives: objectives,
                    confidence,
                })
            })
            .collect()
    }
}

/// Classes with an objective, best first (ties to the lower class).
fn ranked(objectives: &[Option<f64>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..objectives.len())
        .filter(|&c| objectives[c].is_some())
        .collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (
            objectives[a].unwrap_or(f64::INFINITY),
            objectives[b].unwrap_or(f64::INFINITY),
        );
        x.total_cmp(&y).then(a.cmp(&b))
    });
    order
}
