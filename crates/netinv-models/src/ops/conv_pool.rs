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
use super::moments::moments_rows;
use super::pool::{pool_bwd_planes, pool_fwd_planes};
use super::{contiguous, images_per_group, par_each, Elem};

/// Forward: `relu(max_pool2x2(conv(x, w) + bias))` `[b, co, oh/2, ow/2]` and the pool's
/// selection codes (one byte per output), the images in parallel groups. With `moments`,
/// also the mean and biased variance of every plane of the convolution output (`[b * co, 2]`,
/// the arithmetic of [`super::plane_moments`]) and that output itself (`[b, co, oh, ow]`, kept
/// for the backward pass): returns `(pooled, moments, selection, z)`, the last two parts
/// empty without `moments`.
#[allow(clippy::type_complexity)]
fn fwd<T: Elem>(
    x: &[T],
    w: &[T],
    bias: &[T],
    g: &Geom,
    moments: bool,
) -> (Vec<T>, Vec<T>, Vec<u8>, Vec<T>) {
    let (k, p) = (g.k(), g.p());
    let (ph, pw) = (g.oh / 2, g.ow / 2);
    let (isz, psz, zsz) = (g.c * g.h * g.w, g.co * ph * pw, g.co * p);
    let mut out = vec![T::default(); g.b * psz];
    let mut sel = vec![0u8; g.b * psz];
    let mut mom = vec![T::default(); if moments { 2 * g.b * g.co } else { 0 }];
    let mut zs = vec![T::default(); if moments { g.b * zsz } else { 0 }];
    if g.b == 0 || isz == 0 || zsz == 0 {
        return (out, mom, sel, zs);
    }
    let per = images_per_group(g.b);
    let groups = g.b.div_ceil(per);
    let mut out_it = out.chunks_mut((per * psz).max(1));
    let mut sel_it = sel.chunks_mut((per * psz).max(1));
    let mut mom_it = mom.chunks_mut(2 * per * g.co);
    let mut z_it = zs.chunks_mut(per * zsz);
    let parts: Vec<_> = (0..groups)
        .map(|_| (out_it.next(), sel_it.next(), mom_it.next(), z_it.next()))
        .collect();
    par_each(parts, |t, (o, s, m, zk)| {
        let mut col = vec![T::default(); k * p];
        let mut scratch = vec![T::default(); if zk.is_some() { 0 } else { zsz }];
        let (mut o, mut s, mut m, mut zk) = (o, s, m, zk);
        let first = t * per;
        for bi in 0..per.min(g.b - first) {
            let n = first + bi;
            let z: &mut [T] = match zk.as_deref_mut() {
                Some(zk) => &mut zk[bi * zsz..(bi + 1) * zsz],
                None => &mut scratch,
            };
            for (row, &bv) in z.chunks_exact_mut(p).zip(bias) {
                row.fill(bv);
            }
            im2col(&x[n * isz..(n + 1) * isz], g, &mut col);
            matmul((g.co, p, k), z, p, true, w, (k, 1), &col, (p, 1));
            if let Some(m) = m.as_deref_mut() {
                m[2 * bi * g.co..2 * (bi + 1) * g.co].copy_from_slice(&moments_rows(z, p));
            }
            if let (Some(o), Some(s)) = (o.as_deref_mut(), s.as_deref_mut()) {
                pool_fwd_planes(
                    z,
                    &mut o[bi * psz..(bi + 1) * psz],
                    &mut s[bi * psz..(bi + 1) * psz],
                    g.oh,
                    g.ow,
                    true,
                );
            }
        }
    });
    (out, mom, sel, zs)
}

