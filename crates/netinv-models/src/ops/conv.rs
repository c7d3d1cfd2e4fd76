//! 2-d convolution (stride 1, zero padding) as im2col + gemm, with grad-input and
//! grad-kernel computed only for the arguments that need them.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};

use super::{contiguous, images_per_group, par_each, Elem};

/// Sizes of one convolution: input `[b, c, h, w]`, kernel `[co, c, kh, kw]`, padding `pad`
/// on every side, output `[b, co, oh, ow]` with `oh = h + 2 pad - kh + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Geom {
    pub(super) b: usize,
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) co: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) pad: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
}

impl Geom {
    pub(super) fn new(x: &[usize], k: &[usize], pad: usize, op: &str) -> candle_core::Result<Self> {
        let (&[b, c, h, w], &[co, kc, kh, kw]) = (x, k) else {
            candle_core::bail!(
                "{op}: expected input [b, c, h, w] and kernel [co, c, kh, kw], got {x:?} and {k:?}"
            );
        };
        if kc != c {
            candle_core::bail!("{op}: input has {c} channels, kernel expects {kc}");
        }
        if kh == 0 || kw == 0 || h + 2 * pad < kh || w + 2 * pad < kw {
            candle_core::bail!(
                "{op}: kernel {kh}x{kw} does not fit the padded {h}x{w} input (padding {pad})"
            );
        }
        Ok(Self {
            b,
            c,
            h,
            w,
            co,
            kh,
            kw,
            pad,
            oh: h + 2 * pad - kh + 1,
            ow: w + 2 * pad - kw + 1,
        })
    }

    /// Rows of the im2col matrix: `c * kh * kw`.
    pub(super) fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Columns of the im2col matrix: output pixels `oh * ow`.
    pub(super) fn p(&self) -> usize {
        self.oh * self.ow
    }

    /// For kernel column `j`: the output columns `ox0..ox1` whose input column
    /// `ox + j - pad` lies inside the image.
    fn valid_cols(&self, j: usize) -> (usize, usize) {
        let ox0 = self.pad.saturating_sub(j).min(self.ow);
        let ox1 = (self.w + self.pad).saturating_sub(j).min(self.ow).max(ox0);
        (ox0, ox1)
    }
}

/// `col[(ci*kh + i)*kw + j, oy*ow + ox] = x[ci, oy + i - pad, ox + j - pad]` (0 outside the
/// image) for one image `x` `[c, h, w]`; `col` is `[k, p]`.
pub(super) fn im2col<T: Elem>(x: &[T], g: &Geom, col: &mut [T]) {
    if g.ow == g.w && g.oh > 0 && g.w > 0 {
        im2col_same(x, g, col);
    } else {
        im2col_general(x, g, col);
    }
}

/// [`im2col`] for any geometry: per output row, one copy of the valid columns and zero fills.
fn im2col_general<T: Elem>(x: &[T], g: &Geom, col: &mut [T]) {
    let p = g.p();
    for ci in 0..g.c {
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &mut col[((ci * g.kh + i) * g.kw + j) * p..][..p];
                let (ox0, ox1) = g.valid_cols(j);
                for oy in 0..g.oh {
                    let dst = &mut row[oy * g.ow..(oy + 1) * g.ow];
                    let iy = oy + i;
                    if iy < g.pad || iy - g.pad >= g.h || ox0 == ox1 {
                        dst.fill(T::default());
                        continue;
                    }
                    let src = (ci * g.h + iy - g.pad) * g.w + ox0 + j - g.pad;
                    dst[..ox0].fill(T::default());
                    dst[ox0..ox1].copy_from_slice(&x[src..src + ox1 - ox0]);
                    dst[ox1..].fill(T::default());
                }
            }
        }
    }
}

