//! L-BFGS on the host pixels, one gradient per update and a fixed step (no line search),
//! as PyTorch's `torch.optim.LBFGS` with `line_search_fn=None` takes its inner iterations.

use std::collections::VecDeque;

/// Limited-memory BFGS (Nocedal and Wright 2006, algorithm 7.4) with a fixed step:
///
/// ```text
/// s_k = x_k - x_{k-1},  y_k = g_k - g_{k-1}   (pair kept only if y_k . s_k > 1e-10;
///                                              the newest `history` pairs are kept)
/// d_k = -H_k g_k      (two-loop recursion, H_0 = (s . y) / (y . y) of the newest pair)
/// x_{k+1} = x_k + t_k d_k,  t_0 = lr * min(1, 1 / |g_0|_1),  t_k = lr afterwards
/// ```
///
/// `x_k` is the iterate the caller passes in, so a projection (the clamp to [0, 1]) between
/// updates enters the next pair as the step actually taken. Arithmetic in f64.
#[derive(Debug, Clone)]
pub(crate) struct HostLbfgs {
    lr: f64,
    history: usize,
    pairs: VecDeque<(Vec<f64>, Vec<f64>, f64)>,
    previous: Option<(Vec<f64>, Vec<f64>)>,
}

/// `a . b` in f64.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl HostLbfgs {
    /// L-BFGS with step `lr` keeping `history` (>= 1) curvature pairs.
    pub(crate) fn new(lr: f64, history: usize) -> Self {
        Self {
            lr,
            history,
            pairs: VecDeque::with_capacity(history),
            previous: None,
        }
    }

    /// One update of `x` with its gradient `grad` (equal lengths, checked by the caller).
    pub(crate) fn step(&mut self, x: &mut [f32], grad: &[f32]) {
        let xs: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let g: Vec<f64> = grad.iter().map(|&v| f64::from(v)).collect();
        let first = self.previous.is_none();
        if let Some((px, pg)) = self.previous.take() {
            let s: Vec<f64> = xs.iter().zip(&px).map(|(a, b)| a - b).collect();
            let y: Vec<f64> = g.iter().zip(&pg).map(|(a, b)| a - b).collect();
            let ys = dot(&y, &s);
            if ys > 1e-10 {
                if self.pairs.len() == self.history {
                    self.pairs.pop_front();
                }
                self.pairs.push_back((s, y, 1.0 / ys));
            }
        }
        // Two-loop recursion: r = H g.
        let mut q = g.clone();
        let mut alphas = Vec::with_capacity(self.pairs.len());
        for (s, y, rho) in self.pairs.iter().rev() {
            let a = rho * dot(s, &q);
            for (qi, yi) in q.iter_mut().zip(y) {
                *qi -= a * yi;
            }
            alphas.push(a);
        }
        let h0 = self
            .pairs
            .back()
            .map_or(1.0, |(_, y, rho)| 1.0 / (rho * dot(y, y)));
        for qi in &mut q {
            *qi *= h0;
        }
        for ((s, y, rho), a) in self.pairs.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &q);
            for (qi, si) in q.iter_mut().zip(s) {
                *qi += (a - b) * si;
            }
        }
        let t = if first {
            let l1: f64 = g.iter().map(|v| v.abs()).sum();
            self.lr * if l1 > 1.0 { 1.0 / l1 } else { 1.0 }
        } else {
            self.lr
        };
        for (xi, di) in x.iter_mut().zip(&q) {
            *xi = (f64::from(*xi) - t * di) as f32;
        }
        self.previous = Some((xs, g));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f(x) = sum a_i (x_i - c_i)^2 / 2, gradient a_i (x_i - c_i).
    fn grad(x: &[f32], a: &[f64], c: &[f64]) -> Vec<f32> {
        x.iter()
            .zip(a)
            .zip(c)
            .map(|((&xi, ai), ci)| (ai * (f64::from(xi) - ci)) as f32)
            .collect()
    }

    #[test]
    fn minimises_an_ill_conditioned_quadratic_where_plain_steps_stall() {
        let a = [1.0, 2.0, 5.0, 10.0, 40.0];
        let c = [0.3, -0.2, 0.9, 0.1, 0.5];
        let mut x = vec![0.0f32; 5];
        let mut opt = HostLbfgs::new(1.0, 10);
        for _ in 0..40 {
            let g = grad(&x, &a, &c);
            opt.step(&mut x, &g);
        }
        for (xi, ci) in x.iter().zip(c) {
            assert!((f64::from(*xi) - ci).abs() < 1e-4, "{x:?}");
        }
        // Gradient descent with the largest stable step (1 / 40) is far off after 40 steps.
        let mut y = vec![0.0f32; 5];
        for _ in 0..40 {
            let g = grad(&y, &a, &c);
            for (yi, gi) in y.iter_mut().zip(g) {
                *yi -= gi / 40.0;
            }
        }
        assert!((f64::from(y[0]) - c[0]).abs() > 0.05);
    }

    #[test]
    fn first_step_is_scaled_gradient_descent_and_bad_pairs_are_skipped() {
        // g = (2, -2), |g|_1 = 4: x = x - (1 / 4) g.
        let mut x = vec![1.0f32, 1.0];
        let mut opt = HostLbfgs::new(1.0, 3);
        opt.step(&mut x, &[2.0, -2.0]);
        assert_eq!(x, vec![0.5, 1.5]);
        // The same gradient again: y = 0, so y . s = 0 and no pair is kept; the step is the
        // plain gradient with H_0 = 1.
        opt.step(&mut x, &[2.0, -2.0]);
        assert!(opt.pairs.is_empty());
        assert_eq!(x, vec![-1.5, 3.5]);
    }
}
