//! The arms of the study: a reconstruction method and how it chooses its class.

use serde::{Deserialize, Serialize};

/// A reconstruction method of the study. The serde names are the `method` column of
/// `results.json` (`fbp`, `sirt100`, `box_ls_pdhg`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Filtered back-projection (Ram-Lak), clipped to [0, 1].
    Fbp,
    /// 100 SIRT iterations with the box [0, 1].
    Sirt100,
    /// Box-constrained least squares by PDHG.
    BoxLsPdhg,
    /// TV + box by PDHG, the TV weight tuned on validation digits.
    TvPdhg,
    /// SIRT alternating with inversion steps, class term and priors.
    SirtInv,
    /// The same schedule with the priors only (no class term).
    SirtInvPriorsOnly,
    /// The same schedule with the class term only.
    SirtInvClassOnly,
    /// Projected gradient from SIRT-100 on data + TV2, no class.
    PgPriors,
    /// The same with the class term through the network.
    PgClass,
    /// Latent search through an unconditional VAE's decoder (issue 17).
    Vae,
    /// [`Method::Vae`] refined by data consistency (anchored TV-PDHG).
    VaeDc,
    /// Latent search through a conditional VAE's decoder.
    Cvae,
    /// [`Method::Cvae`] refined by data consistency.
    CvaeDc,
}

impl Method {
    /// The name used in `results.json` and the plots.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fbp => "fbp",
            Self::Sirt100 => "sirt100",
            Self::BoxLsPdhg => "box_ls_pdhg",
            Self::TvPdhg => "tv_pdhg",
            Self::SirtInv => "sirt_inv",
            Self::SirtInvPriorsOnly => "sirt_inv_priors_only",
            Self::SirtInvClassOnly => "sirt_inv_class_only",
            Self::PgPriors => "pg_priors",
            Self::PgClass => "pg_class",
            Self::Vae => "vae",
            Self::VaeDc => "vae_dc",
            Self::Cvae => "cvae",
            Self::CvaeDc => "cvae_dc",
        }
    }

    /// The family the plots group methods by.
    pub fn family(self) -> Family {
        match self {
            Self::Fbp | Self::Sirt100 | Self::BoxLsPdhg | Self::TvPdhg => Family::Classical,
            Self::SirtInv | Self::SirtInvPriorsOnly | Self::SirtInvClassOnly => Family::Hybrid,
            Self::PgPriors | Self::PgClass => Family::ProjectedGradient,
            Self::Vae | Self::VaeDc | Self::Cvae | Self::CvaeDc => Family::Generative,
        }
    }
}

/// A group of related methods (one plot panel each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// FBP, SIRT, box-constrained least squares, TV.
    Classical,
    /// SIRT alternating with inversion steps (and its ablation arms).
    Hybrid,
    /// Converged projected-gradient solvers with and without the class term.
    ProjectedGradient,
    /// Latent search through a (conditional) VAE and its data-consistency refinement.
    Generative,
}

impl Family {
    /// Every family, in plot order.
    pub const ALL: [Family; 4] = [
        Self::Classical,
        Self::Hybrid,
        Self::ProjectedGradient,
        Self::Generative,
    ];

    /// A title for a plot panel.
    pub fn title(self) -> &'static str {
        match self {
            Self::Classical => "classical",
            Self::Hybrid => "SIRT + inversion",
            Self::ProjectedGradient => "projected gradient",
            Self::Generative => "generative prior (VAE)",
        }
    }
}

/// How an arm chooses the class of its class term. The serde names are the `label_mode`
/// column of `results.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArmLabels {
    /// No class term, or a method without a network.
    None,
    /// The true class (an oracle upper bound).
    Oracle,
    /// The class the network predicts for the current reconstruction (label-free).
    Predicted,
}

impl ArmLabels {
    /// `none`, `oracle` or `predicted`.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Oracle => "oracle",
            Self::Predicted => "predicted",
        }
    }
}

/// One arm of the study: a method and its label mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Arm {
    /// The reconstruction method.
    pub method: Method,
    /// How it chooses its class.
    pub label_mode: ArmLabels,
}

