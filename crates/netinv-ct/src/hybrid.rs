//! The thesis's hybrid loop: SIRT warm-up, then SIRT alternating with inversion iterations.

use candle_core::{Device, Tensor};
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};
use netinv_core::{IterState, Monitor, Termination};
use netinv_invert::{CrossEntropy, InversionRun, Inverter, InvertibleNet, Objective, Reduction};
use netinv_tomo::{LinearOperator, Sirt, SirtConfig, SirtRun};
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::net::{check_class, check_scan};
use crate::{Error, HybridConfig, LabelMode, Result};

/// What an iteration of the hybrid loop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// One SIRT iteration.
    Sirt,
    /// One inversion iteration (`steps` optimiser steps on the image).
    Inversion,
}

/// The metrics of one iteration, measured on the image after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterationRecord {
    /// The iteration (1-based).
    pub iteration: usize,
    /// SIRT or inversion.
    pub kind: StepKind,
    /// Data residual `0.5 ||A x - b||^2` after the iteration.
    pub residual: f64,
    /// PSNR (data range 1) against the reference image, when one was given.
    pub psnr: Option<f64>,
    /// The class of the class term (inversion iterations that use one).
    pub class: Option<u32>,
    /// The inversion objective (weighted class loss + priors) at the iteration's first
    /// and last optimiser step, each measured before that step's update, as the inversion
    /// engine reports them (inversion iterations with `steps > 0` only).
    pub objective: Option<(f64, f64)>,
}

/// The result of [`HybridReconstructor::reconstruct`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HybridReconstruction {
    /// The final image `[rows, cols]`, values in `[min, max]`.
    pub image: Array2<f32>,
    /// One record per iteration done.
    pub records: Vec<IterationRecord>,
    /// The final iteration state (cost = last residual, metric `psnr` if a reference was
    /// given, termination reason).
    pub state: IterState,
}

/// A scaled cross-entropy objective `w CE(z, c)`.
struct WeightedCrossEntropy {
    ce: CrossEntropy,
    weight: f64,
}

impl Objective for WeightedCrossEntropy {
    fn loss(&self, output: &Tensor) -> candle_core::Result<Tensor> {
        self.ce.loss(output)?.affine(self.weight, 0.0)
    }
    fn check(&self, batch: usize, outputs: usize) -> netinv_invert::Result<()> {
        self.ce.check(batch, outputs)
    }
    fn targets(&self) -> Option<&[u32]> {
        self.ce.targets()
    }
    fn name(&self) -> &str {
        "weighted_cross_entropy"
    }
}

/// The zero objective of the priors-only arm (no class, no label).
fn no_class(output: &Tensor) -> candle_core::Result<Tensor> {
    output.zeros_like()?.sum_all()
}

/// SIRT warm-up, then SIRT alternating with network-inversion iterations (thesis,
/// chapter 5), with the class chosen by [`LabelMode`] and the terms by
/// [`crate::InversionTerms`]; see [`HybridConfig`] for the schedule.
///
/// SIRT iterations are exactly those of [`netinv_tomo::Sirt`] (ASTRA's SIRT) with the box
/// `inversion.clamp`; inversion iterations are `inversion.steps` steps of a
/// [`netinv_invert::InversionRun`] from the current image with a fresh optimiser state.
/// One SIRT run and one inversion run serve the whole loop ([`HybridRun`]): the SIRT
/// weights are computed once and the sinograms checked once. With inversion iterations
/// that change nothing (`steps = 0`, `inversion_per_cycle = 0`, or all weights 0) the
/// result is bit-identical to [`HybridConfig::sirt_iterations`] plain SIRT iterations.
#[derive(Debug)]
pub struct HybridReconstructor {
    cfg: HybridConfig,
    inverter: Option<Inverter>,
    sirt: Sirt,
}

