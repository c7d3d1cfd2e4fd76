//! The thesis's hybrid loop: SIRT warm-up, then SIRT alternating with inversion iterations.

use candle_core::Tensor;
use ndarray::{Array2, ArrayView2};
use netinv_core::{IterState, Monitor, Termination};
use netinv_invert::{CrossEntropy, Inverter, InvertibleNet, Objective, Reduction};
use netinv_tomo::{LinearOperator, Sirt, SirtConfig};
use serde::{Deserialize, Serialize};

use crate::net::{check_class, check_scan, predict_class, to_tensor};
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
        check_scan(net, op)?;
        let (_, _, _, bn) = self.cfg.effective_weights();
        if self.inverter.is_some() && bn > 0.0 && !net.has_batch_norm() {
            return Err(Error::NoBatchNorm { weight: bn });
        }
        if let LabelMode::Oracle(c) = label {
            check_class(net, c)?;
        }
        if let Some(r) = reference {
            if r.dim() != op.domain_shape() {
                return Err(Error::Shape {
                    what: "reference image",
                    expected: format!("{:?}", op.domain_shape()),
                    got: format!("{:?}", r.dim()),
                });
            }
        }
        let _ = op.try_adjoint(sinogram)?; // shape and finiteness of the data, up front
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
                    let (next, class, objective) = self.inversion_iteration(inv, net, &x, label)?;
                    x = next;
                    (StepKind::Inversion, class, objective)
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

    /// One inversion iteration from `x`: the class per `label` (the prediction on `x` in
    /// the label-free mode), then `steps` optimiser steps.
    #[allow(clippy::type_complexity)]
    fn inversion_iteration<N: InvertibleNet + ?Sized>(
        &self,
        inverter: &Inverter,
        net: &N,
        x: &Array2<f32>,
        label: LabelMode,
    ) -> Result<(Array2<f32>, Option<u32>, Option<(f64, f64)>)> {
        let (class_weight, _, _, _) = self.cfg.effective_weights();
        let init = to_tensor(x.view())?;
        let mut quiet = Monitor::new();
        let (out, class) = if self.cfg.terms.uses_class() {
            let class = match label {
                LabelMode::Oracle(c) => c,
                LabelMode::Predicted => predict_class(net, x.view())?,
            };
            let objective = WeightedCrossEntropy {
                ce: CrossEntropy::new(vec![class], Reduction::Mean),
                weight: class_weight,
            };
            (
                inverter.run(net, &objective, &init, &mut quiet)?,
                Some(class),
            )
        } else {
            (inverter.run(net, &no_class, &init, &mut quiet)?, None)
        };
        let objective = match (out.history.first(), out.history.last()) {
            (Some(a), Some(b)) => Some((a.total, b.total)),
            _ => None,
        };
        let image = out
            .images
            .into_shape_with_order(x.dim())
            .map_err(|e| Error::Shape {
                what: "inverted image",
                expected: format!("{:?}", x.dim()),
                got: e.to_string(),
            })?;
        Ok((image, class, objective))
    }
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
