//! 2x2 max-pooling with stride 2 and PyTorch's gradient (to the first maximum).

use std::sync::{Arc, OnceLock};

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use super::{contiguous, par_each, Elem};

/// The maximum of a 2x2 window `[a, b; c, d]`; a NaN anywhere gives NaN (as in PyTorch).
#[inline(always)]
fn max4<T: Elem>(a: T, b: T, c: T, d: T) -> T {
    // Non-short-circuit `|` keeps this free of branches (random maxima defeat prediction).
    let mut m = a;
    for v in [b, c, d] {
        m = if (v > m) | v.is_nan() { v } else { m };
    }
    m
}

/// The maximum of a window `[a, b; c, d]` and its selection code: the index 0..=3 (scan
/// order) of the first entry equal to the maximum, 3 if it is NaN, plus 4 when `relu` cuts
/// the gradient (maximum <= 0). Branch-free (random maxima defeat branch prediction).
#[inline(always)]
fn window<T: Elem>(a: T, b: T, c: T, d: T, relu: bool) -> (T, u8) {
    let m = max4(a, b, c, d);
    let (ea, eb, ec) = ((a == m) as u8, (b == m) as u8, (c == m) as u8);
    let k = (1 - ea) * (1 + (1 - eb) * (2 - ec));
    (m, k | (4 * (relu & (m <= T::default())) as u8))
}

/// Forward: `[b, c, h, w] -> [b, c, h/2, w/2]` (rounded down), first maximum in the scan
/// order (row, then column) of each window; NaN propagates. With `relu`, negative maxima
/// become 0. Also returns every window's selection code (see [`window`]), one byte per
/// output value, from which the backward pass routes the gradient without reading `x`.
/// The planes are split into groups run in parallel (see [`super::par_each`]); every output
/// depends on its own window only, so the grouping does not change the result.
fn pool_fwd<T: Elem>(x: &[T], planes: usize, h: usize, w: usize, relu: bool) -> (Vec<T>, Vec<u8>) {
    let (oh, ow) = (h / 2, w / 2);
    let mut out = vec![T::default(); planes * oh * ow];
    let mut sel = vec![0u8; planes * oh * ow];
    if oh == 0 || ow == 0 {
        return (out, sel);
    }
    let per = planes.div_ceil(PLANE_GROUPS).max(1);
    let parts: Vec<_> = out
        .chunks_mut(per * oh * ow)
        .zip(sel.chunks_mut(per * oh * ow))
        .collect();
    par_each(parts, |t, (o, k)| {
        pool_fwd_planes(&x[t * per * h * w..], o, k, h, w, relu);
    });
    (out, sel)
}

/// Planes pooled in parallel groups: at most this many groups.
const PLANE_GROUPS: usize = 16;

/// [`pool_fwd`] of the planes whose outputs are `out` and `sel` (whole planes), read from
/// the start of `x`.
pub(super) fn pool_fwd_planes<T: Elem>(
    x: &[T],
    out: &mut [T],
    sel: &mut [u8],
    h: usize,
    w: usize,
    relu: bool,
) {
    let (oh, ow) = (h / 2, w / 2);
    let outputs = out.chunks_exact_mut(ow).zip(sel.chunks_exact_mut(ow));
    for ((orow, srow), (plane, oy)) in outputs.zip(
        x.chunks_exact(h * w)
            .flat_map(|plane| (0..oh).map(move |oy| (plane, oy))),
    ) {
        let r0 = &plane[2 * oy * w..2 * oy * w + 2 * ow];
        let r1 = &plane[(2 * oy + 1) * w..(2 * oy + 1) * w + 2 * ow];
        for (((o, k), p0), p1) in orow
            .iter_mut()
            .zip(srow.iter_mut())
            .zip(r0.chunks_exact(2))
            .zip(r1.chunks_exact(2))
        {
            let (m, code) = window(p0[0], p0[1], p1[0], p1[1], relu);
            *o = if relu && m < T::default() {
                T::default()
            } else {
                m
            };
            *k = code;
        }
    }
}

