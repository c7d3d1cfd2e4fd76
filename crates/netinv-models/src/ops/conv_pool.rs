//! One op for a whole classifier block: convolution + bias, ReLU, 2x2 max-pooling.
//!
//! The same arithmetic as [`super::conv2d_bias`] followed by [`super::max_pool2x2_relu`]
//! (bit for bit, tested), but the convolution's output lives only in a per-thread scratch
//! buffer of one image: it is never a tensor of the graph. In candle's backward every node's
//! gradient is a zero-filled buffer plus an add; for the full-size convolution output that was
//! three passes over the largest activation of the net, and the pool's backward wrote a
//! full-size gradient that the convolution's backward read again. Here the backward routes
//! each image's pooled gradient into the scratch buffer and takes grad-bias, grad-kernel and
//! grad-input from it while it is in cache.

use std::sync::{Arc, OnceLock};

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use super::conv::{col2im_add, im2col, matmul, Geom};
use super::pool::{pool_bwd_planes, pool_fwd_planes};
use super::{contiguous, images_per_group, par_each, Elem};

/// Forward: `relu(max_pool2x2(conv(x, w) + bias))` `[b, co, oh/2, ow/2]` and the pool's
/// selection codes (one byte per output), the images in parallel groups.
fn fwd<T: Elem>(x: &[T], w: &[T], bias: &[T], g: &Geom) -> (Vec<T>, Vec<u8>) {
    let (k, p) = (g.k(), g.p());
    let (ph, pw) = (g.oh / 2, g.ow / 2);
    let (isz, psz) = (g.c * g.h * g.w, g.co * ph * pw);
    let mut out = vec![T::default(); g.b * psz];
    let mut sel = vec![0u8; g.b * psz];
    if psz == 0 || isz == 0 {
        return (out, sel);
    }
    let per = images_per_group(g.b);
    let parts: Vec<_> = out
        .chunks_mut(per * psz)
        .zip(sel.chunks_mut(per * psz))
        .collect();
    par_each(parts, |t, (o, s): (&mut [T], &mut [u8])| {
        let mut col = vec![T::default(); k * p];
        let mut z = vec![T::default(); g.co * p];
        let xs = &x[t * per * isz..];
        for ((xb, ob), sb) in xs
            .chunks_exact(isz)
            .zip(o.chunks_exact_mut(psz))
            .zip(s.chunks_exact_mut(psz))
        {
            for (row, &bv) in z.chunks_exact_mut(p.max(1)).zip(bias) {
                row.fill(bv);
            }
            im2col(xb, g, &mut col);
            matmul((g.co, p, k), &mut z, p, true, w, (k, 1), &col, (p, 1));
            pool_fwd_planes(&z, ob, sb, g.oh, g.ow, true);
        }
    });
    (out, sel)
}

/// Which gradients the backward computes.
#[derive(Debug, Clone, Copy)]
struct Need {
    x: bool,
    w: bool,
    b: bool,
}

