//! Settings of the hybrid SIRT + inversion loop, the class choice and the ablation arms.

use netinv_invert::{ImageOptimizer, InversionConfig, Reduction};
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::Result;

/// Which terms an inversion step optimises (the ablation the thesis asked for).
///
/// ```text
/// Both       : w_c CE(F(x), c) + tv TV2(x) + l2 ||x||^2 + bn R_BN(x)
/// PriorsOnly :                   tv TV2(x) + l2 ||x||^2 + bn R_BN(x)   (no class, no label)
/// ClassOnly  : w_c CE(F(x), c)
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InversionTerms {
    /// Class loss and image priors (the thesis's model step; default).
    #[default]
    Both,
    /// Image priors only (TV, L2, BN statistics): no class term.
    PriorsOnly,
    /// Class loss only: no image prior.
    ClassOnly,
}

impl InversionTerms {
    /// Whether the class term is used.
    pub fn uses_class(self) -> bool {
        matches!(self, Self::Both | Self::ClassOnly)
    }

    /// Whether the image priors are used.
    pub fn uses_priors(self) -> bool {
        matches!(self, Self::Both | Self::PriorsOnly)
    }

    /// A short name for tables: `both`, `priors_only`, `class_only`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Both => "both",
            Self::PriorsOnly => "priors_only",
            Self::ClassOnly => "class_only",
        }
    }
}

/// How the class of the class term is chosen.
///
/// `Predicted` carries no label on purpose: the label-free mode cannot read the true class
/// because it is never given one. Before every inversion iteration it takes the network's
/// prediction (argmax of the logits) on the current reconstruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelMode {
    /// The true class (an oracle upper bound).
    Oracle(u32),
    /// The class the network predicts for the current reconstruction (label-free).
    Predicted,
}

impl LabelMode {
    /// `"oracle"` or `"predicted"`, as in the study's `results.json`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Oracle(_) => "oracle",
            Self::Predicted => "predicted",
        }
    }
}

/// Settings of [`crate::HybridReconstructor`]: SIRT warm-up, then SIRT alternating with
/// inversion iterations.
///
/// ```text
/// iterations 1..=warmup_sirt                         : SIRT
/// then `alternating` iterations, position p = i mod (sirt_per_cycle + inversion_per_cycle):
///     p <  sirt_per_cycle                            : SIRT
///     p >= sirt_per_cycle                            : inversion iteration
/// inversion iteration = `steps` optimiser steps (Adam, lr) on the image of
///     class_weight CE(F(x), c) + tv TV2(x) + l2 ||x||^2 + bn R_BN(x)   (terms per `terms`),
///     each step followed by the clamp to [min, max]
/// ```
///
/// Defaults (the thesis's chapter 5 schedule): 50 warm-up SIRT iterations, 50 alternating
/// iterations at 3:1 (so 38 SIRT and 12 inversion iterations), 5 Adam steps of lr 3e-3
/// per inversion iteration, `class_weight` 1, `tv` 1e-3, `l2` 1e-4, `bn` 1e-2, both terms,
/// box [0, 1] for SIRT and inversion, SIRT relaxation 1. Every inversion iteration starts a
/// fresh Adam state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HybridConfig {
    /// SIRT iterations before the first inversion iteration.
    pub warmup_sirt: usize,
    /// Iterations of the alternating phase (SIRT and inversion iterations together).
    pub alternating: usize,
    /// SIRT iterations per cycle of the alternating phase.
    pub sirt_per_cycle: usize,
    /// Inversion iterations per cycle of the alternating phase (0: plain SIRT).
    pub inversion_per_cycle: usize,
    /// Optimiser steps per inversion iteration (0: inversion iterations change nothing and
    /// are skipped).
    pub steps: usize,
    /// The image optimiser of the inversion steps.
    pub optimizer: ImageOptimizer,
    /// Learning rate of the inversion steps (finite, > 0). The default 3e-3 is the value
    /// `ct_study` chose on validation digits at 2-4 angles (among Adam 3e-4 to 1e-2 and
    /// SGD 1, 10); from 8 angles on it chose the smallest, 3e-4 (see docs/results.md).
    pub lr: f64,
    /// Weight of the class cross-entropy (>= 0).
    pub class_weight: f64,
    /// Weight of the squared-difference TV prior (>= 0).
    pub tv: f64,
    /// Weight of the squared L2 prior (>= 0).
    pub l2: f64,
    /// Weight of the BatchNorm-statistics prior (>= 0; > 0 needs a BatchNorm classifier).
    pub bn: f64,
    /// Which terms an inversion iteration uses (ablation).
    pub terms: InversionTerms,
    /// Lower bound of SIRT and of the inversion clamp.
    pub min: f32,
    /// Upper bound of SIRT and of the inversion clamp.
    pub max: f32,
    /// SIRT relaxation (finite, > 0).
    pub relaxation: f32,
}

impl Default for HybridConfig {
    fn default() -> Self {
        Self {
            warmup_sirt: 50,
            alternating: 50,
            sirt_per_cycle: 3,
            inversion_per_cycle: 1,
            steps: 5,
            optimizer: ImageOptimizer::adam(),
            lr: 3e-3,
            class_weight: 1.0,
            tv: 1e-3,
            l2: 1e-4,
            bn: 1e-2,
            terms: InversionTerms::Both,
            min: 0.0,
            max: 1.0,
            relaxation: 1.0,
        }
    }
}