/// Backward: `dx` `[planes, h, w]`, zero except at the selected entry of each window (see
/// [`window`]; code 4 and up: none), which receives the window's output gradient.
/// The planes in parallel groups, as [`pool_fwd`].
fn pool_bwd<T: Elem>(sel: &[u8], grad: &[T], planes: usize, h: usize, w: usize) -> Vec<T> {
    let (oh, ow) = (h / 2, w / 2);
    let mut dx = vec![T::default(); planes * h * w];
    if oh == 0 || ow == 0 {
        return dx;
    }
    let per = planes.div_ceil(PLANE_GROUPS).max(1);
    par_each(dx.chunks_mut(per * h * w).collect(), |t, d: &mut [T]| {
        let o = t * per * oh * ow;
        pool_bwd_planes(&sel[o..], &grad[o..], d, h, w);
    });
    dx
}

/// [`pool_bwd`] into `dx` (whole planes) from the start of `sel` and `grad`.
pub(super) fn pool_bwd_planes<T: Elem>(sel: &[u8], grad: &[T], dx: &mut [T], h: usize, w: usize) {
    let (oh, ow) = (h / 2, w / 2);
    let zero = T::default();
    for ((dplane, gp), sp) in dx
        .chunks_exact_mut(h * w)
        .zip(grad.chunks_exact(oh * ow))
        .zip(sel.chunks_exact(oh * ow))
    {
        for (oy, (grow, srow)) in gp.chunks_exact(ow).zip(sp.chunks_exact(ow)).enumerate() {
            let (d0, d1) = dplane[2 * oy * w..(2 * oy + 2) * w].split_at_mut(w);
            for (((&g, &k), q0), q1) in grow
                .iter()
                .zip(srow)
                .zip(d0.chunks_exact_mut(2))
                .zip(d1.chunks_exact_mut(2))
            {
                q0[0] = if k == 0 { g } else { zero };
                q0[1] = if k == 1 { g } else { zero };
                q1[0] = if k == 2 { g } else { zero };
                q1[1] = if k == 3 { g } else { zero };
            }
        }
    }
}

fn dims4(layout: &Layout, op: &str) -> candle_core::Result<(usize, usize, usize, usize)> {
    match layout.dims() {
        &[b, c, h, w] => Ok((b, c, h, w)),
        d => candle_core::bail!("{op}: expected a rank-4 tensor [b, c, h, w], got {d:?}"),
    }
}

/// The forward op (its backward is [`MaxPool2x2Grad`]); `relu` fuses a ReLU after it. The
/// forward keeps its windows' selection codes for the backward pass.
struct MaxPool2x2 {
    relu: bool,
    selection: OnceLock<Arc<Vec<u8>>>,
}

impl MaxPool2x2 {
    fn new(relu: bool) -> Self {
        Self {
            relu,
            selection: OnceLock::new(),
        }
    }
}

impl CustomOp1 for MaxPool2x2 {
    fn name(&self) -> &'static str {
        "netinv-max-pool-2x2"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = dims4(l, self.name())?;
        let shape = Shape::from((b, c, h / 2, w / 2));
        let (out, sel) = match s {
            CpuStorage::F32(v) => {
                let (out, sel) = pool_fwd(contiguous(v, l, self.name())?, b * c, h, w, self.relu);
                (CpuStorage::F32(out), sel)
            }
            CpuStorage::F64(v) => {
                let (out, sel) = pool_fwd(contiguous(v, l, self.name())?, b * c, h, w, self.relu);
                (CpuStorage::F64(out), sel)
            }
            _ => candle_core::bail!("{}: only f32 and f64 are supported", self.name()),
        };
        if self.selection.set(Arc::new(sel)).is_err() {
            candle_core::bail!("{}: the op ran twice", self.name());
        }
        Ok((out, shape))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        if !arg.track_op() {
            return Ok(None);
        }
        let Some(selection) = self.selection.get() else {
            candle_core::bail!("{}: backward before the forward pass", self.name());
        };
        let (b, c, h, w) = arg.dims4()?;
        let grad = grad_res.contiguous()?;
        Ok(Some(grad.apply_op1_no_bwd(&MaxPool2x2Grad {
            selection: Arc::clone(selection),
            input: (b, c, h, w),
        })?))
    }
}

