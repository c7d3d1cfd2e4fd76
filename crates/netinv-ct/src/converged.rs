//! A converged solver with the class prior: projected gradient on the data term plus the
//! network terms.

use ndarray::{Array2, ArrayView2, Zip};
use netinv_core::{IterState, Monitor, Termination};
use netinv_invert::InvertibleNet;
use netinv_tomo::{operator_norm, LinearOperator};
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::net::{check_class, check_scan, net_terms_gradient, NetTerms};
use crate::{Error, InversionTerms, LabelMode, Result};

/// Settings of [`ClassPriorSolver`].
///
/// Defaults: 1000 iterations, step `0.9 / ||A||^2` (estimated by 50 power iterations, seed
/// 0), `class_weight` 1, `tv` 1e-2, `l2` 0, `bn` 0, both terms, box [0, 1], stop when
/// `||x_k - x_{k-1}|| <= 1e-6 ||x_k||`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassPriorConfig {
    /// Maximum number of iterations (at least 1).
    pub iterations: usize,
    /// Step size multiplier `s`; the step is `s / ||A||^2` (finite, in (0, 2)).
    pub step_scale: f64,
    /// Weight of the class cross-entropy (>= 0).
    pub class_weight: f64,
    /// Weight of the squared-difference TV prior (>= 0).
    pub tv: f64,
    /// Weight of the squared L2 prior (>= 0).
    pub l2: f64,
    /// Weight of the BatchNorm-statistics prior (>= 0).
    pub bn: f64,
    /// Which network terms are used.
    pub terms: InversionTerms,
    /// Lower bound of the box.
    pub min: f32,
    /// Upper bound of the box.
    pub max: f32,
    /// Stop once `||x_k - x_{k-1}|| <= relative_change ||x_k||` (`None`: all iterations).
    pub relative_change: Option<f64>,
    /// Power iterations for `||A||` (at least 1).
    pub power_iterations: usize,
    /// Seed of the power iteration.
    pub seed: u64,
}

impl Default for ClassPriorConfig {
    fn default() -> Self {
        Self {
            iterations: 1000,
            step_scale: 0.9,
            class_weight: 1.0,
            tv: 1e-2,
            l2: 0.0,
            bn: 0.0,
            terms: InversionTerms::Both,
            min: 0.0,
            max: 1.0,
            relative_change: Some(1e-6),
            power_iterations: 50,
            seed: 0,
        }
    }
}

impl ClassPriorConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        if self.iterations == 0 {
            return Err(invalid("iterations", "must be at least 1"));
        }
        if self.power_iterations == 0 {
            return Err(invalid("power_iterations", "must be at least 1"));
        }
        if !(self.step_scale.is_finite() && self.step_scale > 0.0 && self.step_scale < 2.0) {
            return Err(invalid(
                "step_scale",
                format!("must be in (0, 2), got {}", self.step_scale),
            ));
        }
        for (field, w) in [
            ("class_weight", self.class_weight),
            ("tv", self.tv),
            ("l2", self.l2),
            ("bn", self.bn),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                return Err(invalid(field, format!("must be finite and >= 0, got {w}")));
            }
        }
        if !(self.min.is_finite() && self.max.is_finite() && self.min < self.max) {
            return Err(invalid(
                "min",
                format!(
                    "[{}, {}] is not a finite box with min < max",
                    self.min, self.max
                ),
            ));
        }
        if let Some(r) = self.relative_change {
            if !(r.is_finite() && r >= 0.0) {
                return Err(invalid("relative_change", format!("must be >= 0, got {r}")));
            }
        }
        Ok(())
    }

    fn weights(&self) -> NetTerms {
        let class = if self.terms.uses_class() {
            self.class_weight
        } else {
            0.0
        };
        let p = self.terms.uses_priors();
        let on = |w: f64| if p { w } else { 0.0 };
        NetTerms {
            class,
            tv: on(self.tv),
            l2: on(self.l2),
            bn: on(self.bn),
        }
    }
}

/// The result of [`ClassPriorSolver::reconstruct`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassPriorReconstruction {
    /// The final image `[rows, cols]` in `[min, max]`.
    pub image: Array2<f32>,
    /// The class of the class term at the last iteration (if the term is on).
    pub class: Option<u32>,
    /// The final state (cost = full objective at the last iterate before its update).
    pub state: IterState,
}

/// Projected gradient on the data term plus the network terms:
///
/// ```text
/// f(x) = 0.5 ||A x - b||^2 + w_c CE(F(x), c) + tv TV2(x) + l2 ||x||^2 + bn R_BN(x)
/// x <- clip(x - tau grad f(x), min, max),   tau = step_scale / ||A||^2
/// ```
///
/// The class gradient goes through the frozen network. In the label-free mode
/// ([`LabelMode::Predicted`]) `c` is the network's prediction for the current iterate, from
/// the same forward pass, at every iteration. The network terms are not convex, so this
/// converges to a stationary point at best; the relative-change rule stops it.
#[derive(Debug, Clone)]
pub struct ClassPriorSolver {
    cfg: ClassPriorConfig,
}

