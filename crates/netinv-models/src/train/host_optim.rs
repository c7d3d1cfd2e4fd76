//! Adam and momentum SGD on a host buffer of f32 values (an image batch being inverted,
//! for instance), with f64 arithmetic per element and f32 state.
//!
//! These are the same rules as [`super::Adam`] and [`super::SgdMomentum`] (PyTorch's), for
//! a variable that lives on the host between steps (it is clamped, snapshotted and checked
//! there). The arithmetic differs in precision only: each element's update is computed in
//! f64 from the f32 gradient, state and value, then rounded to f32 once, whereas the
//! tensor optimisers compute in the variable's dtype. [`HostAdam::step_var`] applies a
//! step to a candle [`Var`] directly.

use candle_core::{DType, Tensor, Var};

use super::{AdamParams, SgdParams};
use crate::error::invalid;
use crate::Result;

/// Checks that the value and gradient buffers have the optimiser's length.
fn check_lengths(state: usize, x: usize, grad: usize) -> Result<()> {
    if x != state || grad != state {
        return Err(invalid(
            "grad",
            format!("values {x} and gradient {grad} for an optimiser of {state} elements"),
        ));
    }
    Ok(())
}

/// Reads a tensor as a flat f32 vector.
fn host_values(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

/// Adam on a host buffer (bias-corrected, PyTorch's rule), element `i` at step `t` (from 1):
///
/// ```text
/// g = grad_i + weight_decay * x_i                      (f64)
/// m_i <- beta1 m_i + (1 - beta1) g                      (f64, kept as f32)
/// v_i <- beta2 v_i + (1 - beta2) g^2                    (f64, kept as f32)
/// x_i <- x_i - lr (m_i / (1 - beta1^t)) / (sqrt(v_i / (1 - beta2^t)) + eps)
/// ```
///
/// The update uses the f64 moments of this step (before their rounding to f32), and
/// `x_i` is rounded to f32 once. These are the updates the inversion engine has always
/// made on its images, bit for bit.
///
/// ```
/// use netinv_models::train::{AdamParams, HostAdam};
/// let mut adam = HostAdam::new(2, AdamParams { lr: 0.1, ..Default::default() });
/// let mut x = [1.0f32, -1.0];
/// adam.step(&mut x, &[3.0, -0.5])?;
/// // The first bias-corrected step moves every element by lr against its gradient's sign.
/// assert!((x[0] - 0.9).abs() < 1e-6 && (x[1] + 0.9).abs() < 1e-6);
/// # Ok::<(), netinv_models::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct HostAdam {
    params: AdamParams,
    first: Vec<f32>,
    second: Vec<f32>,
    steps: usize,
}

impl HostAdam {
    /// Adam for `n` elements, moments at zero.
    pub fn new(n: usize, params: AdamParams) -> Self {
        Self {
            params,
            first: vec![0.0; n],
            second: vec![0.0; n],
            steps: 0,
        }
    }

    /// One update of `x` with gradient `grad` (both of the optimiser's length).
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for buffers of another length (nothing is changed).
    pub fn step(&mut self, x: &mut [f32], grad: &[f32]) -> Result<()> {
        check_lengths(self.first.len(), x.len(), grad.len())?;
        self.steps += 1;
        let AdamParams {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.params;
        let t = self.steps as i32;
        let c1 = 1.0 - beta1.powi(t);
        let c2 = 1.0 - beta2.powi(t);
        for (((xi, &gi), mi), vi) in x
            .iter_mut()
            .zip(grad)
            .zip(self.first.iter_mut())
            .zip(self.second.iter_mut())
        {
            let mut g = f64::from(gi);
            if weight_decay != 0.0 {
                g += weight_decay * f64::from(*xi);
            }
            let m = beta1 * f64::from(*mi) + (1.0 - beta1) * g;
            let v = beta2 * f64::from(*vi) + (1.0 - beta2) * g * g;
            *mi = m as f32;
            *vi = v as f32;
            let update = lr * (m / c1) / ((v / c2).sqrt() + eps);
            *xi = (f64::from(*xi) - update) as f32;
        }
        Ok(())
    }

    /// One update of a candle variable with its gradient (any float dtype, same element
    /// count; the variable keeps its shape and dtype).
    ///
    /// # Errors
    /// As [`HostAdam::step`]; candle errors.
    pub fn step_var(&mut self, var: &Var, grad: &Tensor) -> Result<()> {
        let mut x = host_values(var.as_tensor())?;
        self.step(&mut x, &host_values(grad)?)?;
        let next = Tensor::from_vec(x, var.shape(), var.device())?.to_dtype(var.dtype())?;
        var.set(&next)?;
        Ok(())
    }

    /// Steps taken.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.params.lr
    }

    /// Changes the learning rate (for a schedule).
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }
}

/// Heavy-ball SGD on a host buffer (PyTorch's form, buffer starting at zero, so the first
/// step is plain gradient descent), element `i`:
///
/// ```text
/// g = grad_i + weight_decay * x_i              (f64)
/// u_i <- momentum u_i + g                       (f64, kept as f32)
/// x_i <- x_i - lr d,   d = g + momentum u_i (Nesterov)  or  d = u_i
/// ```
#[derive(Debug, Clone)]
pub struct HostSgd {
    params: SgdParams,
    buffer: Vec<f32>,
}

impl HostSgd {
    /// SGD for `n` elements, momentum buffer at zero.
    pub fn new(n: usize, params: SgdParams) -> Self {
        Self {
            params,
            buffer: vec![0.0; n],
        }
    }

