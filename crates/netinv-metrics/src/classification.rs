//! Classification metrics: confusion matrix, accuracy, per-class and macro precision,
//! recall and F1.

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Counts of (true class, predicted class) pairs for `n_classes` classes labelled
/// `0..n_classes`.
///
/// Entry `[t, p]` of [`ConfusionMatrix::counts`] is the number of samples of true class `t`
/// predicted as `p`; rows are true classes, columns predictions (scikit-learn's layout).
/// For class `c`: `TP = [c, c]`, `FP = column sum - TP`, `FN = row sum - TP`.
///
/// Convention for undefined ratios (scikit-learn's `zero_division=0`): precision is 0 for a
/// class that is never predicted, recall is 0 for a class without samples, F1 is 0 when
/// `2 TP + FP + FN = 0`, and accuracy is 0 for an empty matrix. Macro averages are the
/// unweighted means over all `n_classes` classes, absent ones included, i.e. scikit-learn's
/// `average='macro', labels=range(n_classes), zero_division=0`.
///
/// # Examples
/// ```
/// use netinv_metrics::ConfusionMatrix;
/// let truth = [0_u8, 0, 1, 1, 2, 2];
/// let predicted = [0_u8, 1, 1, 1, 2, 0];
/// let cm = ConfusionMatrix::from_labels(&truth, &predicted, 3).unwrap();
/// assert_eq!(cm.counts()[[0, 1]], 1);
/// assert!((cm.accuracy() - 4.0 / 6.0).abs() < 1e-12);
/// assert!((cm.precision(1) - 2.0 / 3.0).abs() < 1e-12); // TP 2, FP 1
/// assert!((cm.recall(0) - 0.5).abs() < 1e-12); // TP 1, FN 1
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    counts: Array2<u64>,
}

/// Precision, recall and F1 of every class, their macro averages and the accuracy, ready to
/// be saved as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    /// `TP / (TP + FP)` per class (0 if the class is never predicted).
    pub precision: Vec<f64>,
    /// `TP / (TP + FN)` per class (0 if the class has no samples).
    pub recall: Vec<f64>,
    /// `2 TP / (2 TP + FP + FN)` per class (0 if that denominator is 0).
    pub f1: Vec<f64>,
    /// Number of samples of each true class.
    pub support: Vec<u64>,
    /// Mean of `precision` over all classes.
    pub macro_precision: f64,
    /// Mean of `recall` over all classes.
    pub macro_recall: f64,
    /// Mean of `f1` over all classes (not the F1 of the macro precision and recall).
    pub macro_f1: f64,
    /// Fraction of correct predictions.
    pub accuracy: f64,
}

/// `num / den`, or 0 when `den` is 0 (scikit-learn's `zero_division=0`).
fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

impl ConfusionMatrix {
    /// An all-zero matrix for `n_classes` classes.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `n_classes` is 0.
    pub fn new(n_classes: usize) -> Result<Self> {
        if n_classes == 0 {
            return Err(Error::InvalidConfig {
                field: "n_classes",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            counts: Array2::zeros((n_classes, n_classes)),
        })
    }

    /// Counts the pairs `(truth[i], predicted[i])`. Labels are any unsigned type that
    /// converts to `usize` (`u8`, `u16`, `usize`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `n_classes` is 0, [`Error::LabelLength`] if the slices
    /// differ in length, [`Error::LabelOutOfRange`] for a label `>= n_classes`.
    pub fn from_labels<L: Copy + Into<usize>>(
        truth: &[L],
        predicted: &[L],
        n_classes: usize,
    ) -> Result<Self> {
        if truth.len() != predicted.len() {
            return Err(Error::LabelLength {
                truth: truth.len(),
                predicted: predicted.len(),
            });
        }
        let mut cm = Self::new(n_classes)?;
        for (position, (&t, &p)) in truth.iter().zip(predicted).enumerate() {
            let (t, p) = (t.into(), p.into());
            for (which, label) in [("true", t), ("predicted", p)] {
                if label >= n_classes {
                    return Err(Error::LabelOutOfRange {
                        which,
                        position,
                        label,
                        n_classes,
                    });
                }
            }
            cm.counts[[t, p]] += 1;
        }
        Ok(cm)
    }

    /// Adds one sample of true class `truth` predicted as `predicted`.
    ///
    /// # Errors
    /// [`Error::LabelOutOfRange`] (position 0) if a label is `>= n_classes`.
    pub fn record(&mut self, truth: usize, predicted: usize) -> Result<()> {
        let n_classes = self.n_classes();
        for (which, label) in [("true", truth), ("predicted", predicted)] {
            if label >= n_classes {
                return Err(Error::LabelOutOfRange {
                    which,
                    position: 0,
                    label,
                    n_classes,
                });
            }
        }
        self.counts[[truth, predicted]] += 1;
        Ok(())
    }

    /// The number of classes.
    pub fn n_classes(&self) -> usize {
        self.counts.nrows()
    }

    /// The counts `[n_classes, n_classes]`: rows are true classes, columns predictions.
    pub fn counts(&self) -> ArrayView2<'_, u64> {
        self.counts.view()
    }