impl HybridReconstructor {
    /// A reconstructor with a checked configuration.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] as [`HybridConfig::validate`].
    pub fn new(cfg: HybridConfig) -> Result<Self> {
        cfg.validate()?;
        let inverter = if cfg.inverts() {
            Some(Inverter::new(cfg.inversion_config()?)?)
        } else {
            None
        };
        let sirt = Sirt::new(SirtConfig {
            // the budget of the one SIRT run: every SIRT iteration of the schedule
            iterations: cfg.sirt_iterations().max(1),
            min: cfg.bounds().map(|b| b[0]),
            max: cfg.bounds().map(|b| b[1]),
            relaxation: cfg.relaxation,
        })?;
        Ok(Self {
            cfg,
            inverter,
            sirt,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HybridConfig {
        &self.cfg
    }

    /// Reconstructs an image `op.domain_shape()` from `sinogram` (`op.range_shape()`),
    /// starting from zero, with the class chosen by `label`; `reference` (the true image,
    /// if known) adds a PSNR to every iteration's record. Reports to `monitor` after every
    /// iteration (cost = residual `0.5 ||A x - b||^2`, metric `psnr`); a stop rule ends
    /// the run early.
    ///
    /// # Errors
    /// [`Error::NoAngles`] for a scan without angles; [`Error::Shape`] if the classifier
    /// does not take `[1, rows, cols]` images or `reference` has the wrong shape;
    /// [`Error::NoBatchNorm`] if the BN prior is on and the classifier has no BatchNorm;
    /// [`Error::ClassOutOfRange`] for an oracle class the net does not have;
    /// [`Error::Tomo`] for a sinogram of the wrong shape or with NaN; inversion and
    /// observer errors.
    pub fn reconstruct<N, O>(
        &self,
        net: &N,
        op: &O,
        sinogram: ArrayView2<f32>,
        label: LabelMode,
        reference: Option<ArrayView2<f32>>,
        monitor: &mut Monitor<'_, Array2<f32>>,
    ) -> Result<HybridReconstruction>
    where
        N: InvertibleNet + ?Sized,
        O: LinearOperator + ?Sized,
    {
        if let Some(r) = reference {
            if r.dim() != op.domain_shape() {
                return Err(Error::Shape {
                    what: "reference image",
                    expected: format!("{:?}", op.domain_shape()),
                    got: format!("{:?}", r.dim()),
                });
            }
        }
        let mut run = self.start_batch(net, op, &[sinogram], &[label])?;
        let mut state = IterState::new(run.total);
        let reason = loop {
            if run.done() {
                break Termination::MaxIterations;
            }
            let mut record = run.step()?.remove(0);
            // the monitor watches an owned image (its observers may keep it)
            let x = run.image(0).to_owned();
            if let Some(r) = reference {
                record.psnr = Some(netinv_metrics::psnr(r, x.view(), 1.0)?);
            }
            state.advance(Some(record.residual));
            if let Some(p) = record.psnr {
                state.set_metric("psnr", p);
            }
            run.records[0].push(record);
            if let Some(reason) = monitor.after_iteration(&state, &x)? {
                break reason;
            }
        };
        let mut rec = run.finish().remove(0);
        monitor.finish(&mut state, reason, &rec.image)?;
        rec.state = state;
        Ok(rec)
    }

    /// Reconstructs several images at once: the same as [`HybridReconstructor::reconstruct`]
    /// on each sinogram (without reference or monitor), but each inversion iteration runs
    /// all images through the network as one batch, which is several times faster on a CPU
    /// than one image at a time. The class loss is summed over the batch and the BatchNorm
    /// statistics are taken per image, so every image is reconstructed as if it were alone
    /// (equal up to float rounding); `labels[k]` chooses the class of image `k`.
    ///
    /// # Errors
    /// As [`HybridReconstructor::reconstruct`]; [`Error::Shape`] if `labels` and
    /// `sinograms` differ in length or there are no sinograms.
    pub fn reconstruct_batch<N, O>(
        &self,
        net: &N,
        op: &O,
        sinograms: &[ArrayView2<'_, f32>],
        labels: &[LabelMode],
    ) -> Result<Vec<HybridReconstruction>>
    where
        N: InvertibleNet + ?Sized,
        O: LinearOperator + ?Sized,
    {
        let mut run = self.start_batch(net, op, sinograms, labels)?;
        while !run.done() {
            let records = run.step()?;
            for (list, record) in run.records.iter_mut().zip(records) {
                list.push(record);
            }
        }
        Ok(run.finish())
    }

    /// Prepares the loop on a batch of sinograms (`labels[k]` for sinogram `k`), all
    /// images starting from zero: one SIRT run (its weights computed and the sinograms
    /// checked once) and, when inversion iterations do anything, one inversion run.
    /// [`HybridRun::step`] then does one iteration of the schedule on every image.
    ///
    /// # Errors
    /// As [`HybridReconstructor::reconstruct_batch`].
    pub fn start_batch<'a, N, O>(
        &'a self,
        net: &'a N,
        op: &'a O,
        sinograms: &[ArrayView2<'_, f32>],
        labels: &[LabelMode],
    ) -> Result<HybridRun<'a, N, O>>
    where
        N: InvertibleNet + ?Sized,
        O: LinearOperator + ?Sized,
    {
        if sinograms.is_empty() || sinograms.len() != labels.len() {
            return Err(Error::Shape {
                what: "labels vs sinograms",
                expected: format!("{} labels, at least one", sinograms.len()),
                got: format!("{}", labels.len()),
            });
        }
        self.check_inputs(net, op, labels)?;
        let sirt = self.sirt.start_batch(op, sinograms, None)?;
        let inversion = match &self.inverter {
            Some(inverter) => {
                let (rows, cols) = op.domain_shape();
                let zeros = Tensor::zeros(
                    (labels.len(), 1, rows, cols),
                    candle_core::DType::F32,
                    &Device::Cpu,
                )?;
                Some(inverter.start(net, no_class, &zeros)?)
            }
            None => None,
        };
        let (angles, detectors) = op.range_shape();
        Ok(HybridRun {
            cfg: &self.cfg,
            net,
            op,
            labels: labels.to_vec(),
            sinograms: sinograms.iter().map(|b| b.to_owned()).collect(),
            projected: Array3::zeros((angles, detectors, labels.len())),
            sirt,
            inversion,
            iteration: 0,
            total: self.cfg.total_iterations(),
            records: vec![Vec::with_capacity(self.cfg.total_iterations()); labels.len()],
        })
    }

    /// The checks shared by the single and batched entry points.
    fn check_inputs<N, O>(&self, net: &N, op: &O, labels: &[LabelMode]) -> Result<()>
    where
        N: InvertibleNet + ?Sized,
        O: LinearOperator + ?Sized,
    {
        check_scan(net, op)?;
        let bn = self.cfg.net_terms().bn;
        if self.inverter.is_some() && bn > 0.0 && !net.has_batch_norm() {
            return Err(Error::NoBatchNorm { weight: bn });
        }
        for label in labels {
            if let LabelMode::Oracle(c) = *label {
                check_class(net, c)?;
            }
        }
        Ok(())
    }
}

/// The hybrid loop in progress on a batch of images (from
/// [`HybridReconstructor::start_batch`]): one SIRT run, which holds the images
/// `[rows, cols, batch]`, and one inversion run, which the images visit for each inversion
/// iteration (its optimiser state reset and its class objective set from the current
/// images).
pub struct HybridRun<'a, N: InvertibleNet + ?Sized, O: LinearOperator + ?Sized> {
    cfg: &'a HybridConfig,
    net: &'a N,
    op: &'a O,
    labels: Vec<LabelMode>,
    sinograms: Vec<Array2<f32>>,
    /// `A x` of the batch, `[angles, detectors, batch]` (for the residuals).
    projected: Array3<f32>,
    sirt: SirtRun<'a, O>,
    inversion: Option<InversionRun<'a, N>>,
    iteration: usize,
    total: usize,
    records: Vec<Vec<IterationRecord>>,
}

impl<N: InvertibleNet + ?Sized, O: LinearOperator + ?Sized> std::fmt::Debug
    for HybridRun<'_, N, O>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridRun")
            .field("cfg", self.cfg)
            .field("images", &self.labels.len())
            .field("iteration", &self.iteration)
            .finish_non_exhaustive()
    }
}

impl<N: InvertibleNet + ?Sized, O: LinearOperator + ?Sized> HybridRun<'_, N, O> {
    /// Whether every iteration of the schedule is done.
    pub fn done(&self) -> bool {
        self.iteration >= self.total
    }