/// What the backward of the moments variant needs besides the pooled gradient: the
/// convolution output `z` `[b, co, oh, ow]`, the forward's moments `[b * co, 2]` (as rounded
/// to `T`) and their gradient `[b * co, 2]`.
#[derive(Clone, Copy)]
struct MomentsGrad<'a, T> {
    z: &'a [T],
    moments: &'a [T],
    grad: &'a [T],
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
///
/// With `mom`, `dz` also receives the moments' gradient, as candle summed the two
/// contributions of the unfused graph: `(0 + pool part) + moments part`, the moments part
/// being [`super::plane_moments`]'s `a + b (z - mean)` rounded to `T`.
#[allow(clippy::too_many_arguments)]
fn bwd<T: Elem>(
    x: &[T],
    w: &[T],
    gy: &[T],
    sel: &[u8],
    g: &Geom,
    need: Need,
    mom: Option<MomentsGrad<'_, T>>,
) -> Vec<T> {
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
                if let Some(mg) = mom {
                    let zn = &mg.z[n * g.co * p..(n + 1) * g.co * p];
                    let planes = dz.chunks_exact_mut(p).zip(zn.chunks_exact(p));
                    for (r, (d, zr)) in planes.enumerate() {
                        let row = n * g.co + r;
                        let mean = mg.moments[2 * row].to_f64();
                        let (g_mean, g_var) =
                            (mg.grad[2 * row].to_f64(), mg.grad[2 * row + 1].to_f64());
                        let (a, b) = (g_mean / p as f64, 2.0 * g_var / p as f64);
                        for (d, &v) in d.iter_mut().zip(zr) {
                            let m = T::from_f64(a + b * (v.to_f64() - mean));
                            *d = (T::default() + *d) + m;
                        }
                    }
                }
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

/// What the forward pass keeps for the backward: the pool's selection codes and, for the
/// moments variant, the convolution output and the moments (`CpuStorage` of the op's dtype;
/// empty otherwise).
struct Saved {
    selection: Vec<u8>,
    z: CpuStorage,
    moments: CpuStorage,
}

/// The forward op `(x, w, bias) -> relu(max_pool2x2(conv(x, w) + bias))`; with `moments`
/// its output is `[pooled (flat) | per-plane mean and variance of conv(x, w) + bias
/// ([b * co, 2], flat)]`. It keeps what its backward needs ([`Saved`]).
struct ConvReluPool {
    pad: usize,
    moments: bool,
    saved: OnceLock<Arc<Saved>>,
}

impl ConvReluPool {
    fn new(pad: usize, moments: bool) -> Self {
        Self {
            pad,
            moments,
            saved: OnceLock::new(),
        }
    }
}

/// `pooled` with `moments` appended.
fn append<T: Clone>(mut pooled: Vec<T>, moments: &[T]) -> Vec<T> {
    pooled.extend_from_slice(moments);
    pooled
}

impl CustomOp3 for ConvReluPool {
    fn name(&self) -> &'static str {
        if self.moments {
            "netinv-conv2d-bias-moments-relu-pool"
        } else {
            "netinv-conv2d-bias-relu-pool"
        }
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
        let with = self.moments;
        let (out, saved) = match (s1, s2, s3) {
            (CpuStorage::F32(x), CpuStorage::F32(w), CpuStorage::F32(b)) => {
                let (x, w, b) = (
                    contiguous(x, l1, n)?,
                    contiguous(w, l2, n)?,
                    contiguous(b, l3, n)?,
                );
                let (o, m, selection, z) = fwd(x, w, b, &g, with);
                let out = CpuStorage::F32(if with { append(o, &m) } else { o });
                let (z, moments) = (CpuStorage::F32(z), CpuStorage::F32(m));
                (
                    out,
                    Saved {
                        selection,
                        z,
                        moments,
                    },
                )
            }
            (CpuStorage::F64(x), CpuStorage::F64(w), CpuStorage::F64(b)) => {
                let (x, w, b) = (
                    contiguous(x, l1, n)?,
                    contiguous(w, l2, n)?,
                    contiguous(b, l3, n)?,
                );
                let (o, m, selection, z) = fwd(x, w, b, &g, with);
                let out = CpuStorage::F64(if with { append(o, &m) } else { o });
                let (z, moments) = (CpuStorage::F64(z), CpuStorage::F64(m));
                (
                    out,
                    Saved {
                        selection,
                        z,
                        moments,
                    },
                )
            }
            _ => candle_core::bail!("{n}: input, kernel and bias must all be f32 or all f64"),
        };
        if self.saved.set(Arc::new(saved)).is_err() {
            candle_core::bail!("{n}: the op ran twice");
        }
        let pooled = (g.b, g.co, g.oh / 2, g.ow / 2);
        Ok(if with {
            let len = g.b * g.co * (g.oh / 2) * (g.ow / 2) + 2 * g.b * g.co;
            (out, Shape::from(len))
        } else {
            (out, Shape::from(pooled))
        })
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
        let Some(saved) = self.saved.get() else {
            candle_core::bail!("{}: backward before the forward pass", self.name());
        };
        let op = ConvReluPoolGrad {
            pad: self.pad,
            saved: Arc::clone(saved),
            moments: self.moments,
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

/// `(x, w, output gradient) -> [dx | dW | db]` of [`ConvReluPool`].
struct ConvReluPoolGrad {
    pad: usize,
    saved: Arc<Saved>,
    moments: bool,
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
        let pooled = g.b * g.co * (g.oh / 2) * (g.ow / 2);
        let (expected, rank_ok) = if self.moments {
            (pooled + 2 * g.b * g.co, l3.dims().len() == 1)
        } else {
            (pooled, l3.dims() == [g.b, g.co, g.oh / 2, g.ow / 2])
        };
        let sel = &self.saved.selection;
        if !rank_ok || l3.shape().elem_count() != expected || sel.len() != pooled {
            candle_core::bail!(
                "{n}: gradient {:?} does not match the output of {g:?}",
                l3.dims()
            );
        }
        let (need, with) = (self.need, self.moments);
        let out = match (s1, s2, s3, &self.saved.z, &self.saved.moments) {
            (
                CpuStorage::F32(x),
                CpuStorage::F32(w),
                CpuStorage::F32(gy),
                CpuStorage::F32(z),
                CpuStorage::F32(m),
            ) => {
                let gy = contiguous(gy, l3, n)?;
                let mom = with.then(|| MomentsGrad {
                    z,
                    moments: m,
                    grad: &gy[pooled..],
                });
                let (x, w) = (contiguous(x, l1, n)?, contiguous(w, l2, n)?);
                CpuStorage::F32(bwd(x, w, &gy[..pooled], sel, &g, need, mom))
            }
            (
                CpuStorage::F64(x),
                CpuStorage::F64(w),
                CpuStorage::F64(gy),
                CpuStorage::F64(z),
                CpuStorage::F64(m),
            ) => {
                let gy = contiguous(gy, l3, n)?;
                let mom = with.then(|| MomentsGrad {
                    z,
                    moments: m,
                    grad: &gy[pooled..],
                });
                let (x, w) = (contiguous(x, l1, n)?, contiguous(w, l2, n)?);
                CpuStorage::F64(bwd(x, w, &gy[..pooled], sel, &g, need, mom))
            }
            _ => candle_core::bail!("{n}: arguments must all be f32 or all f64"),
        };
        let len = usize::from(need.x) * g.b * g.c * g.h * g.w
            + usize::from(need.w) * g.co * g.k()
            + usize::from(need.b) * g.co;
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
        ConvReluPool::new(padding, false),
    )
}

/// [`conv2d_bias_relu_pool`] that also returns the mean and biased variance of every plane
/// of the convolution output `z` (`[b, co]` each, what [`super::plane_moments`] of `z` gives:
/// the per-image BatchNorm statistics), all three from one op. The values and every gradient
/// have the bits of `conv2d_bias`, `plane_moments` and `max_pool2x2_relu` applied to the
/// same tensors (tested); `z` is kept inside the op for the backward pass and is not a node of
/// the graph, so candle's backward does not zero-fill and add its gradient.
///
/// # Errors
/// As [`super::conv2d_bias`]; also for an output smaller than 1x1 per plane.
///
/// # Examples
/// ```
/// use candle_core::{Device, Tensor};
/// use netinv_models::ops::{conv2d_bias, conv2d_bias_moments_relu_pool, plane_moments};
/// let dev = Device::Cpu;
/// let x = Tensor::arange(0f32, 32., &dev)?.reshape((2, 1, 4, 4))?;
/// let k = Tensor::new(&[[[[1f32, -1.], [0.5, 0.]]], [[[0., 1.], [-2., 0.25]]]], &dev)?;
/// let b = Tensor::new(&[0.5f32, -1.0], &dev)?;
/// let (_pooled, mean, var) = conv2d_bias_moments_relu_pool(&x, &k, &b, 0)?;
/// let (m, v) = plane_moments(&conv2d_bias(&x, &k, &b, 0)?)?;
/// assert_eq!(mean.to_vec2::<f32>()?, m.to_vec2::<f32>()?);
/// assert_eq!(var.to_vec2::<f32>()?, v.to_vec2::<f32>()?);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn conv2d_bias_moments_relu_pool(
    x: &Tensor,
    kernel: &Tensor,
    bias: &Tensor,
    padding: usize,
) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let x = x.contiguous()?;
    let (b, _, h, w) = x.dims4()?;
    let (co, _, kh, kw) = kernel.dims4()?;
    if h + 2 * padding < kh || w + 2 * padding < kw {
        candle_core::bail!("conv2d_bias_moments_relu_pool: the kernel does not fit the input");
    }
    let (oh, ow) = (h + 2 * padding - kh + 1, w + 2 * padding - kw + 1);
    let packed = x.apply_op3(
        &kernel.contiguous()?,
        &bias.contiguous()?,
        ConvReluPool::new(padding, true),
    )?;
    let pooled = b * co * (oh / 2) * (ow / 2);
    let m = packed.narrow(0, pooled, 2 * b * co)?.reshape((b * co, 2))?;
    Ok((
        packed
            .narrow(0, 0, pooled)?
            .reshape((b, co, oh / 2, ow / 2))?,
        m.narrow(1, 0, 1)?.reshape((b, co))?,
        m.narrow(1, 1, 1)?.reshape((b, co))?,
    ))
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

    /// The moments variant: pooled output, per-plane mean and variance and all gradients
    /// (through a loss using all three) equal those of conv2d_bias, plane_moments and
    /// max_pool2x2_relu bit for bit.
    #[test]
    fn moments_variant_has_the_bits_of_the_three_ops() {
        use super::super::plane_moments;
        let dev = Device::Cpu;
        for (xd, kd, pad) in [
            ([16, 1, 28, 28], [16, 1, 3, 3], 1),
            ([13, 16, 14, 14], [32, 16, 3, 3], 1),
            ([3, 2, 7, 5], [3, 2, 3, 3], 1),
        ] {
            for dtype in [DType::F32, DType::F64] {
                let t = |v: Vec<f64>, d: &[usize]| {
                    Tensor::from_vec(v, d, &dev)
                        .unwrap()
                        .to_dtype(dtype)
                        .unwrap()
                };
                let x = Var::from_tensor(&t(random(xd.iter().product(), 11), &xd)).unwrap();
                let k = Var::from_tensor(&t(random(kd.iter().product(), 12), &kd)).unwrap();
                let b = Var::from_tensor(&t(random(kd[0], 13), &[kd[0]])).unwrap();
                let (xt, kt, bt) = (x.as_tensor(), k.as_tensor(), b.as_tensor());
                let (pf, mf, vf) = conv2d_bias_moments_relu_pool(xt, kt, bt, pad).unwrap();
                let z = conv2d_bias(xt, kt, bt, pad).unwrap();
                let (mp, vp) = plane_moments(&z).unwrap();
                let pp = max_pool2x2_relu(&z).unwrap();
                for (a, c) in [(&pf, &pp), (&mf, &mp), (&vf, &vp)] {
                    assert_eq!(a.dims(), c.dims());
                    assert_eq!(bits(a), bits(c), "forward {xd:?} {dtype:?}");
                }
                let r1 = t(random(pf.elem_count(), 14), pf.dims());
                let r2 = t(random(mf.elem_count(), 15), mf.dims());
                let r3 = t(random(vf.elem_count(), 16), vf.dims());
                let loss = |p: &Tensor, m: &Tensor, v: &Tensor| {
                    let a = p.mul(&r1).unwrap().sum_all().unwrap();
                    let c = m.mul(&r2).unwrap().sum_all().unwrap();
                    let d = v.sqr().unwrap().mul(&r3).unwrap().sum_all().unwrap();
                    ((a + c).unwrap() + d).unwrap()
                };
                let gf = loss(&pf, &mf, &vf).backward().unwrap();
                let gp = loss(&pp, &mp, &vp).backward().unwrap();
                for v in [&x, &k, &b] {
                    let (a, c) = (
                        gf.get(v.as_tensor()).unwrap(),
                        gp.get(v.as_tensor()).unwrap(),
                    );
                    assert_eq!(bits(a), bits(c), "grad {xd:?} {dtype:?}");
                }
            }
        }
        let x = Tensor::zeros((1, 1, 2, 2), DType::F32, &dev).unwrap();
        let k = Tensor::zeros((1, 1, 3, 3), DType::F32, &dev).unwrap();
        let b = Tensor::zeros(1, DType::F32, &dev).unwrap();
        assert!(conv2d_bias_moments_relu_pool(&x, &k, &b, 0).is_err());
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