    /// The number of samples counted.
    pub fn total(&self) -> u64 {
        self.counts.sum()
    }

    fn true_positives(&self, class: usize) -> u64 {
        self.counts[[class, class]]
    }

    /// Number of samples predicted as `class` (`TP + FP`).
    fn predicted_count(&self, class: usize) -> u64 {
        self.counts.column(class).sum()
    }

    /// Number of samples of true class `class` (`TP + FN`).
    pub fn support(&self, class: usize) -> u64 {
        self.counts.row(class).sum()
    }

    /// Fraction of correct predictions, `trace / total` (0 for an empty matrix).
    pub fn accuracy(&self) -> f64 {
        ratio(self.counts.diag().sum(), self.total())
    }

    /// Precision of `class`: `TP / (TP + FP)`, 0 if the class is never predicted.
    ///
    /// # Panics
    /// If `class >= n_classes`.
    pub fn precision(&self, class: usize) -> f64 {
        ratio(self.true_positives(class), self.predicted_count(class))
    }

    /// Recall of `class`: `TP / (TP + FN)`, 0 if the class has no samples.
    ///
    /// # Panics
    /// If `class >= n_classes`.
    pub fn recall(&self, class: usize) -> f64 {
        ratio(self.true_positives(class), self.support(class))
    }

    /// F1 of `class`: `2 TP / (2 TP + FP + FN)` (the harmonic mean of precision and
    /// recall), 0 if that denominator is 0.
    ///
    /// # Panics
    /// If `class >= n_classes`.
    pub fn f1(&self, class: usize) -> f64 {
        let tp = self.true_positives(class);
        ratio(2 * tp, self.predicted_count(class) + self.support(class))
    }

    /// Unweighted mean of [`ConfusionMatrix::precision`] over all classes.
    pub fn macro_precision(&self) -> f64 {
        mean(&self.per_class(Self::precision))
    }

    /// Unweighted mean of [`ConfusionMatrix::recall`] over all classes.
    pub fn macro_recall(&self) -> f64 {
        mean(&self.per_class(Self::recall))
    }

    /// Unweighted mean of [`ConfusionMatrix::f1`] over all classes.
    pub fn macro_f1(&self) -> f64 {
        mean(&self.per_class(Self::f1))
    }

    fn per_class(&self, f: fn(&Self, usize) -> f64) -> Vec<f64> {
        (0..self.n_classes()).map(|c| f(self, c)).collect()
    }

