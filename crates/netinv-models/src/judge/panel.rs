//! A panel of independently trained judges and its majority verdict.
//!
//! One judge shares its architecture, data and optimiser with some of the nets it scores;
//! a panel of judges that differ in architecture (netinv-small, a wider CNN, an MLP) and
//! optimiser (SGD, Adam), each PGD-trained by a recipe of its own and gated by its own
//! acceptance test, gives a verdict no single net's blind spots decide: an image counts
//! as its target when more than half of the judges say so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Device;
use netinv_core::Monitor;
use serde::{Deserialize, Serialize};

use super::{Judge, JudgeRecipe, JudgeReport, Verdict};
use crate::error::invalid;
use crate::train::EpochRecord;
use crate::{Error, Result};

/// One judge of a panel: its name (also its cache folder, see [`member_dir`]) and recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanelMember {
    /// A short name: ASCII letters, digits and `-`, not empty.
    pub name: String,
    /// How the judge is trained and gated.
    pub recipe: JudgeRecipe,
}

impl PanelMember {
    /// A member named `name` trained by `recipe`.
    pub fn new(name: &str, recipe: JudgeRecipe) -> Self {
        Self {
            name: name.to_string(),
            recipe,
        }
    }
}

/// The default panel: `netinv-small` ([`JudgeRecipe::default`], SGD), `wide-cnn`
/// ([`JudgeRecipe::wide_cnn`], Adam) and `mlp` ([`JudgeRecipe::mlp`], SGD), each
/// PGD-trained on the training digits.
pub fn default_panel() -> Vec<PanelMember> {
    vec![
        PanelMember::new("netinv-small", JudgeRecipe::default()),
        PanelMember::new("wide-cnn", JudgeRecipe::wide_cnn()),
        PanelMember::new("mlp", JudgeRecipe::mlp()),
    ]
}

/// The cache folder of `members[index]` inside the panel folder `dir`: the first member
/// lives in `dir` itself (so the single-judge entry points, which cache
/// [`JudgeRecipe::default`]'s judge in `dir`, share it), every other one in
/// `dir/<name>`.
pub fn member_dir(dir: &Path, members: &[PanelMember], index: usize) -> PathBuf {
    if index == 0 {
        dir.to_path_buf()
    } else {
        dir.join(&members[index].name)
    }
}

/// Checks the members: at least one, names of ASCII letters, digits and `-`, no name
/// twice, every recipe valid.
fn check_members(members: &[PanelMember]) -> Result<()> {
    if members.is_empty() {
        return Err(invalid("members", "a panel needs at least one judge"));
    }
    for (i, m) in members.iter().enumerate() {
        let ok = !m.name.is_empty()
            && m.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(invalid(
                "members",
                format!("name {:?} is not letters, digits and '-'", m.name),
            ));
        }
        if members[..i].iter().any(|o| o.name == m.name) {
            return Err(invalid(
                "members",
                format!("name {:?} is given twice", m.name),
            ));
        }
        m.recipe.validate()?;
    }
    Ok(())
}

/// A panel of accepted judges (see the module docs).
#[derive(Debug, Clone)]
pub struct JudgePanel {
    names: Vec<String>,
    judges: Vec<Judge>,
}