/// Backward from the pooled gradient `gy` `[b, co, oh/2, ow/2]`: returns `[dx | dW | db]`
/// packed in one vector (each part present only if needed). Per image, the convolution
/// output's gradient `dz` is rebuilt from the selection codes in a scratch buffer; grad-input
/// is `col2im(W^T dz)`, grad-kernel and grad-bias are summed per group of images (the groups of
/// [`super::conv`]'s ops, f64 sums for the bias) and the group sums added in group order, so
/// the bits equal the unfused ops' and do not depend on the thread count.
fn bwd<T: Elem>(x: &[T], w: &[T], gy: &[T], sel: &[u8], g: &Geom, need: Need) -> Vec<T> {
    let (k, p) = (g.k(), g.p());
    let (ph, pw) = (g.oh / 2, g.ow / 2);
    let (isz, psz, ksz) = (g.c * g.h * g.w, g.co * ph * pw, g.co * k);
    let nx = if need.x { g.b * isz } else { 0 };
    let nw = if need.w { ksz } else { 0 };
    let nb = if need.b { g.co } else { 0 };
    let mut packed = vec![T::default(); nx + nw + nb];
    if g.b == 0 || isz == 0 || psz == 0 {
        return packed;
    }
    let per = images_per_group(g.b);
    let groups = g.b.div_ceil(per);
    let mut dw_part = vec![T::default(); if need.w { groups * ksz } else { 0 }];
    let mut db_part = vec![0f64; if need.b { groups * g.co } else { 0 }];
    {
        let (dx, _) = packed.split_at_mut(nx);
        let mut dx_it = dx.chunks_mut(per * isz);
        let mut dw_it = dw_part.chunks_mut(ksz.max(1));
        let mut db_it = db_part.chunks_mut(g.co.max(1));
        let items: Vec<_> = (0..groups)
            .map(|_| (dx_it.next(), dw_it.next(), db_it.next()))
            .collect();
        par_each(items, |t, (dxs, dw, db)| {
            let first = t * per;
            let images = per.min(g.b - first);
            let mut dz = vec![T::default(); g.co * p];
            let mut col = vec![T::default(); if dw.is_some() { k * p } else { 0 }];
            let mut dcol = vec![T::default(); if dxs.is_some() { k * p } else { 0 }];
            let mut dxs = dxs;
            let (mut dw, mut db) = (dw, db);
            for bi in 0..images {
                let n = first + bi;
                // every window cell is written; cells outside the windows (odd sizes) stay 0
                pool_bwd_planes(
                    &sel[n * psz..(n + 1) * psz],
                    &gy[n * psz..(n + 1) * psz],
                    &mut dz,
                    g.oh,
                    g.ow,
                );
                if let Some(acc) = db.as_deref_mut() {
                    for (a, row) in acc.iter_mut().zip(dz.chunks_exact(p.max(1))) {
                        // the lanes of `conv_grad_bias`: the same f64 sums in the same order
                        let mut lanes = [0f64; 8];
                        let chunks = row.chunks_exact(8);
                        let rest = chunks.remainder();
                        for ch in chunks {
                            for (l, v) in lanes.iter_mut().zip(ch) {
                                *l += v.to_f64();
                            }
                        }
                        *a += lanes.iter().sum::<f64>()
                            + rest.iter().map(|v| v.to_f64()).sum::<f64>();
                    }
                }
                if let Some(dw) = dw.as_deref_mut() {
                    im2col(&x[n * isz..(n + 1) * isz], g, &mut col);
                    matmul((g.co, k, p), dw, k, bi > 0, &dz, (p, 1), &col, (1, p));
                }
                if let Some(dx) = dxs.as_deref_mut() {
                    matmul((k, p, g.co), &mut dcol, p, false, w, (1, k), &dz, (p, 1));
                    col2im_add(&mut dcol, g, &mut dx[bi * isz..(bi + 1) * isz]);
                }
            }
        });
    }
    if need.w {
        let dst = &mut packed[nx..nx + nw];
        let mut parts = dw_part.chunks_exact(ksz.max(1));
        if let Some(first) = parts.next() {
            dst.copy_from_slice(&first[..ksz]);
        }
        for part in parts {
            for (d, &v) in dst.iter_mut().zip(part) {
                *d += v;
            }
        }
    }
    if need.b {
        let mut acc = vec![0f64; g.co];
        for part in db_part.chunks_exact(g.co.max(1)) {
            for (a, &v) in acc.iter_mut().zip(part) {
                *a += v;
            }
        }
        for (d, a) in packed[nx + nw..].iter_mut().zip(acc) {
            *d = T::from_f64(a);
        }
    }
    packed
}

/// The forward op `(x, w, bias) -> relu(max_pool2x2(conv(x, w) + bias))`; it keeps its
/// windows' selection codes for the backward pass.
struct ConvReluPool {
    pad: usize,
    selection: OnceLock<Arc<Vec<u8>>>,
}

