//! Verdicts on a claim: does a measured effect hold, hold partly, or not hold, and the
//! one markdown row of docs/results.md's verdict table that reports it.
//!
//! A claim is tested on several cases (angle counts, dimensions, training lengths). Each
//! case is a [`Case`]: whether the claim holds there is decided by the caller from a 95%
//! interval; [`Verdict::from_cases`] turns the cases into one verdict: all hold, some hold,
//! none holds.
//!
//! ```
//! use netinv_metrics::verdict::{Case, Verdict, VerdictRow};
//!
//! let cases = [Case::new("3 angles", true), Case::new("4 angles", false)];
//! assert_eq!(Verdict::from_cases(&cases), Some(Verdict::HoldsPartly));
//! let row = VerdictRow {
//!     claim: "the class term adds to the priors (thesis 5.4)".into(),
//!     verdict: Verdict::HoldsPartly,
//!     figure: "+0.26 dB [+0.15, +0.36] at 3 angles".into(),
//!     judges: "n/a".into(),
//!     study: "ct".into(),
//! };
//! assert_eq!(
//!     row.markdown(),
//!     "| the class term adds to the priors (thesis 5.4) | holds partly | \
//!      +0.26 dB [+0.15, +0.36] at 3 angles | n/a | [ct](results/ct.md) |"
//! );
//! ```

use serde::{Deserialize, Serialize};

/// Whether a claim holds over the cases it was tested on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The claim holds in every case.
    Holds,
    /// The claim holds in some cases and not in others.
    HoldsPartly,
    /// The claim holds in no case.
    DoesNotHold,
}

impl Verdict {
    /// The verdict of a set of cases; `None` for no cases.
    pub fn from_cases(cases: &[Case]) -> Option<Verdict> {
        let holding = cases.iter().filter(|c| c.holds).count();
        match (holding, cases.len()) {
            (_, 0) => None,
            (h, n) if h == n => Some(Verdict::Holds),
            (0, _) => Some(Verdict::DoesNotHold),
            _ => Some(Verdict::HoldsPartly),
        }
    }

    /// The words of the verdict table: `holds`, `holds partly`, `does not hold`.
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::HoldsPartly => "holds partly",
            Verdict::DoesNotHold => "does not hold",
        }
    }
}

/// One case a claim was tested on: a label (`"3 angles"`) and whether it holds there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// What the case is, as the verdict's figure names it.
    pub label: String,
    /// Whether the claim holds in this case.
    pub holds: bool,
}

impl Case {
    /// A case from its label and outcome.
    pub fn new(label: impl Into<String>, holds: bool) -> Case {
        Case {
            label: label.into(),
            holds,
        }
    }
}

/// One row of the verdict table of docs/results.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictRow {
    /// The claim, with the thesis section it comes from.
    pub claim: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The figures behind the verdict, with their 95% intervals.
    pub figure: String,
    /// How many judges agree (`"3 of 3 judges"`), or `n/a` for claims no judge scores.
    pub judges: String,
    /// The study's docs file name under `docs/results/` (without `.md`).
    pub study: String,
}

impl VerdictRow {
    /// The markdown table row:
    /// `| claim | verdict | figure | judges | [study](results/study.md) |`.
    pub fn markdown(&self) -> String {
        format!(
            "| {} | {} | {} | {} | [{study}](results/{study}.md) |",
            self.claim,
            self.verdict.words(),
            self.figure,
            self.judges,
            study = self.study
        )
    }
}

/// The header of the verdict table, two markdown lines.
pub const VERDICT_TABLE_HEADER: &str = "| claim (thesis section) | verdict | figure (95% CI) | judges agreeing | study |\n| --- | --- | --- | --- | --- |";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_decide_the_verdict() {
        let yes = Case::new("a", true);
        let no = Case::new("b", false);
        assert_eq!(Verdict::from_cases(&[]), None);
        assert_eq!(
            Verdict::from_cases(&[yes.clone(), yes.clone()]),
            Some(Verdict::Holds)
        );
        assert_eq!(
            Verdict::from_cases(&[no.clone(), no.clone()]),
            Some(Verdict::DoesNotHold)
        );
        assert_eq!(Verdict::from_cases(&[no, yes]), Some(Verdict::HoldsPartly));
    }

    #[test]
    fn verdicts_serialise_in_snake_case() {
        let json = serde_json::to_string(&Verdict::DoesNotHold).unwrap();
        assert_eq!(json, "\"does_not_hold\"");
        assert_eq!(Verdict::HoldsPartly.words(), "holds partly");
    }
}