/// [`im2col`] for a "same"-width convolution (`ow == w`, a kernel `2 pad + 1` wide): then
/// the valid part of a row of `col` is the image plane shifted by a constant offset, so it is
/// one contiguous copy (instead of one short copy and two tiny fills per output row), after
/// which the entries that wrapped around a row edge are set to 0. The same values as the
/// general loop.
fn im2col_same<T: Elem>(x: &[T], g: &Geom, col: &mut [T]) {
    let (p, ow, hw) = (g.p(), g.ow, g.h * g.w);
    let zero = T::default();
    for ci in 0..g.c {
        let plane = &x[ci * hw..(ci + 1) * hw];
        for i in 0..g.kh {
            // output rows whose input row oy + i - pad lies inside the image
            let oy0 = g.pad.saturating_sub(i).min(g.oh);
            let oy1 = (g.h + g.pad).saturating_sub(i).min(g.oh).max(oy0);
            for j in 0..g.kw {
                let row = &mut col[((ci * g.kh + i) * g.kw + j) * p..][..p];
                let (d0, d1) = (oy0 * ow, oy1 * ow);
                row[..d0].fill(zero);
                row[d1..].fill(zero);
                if d0 == d1 {
                    continue;
                }
                // row[d] = plane[d + shift] for d in d0..d1, clipped to the plane
                let shift =
                    (i as isize - g.pad as isize) * g.w as isize + j as isize - g.pad as isize;
                let (lo, hi, s0) = shifted_run(d0, d1, shift, hw);
                row[d0..d0 + lo].fill(zero);
                row[d0 + hi..d1].fill(zero);
                row[d0 + lo..d0 + hi].copy_from_slice(&plane[s0..s0 + hi - lo]);
                // columns whose input column ox + j - pad falls outside the image
                // (column by column down the rows: strided stores, no tiny memset calls)
                let (ox0, ox1) = g.valid_cols(j);
                for ox in (0..ox0).chain(ox1..ow) {
                    for v in row[d0 + ox..d1].iter_mut().step_by(ow) {
                        *v = zero;
                    }
                }
            }
        }
    }
}

/// The part of the run `d0..d1` of a `col` row that reads the plane (`hw` long) at
/// `d + shift`: returns `(lo, hi, s0)` such that `d0 + lo .. d0 + hi` reads
/// `plane[s0 .. s0 + hi - lo]` and the rest of the run lies outside the plane. An empty
/// part (`lo == hi`) comes with `s0 = 0`, so slicing with it never leaves the plane.
fn shifted_run(d0: usize, d1: usize, shift: isize, hw: usize) -> (usize, usize, usize) {
    let (len, start) = ((d1 - d0) as isize, d0 as isize + shift);
    let lo = (-start).clamp(0, len);
    let hi = (hw as isize - start).clamp(lo, len);
    // start + lo >= 0 whenever the part is not empty (start alone may be negative)
    let s0 = if hi > lo { (start + lo) as usize } else { 0 };
    (lo as usize, hi as usize, s0)
}

/// The adjoint of [`im2col`]: adds every entry of `col` `[k, p]` to the input pixel it was
/// read from in `dx` `[c, h, w]`.
///
/// `dx` must be zero-filled (+0.0) or hold earlier sums of this function only: for a
/// same-width convolution the entries of `col` that wrapped around a row edge (which the
/// image never had) are first set to 0 in `col`, and each row is then added to the plane as
/// one contiguous shifted run; adding +0.0 to a sum that started at +0.0 leaves its bits
/// unchanged, and every pixel receives its terms in the same order as in the general loop.
pub(super) fn col2im_add<T: Elem>(col: &mut [T], g: &Geom, dx: &mut [T]) {
    if g.ow == g.w && g.oh > 0 && g.w > 0 {
        col2im_add_same(col, g, dx);
    } else {
        col2im_add_general(col, g, dx);
    }
}