impl CustomOp3 for ConvReluPool {
    fn name(&self) -> &'static str {
        "netinv-conv2d-bias-relu-pool"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let n = self.name();
        let g = Geom::new(l1.dims(), l2.dims(), self.pad, n)?;
        if l3.dims() != [g.co] {
            candle_core::bail!("{n}: bias {:?} must be [{}]", l3.dims(), g.co);
        }
        let (out, sel) = match (s1, s2, s3) {
            (CpuStorage::F32(x), CpuStorage::F32(w), CpuStorage::F32(b)) => {
                let (o, s) = fwd(
                    contiguous(x, l1, n)?,
                    contiguous(w, l2, n)?,
                    contiguous(b, l3, n)?,
                    &g,
                );
                (CpuStorage::F32(o), s)
            }
            (CpuStorage::F64(x), CpuStorage::F64(w), CpuStorage::F64(b)) => {
                let (o, s) = fwd(
                    contiguous(x, l1, n)?,
                    contiguous(w, l2, n)?,
                    contiguous(b, l3, n)?,
                    &g,
                );
                (CpuStorage::F64(o), s)
            }
            _ => candle_core::bail!("{n}: input, kernel and bias must all be f32 or all f64"),
        };
        if self.selection.set(Arc::new(sel)).is_err() {
            candle_core::bail!("{n}: the op ran twice");
        }
        Ok((out, Shape::from((g.b, g.co, g.oh / 2, g.ow / 2))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let need = Need {
            x: x.track_op(),
            w: w.track_op(),
            b: b.track_op(),
        };
        if !(need.x || need.w || need.b) {
            return Ok((None, None, None));
        }
        let Some(selection) = self.selection.get() else {
            candle_core::bail!("{}: backward before the forward pass", self.name());
        };
        let op = ConvReluPoolGrad {
            pad: self.pad,
            selection: Arc::clone(selection),
            need,
            kernel_dims: w.dims().to_vec(),
        };
        let packed = x.apply_op3_no_bwd(w, &grad.contiguous()?, &op)?;
        let mut offset = 0;
        let mut part = |needed: bool, like: &Tensor| -> candle_core::Result<Option<Tensor>> {
            if !needed {
                return Ok(None);
            }
            let n = like.elem_count();
            let t = packed.narrow(0, offset, n)?.reshape(like.shape())?;
            offset += n;
            Ok(Some(t))
        };
        let gx = part(need.x, x)?;
        let gw = part(need.w, w)?;
        let gb = part(need.b, b)?;
        Ok((gx, gw, gb))
    }
}

/// `(x, w, pooled gradient) -> [dx | dW | db]` of [`ConvReluPool`].
struct ConvReluPoolGrad {
    pad: usize,
    selection: Arc<Vec<u8>>,
    need: Need,
    kernel_dims: Vec<usize>,
}

impl CustomOp3 for ConvReluPoolGrad {
    fn name(&self) -> &'static str {
        "netinv-conv2d-bias-relu-pool-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let n = self.name();
        let g = Geom::new(l1.dims(), &self.kernel_dims, self.pad, n)?;
        if l3.dims() != [g.b, g.co, g.oh / 2, g.ow / 2]
            || self.selection.len() != l3.shape().elem_count()
        {
            candle_core::bail!(
                "{n}: gradient {:?} does not match the output of {g:?}",
                l3.dims()
            );
        }
        let sel = &self.selection;
        let out = match (s1, s2, s3) {
            (CpuStorage::F32(x), CpuStorage::F32(w), CpuStorage::F32(gy)) => CpuStorage::F32(bwd(
                contiguous(x, l1, n)?,
                contiguous(w, l2, n)?,
                contiguous(gy, l3, n)?,
                sel,
                &g,
                self.need,
            )),
            (CpuStorage::F64(x), CpuStorage::F64(w), CpuStorage::F64(gy)) => CpuStorage::F64(bwd(
                contiguous(x, l1, n)?,
                contiguous(w, l2, n)?,
                contiguous(gy, l3, n)?,
                sel,
                &g,
                self.need,
            )),
            _ => candle_core::bail!("{n}: arguments must all be f32 or all f64"),
        };
        let len = usize::from(self.need.x) * g.b * g.c * g.h * g.w
            + usize::from(self.need.w) * g.co * g.k()
            + usize::from(self.need.b) * g.co;
        Ok((out, Shape::from(len)))
    }
}

