//! Per-member stop bookkeeping of a batched iterative method.
//!
//! A batched solver iterates several independent problems at once (one image per sinogram,
//! one inversion per target, ...): each member has its own [`IterState`] and stops on its
//! own, and the batch runs until its last member has stopped. The members of a batch do
//! not interact, so a solver may go on updating a stopped member with the others; its
//! result is the iterate it had when it stopped, which [`BatchProgress`] keeps.

use crate::{IterState, Termination};

/// The result of one member of a batch: its iterate when it stopped, its state and why it
/// stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct Stopped<X> {
    /// The member's iterate at its stop.
    pub iterate: X,
    /// Its state at its stop (`termination` is still `None`: the driver records the reason
    /// when it finishes the run, for example with [`Monitor::finish`](crate::Monitor::finish)).
    pub state: IterState,
    /// Why it stopped.
    pub reason: Termination,
}

/// The per-member bookkeeping of a batched iterative method, generic over the iterate `X`
/// kept for each member: every member has its own state, which members are still running,
/// and each stopped member's result.
///
/// A solver's loop ends each iteration with [`end_iteration`](Self::end_iteration) and
/// runs while [`running`](Self::running); [`finish`](Self::finish) hands out the results.
///
/// # Examples
/// ```
/// use netinv_core::{BatchProgress, IterState, MaxIterations, StopRule, Termination};
///
/// // Two independent scalar problems x <- x / 2, one stops when x < 0.1, both within 10.
/// let mut x = [1.0_f64, 0.01];
/// let mut progress = BatchProgress::<f64>::new(x.len(), 10);
/// let mut budget = MaxIterations(10);
/// while progress.running() {
///     x.iter_mut().for_each(|x| *x /= 2.0);
///     let costs: Vec<f64> = x.to_vec();
///     progress
///         .end_iteration(
///             &costs,
///             None,
///             |k, state: &IterState| {
///                 Ok::<_, ()>(if x[k] < 0.1 { Some(Termination::Converged) } else { budget.check(state) })
///             },
///             |k| x[k],
///         )
///         .unwrap();
/// }
/// let results = progress.finish(|k| x[k], Termination::MaxIterations);
/// assert_eq!((results[0].state.iteration, results[1].state.iteration), (4, 1));
/// assert_eq!(results[1].iterate, 0.005);
/// assert!(results.iter().all(|r| r.reason == Termination::Converged));
/// ```
#[derive(Debug, Clone)]
pub struct BatchProgress<X> {
    states: Vec<IterState>,
    stopped: Vec<Option<Stopped<X>>>,
}

impl<X> BatchProgress<X> {
    /// `batch` members, each with a fresh state and a budget of `max_iterations`.
    pub fn new(batch: usize, max_iterations: usize) -> Self {
        Self {
            states: vec![IterState::new(max_iterations); batch],
            stopped: (0..batch).map(|_| None).collect(),
        }
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether the batch has no members.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Whether any member is still running.
    pub fn running(&self) -> bool {
        self.stopped.iter().any(Option::is_none)
    }

    /// Whether member `k` is still running.
    ///
    /// # Panics
    /// If `k >= self.len()`.
    pub fn is_running(&self, k: usize) -> bool {
        self.stopped[k].is_none()
    }

    /// The members still running, in batch order.
    pub fn running_members(&self) -> impl Iterator<Item = usize> + '_ {
        self.stopped
            .iter()
            .enumerate()
            .filter_map(|(k, s)| s.is_none().then_some(k))
    }

    /// Member `k`'s state: its latest one while it runs, the one at its stop after.
    ///
    /// # Panics
    /// If `k >= self.len()`.
    pub fn state(&self, k: usize) -> &IterState {
        match &self.stopped[k] {
            Some(stopped) => &stopped.state,
            None => &self.states[k],
        }
    }

    /// Member `k`'s result if it has stopped.
    ///
    /// # Panics
    /// If `k >= self.len()`.
    pub fn stopped(&self, k: usize) -> Option<&Stopped<X>> {
        self.stopped[k].as_ref()
    }