impl JudgePanel {
    /// Loads every member cached in its folder ([`member_dir`]) with its recipe, and trains
    /// (on `train`, tested on `test`) and caches the others, each with the monitor
    /// `monitor_for` gives it. Every member is trained before a rejection is reported, so
    /// a second call retrains nothing.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for bad members (see [`default_panel`] for names);
    /// [`Error::PanelJudge`] naming the first judge that failed its gate (or its training,
    /// checkpoint or I/O).
    pub fn load_or_train<'m, F>(
        dir: &Path,
        members: &[PanelMember],
        train: &netinv_data::Dataset,
        test: &netinv_data::Dataset,
        device: &Device,
        mut monitor_for: F,
    ) -> Result<Self>
    where
        F: FnMut(&PanelMember) -> Monitor<'m, EpochRecord>,
    {
        check_members(members)?;
        let mut outcomes = Vec::with_capacity(members.len());
        for (i, m) in members.iter().enumerate() {
            let mut monitor = monitor_for(m);
            let at = member_dir(dir, members, i);
            outcomes.push(Judge::load_or_train_on(
                &at,
                &m.recipe,
                train,
                test,
                device,
                &mut monitor,
            ));
        }
        let mut judges = Vec::with_capacity(members.len());
        for (m, outcome) in members.iter().zip(outcomes) {
            judges.push(outcome.map_err(|e| named(&m.name, e))?);
        }
        Ok(Self {
            names: members.iter().map(|m| m.name.clone()).collect(),
            judges,
        })
    }

    /// The panel if every member is cached in its folder with its recipe and accepted;
    /// `None` otherwise. Never trains.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for bad members; [`Error::PanelJudge`] for a cached judge
    /// that cannot be read.
    pub fn load_cached(
        dir: &Path,
        members: &[PanelMember],
        device: &Device,
    ) -> Result<Option<Self>> {
        check_members(members)?;
        let mut judges = Vec::with_capacity(members.len());
        for (i, m) in members.iter().enumerate() {
            let at = member_dir(dir, members, i);
            match Judge::load_matching(&at, &m.recipe, device).map_err(|e| named(&m.name, e))? {
                Some(judge) if judge.report().accepted => judges.push(judge),
                _ => return Ok(None),
            }
        }
        Ok(Some(Self {
            names: members.iter().map(|m| m.name.clone()).collect(),
            judges,
        }))
    }

    /// A panel of judges already at hand, `(name, judge)` in panel order (a single judge
    /// makes a panel of one, whose majority is that judge).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for no judges, or a name that is not letters, digits and
    /// `-` or is given twice.
    pub fn from_judges(judges: Vec<(String, Judge)>) -> Result<Self> {
        let members: Vec<PanelMember> = judges
            .iter()
            .map(|(name, j)| PanelMember::new(name, j.report().recipe.clone()))
            .collect();
        check_members(&members)?;
        let (names, judges) = judges.into_iter().unzip();
        Ok(Self { names, judges })
    }

    /// Whether every member is cached in its folder with its recipe (accepted or not), so
    /// that [`JudgePanel::load_or_train`] trains nothing.
    pub fn is_cached(dir: &Path, members: &[PanelMember]) -> bool {
        (0..members.len())
            .all(|i| Judge::is_cached(&member_dir(dir, members, i), &members[i].recipe))
    }

    /// The members' names, in panel order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The judges, in panel order.
    pub fn judges(&self) -> &[Judge] {
        &self.judges
    }

    /// Each judge's acceptance test by name (training seconds are 0 for a loaded judge).
    pub fn reports(&self) -> BTreeMap<String, JudgeReport> {
        self.names
            .iter()
            .cloned()
            .zip(self.judges.iter().map(|j| j.report().clone()))
            .collect()
    }

    /// Every judge's verdict on `images` `[n, 1, 28, 28]` against `targets`, and the
    /// majority's (see [`PanelVerdict`]).
    ///
    /// # Errors
    /// As [`Judge::verdict`].
    pub fn verdict(
        &self,
        images: ndarray::ArrayView4<'_, f32>,
        targets: &[u32],
    ) -> Result<PanelVerdict> {
        let verdicts = self
            .judges
            .iter()
            .map(|j| j.verdict(images, targets))
            .collect::<Result<Vec<_>>>()?;
        Ok(PanelVerdict::from_verdicts(
            self.names.iter().cloned().zip(verdicts).collect(),
            targets,
        ))
    }
}

/// A member's error with its name.
fn named(name: &str, source: Error) -> Error {
    Error::PanelJudge {
        name: name.to_string(),
        source: Box::new(source),
    }
}

/// The verdicts of a panel on a batch of images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanelVerdict {
    /// Each judge's verdict by name.
    pub judges: BTreeMap<String, Verdict>,
    /// For each image, the class more than half of the judges give it (`None` when no
    /// class has such a majority).
    pub majority: Vec<Option<u32>>,
    /// Whether each image's majority class is its target.
    pub majority_correct: Vec<bool>,
    /// Fraction of images whose majority class is their target: the panel's headline.
    pub accuracy: f64,
    /// Fraction of images to which every judge gives the same class.
    pub unanimous: f64,
}

impl PanelVerdict {
    /// The majority verdict of `judges` (name -> verdict on the same images) against
    /// `targets` (one per image).
    pub(super) fn from_verdicts(judges: BTreeMap<String, Verdict>, targets: &[u32]) -> Self {
        let n = targets.len();
        let classes_of = |i: usize| judges.values().map(move |v| v.predictions[i]);
        let majority: Vec<Option<u32>> = (0..n)
            .map(|i| {
                classes_of(i)
                    .find(|&c| 2 * classes_of(i).filter(|&o| o == c).count() > judges.len())
            })
            .collect();
        let majority_correct: Vec<bool> = majority
            .iter()
            .zip(targets)
            .map(|(m, &t)| *m == Some(t))
            .collect();
        let unanimous = (0..n)
            .filter(|&i| {
                let first = classes_of(i).next();
                classes_of(i).all(|c| Some(c) == first)
            })
            .count();
        let hits = majority_correct.iter().filter(|&&c| c).count();
        Self {
            judges,
            majority,
            majority_correct,
            accuracy: hits as f64 / n as f64,
            unanimous: unanimous as f64 / n as f64,
        }
    }

    /// Each judge's accuracy (fraction of images judged as their target) by name.
    pub fn accuracies(&self) -> BTreeMap<String, f64> {
        self.judges
            .iter()
            .map(|(name, v)| (name.clone(), v.accuracy))
            .collect()
    }
}