    /// Every metric at once.
    pub fn report(&self) -> ClassificationReport {
        let precision = self.per_class(Self::precision);
        let recall = self.per_class(Self::recall);
        let f1 = self.per_class(Self::f1);
        ClassificationReport {
            macro_precision: mean(&precision),
            macro_recall: mean(&recall),
            macro_f1: mean(&f1),
            support: (0..self.n_classes()).map(|c| self.support(c)).collect(),
            accuracy: self.accuracy(),
            precision,
            recall,
            f1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed example, 3 classes, 10 samples.
    ///
    /// ```text
    ///            pred 0  pred 1  pred 2
    /// true 0        3       1       0      support 4
    /// true 1        1       2       1      support 4
    /// true 2        0       0       2      support 2
    /// ```
    /// precision = 3/4, 2/3, 2/3; recall = 3/4, 1/2, 1; F1 = 3/4, 4/7, 4/5.
    fn example() -> ConfusionMatrix {
        let truth: [u8; 10] = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2];
        let pred: [u8; 10] = [0, 0, 0, 1, 0, 1, 1, 2, 2, 2];
        ConfusionMatrix::from_labels(&truth, &pred, 3).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn hand_computed_counts_and_metrics() {
        let cm = example();
        assert_eq!(
            cm.counts(),
            ndarray::array![[3_u64, 1, 0], [1, 2, 1], [0, 0, 2]]
        );
        assert_eq!(cm.total(), 10);
        assert!(close(cm.accuracy(), 0.7));
        let p = [0.75, 2.0 / 3.0, 2.0 / 3.0];
        let r = [0.75, 0.5, 1.0];
        let f = [0.75, 4.0 / 7.0, 0.8];
        for c in 0..3 {
            assert!(close(cm.precision(c), p[c]), "precision {c}");
            assert!(close(cm.recall(c), r[c]), "recall {c}");
            assert!(close(cm.f1(c), f[c]), "f1 {c}");
            // F1 is the harmonic mean of precision and recall.
            assert!(close(cm.f1(c), 2.0 * p[c] * r[c] / (p[c] + r[c])));
        }
        assert!(close(cm.macro_precision(), (0.75 + 4.0 / 3.0) / 3.0));
        assert!(close(cm.macro_recall(), 2.25 / 3.0));
        assert!(close(cm.macro_f1(), (0.75 + 4.0 / 7.0 + 0.8) / 3.0));
        let report = cm.report();
        assert_eq!(report.support, vec![4, 4, 2]);
        assert!(close(report.macro_f1, cm.macro_f1()));
        assert!(close(report.accuracy, 0.7));
    }

    #[test]
    fn zero_division_convention() {
        // Class 2 has no samples and is never predicted; class 1 is never predicted.
        let cm = ConfusionMatrix::from_labels(&[0_usize, 1, 1], &[0_usize, 0, 0], 3).unwrap();
        assert!(close(cm.precision(0), 1.0 / 3.0));
        assert_eq!(cm.precision(1), 0.0);
        assert_eq!(cm.recall(1), 0.0);
        assert_eq!(cm.f1(1), 0.0);
        assert_eq!((cm.precision(2), cm.recall(2), cm.f1(2)), (0.0, 0.0, 0.0));
        // Macro averages include the absent class.
        assert!(close(cm.macro_recall(), 1.0 / 3.0));
        assert!(close(
            cm.macro_f1(),
            (2.0 * (1.0 / 3.0) / (1.0 / 3.0 + 1.0)) / 3.0
        ));
        let empty = ConfusionMatrix::new(4).unwrap();
        assert_eq!(empty.accuracy(), 0.0);
        assert_eq!(empty.macro_f1(), 0.0);
    }

    #[test]
    fn record_matches_from_labels() {
        let mut cm = ConfusionMatrix::new(3).unwrap();
        let truth = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2];
        let pred = [0, 0, 0, 1, 0, 1, 1, 2, 2, 2];
        for (t, p) in truth.into_iter().zip(pred) {
            cm.record(t, p).unwrap();
        }
        assert_eq!(cm, example());
        assert!(matches!(
            cm.record(3, 0),
            Err(Error::LabelOutOfRange {
                which: "true",
                label: 3,
                ..
            })
        ));
    }

    #[test]
    fn perfect_predictions() {
        let labels: Vec<u16> = (0..20).map(|i| i % 5).collect();
        let cm = ConfusionMatrix::from_labels(&labels, &labels, 5).unwrap();
        assert_eq!(cm.accuracy(), 1.0);
        assert_eq!(cm.macro_precision(), 1.0);
        assert_eq!(cm.macro_recall(), 1.0);
        assert_eq!(cm.macro_f1(), 1.0);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            ConfusionMatrix::new(0),
            Err(Error::InvalidConfig {
                field: "n_classes",
                ..
            })
        ));
        assert_eq!(
            ConfusionMatrix::from_labels(&[0_u8, 1], &[0_u8], 2),
            Err(Error::LabelLength {
                truth: 2,
                predicted: 1
            })
        );
        assert_eq!(
            ConfusionMatrix::from_labels(&[0_u8, 1, 2], &[0_u8, 1, 1], 2),
            Err(Error::LabelOutOfRange {
                which: "true",
                position: 2,
                label: 2,
                n_classes: 2
            })
        );
        assert_eq!(
            ConfusionMatrix::from_labels(&[0_u8, 1], &[0_u8, 7], 2),
            Err(Error::LabelOutOfRange {
                which: "predicted",
                position: 1,
                label: 7,
                n_classes: 2
            })
        );
    }
}
