//! Optimisers written as candle-nn [`Optimizer`]s: SGD with momentum and Adam.
//!
//! candle-nn's own `SGD` has no momentum, and its `AdamW` keeps its moments private (so
//! they cannot be checkpointed). Both optimisers here follow PyTorch's `torch.optim.SGD` /
//! `torch.optim.Adam` update rules, detach every gradient before keeping anything derived
//! from it (a stored gradient keeps its autograd graph otherwise, and memory grows every
//! step), and expose their state for checkpoints ([`OptimizerState`]).

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::Optimizer;

/// The hyper-parameters of [`SgdMomentum`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdParams {
    /// Learning rate (> 0).
    pub lr: f64,
    /// Momentum in [0, 1); 0 is plain SGD.
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 weight decay, added to the gradient.
    pub weight_decay: f64,
}

impl Default for SgdParams {
    /// lr 0.01, momentum 0.9, no Nesterov, no weight decay.
    fn default() -> Self {
        Self {
            lr: 0.01,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

/// SGD with momentum, PyTorch's rule (dampening 0, the buffer starts at the first gradient):
///
/// ```text
/// g   = grad + weight_decay * theta
/// buf = g                       (first step)
/// buf = momentum * buf + g      (later steps)
/// d   = g + momentum * buf      (Nesterov)   or   d = buf
/// theta <- theta - lr * d
/// ```
#[derive(Debug)]
pub struct SgdMomentum {
    vars: Vec<Var>,
    buffers: Vec<Option<Tensor>>,
    step_t: usize,
    params: SgdParams,
}

impl Optimizer for SgdMomentum {
    type Config = SgdParams;

    fn new(vars: Vec<Var>, params: SgdParams) -> candle_core::Result<Self> {
        let vars: Vec<Var> = vars.into_iter().filter(|v| v.dtype().is_float()).collect();
        let buffers = vec![None; vars.len()];
        Ok(Self {
            vars,
            buffers,
            step_t: 0,
            params,
        })
    }

    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        self.step_t += 1;
        let p = self.params;
        for (var, buffer) in self.vars.iter().zip(self.buffers.iter_mut()) {
            let Some(grad) = grads.get(var) else {
                continue;
            };
            let theta = var.as_tensor().detach();
            let mut g = grad.detach();
            if p.weight_decay != 0.0 {
                g = (g + (&theta * p.weight_decay)?)?;
            }
            let direction = if p.momentum != 0.0 {
                let next = match buffer.take() {
                    None => g.copy()?,
                    Some(buf) => ((buf * p.momentum)? + &g)?,
                }
                .detach();
                let d = if p.nesterov {
                    (&g + (&next * p.momentum)?)?
                } else {
                    next.clone()
                };
                *buffer = Some(next);
                d
            } else {
                g
            };
            var.set(&(theta - (direction * p.lr)?)?)?;
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.params.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }
}

impl SgdMomentum {
    /// The hyper-parameters.
    pub fn params(&self) -> &SgdParams {
        &self.params
    }
}

/// The hyper-parameters of [`Adam`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamParams {
    /// Learning rate (> 0).
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator constant.
    pub eps: f64,
    /// Coupled L2 weight decay (added to the gradient, as in `torch.optim.Adam`).
    pub weight_decay: f64,
}

impl Default for AdamParams {
    /// lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay (PyTorch's defaults; note
    /// that candle-nn's `ParamsAdamW::default()` has weight decay 0.01).
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Adam (Kingma & Ba, 2015), PyTorch's rule; with `weight_decay = 0` it is the same update
/// as candle-nn's `AdamW` with `weight_decay = 0` (tested):
///
/// ```text
/// g = grad + weight_decay * theta
/// m <- beta1 * m + (1 - beta1) * g
/// v <- beta2 * v + (1 - beta2) * g^2
/// theta <- theta - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
/// ```
#[derive(Debug)]
pub struct Adam {
    vars: Vec<Var>,
    first: Vec<Option<Tensor>>,
    second: Vec<Option<Tensor>>,
    step_t: usize,
    params: AdamParams,
}

impl Optimizer for Adam {
    type Config = AdamParams;

    fn new(vars: Vec<Var>, params: AdamParams) -> candle_core::Result<Self> {
        let vars: Vec<Var> = vars.into_iter().filter(|v| v.dtype().is_float()).collect();
        let n = vars.len();
        Ok(Self {
            vars,
            first: vec![None; n],
            second: vec![None; n],
            step_t: 0,
            params,
        })
    }

    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        self.step_t += 1;
        let p = self.params;
        let t = self.step_t as i32;
        let scale_m = 1.0 / (1.0 - p.beta1.powi(t));
        let scale_v = 1.0 / (1.0 - p.beta2.powi(t));
        for ((var, m), v) in self
            .vars
            .iter()
            .zip(self.first.iter_mut())
            .zip(self.second.iter_mut())
        {
            let Some(grad) = grads.get(var) else {
                continue;
            };
            let theta = var.as_tensor().detach();
            let mut g = grad.detach();
            if p.weight_decay != 0.0 {
                g = (g + (&theta * p.weight_decay)?)?;
            }
            let prev_m = match m.take() {
                Some(m) => m,
                None => g.zeros_like()?,
            };
            let prev_v = match v.take() {
                Some(v) => v,
                None => g.zeros_like()?,
            };
            let next_m = ((prev_m * p.beta1)? + (&g * (1.0 - p.beta1))?)?.detach();
            let next_v = ((prev_v * p.beta2)? + (g.sqr()? * (1.0 - p.beta2))?)?.detach();
            let m_hat = (&next_m * scale_m)?;
            let v_hat = (&next_v * scale_v)?;
            let update = (m_hat / (v_hat.sqrt()? + p.eps)?)?;
            var.set(&(theta - (update * p.lr)?)?)?;
            *m = Some(next_m);
            *v = Some(next_v);
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.params.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }
}

impl Adam {
    /// The hyper-parameters.
    pub fn params(&self) -> &AdamParams {
        &self.params
    }
}

/// Access to an optimiser's internal state, for checkpoints.
///
/// The state is a list of named buffers, `"<buffer>.<index>"` where `index` is the position
/// of the variable in the list the optimiser was built from, plus a step counter.
pub trait OptimizerState {
    /// The state buffers that exist (a buffer appears after the first step that updated its
    /// variable), detached.
    fn state_tensors(&self) -> Vec<(String, Tensor)>;
    /// The number of steps taken.
    fn steps(&self) -> usize;
    /// Restores buffers and the step counter.
    ///
    /// # Errors
    /// A buffer name that does not belong to this optimiser, or a shape that differs from
    /// its variable's.
    fn load_state(&mut self, tensors: &[(String, Tensor)], steps: usize)
        -> candle_core::Result<()>;
}

fn parse_index(name: &str, prefix: &str, n: usize) -> Option<usize> {
    name.strip_prefix(prefix)?
        .strip_prefix('.')?
        .parse::<usize>()
        .ok()
        .filter(|&i| i < n)
}

fn restore(var: &Var, name: &str, t: &Tensor) -> candle_core::Result<Tensor> {
    if t.dims() != var.dims() {
        candle_core::bail!(
            "optimiser state `{name}` has shape {:?}, its variable {:?}",
            t.dims(),
            var.dims()
        );
    }
    Ok(t.to_dtype(var.dtype())?.to_device(var.device())?.detach())
}

impl OptimizerState for SgdMomentum {
    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.buffers
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.as_ref().map(|b| (format!("momentum.{i}"), b.detach())))
            .collect()
    }

    fn steps(&self) -> usize {
        self.step_t
    }

    fn load_state(
        &mut self,
        tensors: &[(String, Tensor)],
        steps: usize,
    ) -> candle_core::Result<()> {
        for (name, t) in tensors {
            let Some(i) = parse_index(name, "momentum", self.vars.len()) else {
                candle_core::bail!("unknown SGD state `{name}`");
            };
            self.buffers[i] = Some(restore(&self.vars[i], name, t)?);
        }
        self.step_t = steps;
        Ok(())
    }
}

impl OptimizerState for Adam {
    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, (m, v)) in self.first.iter().zip(&self.second).enumerate() {
            if let (Some(m), Some(v)) = (m, v) {
                out.push((format!("adam_m.{i}"), m.detach()));
                out.push((format!("adam_v.{i}"), v.detach()));
            }
        }
        out
    }

    fn steps(&self) -> usize {
        self.step_t
    }

    fn load_state(
        &mut self,
        tensors: &[(String, Tensor)],
        steps: usize,
    ) -> candle_core::Result<()> {
        for (name, t) in tensors {
            let n = self.vars.len();
            if let Some(i) = parse_index(name, "adam_m", n) {
                self.first[i] = Some(restore(&self.vars[i], name, t)?);
            } else if let Some(i) = parse_index(name, "adam_v", n) {
                self.second[i] = Some(restore(&self.vars[i], name, t)?);
            } else {
                candle_core::bail!("unknown Adam state `{name}`");
            }
        }
        self.step_t = steps;
        Ok(())
    }
}

