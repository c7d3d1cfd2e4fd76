//! Iteration state, observers, stop rules and the [`Monitor`] that runs them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::Result;

/// Why an iterative run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Termination {
    /// The iteration budget was used up.
    MaxIterations,
    /// The cost changed by less than the tolerance between two iterations.
    Converged,
    /// A target was reached (for example a target class probability).
    TargetReached,
    /// The cost became NaN or infinite.
    NonFinite,
    /// A time budget was used up.
    TimeLimit,
    /// A custom stop rule ended the run; the text says why.
    Other(String),
}

/// The state of an iterative method after its latest iteration.
///
/// `iteration` counts completed iterations (1 after the first). `cost` is the value the
/// method minimises, when it computes one (a loss, a residual norm); `metrics` holds any
/// other named numbers of the latest iteration (accuracy, PSNR, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterState {
    /// Completed iterations.
    pub iteration: usize,
    /// The planned number of iterations (the budget).
    pub max_iterations: usize,
    /// Cost after the latest iteration, if the method computes one.
    pub cost: Option<f64>,
    /// Cost after the iteration before, if any.
    pub previous_cost: Option<f64>,
    /// The smallest cost seen so far.
    pub best_cost: Option<f64>,
    /// Seconds since the state was created.
    pub elapsed_seconds: f64,
    /// Other named numbers of the latest iteration.
    pub metrics: BTreeMap<String, f64>,
    /// Why the run ended; `None` while it runs.
    pub termination: Option<Termination>,
    #[serde(skip, default = "Instant::now")]
    started: Instant,
}

impl IterState {
    /// A fresh state before the first iteration, with a budget of `max_iterations`.
    pub fn new(max_iterations: usize) -> Self {
        Self {
            iteration: 0,
            max_iterations,
            cost: None,
            previous_cost: None,
            best_cost: None,
            elapsed_seconds: 0.0,
            metrics: BTreeMap::new(),
            termination: None,
            started: Instant::now(),
        }
    }

    /// Records one completed iteration with its cost (if any) and updates the clock.
    pub fn advance(&mut self, cost: Option<f64>) {
        self.iteration += 1;
        self.previous_cost = self.cost;
        self.cost = cost;
        if let Some(c) = cost {
            if self.best_cost.is_none_or(|b| c < b) {
                self.best_cost = Some(c);
            }
        }
        self.elapsed_seconds = self.started.elapsed().as_secs_f64();
    }

    /// Sets a named metric of the latest iteration.
    pub fn set_metric(&mut self, name: &str, value: f64) {
        self.metrics.insert(name.to_string(), value);
    }

    /// Time since the state was created.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Watches a run after every iteration: progress bars, snapshots, logs.
///
/// Observers never end a run on their own account; returning an error aborts it (for
/// example when a snapshot cannot be written). Any `FnMut(&IterState, &X) -> Result<()>`
/// is an observer.
pub trait Observer<X: ?Sized> {
    /// Called after every iteration with the state and the current iterate.
    ///
    /// # Errors
    /// Whatever the observer could not do; the run stops with this error.
    fn on_iter(&mut self, state: &IterState, x: &X) -> Result<()>;

    /// Called once when the run has ended, with the final state (its `termination` set).
    ///
    /// # Errors
    /// Whatever the observer could not do.
    fn on_finish(&mut self, _state: &IterState, _x: &X) -> Result<()> {
        Ok(())
    }
}

impl<X: ?Sized, F> Observer<X> for F
where
    F: FnMut(&IterState, &X) -> Result<()>,
{
    fn on_iter(&mut self, state: &IterState, x: &X) -> Result<()> {
        self(state, x)
    }
}

/// Decides whether a run ends after the latest iteration.
///
/// Any `FnMut(&IterState) -> Option<Termination>` is a stop rule.
pub trait StopRule {
    /// Returns the reason to stop, or `None` to go on.
    fn check(&mut self, state: &IterState) -> Option<Termination>;
}

impl<F> StopRule for F
where
    F: FnMut(&IterState) -> Option<Termination>,
{
    fn check(&mut self, state: &IterState) -> Option<Termination> {
        self(state)
    }
}

/// Stops once `iteration >= n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaxIterations(pub usize);

impl StopRule for MaxIterations {
    fn check(&mut self, state: &IterState) -> Option<Termination> {
        (state.iteration >= self.0).then_some(Termination::MaxIterations)
    }
}

/// Stops when the relative change of the cost falls below `relative`:
///
/// ```text
/// |cost - previous_cost| <= relative * max(|previous_cost|, tiny)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CostTolerance {
    /// The relative change below which the run has converged.
    pub relative: f64,
}

impl StopRule for CostTolerance {
    fn check(&mut self, state: &IterState) -> Option<Termination> {
        let (cost, previous) = (state.cost?, state.previous_cost?);
        let scale = previous.abs().max(f64::MIN_POSITIVE);
        ((cost - previous).abs() <= self.relative * scale).then_some(Termination::Converged)
    }
}

/// Stops as soon as the cost is NaN or infinite.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonFiniteCost;

