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

/// Weights of the network terms of a reconstruction objective, after the ablation switch
/// ([`InversionTerms`]):
///
/// ```text
/// class CE(F(x), c) + tv TV2(x) + l2 ||x||^2 + bn R_BN(x)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NetTerms {
    /// Weight of the class cross-entropy.
    pub class: f64,
    /// Weight of the squared-difference TV prior.
    pub tv: f64,
    /// Weight of the squared L2 prior.
    pub l2: f64,
    /// Weight of the BatchNorm-statistics prior.
    pub bn: f64,
}

impl InversionTerms {
    /// The weights `class`, `tv`, `l2`, `bn` with the terms this arm does not use set to 0.
    pub fn weights(self, class: f64, tv: f64, l2: f64, bn: f64) -> NetTerms {
        let class = if self.uses_class() { class } else { 0.0 };
        let on = |w: f64| if self.uses_priors() { w } else { 0.0 };
        NetTerms {
            class,
            tv: on(tv),
            l2: on(l2),
            bn: on(bn),
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
/// inversion iteration = `inversion.steps` optimiser steps (`inversion.optimizer`,
///     `inversion.lr`) on the image of
///     class_weight CE(F(x), c) + tv TV2(x) + l2 ||x||^2 + bn R_BN(x)   (terms per `terms`),
///     each step followed by the clamp to `inversion.clamp`
/// ```
///
/// The inversion steps are those of [`netinv_invert::Inverter`] with the embedded
/// [`InversionConfig`]; of its fields the hybrid uses the optimiser, `lr`, `steps` (0:
/// inversion iterations change nothing and are skipped), `clamp` (also the box of SIRT;
/// `None`: no box), the prior weights (`tv`, `tv_l1`, `tv_isotropic`, `l2`, `bn`) and
/// `jitter`. It starts from the current image (not from `init_*` / `seed`), sums the class
/// loss over the batch (whatever `reduction` says), takes BatchNorm statistics per image
/// (whatever `bn_per_image` says), so that a batch reconstructs each image as if alone,
/// and keeps no snapshots.
///
/// Defaults (the thesis's chapter 5 schedule): 50 warm-up SIRT iterations, 50 alternating
/// iterations at 3:1 (so 38 SIRT and 12 inversion iterations), 5 Adam steps of lr 3e-3
/// per inversion iteration, `class_weight` 1, `tv` 1e-3, `l2` 1e-4, `bn` 1e-2, both terms,
/// box [0, 1] for SIRT and inversion, SIRT relaxation 1. Every inversion iteration starts a
/// fresh optimiser state. The default lr 3e-3 is the value `ct_study` chose on validation
/// digits at 2-4 angles (among Adam 3e-4 to 1e-2 and SGD 1, 10); from 8 angles on it chose
/// the smallest, 3e-4 (see docs/results/ct_study.md).
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
    /// Weight of the class cross-entropy (>= 0).
    pub class_weight: f64,
    /// Which terms an inversion iteration uses (ablation).
    pub terms: InversionTerms,
    /// SIRT relaxation (finite, > 0).
    pub relaxation: f32,
    /// The optimiser steps of one inversion iteration (see above for the fields used).
    pub inversion: InversionConfig,
}

impl Default for HybridConfig {
    fn default() -> Self {
        Self {
            warmup_sirt: 50,
            alternating: 50,
            sirt_per_cycle: 3,
            inversion_per_cycle: 1,
            class_weight: 1.0,
            terms: InversionTerms::Both,
            relaxation: 1.0,
            inversion: InversionConfig {
                optimizer: ImageOptimizer::adam(),
                lr: 3e-3,
                steps: 5,
                clamp: Some([0.0, 1.0]),
                reduction: Reduction::Mean,
                tv: 1e-3,
                tv_l1: 0.0,
                tv_isotropic: 0.0,
                l2: 1e-4,
                bn: 1e-2,
                bn_per_image: true,
                jitter: None,
                snapshots: Vec::new(),
                ..InversionConfig::default()
            },
        }
    }
}

impl HybridConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] if there are no iterations at all, the cycle is
    /// empty while `alternating > 0`, `class_weight` is negative or not finite,
    /// `relaxation` is not finite and > 0, or the box is not finite with `min < max`;
    /// [`crate::Error::Invert`] for invalid inversion settings (checked with at least
    /// one step).
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
        if !(self.class_weight.is_finite() && self.class_weight >= 0.0) {
            return Err(invalid(
                "class_weight",
                format!("must be finite and >= 0, got {}", self.class_weight),
            ));
        }
        if !(self.relaxation.is_finite() && self.relaxation > 0.0) {
            return Err(invalid(
                "relaxation",
                format!("must be finite and > 0, got {}", self.relaxation),
            ));
        }
        if let Some([lo, hi]) = self.inversion.clamp {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(invalid(
                    "inversion.clamp",
                    format!("[{lo}, {hi}] is not a finite box with min < max"),
                ));
            }
        }
        // the settings as given (a bad weight is an error even where the arm zeroes it)
        InversionConfig {
            steps: self.inversion.steps.max(1),
            ..self.inversion.clone()
        }
        .validate()?;
        self.inversion_config()?;
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

    /// Whether inversion iterations do anything at all (steps, iterations and an
    /// alternating phase).
    pub fn inverts(&self) -> bool {
        self.inversion.steps > 0 && self.inversion_per_cycle > 0 && self.alternating > 0
    }

    /// The weights of the class term and the priors after the ablation switch.
    pub fn net_terms(&self) -> NetTerms {
        let i = &self.inversion;
        self.terms.weights(self.class_weight, i.tv, i.l2, i.bn)
    }

    /// The [`InversionConfig`] of one inversion iteration: the embedded one with the
    /// priors of the ablation switch, BatchNorm statistics per image, no snapshots and at
    /// least one step (the class weight is applied by the objective, not here).
    ///
    /// # Errors
    /// [`crate::Error::Invert`] if the resulting inversion settings are invalid.
    pub fn inversion_config(&self) -> Result<InversionConfig> {
        let w = self.net_terms();
        let priors = self.terms.uses_priors();
        let on = |v: f64| if priors { v } else { 0.0 };
        let cfg = InversionConfig {
            steps: self.inversion.steps.max(1),
            tv: w.tv,
            tv_l1: on(self.inversion.tv_l1),
            tv_isotropic: on(self.inversion.tv_isotropic),
            l2: w.l2,
            bn: w.bn,
            // per image, so that a batch of reconstructions equals one at a time
            bn_per_image: true,
            snapshots: Vec::new(),
            ..self.inversion.clone()
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The box of SIRT and of the inversion clamp (`None`: no box).
    pub fn bounds(&self) -> Option<[f32; 2]> {
        self.inversion.clamp
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
        let field_of = |c: &HybridConfig| match c.validate() {
            Err(crate::Error::InvalidConfig { field, .. }) => field.to_string(),
            Err(crate::Error::Invert(netinv_invert::Error::InvalidConfig { field, .. })) => {
                field.to_string()
            }
            other => panic!("{other:?}"),
        };
        let with = |f: fn(&mut HybridConfig)| {
            let mut c = ok.clone();
            f(&mut c);
            c
        };
        for (cfg, field) in [
            (
                with(|c| {
                    c.warmup_sirt = 0;
                    c.alternating = 0;
                }),
                "warmup_sirt",
            ),
            (
                with(|c| {
                    c.sirt_per_cycle = 0;
                    c.inversion_per_cycle = 0;
                }),
                "sirt_per_cycle",
            ),
            (with(|c| c.inversion.tv = -1.0), "tv"),
            (with(|c| c.inversion.bn = f64::NAN), "bn"),
            (with(|c| c.class_weight = f64::INFINITY), "class_weight"),
            (with(|c| c.inversion.l2 = -1e-9), "l2"),
            (with(|c| c.inversion.lr = 0.0), "lr"),
            (with(|c| c.relaxation = -1.0), "relaxation"),
            (
                with(|c| c.inversion.clamp = Some([1.0, 0.0])),
                "inversion.clamp",
            ),
            // a bad weight is refused even in an arm that does not use it
            (
                with(|c| {
                    c.terms = InversionTerms::ClassOnly;
                    c.inversion.tv = -1.0;
                }),
                "tv",
            ),
        ] {
            assert_eq!(field_of(&cfg), field);
        }
        // an empty cycle is fine without an alternating phase, and steps 0 is allowed
        with(|c| {
            c.alternating = 0;
            c.sirt_per_cycle = 0;
            c.inversion_per_cycle = 0;
        })
        .validate()
        .unwrap();
        with(|c| c.inversion.steps = 0).validate().unwrap();
    }

    #[test]
    fn ablation_weights() {
        let c = HybridConfig::default();
        let terms = |class, tv, l2, bn| NetTerms { class, tv, l2, bn };
        assert_eq!(c.net_terms(), terms(1.0, 1e-3, 1e-4, 1e-2));
        let p = HybridConfig {
            terms: InversionTerms::PriorsOnly,
            ..c.clone()
        };
        assert_eq!(p.net_terms(), terms(0.0, 1e-3, 1e-4, 1e-2));
        let k = HybridConfig {
            terms: InversionTerms::ClassOnly,
            ..c
        };
        assert_eq!(k.net_terms(), terms(1.0, 0.0, 0.0, 0.0));
        assert_eq!(k.inversion_config().unwrap().bn, 0.0);
    }

    #[test]
    fn the_inversion_settings_are_the_pre_embedding_ones() {
        // what `inversion_config` gave when the weights were copied field by field
        let cfg = HybridConfig::default().inversion_config().unwrap();
        let expected = InversionConfig {
            optimizer: ImageOptimizer::adam(),
            lr: 3e-3,
            steps: 5,
            clamp: Some([0.0, 1.0]),
            reduction: Reduction::Mean,
            tv: 1e-3,
            tv_l1: 0.0,
            tv_isotropic: 0.0,
            l2: 1e-4,
            bn: 1e-2,
            bn_per_image: true,
            jitter: None,
            snapshots: Vec::new(),
            ..InversionConfig::default()
        };
        assert_eq!(cfg, expected);
    }
}