/// [`col2im_add`] for a same-width convolution (see [`im2col_same`]).
fn col2im_add_same<T: Elem>(col: &mut [T], g: &Geom, dx: &mut [T]) {
    let (p, ow, hw) = (g.p(), g.ow, g.h * g.w);
    let zero = T::default();
    for ci in 0..g.c {
        let plane = &mut dx[ci * hw..(ci + 1) * hw];
        for i in 0..g.kh {
            let oy0 = g.pad.saturating_sub(i).min(g.oh);
            let oy1 = (g.h + g.pad).saturating_sub(i).min(g.oh).max(oy0);
            let (d0, d1) = (oy0 * ow, oy1 * ow);
            if d0 == d1 {
                continue;
            }
            for j in 0..g.kw {
                let row = &mut col[((ci * g.kh + i) * g.kw + j) * p..][..p];
                let (ox0, ox1) = g.valid_cols(j);
                for ox in (0..ox0).chain(ox1..ow) {
                    for v in row[d0 + ox..d1].iter_mut().step_by(ow) {
                        *v = zero;
                    }
                }
                let shift =
                    (i as isize - g.pad as isize) * g.w as isize + j as isize - g.pad as isize;
                let (lo, hi, s0) = shifted_run(d0, d1, shift, hw);
                for (d, &s) in plane[s0..s0 + hi - lo]
                    .iter_mut()
                    .zip(&row[d0 + lo..d0 + hi])
                {
                    *d += s;
                }
            }
        }
    }
}

/// [`col2im_add`] for any geometry: one short run per output row.
fn col2im_add_general<T: Elem>(col: &[T], g: &Geom, dx: &mut [T]) {
    let p = g.p();
    for ci in 0..g.c {
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &col[((ci * g.kh + i) * g.kw + j) * p..][..p];
                let (ox0, ox1) = g.valid_cols(j);
                for oy in 0..g.oh {
                    let iy = oy + i;
                    if iy < g.pad || iy - g.pad >= g.h || ox0 == ox1 {
                        continue;
                    }
                    let dst = (ci * g.h + iy - g.pad) * g.w + ox0 + j - g.pad;
                    let src = &row[oy * g.ow + ox0..oy * g.ow + ox1];
                    for (d, &s) in dx[dst..dst + src.len()].iter_mut().zip(src) {
                        *d += s;
                    }
                }
            }
        }
    }
}

/// `dst (+)= lhs x rhs` for an `m x k` `lhs` and a `k x n` `rhs` given by row / column
/// strides, and a row-major `m x n` `dst` with row stride `dst_rs`, via `gemm`
/// (single-threaded).
///
/// # Panics
/// If a stride would reach outside a slice.
#[allow(clippy::too_many_arguments)]
// Justified unsafe: see the SAFETY comment inside.
#[allow(unsafe_code)]
pub(super) fn matmul<T: Elem>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [T],
    dst_rs: usize,
    accumulate: bool,
    lhs: &[T],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[T],
    (rhs_rs, rhs_cs): (usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst[r * dst_rs..r * dst_rs + n].fill(T::default());
            }
        }
        return;
    }
    assert!((m - 1) * dst_rs + n <= dst.len(), "matmul: dst too short");
    assert!(
        (m - 1) * lhs_rs + (k - 1) * lhs_cs < lhs.len(),
        "matmul: lhs too short"
    );
    assert!(
        (k - 1) * rhs_rs + (n - 1) * rhs_cs < rhs.len(),
        "matmul: rhs too short"
    );
    // SAFETY: the assertions above keep every index gemm reads or writes inside the slices;
    // dst does not alias lhs or rhs (a &mut borrow).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `y[b] = W x im2col(x[b]) (+ bias[co])`: output `[b, co, oh, ow]`, the images in