impl StopRule for NonFiniteCost {
    fn check(&mut self, state: &IterState) -> Option<Termination> {
        state
            .cost
            .filter(|c| !c.is_finite())
            .map(|_| Termination::NonFinite)
    }
}

/// Runs the observers and stop rules of one loop.
///
/// The loop owner calls [`Monitor::after_iteration`] once per iteration, and
/// [`Monitor::finish`] once at the end. The first stop rule (in insertion order) that fires
/// gives the [`Termination`].
pub struct Monitor<'a, X: ?Sized> {
    observers: Vec<Box<dyn Observer<X> + 'a>>,
    stop_rules: Vec<Box<dyn StopRule + 'a>>,
}

impl<X: ?Sized> Default for Monitor<'_, X> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, X: ?Sized> Monitor<'a, X> {
    /// A monitor with no observers and no stop rules.
    pub fn new() -> Self {
        Self {
            observers: Vec::new(),
            stop_rules: Vec::new(),
        }
    }

    /// Adds an observer.
    pub fn with_observer(mut self, observer: impl Observer<X> + 'a) -> Self {
        self.observers.push(Box::new(observer));
        self
    }

    /// Adds a stop rule.
    pub fn with_stop_rule(mut self, rule: impl StopRule + 'a) -> Self {
        self.stop_rules.push(Box::new(rule));
        self
    }

    /// Adds an observer in place.
    pub fn add_observer(&mut self, observer: impl Observer<X> + 'a) {
        self.observers.push(Box::new(observer));
    }

    /// Adds a stop rule in place.
    pub fn add_stop_rule(&mut self, rule: impl StopRule + 'a) {
        self.stop_rules.push(Box::new(rule));
    }

    /// Shows the state to every observer, then asks every stop rule; returns the first
    /// reason to stop.
    ///
    /// # Errors
    /// The first error an observer returns.
    pub fn after_iteration(&mut self, state: &IterState, x: &X) -> Result<Option<Termination>> {
        for observer in &mut self.observers {
            observer.on_iter(state, x)?;
        }
        Ok(self
            .stop_rules
            .iter_mut()
            .find_map(|rule| rule.check(state)))
    }

    /// Records `reason` in the state and tells every observer that the run has ended.
    ///
    /// # Errors
    /// The first error an observer returns.
    pub fn finish(&mut self, state: &mut IterState, reason: Termination, x: &X) -> Result<()> {
        state.termination = Some(reason);
        for observer in &mut self.observers {
            observer.on_finish(state, x)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_tracks_costs_and_best() {
        let mut s = IterState::new(10);
        s.advance(Some(3.0));
        s.advance(Some(1.0));
        s.advance(Some(2.0));
        assert_eq!(s.iteration, 3);
        assert_eq!(s.cost, Some(2.0));
        assert_eq!(s.previous_cost, Some(1.0));
        assert_eq!(s.best_cost, Some(1.0));
    }

    #[test]
    fn max_iterations_fires_at_budget() {
        let mut s = IterState::new(2);
        let mut rule = MaxIterations(2);
        s.advance(None);
        assert_eq!(rule.check(&s), None);
        s.advance(None);
        assert_eq!(rule.check(&s), Some(Termination::MaxIterations));
    }

    #[test]
    fn tolerance_and_non_finite() {
        let mut s = IterState::new(10);
        s.advance(Some(1.0));
        assert_eq!(CostTolerance { relative: 1e-3 }.check(&s), None);
        s.advance(Some(1.0005));
        assert_eq!(
            CostTolerance { relative: 1e-3 }.check(&s),
            Some(Termination::Converged)
        );
        s.advance(Some(f64::NAN));
        assert_eq!(NonFiniteCost.check(&s), Some(Termination::NonFinite));
    }

    #[test]
    fn monitor_calls_observers_then_first_rule_wins() {
        let mut seen = Vec::new();
        {
            let mut monitor: Monitor<f32> = Monitor::new()
                .with_observer(|s: &IterState, x: &f32| {
                    seen.push((s.iteration, *x));
                    Ok(())
                })
                .with_stop_rule(|s: &IterState| {
                    (s.iteration == 2).then(|| Termination::Other("two".into()))
                })
                .with_stop_rule(MaxIterations(2));
            let mut s = IterState::new(5);
            s.advance(None);
            assert_eq!(monitor.after_iteration(&s, &0.5).unwrap(), None);
            s.advance(None);
            let reason = monitor.after_iteration(&s, &1.5).unwrap().unwrap();
            assert_eq!(reason, Termination::Other("two".into()));
            monitor.finish(&mut s, reason.clone(), &1.5).unwrap();
            assert_eq!(s.termination, Some(reason));
        }
        assert_eq!(seen, vec![(1, 0.5), (2, 1.5)]);
    }

    #[test]
    fn observer_error_aborts() {
        let mut monitor: Monitor<()> = Monitor::new()
            .with_observer(|_: &IterState, _: &()| Err(crate::Error::Observer("disk full".into())));
        let mut s = IterState::new(1);
        s.advance(None);
        assert!(monitor.after_iteration(&s, &()).is_err());
    }
}