    /// The iterations done.
    pub fn iteration(&self) -> usize {
        self.iteration
    }

    /// The current image `k`, `[rows, cols]`.
    ///
    /// # Panics
    /// If `k` is not below the batch size.
    pub fn image(&self, k: usize) -> ArrayView2<'_, f32> {
        self.sirt.image(k)
    }

    /// All current images, `[rows, cols, batch]`.
    pub fn images(&self) -> ArrayView3<'_, f32> {
        self.sirt.images()
    }

    /// The next iteration of the schedule on every image (SIRT or inversion); returns
    /// each image's record (without PSNR).
    ///
    /// # Errors
    /// Inversion and network errors; [`Error::InvalidConfig`] after the last iteration.
    pub fn step(&mut self) -> Result<Vec<IterationRecord>> {
        if self.done() {
            return Err(invalid(
                "iteration",
                format!("all {} iterations are done", self.total),
            ));
        }
        let i = self.iteration + 1;
        let batch = self.labels.len();
        let (kind, classes, objective) = if !self.cfg.is_inversion(i) {
            self.sirt.step()?;
            (StepKind::Sirt, vec![None; batch], None)
        } else if self.inversion.is_some() {
            let (classes, objective) = self.invert()?;
            // the objective is the batch's; per image only for a single image
            (
                StepKind::Inversion,
                classes,
                objective.filter(|_| batch == 1),
            )
        } else {
            // `steps = 0`: an inversion iteration that leaves the images unchanged
            (StepKind::Inversion, vec![None; batch], None)
        };
        self.iteration = i;
        let residuals = self.half_residuals();
        Ok(residuals
            .into_iter()
            .zip(classes)
            .map(|(residual, class)| IterationRecord {
                iteration: i,
                kind,
                residual,
                psnr: None,
                class,
                objective,
            })
            .collect())
    }

    /// One inversion iteration on the batch: the images go to the inversion run, the
    /// class of each is chosen (the net's prediction in the label-free mode), then
    /// `steps` optimiser steps from a fresh optimiser state, and the images come back.
    /// Returns the classes used and the batch objective at the first and last step.
    #[allow(clippy::type_complexity)]
    fn invert(&mut self) -> Result<(Vec<Option<u32>>, Option<(f64, f64)>)> {
        let Some(run) = self.inversion.as_mut() else {
            return Ok((vec![None; self.labels.len()], None));
        };
        let (rows, cols, batch) = self.sirt.images().dim();
        // [rows, cols, batch] -> [batch, 1, rows, cols]: the one copy into the network layout
        let data: Vec<f32> = self
            .sirt
            .images()
            .permuted_axes([2, 0, 1])
            .iter()
            .copied()
            .collect();
        let images = Tensor::from_vec(data, (batch, 1, rows, cols), &Device::Cpu)?;
        let classes = if self.cfg.terms.uses_class() {
            let classes = choose_classes(self.net, &images, &self.labels)?;
            run.set_objective(WeightedCrossEntropy {
                ce: CrossEntropy::new(classes.clone(), Reduction::Sum),
                weight: self.cfg.net_terms().class,
            })?;
            classes.into_iter().map(Some).collect()
        } else {
            vec![None; batch]
        };
        run.set_images(&images)?;
        run.reset_optimizer();
        let first = run.history().len();
        let mut quiet = Monitor::new();
        for _ in 0..self.cfg.inversion.steps {
            run.step(&mut quiet)?;
        }
        let history = &run.history()[first..];
        let objective = match (history.first(), history.last()) {
            (Some(a), Some(b)) => Some((a.total, b.total)),
            _ => None,
        };
        // [batch, 1, rows, cols] -> [rows, cols, batch]: the one copy back
        let out = run.images().flatten_all()?.to_vec1::<f32>()?;
        let out = ArrayView3::from_shape((batch, rows, cols), &out).map_err(|e| Error::Shape {
            what: "inversion images",
            expected: format!("{:?}", (batch, rows, cols)),
            got: e.to_string(),
        })?;
        self.sirt.images_mut().assign(&out.permuted_axes([1, 2, 0]));
        Ok((classes, objective))
    }

    /// `0.5 ||A x_k - b_k||^2` of every image, with one batched projection.
    fn half_residuals(&mut self) -> Vec<f64> {
        self.op
            .apply_batch_into(self.sirt.images(), self.projected.view_mut());
        self.sinograms
            .iter()
            .enumerate()
            .map(|(k, b)| half_squared_distance(self.projected.index_axis(Axis(2), k), b.view()))
            .collect()
    }

    /// Ends the loop: every image with its records and final state (termination
    /// `MaxIterations`; [`HybridReconstructor::reconstruct`] replaces the state by its
    /// monitor's).
    pub fn finish(self) -> Vec<HybridReconstruction> {
        let images = self.sirt.images();
        self.records
            .into_iter()
            .enumerate()
            .map(|(k, records)| {
                let mut state = IterState::new(self.total);
                for r in &records {
                    state.advance(Some(r.residual));
                }
                state.termination = Some(Termination::MaxIterations);
                HybridReconstruction {
                    image: images.index_axis(Axis(2), k).to_owned(),
                    records,
                    state,
                }
            })
            .collect()
    }
}

