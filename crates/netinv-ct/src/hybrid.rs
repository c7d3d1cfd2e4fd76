//! The thesis's hybrid loop: SIRT warm-up, then SIRT alternating with inversion iterations.

use candle_core::{Device, Tensor};
use ndarray::{s, Array2, Array3, ArrayView2, Axis};
use netinv_core::{IterState, Monitor, Termination};
use netinv_invert::{
    argmax, softmax_rows, CrossEntropy, Inverter, InvertibleNet, Objective, Reduction,
};
use netinv_tomo::{stack_images, LinearOperator, Sirt, SirtConfig};
use serde::{Deserialize, Serialize};

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
/// `[min, max]`; inversion iterations run [`netinv_invert::Inverter::run`] from the
/// current image. With inversion iterations that change nothing (`steps = 0`,
/// `inversion_per_cycle = 0`, or all weights 0) the result is bit-identical to
/// [`HybridConfig::sirt_iterations`] plain SIRT iterations.
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
        let inverter = if cfg.steps > 0 && cfg.inversion_per_cycle > 0 && cfg.alternating > 0 {
            Some(Inverter::new(cfg.inversion_config()?)?)
        } else {
            None
        };
        let sirt = Sirt::new(SirtConfig {
            iterations: 1,
            min: Some(cfg.min),
            max: Some(cfg.max),
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
        self.check_inputs(net, op, &[label])?;
        if let Some(r) = reference {
            if r.dim() != op.domain_shape() {
                return Err(Error::Shape {
                    what: "reference image",
                    expected: format!("{:?}", op.domain_shape()),
                    got: format!("{:?}", r.dim()),
                });
            }
        }
        op.check_range_array(sinogram)?; // shape and finiteness of the data, up front
        let total = self.cfg.total_iterations();
        let mut x = Array2::<f32>::zeros(op.domain_shape());
        let mut records = Vec::with_capacity(total);
        let mut state = IterState::new(total);
        let mut sirt_monitor = Monitor::new();
        let reason = loop {
            let i = state.iteration + 1;
            if i > total {
                break Termination::MaxIterations;
            }
            let (kind, class, objective) = match &self.inverter {
                Some(inv) if self.cfg.is_inversion(i) => {
                    let images = std::slice::from_mut(&mut x);
                    let (classes, objective) = self.invert_images(inv, net, images, &[label])?;
                    (StepKind::Inversion, classes[0], objective)
                }
                // `steps = 0`: an inversion iteration that leaves the image unchanged
                None if self.cfg.is_inversion(i) => (StepKind::Inversion, None, None),
                _ => {
                    x = self
                        .sirt
                        .reconstruct_with(op, sinogram, Some(x.view()), &mut sirt_monitor)?
                        .image;
                    (StepKind::Sirt, None, None)
                }
            };
            let residual = half_residual(op, x.view(), sinogram);
            let psnr = match reference {
                Some(r) => Some(netinv_metrics::psnr(r, x.view(), 1.0)?),
                None => None,
            };
            state.advance(Some(residual));
            if let Some(p) = psnr {
                state.set_metric("psnr", p);
            }
            records.push(IterationRecord {
                iteration: i,
                kind,
                residual,
                psnr,
                class,
                objective,
            });
            if let Some(reason) = monitor.after_iteration(&state, &x)? {
                break reason;
            }
        };
        monitor.finish(&mut state, reason, &x)?;
        Ok(HybridReconstruction {
            image: x,
            records,
            state,
        })
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
        if sinograms.is_empty() || sinograms.len() != labels.len() {
            return Err(Error::Shape {
                what: "labels vs sinograms",
                expected: format!("{} labels, at least one", sinograms.len()),
                got: format!("{}", labels.len()),
            });
        }
        self.check_inputs(net, op, labels)?;
        for b in sinograms {
            op.check_range_array(*b)?;
        }
        let total = self.cfg.total_iterations();
        let mut xs = vec![Array2::<f32>::zeros(op.domain_shape()); sinograms.len()];
        let mut records = vec![Vec::with_capacity(total); sinograms.len()];
        for i in 1..=total {
            let (kind, classes, objective) = match &self.inverter {
                Some(inv) if self.cfg.is_inversion(i) => {
                    let (classes, objective) = self.invert_images(inv, net, &mut xs, labels)?;
                    // the objective is the batch's; per image only for a single image
                    let objective = objective.filter(|_| xs.len() == 1);
                    (StepKind::Inversion, classes, objective)
                }
                None if self.cfg.is_inversion(i) => {
                    (StepKind::Inversion, vec![None; xs.len()], None)
                }
                _ => {
                    // one batched SIRT iteration from the current images
                    let starts: Vec<_> = xs.iter().map(|x| x.view()).collect();
                    let recs = self.sirt.reconstruct_batch(op, sinograms, Some(&starts))?;
                    for (x, rec) in xs.iter_mut().zip(recs) {
                        *x = rec.image;
                    }
                    (StepKind::Sirt, vec![None; xs.len()], None)
                }
            };
            let residuals = half_residuals(op, &xs, sinograms)?;
            for ((rec, residual), class) in records.iter_mut().zip(residuals).zip(classes) {
                rec.push(IterationRecord {
                    iteration: i,
                    kind,
                    residual,
                    psnr: None,
                    class,
                    objective,
                });
            }
        }
        xs.into_iter()
            .zip(records)
            .map(|(image, records)| {
                let mut state = IterState::new(total);
                for r in &records {
                    state.advance(Some(r.residual));
                }
                Monitor::new().finish(&mut state, Termination::MaxIterations, &image)?;
                Ok(HybridReconstruction {
                    image,
                    records,
                    state,
                })
            })
            .collect()
    }

    /// The checks shared by the single and batched entry points.
    fn check_inputs<N, O>(&self, net: &N, op: &O, labels: &[LabelMode]) -> Result<()>
    where
        N: InvertibleNet + ?Sized,
        O: LinearOperator + ?Sized,
    {
        check_scan(net, op)?;
        let (_, _, _, bn) = self.cfg.effective_weights();
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

    /// One inversion iteration on every image of `xs` at once: the class per label (the
    /// net's prediction on the current image in the label-free mode), then `steps`
    /// optimiser steps on the batch. Returns the classes used and the batch objective at
    /// the first and last step.
    #[allow(clippy::type_complexity)]
    fn invert_images<N: InvertibleNet + ?Sized>(
        &self,
        inverter: &Inverter,
        net: &N,
        xs: &mut [Array2<f32>],
        labels: &[LabelMode],
    ) -> Result<(Vec<Option<u32>>, Option<(f64, f64)>)> {
        let (class_weight, _, _, _) = self.cfg.effective_weights();
        let (rows, cols) = xs[0].dim();
        let data: Vec<f32> = xs.iter().flat_map(|x| x.iter().copied()).collect();
        let init = Tensor::from_vec(data, (xs.len(), 1, rows, cols), &Device::Cpu)?;
        let mut quiet = Monitor::new();
        let (out, classes) = if self.cfg.terms.uses_class() {
            let classes = choose_classes(net, &init, labels)?;
            let objective = WeightedCrossEntropy {
                ce: CrossEntropy::new(classes.clone(), Reduction::Sum),
                weight: class_weight,
            };
            let out = inverter.run(net, &objective, &init, &mut quiet)?;
            (out, classes.into_iter().map(Some).collect())
        } else {
            (
                inverter.run(net, &no_class, &init, &mut quiet)?,
                vec![None; xs.len()],
            )
        };
        let objective = match (out.history.first(), out.history.last()) {
            (Some(a), Some(b)) => Some((a.total, b.total)),
            _ => None,
        };
        for (k, x) in xs.iter_mut().enumerate() {
            x.assign(&out.images.slice(s![k, 0, .., ..]));
        }
        Ok((classes, objective))
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
        softmax_rows(&net.forward(images)?)?
            .iter()
            .map(|p| argmax(p) as u32)
            .collect()
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

/// [`half_residual`] of every image `xs[k]` against `sinograms[k]`, with one batched
/// projection.
fn half_residuals<O: LinearOperator + ?Sized>(
    op: &O,
    xs: &[Array2<f32>],
    sinograms: &[ArrayView2<'_, f32>],
) -> Result<Vec<f64>> {
    let views: Vec<_> = xs.iter().map(|x| x.view()).collect();
    let images = stack_images(&views)?;
    let (angles, n_det) = op.range_shape();
    let mut projected = Array3::<f32>::zeros((angles, n_det, xs.len()));
    op.apply_batch_into(images.view(), projected.view_mut());
    Ok(sinograms
        .iter()
        .enumerate()
        .map(|(k, b)| {
            let ax = projected.index_axis(Axis(2), k);
            0.5 * ax
                .iter()
                .zip(b.iter())
                .map(|(&p, &q)| (f64::from(p) - f64::from(q)).powi(2))
                .sum::<f64>()
        })
        .collect())
}

/// `0.5 ||A x - b||^2`, accumulated in f64.
pub fn half_residual<O: LinearOperator + ?Sized>(
    op: &O,
    x: ArrayView2<f32>,
    b: ArrayView2<f32>,
) -> f64 {
    let ax = op.apply(x);
    0.5 * ax
        .iter()
        .zip(b.iter())
        .map(|(&p, &q)| {
            let d = f64::from(p) - f64::from(q);
            d * d
        })
        .sum::<f64>()
}