impl ClassPriorSolver {
    /// A solver with a checked configuration.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] as [`ClassPriorConfig::validate`].
    pub fn new(cfg: ClassPriorConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self { cfg })
    }

    /// The configuration.
    pub fn config(&self) -> &ClassPriorConfig {
        &self.cfg
    }

    /// Reconstructs from `sinogram`, starting from `initial` (or zero), reporting to
    /// `monitor` after every iteration (cost = objective, metric `residual`).
    ///
    /// # Errors
    /// As [`crate::HybridReconstructor::reconstruct`]: [`Error::NoAngles`],
    /// [`Error::Shape`], [`Error::NoBatchNorm`], [`Error::ClassOutOfRange`],
    /// [`Error::Tomo`]; [`Error::NonFinite`] if the objective or its gradient diverges.
    pub fn reconstruct<N, O>(
        &self,
        net: &N,
        op: &O,
        sinogram: ArrayView2<f32>,
        label: LabelMode,
        initial: Option<ArrayView2<f32>>,
        monitor: &mut Monitor<'_, Array2<f32>>,
    ) -> Result<ClassPriorReconstruction>
    where
        N: InvertibleNet + ?Sized,
        O: LinearOperator + ?Sized,
    {
        check_scan(net, op)?;
        let cfg = &self.cfg;
        let w = cfg.weights();
        if w.bn > 0.0 && !net.has_batch_norm() {
            return Err(Error::NoBatchNorm { weight: w.bn });
        }
        if let LabelMode::Oracle(c) = label {
            check_class(net, c)?;
        }
        let _ = op.try_adjoint(sinogram)?;
        let shape = op.domain_shape();
        let clip = |v: f32| v.clamp(cfg.min, cfg.max);
        let mut x = match initial {
            Some(init) => {
                if init.dim() != shape {
                    return Err(Error::Shape {
                        what: "initial image",
                        expected: format!("{shape:?}"),
                        got: format!("{:?}", init.dim()),
                    });
                }
                init.mapv(clip)
            }
            None => Array2::zeros(shape).mapv(clip),
        };
        let norm = operator_norm(op, false, cfg.power_iterations, cfg.seed);
        let tau = (cfg.step_scale / (norm * norm).max(f64::MIN_POSITIVE)) as f32;
        let mut residual = Array2::<f32>::zeros(op.range_shape());
        let mut data_grad = Array2::<f32>::zeros(shape);
        let mut state = IterState::new(cfg.iterations);
        let mut class = None;
        let fixed = match label {
            LabelMode::Oracle(c) => Some(c),
            LabelMode::Predicted => None,
        };
        let reason = loop {
            let i = state.iteration + 1;
            op.apply_into(x.view(), residual.view_mut());
            Zip::from(&mut residual)
                .and(&sinogram)
                .for_each(|r, &b| *r -= b);
            op.adjoint_into(residual.view(), data_grad.view_mut());
            let data = 0.5
                * residual
                    .iter()
                    .map(|&r| f64::from(r) * f64::from(r))
                    .sum::<f64>();
            let (net_value, net_grad, predicted) = net_terms_gradient(net, x.view(), fixed, w)?;
            if w.class > 0.0 {
                class = Some(fixed.unwrap_or(predicted));
            }
            let cost = data + net_value;
            if !cost.is_finite() || net_grad.iter().any(|g| !g.is_finite()) {
                return Err(Error::NonFinite {
                    what: "objective or gradient",
                    iteration: i,
                });
            }
            let (mut change, mut size) = (0.0f64, 0.0f64);
            Zip::from(&mut x)
                .and(&data_grad)
                .and(&net_grad)
                .for_each(|x, &g, &h| {
                    let v = clip(*x - tau * (g + h));
                    change += f64::from(v - *x).powi(2);
                    size += f64::from(v).powi(2);
                    *x = v;
                });
            state.advance(Some(cost));
            state.set_metric("residual", data);
            if let Some(reason) = monitor.after_iteration(&state, &x)? {
                break reason;
            }
            if cfg
                .relative_change
                .is_some_and(|r| change.sqrt() <= r * size.sqrt())
            {
                break Termination::Converged;
            }
            if i >= cfg.iterations {
                break Termination::MaxIterations;
            }
        };
        monitor.finish(&mut state, reason, &x)?;
        Ok(ClassPriorReconstruction {
            image: x,
            class,
            state,
        })
    }
}