/// The class of every image: the oracle's, or the net's prediction on `images`
/// `[b, 1, rows, cols]` (one forward pass for the batch, only if a label is `Predicted`).
fn choose_classes<N: InvertibleNet + ?Sized>(
    net: &N,
    images: &Tensor,
    labels: &[LabelMode],
) -> Result<Vec<u32>> {
    let predicted = if labels.iter().any(|l| matches!(l, LabelMode::Predicted)) {
        net.predict(images)?
    } else {
        Vec::new()
    };
    Ok(labels
        .iter()
        .enumerate()
        .map(|(k, l)| match l {
            LabelMode::Oracle(c) => *c,
            LabelMode::Predicted => predicted[k],
        })
        .collect())
}

/// `0.5 ||p - q||^2`, accumulated in f64.
fn half_squared_distance(p: ArrayView2<f32>, q: ArrayView2<f32>) -> f64 {
    0.5 * p
        .iter()
        .zip(q.iter())
        .map(|(&p, &q)| {
            let d = f64::from(p) - f64::from(q);
            d * d
        })
        .sum::<f64>()
}

/// `0.5 ||A x - b||^2`, accumulated in f64.
pub fn half_residual<O: LinearOperator + ?Sized>(
    op: &O,
    x: ArrayView2<f32>,
    b: ArrayView2<f32>,
) -> f64 {
    half_squared_distance(op.apply(x).view(), b)
}