    /// Ends an iteration. For each running member `k`, in batch order: records `costs[k]`
    /// (and `metric.1[k]` under the name `metric.0`) in its state, then asks
    /// `decide(k, state)` whether it stops; if so, keeps `snapshot(k)` as its result.
    ///
    /// `decide` is where a driver puts its observers and stop rules (a [`Monitor`], then the
    /// solver's own rules such as its iteration budget).
    ///
    /// # Errors
    /// The first error `decide` returns; members after it are left as they were.
    ///
    /// # Panics
    /// If `costs` or the metric values have fewer than [`len`](Self::len) entries.
    ///
    /// [`Monitor`]: crate::Monitor
    pub fn end_iteration<E>(
        &mut self,
        costs: &[f64],
        metric: Option<(&str, &[f64])>,
        mut decide: impl FnMut(usize, &IterState) -> Result<Option<Termination>, E>,
        mut snapshot: impl FnMut(usize) -> X,
    ) -> Result<(), E> {
        for (k, state) in self.states.iter_mut().enumerate() {
            if self.stopped[k].is_some() {
                continue;
            }
            state.advance(Some(costs[k]));
            if let Some((name, values)) = metric {
                state.set_metric(name, values[k]);
            }
            if let Some(reason) = decide(k, state)? {
                self.stopped[k] = Some(Stopped {
                    iterate: snapshot(k),
                    state: state.clone(),
                    reason,
                });
            }
        }
        Ok(())
    }

    /// Stops member `k` now with `reason`, keeping `iterate` as its result (a member that
    /// has already stopped keeps its result). Returns whether it was running.
    ///
    /// # Panics
    /// If `k >= self.len()`.
    pub fn stop(&mut self, k: usize, reason: Termination, iterate: X) -> bool {
        if self.stopped[k].is_some() {
            return false;
        }
        self.stopped[k] = Some(Stopped {
            iterate,
            state: self.states[k].clone(),
            reason,
        });
        true
    }

    /// Every member's result in batch order: members still running are stopped first with
    /// `reason` and `snapshot(k)` as their iterate.
    pub fn finish(
        mut self,
        mut snapshot: impl FnMut(usize) -> X,
        reason: Termination,
    ) -> Vec<Stopped<X>> {
        for k in 0..self.len() {
            if self.stopped[k].is_none() {
                self.stop(k, reason.clone(), snapshot(k));
            }
        }
        self.stopped.into_iter().flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_stop_on_their_own_and_keep_their_iterate() {
        let mut progress = BatchProgress::<usize>::new(3, 5);
        assert_eq!(progress.len(), 3);
        let mut seen = Vec::new();
        for it in 1..=2 {
            progress
                .end_iteration(
                    &[1.0, 2.0, 3.0],
                    Some(("m", &[0.5, 0.6, 0.7])),
                    |k, s| {
                        seen.push((it, k, s.iteration));
                        Ok::<_, ()>((k == 1).then_some(Termination::Converged))
                    },
                    |k| 10 * it + k,
                )
                .unwrap();
        }
        // member 1 stopped after iteration 1 and was not asked again
        assert_eq!(
            seen,
            [(1, 0, 1), (1, 1, 1), (1, 2, 1), (2, 0, 2), (2, 2, 2)]
        );
        assert!(!progress.is_running(1) && progress.is_running(0));
        assert_eq!(progress.running_members().collect::<Vec<_>>(), [0, 2]);
        assert_eq!(progress.state(1).iteration, 1);
        assert_eq!(progress.state(2).metrics["m"], 0.7);
        assert!(progress.stop(2, Termination::TargetReached, 99));
        assert!(!progress.stop(2, Termination::MaxIterations, 0));
        let results = progress.finish(|k| 100 + k, Termination::MaxIterations);
        let got: Vec<_> = results
            .iter()
            .map(|r| (r.iterate, r.state.iteration))
            .collect();
        assert_eq!(got, [(100, 2), (11, 1), (99, 2)]);
        assert_eq!(results[2].reason, Termination::TargetReached);
        assert_eq!(results[0].reason, Termination::MaxIterations);
    }

    #[test]
    fn an_error_of_decide_aborts_the_iteration() {
        let mut progress = BatchProgress::<()>::new(2, 5);
        let err = progress.end_iteration(&[0.0, 0.0], None, |_, _| Err("observer"), |_| ());
        assert_eq!(err, Err("observer"));
        assert!(progress.running());
    }
}