/// parallel groups (see [`super::par_each`]).
fn conv_fwd<T: Elem>(x: &[T], w: &[T], bias: Option<&[T]>, g: &Geom) -> Vec<T> {
    let (k, p) = (g.k(), g.p());
    let (isz, osz) = (g.c * g.h * g.w, g.co * p);
    let per = images_per_group(g.b);
    let mut out = vec![T::default(); g.b * osz];
    par_each(
        out.chunks_mut((per * osz).max(1)).collect(),
        |t, ys: &mut [T]| {
            let mut col = vec![T::default(); k * p];
            let xs = &x[t * per * isz..];
            for (xb, yb) in xs.chunks_exact(isz).zip(ys.chunks_exact_mut(osz)) {
                if let Some(bias) = bias {
                    for (row, &bv) in yb.chunks_exact_mut(p).zip(bias) {
                        row.fill(bv);
                    }
                }
                im2col(xb, g, &mut col);
                matmul((g.co, p, k), yb, p, bias.is_some(), w, (k, 1), &col, (p, 1));
            }
        },
    );
    out
}

/// `db[o] = sum_{b, i, j} dy[b, o, i, j]` (accumulated in f64): grad-bias `[co]`. The batch
/// is cut into the groups of [`conv_grad_kernel`]; each group's f64 sums are computed on
/// their own (in parallel), then added in group order.
fn conv_grad_bias<T: Elem>(dy: &[T], co: usize, p: usize) -> Vec<T> {
    let osz = (co * p).max(1);
    let b = dy.len() / osz;
    let per = images_per_group(b);
    let groups = b.div_ceil(per).max(1);
    let mut partial = vec![0f64; groups * co];
    par_each(
        partial.chunks_mut(co.max(1)).collect(),
        |t, acc: &mut [f64]| {
            let end = ((t + 1) * per).min(b);
            for dyb in dy[(t * per).min(end) * osz..end * osz].chunks_exact(osz) {
                for (a, row) in acc.iter_mut().zip(dyb.chunks_exact(p.max(1))) {
                    // Eight independent f64 lanes: vectorisable, still f64 accumulation.
                    let mut lanes = [0f64; 8];
                    let chunks = row.chunks_exact(8);
                    let rest = chunks.remainder();
                    for ch in chunks {
                        for (l, v) in lanes.iter_mut().zip(ch) {
                            *l += v.to_f64();
                        }
                    }
                    *a += lanes.iter().sum::<f64>() + rest.iter().map(|v| v.to_f64()).sum::<f64>();
                }
            }
        },
    );
    let mut acc = vec![0f64; co];
    for part in partial.chunks_exact(co.max(1)) {
        for (a, &v) in acc.iter_mut().zip(part) {
            *a += v;
        }
    }
    acc.into_iter().map(T::from_f64).collect()
}

/// `dx[b] = col2im(W^T x dy[b])`: grad-input `[b, c, h, w]` from `dy` `[b, co, oh, ow]`,
/// the images in parallel groups.
fn conv_grad_input<T: Elem>(dy: &[T], w: &[T], g: &Geom) -> Vec<T> {
    let (k, p) = (g.k(), g.p());
    let (isz, osz) = (g.c * g.h * g.w, g.co * p);
    let per = images_per_group(g.b);
    let mut dx = vec![T::default(); g.b * isz];
    par_each(
        dx.chunks_mut((per * isz).max(1)).collect(),
        |t, dxs: &mut [T]| {
            let mut dcol = vec![T::default(); k * p];
            let dys = &dy[t * per * osz..];
            for (dyb, dxb) in dys.chunks_exact(osz).zip(dxs.chunks_exact_mut(isz)) {
                matmul((k, p, g.co), &mut dcol, p, false, w, (1, k), dyb, (p, 1));
                col2im_add(&mut dcol, g, dxb);
            }
        },
    );
    dx
}