/// The optimiser a [`super::Trainer`] runs: one of the two above.
#[derive(Debug)]
pub(crate) enum AnyOptimizer {
    Sgd(SgdMomentum),
    Adam(Adam),
}

impl AnyOptimizer {
    pub(crate) fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        match self {
            AnyOptimizer::Sgd(o) => o.step(grads),
            AnyOptimizer::Adam(o) => o.step(grads),
        }
    }

    pub(crate) fn set_learning_rate(&mut self, lr: f64) {
        match self {
            AnyOptimizer::Sgd(o) => o.set_learning_rate(lr),
            AnyOptimizer::Adam(o) => o.set_learning_rate(lr),
        }
    }

    pub(crate) fn state(&self) -> &dyn OptimizerState {
        match self {
            AnyOptimizer::Sgd(o) => o,
            AnyOptimizer::Adam(o) => o,
        }
    }

    pub(crate) fn state_mut(&mut self) -> &mut dyn OptimizerState {
        match self {
            AnyOptimizer::Sgd(o) => o,
            AnyOptimizer::Adam(o) => o,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// Gradient of f(w) = c * w for a scalar variable, as a GradStore.
    fn grads_of(w: &Var, c: f64) -> GradStore {
        let loss = (w.as_tensor() * c).unwrap().sum_all().unwrap();
        loss.backward().unwrap()
    }

    fn scalar(w: &Var) -> f64 {
        w.as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()[0]
    }

    #[test]
    fn sgd_momentum_matches_hand_computation() {
        let dev = Device::Cpu;
        let w = Var::from_slice(&[1.0f64], 1, &dev).unwrap();
        let params = SgdParams {
            lr: 0.1,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
        };
        let mut opt = SgdMomentum::new(vec![w.clone()], params).unwrap();
        // Gradients 2, 4, -1 (f = c w). Buffers: 2, 0.9*2+4 = 5.8, 0.9*5.8-1 = 4.22.
        let mut expected = 1.0;
        for (c, buf) in [(2.0, 2.0), (4.0, 5.8), (-1.0, 4.22)] {
            opt.step(&grads_of(&w, c)).unwrap();
            expected -= 0.1 * buf;
            assert!(
                (scalar(&w) - expected).abs() < 1e-12,
                "{} vs {expected}",
                scalar(&w)
            );
        }
        assert!((expected - (1.0 - 0.2 - 0.58 - 0.422)).abs() < 1e-12);
    }

    #[test]
    fn sgd_nesterov_and_weight_decay_match_hand_computation() {
        let dev = Device::Cpu;
        let w = Var::from_slice(&[2.0f64], 1, &dev).unwrap();
        let params = SgdParams {
            lr: 0.1,
            momentum: 0.5,
            nesterov: true,
            weight_decay: 0.1,
        };
        let mut opt = SgdMomentum::new(vec![w.clone()], params).unwrap();
        // Step 1: g = 1 + 0.1*2 = 1.2, buf = 1.2, d = 1.2 + 0.5*1.2 = 1.8, w = 2 - 0.18 = 1.82.
        opt.step(&grads_of(&w, 1.0)).unwrap();
        assert!((scalar(&w) - 1.82).abs() < 1e-12);
        // Step 2: g = 1 + 0.182 = 1.182, buf = 0.6 + 1.182 = 1.782,
        // d = 1.182 + 0.891 = 2.073, w = 1.82 - 0.2073 = 1.6127.
        opt.step(&grads_of(&w, 1.0)).unwrap();
        assert!((scalar(&w) - 1.6127).abs() < 1e-12);
    }

    #[test]
    fn sgd_without_momentum_is_plain_sgd() {
        let dev = Device::Cpu;
        let w = Var::from_slice(&[1.0f64], 1, &dev).unwrap();
        let params = SgdParams {
            lr: 0.5,
            momentum: 0.0,
            ..Default::default()
        };
        let mut opt = SgdMomentum::new(vec![w.clone()], params).unwrap();
        opt.step(&grads_of(&w, 2.0)).unwrap();
        opt.step(&grads_of(&w, 2.0)).unwrap();
        assert!((scalar(&w) - (1.0 - 2.0)).abs() < 1e-12);
        assert!(opt.state_tensors().is_empty());
    }

    #[test]
    fn adam_matches_candle_adamw_without_decay() {
        let dev = Device::Cpu;
        let init: Vec<f32> = (0..6).map(|i| 0.3 * i as f32 - 0.7).collect();
        let a = Var::from_slice(&init, (2, 3), &dev).unwrap();
        let b = Var::from_slice(&init, (2, 3), &dev).unwrap();
        let mut ours = Adam::new(
            vec![a.clone()],
            AdamParams {
                lr: 0.01,
                ..Default::default()
            },
        )
        .unwrap();
        let mut theirs = candle_nn::AdamW::new(
            vec![b.clone()],
            candle_nn::ParamsAdamW {
                lr: 0.01,
                weight_decay: 0.0,
                ..Default::default()
            },
        )
        .unwrap();
        for _ in 0..5 {
            // f(w) = sum(w^3): a non-constant gradient 3 w^2.
            let ga = a
                .as_tensor()
                .powf(3.0)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let gb = b
                .as_tensor()
                .powf(3.0)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            ours.step(&ga).unwrap();
            theirs.step(&gb).unwrap();
        }
        let x = a
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let y = b
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (x, y) in x.iter().zip(&y) {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
        assert_eq!(ours.steps(), 5);
    }

    #[test]
    fn adam_first_step_moves_by_lr() {
        // With bias correction the first step is lr * g / (|g| + eps) = lr * sign(g).
        let dev = Device::Cpu;
        let w = Var::from_slice(&[1.0f64], 1, &dev).unwrap();
        let mut opt = Adam::new(
            vec![w.clone()],
            AdamParams {
                lr: 0.1,
                ..Default::default()
            },
        )
        .unwrap();
        opt.step(&grads_of(&w, 3.0)).unwrap();
        assert!((scalar(&w) - 0.9).abs() < 1e-7);
    }

    #[test]
    fn state_round_trip_continues_identically() {
        let dev = Device::Cpu;
        let make = || Var::from_slice(&[0.5f32, -1.0, 2.0], 3, &dev).unwrap();
        let step = |opt: &mut Adam, w: &Var| {
            let g = w
                .as_tensor()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            opt.step(&g).unwrap();
        };
        let (w1, w2) = (make(), make());
        let mut a = Adam::new(vec![w1.clone()], AdamParams::default()).unwrap();
        for _ in 0..3 {
            step(&mut a, &w1);
        }
        // Copy weights and state into a fresh optimiser, then take two more steps each.
        w2.set(w1.as_tensor()).unwrap();
        let mut b = Adam::new(vec![w2.clone()], AdamParams::default()).unwrap();
        b.load_state(&a.state_tensors(), a.steps()).unwrap();
        for _ in 0..2 {
            step(&mut a, &w1);
            step(&mut b, &w2);
        }
        let x = w1.as_tensor().to_vec1::<f32>().unwrap();
        let y = w2.as_tensor().to_vec1::<f32>().unwrap();
        assert_eq!(x, y);
        // Unknown names and wrong shapes are errors.
        let bad = vec![(
            "adam_q.0".to_string(),
            Tensor::zeros(3, DType::F32, &dev).unwrap(),
        )];
        assert!(b.load_state(&bad, 1).is_err());
        let bad = vec![(
            "adam_m.0".to_string(),
            Tensor::zeros(4, DType::F32, &dev).unwrap(),
        )];
        assert!(b.load_state(&bad, 1).is_err());
    }

    #[test]
    fn momentum_buffers_are_detached() {
        let dev = Device::Cpu;
        let w = Var::from_slice(&[1.0f32, 2.0], 2, &dev).unwrap();
        let mut opt = SgdMomentum::new(vec![w.clone()], SgdParams::default()).unwrap();
        for _ in 0..3 {
            let g = w
                .as_tensor()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            opt.step(&g).unwrap();
        }
        for (_, t) in opt.state_tensors() {
            assert!(!t.track_op());
        }
        for b in opt.buffers.iter().flatten() {
            assert!(!b.track_op());
        }
    }
}