/// Every arm, in the order of `per_image.json`'s `arm` index and of the tables.
pub const ARMS: [Arm; 16] = [
    Arm::new(Method::Fbp, ArmLabels::None),
    Arm::new(Method::Sirt100, ArmLabels::None),
    Arm::new(Method::BoxLsPdhg, ArmLabels::None),
    Arm::new(Method::TvPdhg, ArmLabels::None),
    Arm::new(Method::SirtInv, ArmLabels::Oracle),
    Arm::new(Method::SirtInv, ArmLabels::Predicted),
    Arm::new(Method::SirtInvPriorsOnly, ArmLabels::None),
    Arm::new(Method::SirtInvClassOnly, ArmLabels::Predicted),
    Arm::new(Method::PgPriors, ArmLabels::None),
    Arm::new(Method::PgClass, ArmLabels::Predicted),
    Arm::new(Method::Vae, ArmLabels::None),
    Arm::new(Method::VaeDc, ArmLabels::None),
    Arm::new(Method::Cvae, ArmLabels::Predicted),
    Arm::new(Method::Cvae, ArmLabels::Oracle),
    Arm::new(Method::CvaeDc, ArmLabels::Predicted),
    Arm::new(Method::CvaeDc, ArmLabels::Oracle),
];

impl Arm {
    /// The arm of `method` with `label_mode`.
    pub const fn new(method: Method, label_mode: ArmLabels) -> Self {
        Self { method, label_mode }
    }

    /// The arm's index in [`ARMS`] (the `arm` field of `per_image.json`).
    ///
    /// # Panics
    /// Never for an arm of [`ARMS`]; an arm outside the list (a method with a label mode
    /// the study does not run) panics.
    pub fn index(self) -> usize {
        ARMS.iter()
            .position(|a| *a == self)
            .expect("every arm of the study is listed in ARMS")
    }

    /// `method` alone without a class term, else `method (label_mode)`.
    pub fn name(self) -> String {
        match self.label_mode {
            ArmLabels::None => self.method.name().to_string(),
            l => format!("{} ({})", self.method.name(), l.name()),
        }
    }

    /// A short column label for image grids.
    pub fn short_name(self) -> &'static str {
        match (self.method, self.label_mode) {
            (Method::SirtInv, ArmLabels::Oracle) => "inv-orc",
            (Method::SirtInv, _) => "inv-pred",
            (Method::SirtInvPriorsOnly, _) => "priors",
            (Method::SirtInvClassOnly, _) => "class",
            (Method::BoxLsPdhg, _) => "box-ls",
            (Method::TvPdhg, _) => "tv",
            (Method::VaeDc, _) => "vae+dc",
            (Method::Cvae, ArmLabels::Oracle) => "cvae-orc",
            (Method::CvaeDc, ArmLabels::Oracle) => "cvae+dc-orc",
            (Method::CvaeDc, _) => "cvae+dc",
            (m, _) => m.name(),
        }
    }
}

/// The plot colour of every arm of [`ARMS`] (RGB) and its name for the legend.
pub const ARM_COLORS: [((u8, u8, u8), &str); 16] = [
    ((128, 128, 128), "grey"),
    ((0, 0, 0), "black"),
    ((140, 86, 75), "brown"),
    ((31, 119, 180), "blue"),
    ((214, 39, 40), "red"),
    ((255, 127, 14), "orange"),
    ((44, 160, 44), "green"),
    ((148, 103, 189), "purple"),
    ((23, 190, 207), "cyan"),
    ((227, 119, 194), "pink"),
    ((188, 189, 34), "olive"),
    ((107, 110, 207), "indigo"),
    ((255, 152, 150), "salmon"),
    ((152, 223, 138), "light green"),
    ((197, 27, 125), "magenta"),
    ((0, 109, 44), "dark green"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_are_the_result_columns() {
        for arm in ARMS {
            let json = serde_json::to_value(arm).unwrap();
            assert_eq!(json["method"], arm.method.name());
            assert_eq!(json["label_mode"], arm.label_mode.name());
        }
        assert_eq!(
            serde_json::to_string(&Method::Sirt100).unwrap(),
            "\"sirt100\""
        );
    }

    #[test]
    fn indices_follow_the_list() {
        for (k, arm) in ARMS.iter().enumerate() {
            assert_eq!(arm.index(), k);
        }
        assert_eq!(ARMS[5].name(), "sirt_inv (predicted)");
        assert_eq!(ARMS[3].name(), "tv_pdhg");
    }
}