/// `dW = sum_b dy[b] x im2col(x[b])^T`: grad-kernel `[co, c, kh, kw]`. The batch is cut
/// into at most [`super::BATCH_GROUPS`] groups of consecutive images (a number that depends
/// on the batch size only); each group's sum is computed on its own (in parallel), then the
/// group sums are added in group order, so the bits do not depend on the thread count.
fn conv_grad_kernel<T: Elem>(x: &[T], dy: &[T], g: &Geom) -> Vec<T> {
    let (k, p) = (g.k(), g.p());
    let (isz, osz) = (g.c * g.h * g.w, g.co * p);
    let per = images_per_group(g.b);
    let groups = g.b.div_ceil(per).max(1);
    let mut partial = vec![T::default(); groups * g.co * k];
    par_each(
        partial.chunks_mut((g.co * k).max(1)).collect(),
        |t, dw: &mut [T]| {
            let mut col = vec![T::default(); k * p];
            let images = per.min(g.b.saturating_sub(t * per));
            let xs = &x[t * per * isz..(t * per + images) * isz];
            let dys = &dy[t * per * osz..(t * per + images) * osz];
            for (bi, (xb, dyb)) in xs.chunks_exact(isz).zip(dys.chunks_exact(osz)).enumerate() {
                im2col(xb, g, &mut col);
                matmul((g.co, k, p), dw, k, bi > 0, dyb, (p, 1), &col, (1, p));
            }
        },
    );
    let mut parts = partial.chunks_exact((g.co * k).max(1));
    let mut dw = parts.next().map_or_else(Vec::new, <[T]>::to_vec);
    for part in parts {
        for (d, &v) in dw.iter_mut().zip(part) {
            *d += v;
        }
    }
    dw.resize(g.co * k, T::default());
    dw
}

/// The forward op `(x, w) -> conv(x, w)`.
struct Conv2d {
    pad: usize,
}

impl CustomOp2 for Conv2d {
    fn name(&self) -> &'static str {
        "netinv-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = Geom::new(l1.dims(), l2.dims(), self.pad, self.name())?;
        let out = match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(w)) => CpuStorage::F32(conv_fwd(
                contiguous(x, l1, self.name())?,
                contiguous(w, l2, self.name())?,
                None,
                &g,
            )),
            (CpuStorage::F64(x), CpuStorage::F64(w)) => CpuStorage::F64(conv_fwd(
                contiguous(x, l1, self.name())?,
                contiguous(w, l2, self.name())?,
                None,
                &g,
            )),
            _ => candle_core::bail!(
                "{}: input and kernel must both be f32 or both f64",
                self.name()
            ),
        };
        Ok((out, Shape::from((g.b, g.co, g.oh, g.ow))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        conv_input_kernel_grads(self.pad, x, w, grad)
    }
}

/// Grad-input (if `x` tracks) and grad-kernel (if `w` tracks) of a convolution.
fn conv_input_kernel_grads(
    pad: usize,
    x: &Tensor,
    w: &Tensor,
    grad: &Tensor,
) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
    let grad = grad.contiguous()?;
    let gx = if x.track_op() {
        let op = Conv2dGradInput {
            pad,
            input_dims: x.dims().to_vec(),
        };
        Some(grad.apply_op2_no_bwd(w, &op)?)
    } else {
        None
    };
    let gw = if w.track_op() {
        let op = Conv2dGradKernel {
            pad,
            kernel_dims: w.dims().to_vec(),
        };
        Some(x.apply_op2_no_bwd(&grad, &op)?)
    } else {
        None
    };
    Ok((gx, gw))
}

/// The forward op `(x, w, bias) -> conv(x, w) + bias`.
struct Conv2dBias {
    pad: usize,
}