/// A classifier block in one op: [`super::conv2d_bias`] (stride 1, `padding` zeros), then
/// [`super::max_pool2x2_relu`]; `x` `[b, c, h, w]`, `kernel` `[co, c, kh, kw]`, `bias`
/// `[co]` -> `[b, co, oh / 2, ow / 2]` with `oh = h + 2 padding - kh + 1`.
///
/// ```text
/// z[b, o, i, j] = bias[o] + sum_{c, u, v} kernel[o, c, u, v] * x[b, c, i + u - p, j + v - p]
/// y[b, o, i, j] = max(0, max_{u, v in {0, 1}} z[b, o, 2i + u, 2j + v])
/// ```
///
/// The result and every gradient have the bits of the two ops applied one after the other;
/// the convolution output `z` is never stored (a per-thread buffer of one image), and the
/// backward computes the gradients of the arguments that take part in the graph only.
///
/// # Errors
/// As [`super::conv2d_bias`].
///
/// # Examples
/// ```
/// use candle_core::{Device, Tensor};
/// use netinv_models::ops::{conv2d_bias, conv2d_bias_relu_pool, max_pool2x2_relu};
/// let dev = Device::Cpu;
/// let x = Tensor::arange(0f32, 32., &dev)?.reshape((2, 1, 4, 4))?;
/// let k = Tensor::new(&[[[[1f32, -1.], [0.5, 0.]]], [[[0., 1.], [-2., 0.25]]]], &dev)?;
/// let b = Tensor::new(&[0.5f32, -1.0], &dev)?;
/// let fused = conv2d_bias_relu_pool(&x, &k, &b, 0)?;
/// let plain = max_pool2x2_relu(&conv2d_bias(&x, &k, &b, 0)?)?;
/// assert_eq!(fused.dims(), &[2, 2, 1, 1]);
/// assert_eq!(fused.flatten_all()?.to_vec1::<f32>()?, plain.flatten_all()?.to_vec1::<f32>()?);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn conv2d_bias_relu_pool(
    x: &Tensor,
    kernel: &Tensor,
    bias: &Tensor,
    padding: usize,
) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op3(
        &kernel.contiguous()?,
        &bias.contiguous()?,
        ConvReluPool {
            pad: padding,
            selection: OnceLock::new(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::{conv2d_bias, max_pool2x2_relu};
    use super::*;
    use candle_core::{DType, Device, Var};
    use netinv_core::testing::{assert_close, central_diff};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn random(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    fn bits(t: &Tensor) -> Vec<u64> {
        let t = t.flatten_all().unwrap();
        match t.dtype() {
            DType::F32 => t
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|v| u64::from(v.to_bits()))
                .collect(),
            _ => t
                .to_vec1::<f64>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect(),
        }
    }

    /// Forward values and all three gradients equal those of conv2d_bias + max_pool2x2_relu
    /// bit for bit, for the net's shapes (batches that split into groups unevenly, odd sizes
    /// with uncovered cells) in f32 and f64.
    #[test]
    fn fused_block_has_the_bits_of_the_two_ops() {
        let dev = Device::Cpu;
        for (xd, kd, pad) in [
            ([16, 1, 28, 28], [16, 1, 3, 3], 1),
            ([13, 16, 14, 14], [32, 16, 3, 3], 1),
            ([3, 2, 7, 5], [3, 2, 3, 3], 1),
            ([2, 3, 6, 6], [2, 3, 2, 2], 0),
        ] {
            for dtype in [DType::F32, DType::F64] {
                let nx: usize = xd.iter().product();
                let nk: usize = kd.iter().product();
                let t = |v: Vec<f64>, d: &[usize]| {
                    Tensor::from_vec(v, d, &dev)
                        .unwrap()
                        .to_dtype(dtype)
                        .unwrap()
                };
                let x = Var::from_tensor(&t(random(nx, 1), &xd)).unwrap();
                let k = Var::from_tensor(&t(random(nk, 2), &kd)).unwrap();
                let b = Var::from_tensor(&t(random(kd[0], 3), &[kd[0]])).unwrap();
                let fused = conv2d_bias_relu_pool(x.as_tensor(), k.as_tensor(), b.as_tensor(), pad)
                    .unwrap();
                let plain = max_pool2x2_relu(
                    &conv2d_bias(x.as_tensor(), k.as_tensor(), b.as_tensor(), pad).unwrap(),
                )
                .unwrap();
                assert_eq!(fused.dims(), plain.dims());
                assert_eq!(bits(&fused), bits(&plain), "forward {xd:?} {dtype:?}");
                let r = t(random(fused.elem_count(), 4), fused.dims());
                let gf = fused
                    .mul(&r)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                let gp = plain
                    .mul(&r)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                for v in [&x, &k, &b] {
                    let (a, c) = (gf.get(v.as_tensor()), gp.get(v.as_tensor()));
                    assert_eq!(a.map(|t| t.dims().to_vec()), c.map(|t| t.dims().to_vec()));
                    assert_eq!(bits(a.unwrap()), bits(c.unwrap()), "grad {xd:?} {dtype:?}");
                }
            }
        }
    }

    #[test]
    fn gradients_match_central_differences_and_only_tracked_arguments_get_one() {
        let dev = Device::Cpu;
        let (xd, kd) = ([2, 2, 6, 5], [3, 2, 3, 3]);
        let (x0, k0, b0) = (random(120, 5), random(54, 6), random(3, 7));
        let r = Tensor::from_vec(random(2 * 3 * 3 * 2, 8), (2, 3, 3, 2), &dev).unwrap();
        let t = |v: &[f64], d: &[usize]| Tensor::from_vec(v.to_vec(), d, &dev).unwrap();
        let loss = |x: &Tensor, k: &Tensor, b: &Tensor| {
            conv2d_bias_relu_pool(x, k, b, 1)
                .unwrap()
                .mul(&r)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let (x, k, b) = (
            Var::from_vec(x0.clone(), &xd, &dev).unwrap(),
            Var::from_vec(k0.clone(), &kd, &dev).unwrap(),
            Var::from_vec(b0.clone(), 3, &dev).unwrap(),
        );
        let grads = loss(x.as_tensor(), k.as_tensor(), b.as_tensor())
            .backward()
            .unwrap();
        let scalar = |l: Tensor| l.to_scalar::<f64>().unwrap();
        let nx = central_diff(
            |v| scalar(loss(&t(v, &xd), &t(&k0, &kd), &t(&b0, &[3]))),
            &x0,
            1e-6,
        );
        let nk = central_diff(
            |v| scalar(loss(&t(&x0, &xd), &t(v, &kd), &t(&b0, &[3]))),
            &k0,
            1e-6,
        );
        let nb = central_diff(
            |v| scalar(loss(&t(&x0, &xd), &t(&k0, &kd), &t(v, &[3]))),
            &b0,
            1e-6,
        );
        let values = |v: &Var| {
            grads
                .get(v.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap()
        };
        assert_close(&values(&x), &nx, 1e-6, 1e-8);
        assert_close(&values(&k), &nk, 1e-6, 1e-8);
        assert_close(&values(&b), &nb, 1e-6, 1e-8);
        // a frozen kernel and bias: only the input gets a gradient
        let (kt, bt) = (t(&k0, &kd), t(&b0, &[3]));
        let grads = loss(x.as_tensor(), &kt, &bt).backward().unwrap();
        assert!(grads.get(x.as_tensor()).is_some());
        assert!(grads.get(&kt).is_none() && grads.get(&bt).is_none());
        // a constant input (the data of a first layer): kernel and bias gradients only
        let xt = t(&x0, &xd);
        let grads = loss(&xt, k.as_tensor(), b.as_tensor()).backward().unwrap();
        assert!(grads.get(&xt).is_none());
        assert!(grads.get(k.as_tensor()).is_some() && grads.get(b.as_tensor()).is_some());
        // bad arguments are errors
        assert!(conv2d_bias_relu_pool(&xt, &kt, &t(&b0[..2], &[2]), 1).is_err());
        assert!(conv2d_bias_relu_pool(&xt, &t(&random(54, 9), &[3, 3, 3, 2]), &bt, 1).is_err());
    }
}