/// `grad_out -> grad_x` of [`MaxPool2x2`], from the forward's selection codes.
struct MaxPool2x2Grad {
    selection: Arc<Vec<u8>>,
    /// The forward's input shape `[b, c, h, w]`.
    input: (usize, usize, usize, usize),
}

impl CustomOp1 for MaxPool2x2Grad {
    fn name(&self) -> &'static str {
        "netinv-max-pool-2x2-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = self.input;
        if l.dims() != [b, c, h / 2, w / 2] || self.selection.len() != l.shape().elem_count() {
            candle_core::bail!(
                "{}: gradient shape {:?} does not match input {:?}",
                self.name(),
                l.dims(),
                [b, c, h, w]
            );
        }
        let sel = &self.selection;
        let out = match s {
            CpuStorage::F32(g) => {
                CpuStorage::F32(pool_bwd(sel, contiguous(g, l, self.name())?, b * c, h, w))
            }
            CpuStorage::F64(g) => {
                CpuStorage::F64(pool_bwd(sel, contiguous(g, l, self.name())?, b * c, h, w))
            }
            _ => candle_core::bail!("{}: only f32 and f64 are supported", self.name()),
        };
        Ok((out, Shape::from((b, c, h, w))))
    }
}

/// 2x2 max-pooling with stride 2: `[b, c, h, w] -> [b, c, h/2, w/2]` (rounded down, the
/// last row / column dropped for odd sizes, as PyTorch's `max_pool2d(x, 2)`).
///
/// ```text
/// y[b, c, i, j] = max_{u, v in {0, 1}} x[b, c, 2i + u, 2j + v]
/// dL/dx = dL/dy at the first maximum of each window (row-major scan), 0 elsewhere
/// ```
///
/// Unlike candle 0.11's `max_pool2d`, whose backward returns a quarter of this gradient,
/// this is PyTorch's gradient. f32 or f64, CPU.
///
/// # Errors
/// A candle error if `x` is not rank 4, not f32/f64, or not on the CPU.
///
/// # Examples
/// ```
/// use candle_core::{Device, Tensor};
/// let x = Tensor::arange(0f32, 16., &Device::Cpu)?.reshape((1, 1, 4, 4))?;
/// let y = netinv_models::ops::max_pool2x2(&x)?;
/// assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![5., 7., 13., 15.]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn max_pool2x2(x: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(MaxPool2x2::new(false))
}