    /// One update of `x` with gradient `grad` (both of the optimiser's length).
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for buffers of another length (nothing is changed).
    pub fn step(&mut self, x: &mut [f32], grad: &[f32]) -> Result<()> {
        check_lengths(self.buffer.len(), x.len(), grad.len())?;
        let SgdParams {
            lr,
            momentum,
            nesterov,
            weight_decay,
        } = self.params;
        for ((xi, &gi), ui) in x.iter_mut().zip(grad).zip(self.buffer.iter_mut()) {
            let mut g = f64::from(gi);
            if weight_decay != 0.0 {
                g += weight_decay * f64::from(*xi);
            }
            let u = momentum * f64::from(*ui) + g;
            *ui = u as f32;
            let d = if nesterov { g + momentum * u } else { u };
            *xi = (f64::from(*xi) - lr * d) as f32;
        }
        Ok(())
    }

    /// The learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.params.lr
    }

    /// Changes the learning rate (for a schedule).
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The inversion engine's image update as it was written in netinv-invert (the
    /// reference these optimisers must reproduce bit for bit).
    fn engine_adam(xs: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], t: usize) {
        let (lr, beta1, beta2, eps) = (0.05f64, 0.9f64, 0.999f64, 1e-8f64);
        let c1 = 1.0 - beta1.powi(t as i32);
        let c2 = 1.0 - beta2.powi(t as i32);
        for i in 0..xs.len() {
            let g = f64::from(grad[i]);
            let mi = beta1 * f64::from(m[i]) + (1.0 - beta1) * g;
            let vi = beta2 * f64::from(v[i]) + (1.0 - beta2) * g * g;
            m[i] = mi as f32;
            v[i] = vi as f32;
            let step = lr * (mi / c1) / ((vi / c2).sqrt() + eps);
            xs[i] = (f64::from(xs[i]) - step) as f32;
        }
    }

    fn engine_sgd(xs: &mut [f32], grad: &[f32], m: &mut [f32], momentum: f64, lr: f64) {
        for i in 0..xs.len() {
            let u = momentum * f64::from(m[i]) + f64::from(grad[i]);
            m[i] = u as f32;
            xs[i] = (f64::from(xs[i]) - lr * u) as f32;
        }
    }

    /// A gradient that changes with x and the step, with awkward magnitudes.
    fn grad_at(x: &[f32], t: usize) -> Vec<f32> {
        x.iter()
            .enumerate()
            .map(|(i, &v)| (v * 3.7 - 1.1).sin() * 10f32.powi(i as i32 % 5 - 2) + t as f32 * 1e-3)
            .collect()
    }

    #[test]
    fn adam_is_the_engines_update_bit_for_bit() {
        let start: Vec<f32> = (0..37).map(|i| (i as f32 * 0.173).cos()).collect();
        let (mut a, mut b) = (start.clone(), start);
        let (mut m, mut v) = (vec![0f32; 37], vec![0f32; 37]);
        let mut adam = HostAdam::new(
            37,
            AdamParams {
                lr: 0.05,
                ..Default::default()
            },
        );
        for t in 1..=50 {
            let g = grad_at(&a, t);
            adam.step(&mut a, &g).unwrap();
            engine_adam(&mut b, &g, &mut m, &mut v, t);
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "step {t}");
        }
        assert_eq!(adam.steps(), 50);
    }

    #[test]
    fn sgd_is_the_engines_update_bit_for_bit_and_nesterov_matches_hand_values() {
        let start: Vec<f32> = (0..23).map(|i| (i as f32 * 0.31).sin()).collect();
        let (mut a, mut b) = (start.clone(), start);
        let mut u = vec![0f32; 23];
        let params = SgdParams {
            lr: 0.02,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
        };
        let mut sgd = HostSgd::new(23, params);
        for t in 1..=30 {
            let g = grad_at(&a, t);
            sgd.step(&mut a, &g).unwrap();
            engine_sgd(&mut b, &g, &mut u, 0.9, 0.02);
            assert_eq!(a, b, "step {t}");
        }
        // Nesterov with weight decay, as in the tensor optimiser's hand computation:
        // x = 2, g = 1 + 0.1 * 2 = 1.2, u = 1.2, d = 1.2 + 0.5 * 1.2 = 1.8, x = 1.82.
        let mut n = HostSgd::new(
            1,
            SgdParams {
                lr: 0.1,
                momentum: 0.5,
                nesterov: true,
                weight_decay: 0.1,
            },
        );
        let mut x = [2.0f32];
        n.step(&mut x, &[1.0]).unwrap();
        assert!((x[0] - 1.82).abs() < 1e-6);
    }

    #[test]
    fn step_var_equals_step_on_the_host_and_lengths_are_checked() {
        let dev = Device::Cpu;
        let start: Vec<f32> = (0..12).map(|i| i as f32 * 0.1 - 0.5).collect();
        let var = Var::from_vec(start.clone(), (3, 1, 2, 2), &dev).unwrap();
        let g: Vec<f32> = (0..12).map(|i| (i as f32 - 5.5) * 0.3).collect();
        let grad = Tensor::from_vec(g.clone(), (3, 1, 2, 2), &dev).unwrap();
        let mut on_var = HostAdam::new(12, AdamParams::default());
        let mut on_host = HostAdam::new(12, AdamParams::default());
        let mut x = start;
        for _ in 0..3 {
            on_var.step_var(&var, &grad).unwrap();
            on_host.step(&mut x, &g).unwrap();
        }
        let got = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(got, x);
        assert_eq!(var.dims(), &[3, 1, 2, 2]);
        let mut short = [0f32; 11];
        assert!(on_host.step(&mut short, &g).is_err());
        assert!(HostSgd::new(12, SgdParams::default())
            .step(&mut x, &g[..5])
            .is_err());
    }
}