impl CustomOp3 for Conv2dBias {
    fn name(&self) -> &'static str {
        "netinv-conv2d-bias"
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
        let g = Geom::new(l1.dims(), l2.dims(), self.pad, self.name())?;
        if l3.dims() != [g.co] {
            candle_core::bail!("{}: bias {:?} must be [{}]", self.name(), l3.dims(), g.co);
        }
        let n = self.name();
        let out = match (s1, s2, s3) {
            (CpuStorage::F32(x), CpuStorage::F32(w), CpuStorage::F32(b)) => {
                CpuStorage::F32(conv_fwd(
                    contiguous(x, l1, n)?,
                    contiguous(w, l2, n)?,
                    Some(contiguous(b, l3, n)?),
                    &g,
                ))
            }
            (CpuStorage::F64(x), CpuStorage::F64(w), CpuStorage::F64(b)) => {
                CpuStorage::F64(conv_fwd(
                    contiguous(x, l1, n)?,
                    contiguous(w, l2, n)?,
                    Some(contiguous(b, l3, n)?),
                    &g,
                ))
            }
            _ => candle_core::bail!("{n}: input, kernel and bias must all be f32 or all f64"),
        };
        Ok((out, Shape::from((g.b, g.co, g.oh, g.ow))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (gx, gw) = conv_input_kernel_grads(self.pad, x, w, grad)?;
        let gb = if b.track_op() {
            Some(grad.contiguous()?.apply_op1_no_bwd(&Conv2dGradBias)?)
        } else {
            None
        };
        Ok((gx, gw, gb))
    }
}

/// `dy [b, co, oh, ow] -> db [co]` of [`Conv2dBias`].
struct Conv2dGradBias;

impl CustomOp1 for Conv2dGradBias {
    fn name(&self) -> &'static str {
        "netinv-conv2d-grad-bias"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let &[_, co, oh, ow] = l.dims() else {
            candle_core::bail!(
                "{}: expected [b, co, oh, ow], got {:?}",
                self.name(),
                l.dims()
            );
        };
        let out = match s {
            CpuStorage::F32(v) => {
                CpuStorage::F32(conv_grad_bias(contiguous(v, l, self.name())?, co, oh * ow))
            }
            CpuStorage::F64(v) => {
                CpuStorage::F64(conv_grad_bias(contiguous(v, l, self.name())?, co, oh * ow))
            }
            _ => candle_core::bail!("{}: only f32 and f64 are supported", self.name()),
        };
        Ok((out, Shape::from(co)))
    }
}

/// `(dy, w) -> dx` of [`Conv2d`].
struct Conv2dGradInput {
    pad: usize,
    input_dims: Vec<usize>,
}

impl CustomOp2 for Conv2dGradInput {
    fn name(&self) -> &'static str {
        "netinv-conv2d-grad-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = Geom::new(&self.input_dims, l2.dims(), self.pad, self.name())?;
        if l1.dims() != [g.b, g.co, g.oh, g.ow] {
            candle_core::bail!(
                "{}: gradient {:?} does not match the output of {g:?}",
                self.name(),
                l1.dims()
            );
        }
        let out = match (s1, s2) {
            (CpuStorage::F32(dy), CpuStorage::F32(w)) => CpuStorage::F32(conv_grad_input(
                contiguous(dy, l1, self.name())?,
                contiguous(w, l2, self.name())?,
                &g,
            )),
            (CpuStorage::F64(dy), CpuStorage::F64(w)) => CpuStorage::F64(conv_grad_input(
                contiguous(dy, l1, self.name())?,
                contiguous(w, l2, self.name())?,
                &g,
            )),
            _ => candle_core::bail!("{}: arguments must both be f32 or both f64", self.name()),
        };
        Ok((out, Shape::from(self.input_dims.clone())))
    }
}

/// `(x, dy) -> dW` of [`Conv2d`].
struct Conv2dGradKernel {
    pad: usize,
    kernel_dims: Vec<usize>,
}