/// ReLU after 2x2 max-pooling, in one op: `relu(max_pool2x2(x))`, which equals
/// `max_pool2x2(relu(x))` (the max commutes with the non-decreasing ReLU) at a quarter of
/// the ReLU's cost and with one graph node instead of four.
///
/// ```text
/// y[b, c, i, j] = max(0, max_{u, v in {0, 1}} x[b, c, 2i + u, 2j + v])
/// dL/dx = dL/dy at the first maximum of each window if that maximum is > 0, 0 elsewhere
/// ```
///
/// # Errors
/// As [`max_pool2x2`].
///
/// # Examples
/// ```
/// use candle_core::{Device, Tensor};
/// let x = (Tensor::arange(0f32, 16., &Device::Cpu)?.reshape((1, 1, 4, 4))? - 6.0)?;
/// let y = netinv_models::ops::max_pool2x2_relu(&x)?;
/// assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![0., 1., 7., 9.]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn max_pool2x2_relu(x: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(MaxPool2x2::new(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use netinv_core::testing::{assert_close, central_diff};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn random(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    #[test]
    fn forward_matches_candle() {
        let dev = Device::Cpu;
        for (h, w) in [(4, 4), (5, 7), (28, 28)] {
            let x = Tensor::from_vec(random(2 * 3 * h * w, 1), (2, 3, h, w), &dev)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap();
            let ours = max_pool2x2(&x)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let theirs = x
                .max_pool2d(2)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert_eq!(ours, theirs, "{h}x{w}");
        }
    }

    #[test]
    fn gradient_is_one_at_the_max_of_an_arange() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(
            &Tensor::arange(0f32, 16., &dev)
                .unwrap()
                .reshape((1, 1, 4, 4))
                .unwrap(),
        )
        .unwrap();
        let grads = max_pool2x2(x.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g = grads
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let mut want = vec![0f32; 16];
        for i in [5, 7, 13, 15] {
            want[i] = 1.0;
        }
        assert_eq!(g, want);
    }

    #[test]
    fn ties_go_to_the_first_max_and_odd_edges_get_zero() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::ones((1, 1, 3, 3), DType::F32, &dev).unwrap()).unwrap();
        let grads = max_pool2x2(x.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g = grads
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(g, vec![1., 0., 0., 0., 0., 0., 0., 0., 0.]);
    }

    #[test]
    fn gradient_matches_central_differences_f64() {
        let dev = Device::Cpu;
        let (b, c, h, w) = (2, 2, 5, 6);
        let x0 = random(b * c * h * w, 2);
        let r = Tensor::from_vec(
            random(b * c * (h / 2) * (w / 2), 3),
            (b, c, h / 2, w / 2),
            &dev,
        )
        .unwrap();
        let loss = |x: &Tensor| max_pool2x2(x).unwrap().mul(&r).unwrap().sum_all().unwrap();
        let x = Var::from_vec(x0.clone(), (b, c, h, w), &dev).unwrap();
        let grads = loss(x.as_tensor()).backward().unwrap();
        let g = grads
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let numeric = central_diff(
            |v| {
                loss(&Tensor::from_vec(v.to_vec(), (b, c, h, w), &dev).unwrap())
                    .to_scalar::<f64>()
                    .unwrap()
            },
            &x0,
            1e-6,
        );
        assert_close(&g, &numeric, 1e-6, 1e-8);
    }

    #[test]
    fn fused_relu_matches_relu_of_pool_with_gradient() {
        let dev = Device::Cpu;
        let (b, c, h, w) = (2, 3, 6, 5);
        let x0 = random(b * c * h * w, 4);
        let r = Tensor::from_vec(random(b * c * 3 * 2, 5), (b, c, 3, 2), &dev).unwrap();
        let x = Var::from_vec(x0.clone(), (b, c, h, w), &dev).unwrap();
        let fused = max_pool2x2_relu(x.as_tensor()).unwrap();
        let plain = max_pool2x2(&x.as_tensor().relu().unwrap()).unwrap();
        let fv = fused.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        assert_eq!(fv, plain.flatten_all().unwrap().to_vec1::<f64>().unwrap());
        assert!(fv.contains(&0.0) && fv.iter().any(|&v| v > 0.0));
        let loss = |x: &Tensor| {
            max_pool2x2_relu(x)
                .unwrap()
                .mul(&r)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let grads = loss(x.as_tensor()).backward().unwrap();
        let g = grads
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let numeric = central_diff(
            |v| {
                loss(&Tensor::from_vec(v.to_vec(), (b, c, h, w), &dev).unwrap())
                    .to_scalar::<f64>()
                    .unwrap()
            },
            &x0,
            1e-6,
        );
        assert_close(&g, &numeric, 1e-6, 1e-8);
    }

    #[test]
    fn no_gradient_for_constants() {
        let dev = Device::Cpu;
        let x = Tensor::ones((1, 1, 2, 2), DType::F32, &dev).unwrap();
        let v = Var::ones(1, DType::F32, &dev).unwrap();
        let y = max_pool2x2(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .mul(v.as_tensor())
            .unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
        assert!(grads.get(v.as_tensor()).is_some());
    }
}