impl HybridConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] if there are no iterations at all, the cycle is
    /// empty while `alternating > 0`, a weight is negative or not finite, `lr` or
    /// `relaxation` is not finite and > 0, or the box is not finite with `min < max`.
    pub fn validate(&self) -> Result<()> {
        if self.warmup_sirt + self.alternating == 0 {
            return Err(invalid(
                "warmup_sirt",
                "warmup_sirt + alternating must be at least 1",
            ));
        }
        if self.alternating > 0 && self.sirt_per_cycle + self.inversion_per_cycle == 0 {
            return Err(invalid(
                "sirt_per_cycle",
                "sirt_per_cycle + inversion_per_cycle must be at least 1",
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
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(invalid(
                "lr",
                format!("must be finite and > 0, got {}", self.lr),
            ));
        }
        if !(self.relaxation.is_finite() && self.relaxation > 0.0) {
            return Err(invalid(
                "relaxation",
                format!("must be finite and > 0, got {}", self.relaxation),
            ));
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
        if self.steps > 0 {
            self.inversion_config()?.validate()?;
        }
        Ok(())
    }

    /// Total iterations: `warmup_sirt + alternating`.
    pub fn total_iterations(&self) -> usize {
        self.warmup_sirt + self.alternating
    }

    /// Whether iteration `i` (1-based) is an inversion iteration.
    pub fn is_inversion(&self, i: usize) -> bool {
        if i <= self.warmup_sirt || i > self.total_iterations() {
            return false;
        }
        let cycle = self.sirt_per_cycle + self.inversion_per_cycle;
        (i - self.warmup_sirt - 1) % cycle >= self.sirt_per_cycle
    }

    /// The number of SIRT iterations in the whole schedule (what the loop equals when the
    /// inversion does nothing).
    pub fn sirt_iterations(&self) -> usize {
        (1..=self.total_iterations())
            .filter(|&i| !self.is_inversion(i))
            .count()
    }

    /// The effective weights `(class, tv, l2, bn)` after the ablation switch.
    pub fn effective_weights(&self) -> (f64, f64, f64, f64) {
        let c = if self.terms.uses_class() {
            self.class_weight
        } else {
            0.0
        };
        if self.terms.uses_priors() {
            (c, self.tv, self.l2, self.bn)
        } else {
            (c, 0.0, 0.0, 0.0)
        }
    }

    /// The [`InversionConfig`] of one inversion iteration (the class weight is applied by
    /// the objective, not here).
    ///
    /// # Errors
    /// [`crate::Error::Invert`] if the resulting inversion settings are invalid.
    pub fn inversion_config(&self) -> Result<InversionConfig> {
        let (_, tv, l2, bn) = self.effective_weights();
        let cfg = InversionConfig {
            optimizer: self.optimizer,
            lr: self.lr,
            steps: self.steps.max(1),
            clamp: Some([self.min, self.max]),
            reduction: Reduction::Mean,
            tv,
            tv_l1: 0.0,
            tv_isotropic: 0.0,
            l2,
            bn,
            // per image, so that a batch of reconstructions equals one at a time
            bn_per_image: true,
            jitter: None,
            snapshots: Vec::new(),
            ..InversionConfig::default()
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_is_the_thesis_one() {
        let c = HybridConfig::default();
        c.validate().unwrap();
        assert_eq!(c.total_iterations(), 100);
        assert!(!c.is_inversion(50));
        assert!(!c.is_inversion(51) && !c.is_inversion(53));
        assert!(c.is_inversion(54));
        assert!(c.is_inversion(58));
        assert!(!c.is_inversion(101));
        assert_eq!(c.sirt_iterations(), 50 + 38);
        let n_inv = (1..=100).filter(|&i| c.is_inversion(i)).count();
        assert_eq!(n_inv, 12);
    }

    #[test]
    fn each_rule_is_checked() {
        let ok = HybridConfig::default();
        let bad = |c: HybridConfig, field: &str| match c.validate() {
            Err(crate::Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        };
        bad(
            HybridConfig {
                warmup_sirt: 0,
                alternating: 0,
                ..ok.clone()
            },
            "warmup_sirt",
        );
        bad(
            HybridConfig {
                sirt_per_cycle: 0,
                inversion_per_cycle: 0,
                ..ok.clone()
            },
            "sirt_per_cycle",
        );
        bad(
            HybridConfig {
                tv: -1.0,
                ..ok.clone()
            },
            "tv",
        );
        bad(
            HybridConfig {
                bn: f64::NAN,
                ..ok.clone()
            },
            "bn",
        );
        bad(
            HybridConfig {
                class_weight: f64::INFINITY,
                ..ok.clone()
            },
            "class_weight",
        );
        bad(
            HybridConfig {
                l2: -1e-9,
                ..ok.clone()
            },
            "l2",
        );
        bad(
            HybridConfig {
                lr: 0.0,
                ..ok.clone()
            },
            "lr",
        );
        bad(
            HybridConfig {
                relaxation: -1.0,
                ..ok.clone()
            },
            "relaxation",
        );
        bad(
            HybridConfig {
                min: 1.0,
                max: 0.0,
                ..ok.clone()
            },
            "min",
        );
        // an empty cycle is fine without an alternating phase
        HybridConfig {
            alternating: 0,
            sirt_per_cycle: 0,
            inversion_per_cycle: 0,
            ..ok
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn ablation_weights() {
        let c = HybridConfig::default();
        assert_eq!(c.effective_weights(), (1.0, 1e-3, 1e-4, 1e-2));
        let p = HybridConfig {
            terms: InversionTerms::PriorsOnly,
            ..c.clone()
        };
        assert_eq!(p.effective_weights(), (0.0, 1e-3, 1e-4, 1e-2));
        let k = HybridConfig {
            terms: InversionTerms::ClassOnly,
            ..c
        };
        assert_eq!(k.effective_weights(), (1.0, 0.0, 0.0, 0.0));
        assert_eq!(k.inversion_config().unwrap().bn, 0.0);
    }
}