impl CustomOp2 for Conv2dGradKernel {
    fn name(&self) -> &'static str {
        "netinv-conv2d-grad-kernel"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = Geom::new(l1.dims(), &self.kernel_dims, self.pad, self.name())?;
        if l2.dims() != [g.b, g.co, g.oh, g.ow] {
            candle_core::bail!(
                "{}: gradient {:?} does not match the output of {g:?}",
                self.name(),
                l2.dims()
            );
        }
        let out = match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(dy)) => CpuStorage::F32(conv_grad_kernel(
                contiguous(x, l1, self.name())?,
                contiguous(dy, l2, self.name())?,
                &g,
            )),
            (CpuStorage::F64(x), CpuStorage::F64(dy)) => CpuStorage::F64(conv_grad_kernel(
                contiguous(x, l1, self.name())?,
                contiguous(dy, l2, self.name())?,
                &g,
            )),
            _ => candle_core::bail!("{}: arguments must both be f32 or both f64", self.name()),
        };
        Ok((out, Shape::from(self.kernel_dims.clone())))
    }
}

/// 2-d cross-correlation (PyTorch's `conv2d`) with stride 1 and `padding` zeros on every
/// side: `x` `[b, c, h, w]`, `kernel` `[co, c, kh, kw]` -> `[b, co, h + 2p - kh + 1,
/// w + 2p - kw + 1]`, no bias.
///
/// ```text
/// y[b, o, i, j] = sum_{c, u, v} kernel[o, c, u, v] * x[b, c, i + u - p, j + v - p]
/// ```
///
/// Computed as im2col + gemm per image. The backward pass computes
/// `dx = col2im(W^T dy)` only if `x` takes part in the graph and
/// `dW = sum_b dy im2col(x)^T` only if `kernel` does (a plain tensor gets none).
/// f32 or f64 (both arguments alike), CPU.
///
/// # Errors
/// A candle error if the ranks or channel counts do not match, the kernel does not fit the
/// padded input, the dtypes differ or are not f32/f64, or the tensors are not on the CPU.
///
/// # Examples
/// ```
/// use candle_core::{Device, Tensor};
/// let x = Tensor::ones((1, 1, 3, 3), candle_core::DType::F32, &Device::Cpu)?;
/// let k = Tensor::ones((1, 1, 3, 3), candle_core::DType::F32, &Device::Cpu)?;
/// let y = netinv_models::ops::conv2d(&x, &k, 1)?;
/// // Each output counts the input pixels its 3x3 window covers.
/// assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![4., 6., 4., 6., 9., 6., 4., 6., 4.]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn conv2d(x: &Tensor, kernel: &Tensor, padding: usize) -> candle_core::Result<Tensor> {
    x.contiguous()?
        .apply_op2(&kernel.contiguous()?, Conv2d { pad: padding })
}

/// [`conv2d`] plus a per-channel `bias` `[co]`, in one op (one graph node):
///
/// ```text
/// y[b, o, i, j] = bias[o] + sum_{c, u, v} kernel[o, c, u, v] * x[b, c, i + u - p, j + v - p]
/// dL/dbias[o] = sum_{b, i, j} dL/dy[b, o, i, j]
/// ```
///
/// Each argument gets a gradient only if it takes part in the graph.
///
/// # Errors
/// As [`conv2d`]; also if `bias` is not `[co]` or has another dtype.
///
/// # Examples
/// ```
/// use candle_core::{Device, Tensor};
/// let x = Tensor::ones((1, 1, 2, 2), candle_core::DType::F32, &Device::Cpu)?;
/// let k = Tensor::ones((2, 1, 1, 1), candle_core::DType::F32, &Device::Cpu)?;
/// let b = Tensor::new(&[0.5f32, -1.0], &Device::Cpu)?;
/// let y = netinv_models::ops::conv2d_bias(&x, &k, &b, 0)?;
/// assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![1.5, 1.5, 1.5, 1.5, 0., 0., 0., 0.]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn conv2d_bias(
    x: &Tensor,
    kernel: &Tensor,
    bias: &Tensor,
    padding: usize,
) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op3(
        &kernel.contiguous()?,
        &bias.contiguous()?,
        Conv2dBias { pad: padding },
    )
}

#[cfg(test)]
mod tests;
