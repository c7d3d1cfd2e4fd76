//! General 2-d max and average pooling (any kernel, stride, dilation and padding) as candle
//! custom ops with exact gradients.
//!
//! Why not candle's own `max_pool2d` / `avg_pool2d`: they have no padding or dilation, their
//! backward needs kernel = stride, and the max-pool backward returns a fraction of the
//! gradient (see netinv-models' `ops`). The common 2x2 / stride-2 max-pool without padding
//! goes to `netinv_models::ops::max_pool2x2` instead of this op.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

/// Max or average.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolKind {
    /// The maximum of the window (gradient to its first maximum, row-major scan).
    Max,
    /// The mean of the window; `count_include_pad` divides by the window size clipped to
    /// the padded image, otherwise by the number of image pixels in it.
    Avg {
        /// ONNX's `count_include_pad`.
        count_include_pad: bool,
    },
}

/// The resolved geometry of one pooling: input `[b, c, h, w]` to `[b, c, oh, ow]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolGeom {
    pub kind: PoolKind,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// `(top, left, bottom, right)`.
    pub pads: [usize; 4],
    pub ceil_mode: bool,
}

impl PoolGeom {
    /// Output size along one axis (PyTorch's and ONNX's rule: with `ceil_mode`, a last
    /// window that would start in the end padding is dropped).
    fn out_len(&self, n: usize, a: usize) -> candle_core::Result<usize> {
        let span = (self.kernel[a] - 1) * self.dilation[a] + 1;
        let padded = n + self.pads[a] + self.pads[a + 2];
        if padded < span {
            candle_core::bail!("pooling window {span} larger than the padded input {padded}");
        }
        let s = self.stride[a];
        let mut out = if self.ceil_mode {
            (padded - span).div_ceil(s) + 1
        } else {
            (padded - span) / s + 1
        };
        if self.ceil_mode && (out - 1) * s >= n + self.pads[a] {
            out -= 1;
        }
        Ok(out)
    }

    /// Output height and width for an input of `h x w`.
    pub fn out_hw(&self, h: usize, w: usize) -> candle_core::Result<(usize, usize)> {
        Ok((self.out_len(h, 0)?, self.out_len(w, 1)?))
    }

    /// The input indices of window `o` along axis `a` that lie in the image, and the
    /// window's size clipped to the padded image (the count_include_pad divisor).
    fn taps(&self, o: usize, n: usize, a: usize, taps: &mut Vec<usize>) -> usize {
        taps.clear();
        let start = (o * self.stride[a]) as isize - self.pads[a] as isize;
        let mut in_padded = 0;
        for k in 0..self.kernel[a] {
            let i = start + (k * self.dilation[a]) as isize;
            if i < n as isize + self.pads[a + 2] as isize {
                in_padded += 1;
            }
            if i >= 0 && (i as usize) < n {
                taps.push(i as usize);
            }
        }
        in_padded
    }

    /// Visits every output pixel of one plane `[h, w]` with the flat input indices of its
    /// window (row-major) and its divisor.
    fn for_each_window(&self, h: usize, w: usize, mut f: impl FnMut(usize, &[usize], f64)) {
        let (Ok(oh), Ok(ow)) = (self.out_len(h, 0), self.out_len(w, 1)) else {
            return;
        };
        let (mut rows, mut cols, mut flat) = (Vec::new(), Vec::new(), Vec::new());
        for oy in 0..oh {
            let ry = self.taps(oy, h, 0, &mut rows);
            for ox in 0..ow {
                let rx = self.taps(ox, w, 1, &mut cols);
                flat.clear();
                for &iy in &rows {
                    flat.extend(cols.iter().map(|&ix| iy * w + ix));
                }
                let divisor = match self.kind {
                    PoolKind::Avg {
                        count_include_pad: true,
                    } => (ry * rx) as f64,
                    _ => flat.len() as f64,
                };
                f(oy * ow + ox, &flat, divisor);
            }
        }
    }
}

/// f32 / f64 for the loops.
trait Real: Copy + PartialOrd + Default + std::ops::AddAssign + 'static {
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
}
impl Real for f32 {
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}
impl Real for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// The index (into `taps`) of the first maximum of `plane` over `taps` (NaN wins).
fn first_max<T: Real>(plane: &[T], taps: &[usize]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (k, &i) in taps.iter().enumerate() {
        let v = plane[i];
        match best {
            None => best = Some(k),
            Some(b) => {
                let bv = plane[taps[b]];
                let bv_nan = bv.to_f64().is_nan();
                if !bv_nan && (v > bv || v.to_f64().is_nan()) {
                    best = Some(k);
                }
            }
        }
    }
    best
}

fn forward<T: Real>(g: &PoolGeom, x: &[T], planes: usize, h: usize, w: usize) -> Vec<T> {
    let (oh, ow) = g.out_hw(h, w).unwrap_or((0, 0));
    let mut out = vec![T::default(); planes * oh * ow];
    for p in 0..planes {
        let plane = &x[p * h * w..(p + 1) * h * w];
        let dst = &mut out[p * oh * ow..(p + 1) * oh * ow];
        g.for_each_window(h, w, |o, taps, divisor| {
            dst[o] = match g.kind {
                PoolKind::Max => first_max(plane, taps).map_or(T::default(), |k| plane[taps[k]]),
                PoolKind::Avg { .. } if divisor > 0.0 => {
                    let s: f64 = taps.iter().map(|&i| plane[i].to_f64()).sum();
                    T::from_f64(s / divisor)
                }
                PoolKind::Avg { .. } => T::default(),
            };
        });
    }
    out
}

fn backward<T: Real>(g: &PoolGeom, x: &[T], dy: &[T], planes: usize, h: usize, w: usize) -> Vec<T> {
    let (oh, ow) = g.out_hw(h, w).unwrap_or((0, 0));
    let mut dx = vec![T::default(); planes * h * w];
    for p in 0..planes {
        let plane = &x[p * h * w..(p + 1) * h * w];
        let grad = &dy[p * oh * ow..(p + 1) * oh * ow];
        let dst = &mut dx[p * h * w..(p + 1) * h * w];
        g.for_each_window(h, w, |o, taps, divisor| match g.kind {
            PoolKind::Max => {
                if let Some(k) = first_max(plane, taps) {
                    dst[taps[k]] += grad[o];
                }
            }
            PoolKind::Avg { .. } if divisor > 0.0 => {
                let share = T::from_f64(grad[o].to_f64() / divisor);
                for &i in taps {
                    dst[i] += share;
                }
            }
            PoolKind::Avg { .. } => {}
        });
    }
    dx
}

fn slice<'a, T>(data: &'a [T], l: &Layout) -> candle_core::Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("pool2d: arguments must be contiguous"),
    }
}

impl CustomOp1 for PoolGeom {
    fn name(&self) -> &'static str {
        "onnx-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = l.shape().dims4()?;
        let (oh, ow) = self.out_hw(h, w)?;
        let out = match s {
            CpuStorage::F32(d) => CpuStorage::F32(forward(self, slice(d, l)?, b * c, h, w)),
            CpuStorage::F64(d) => CpuStorage::F64(forward(self, slice(d, l)?, b * c, h, w)),
            _ => candle_core::bail!("pool2d: f32 or f64 expected"),
        };
        Ok((out, Shape::from((b, c, oh, ow))))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let dx = arg.apply_op2_no_bwd(&grad.contiguous()?, &PoolGrad(*self))?;
        Ok(Some(dx))
    }
}

/// The gradient of [`PoolGeom`] with respect to its input: arguments `(x, dy)`.
struct PoolGrad(PoolGeom);

impl CustomOp2 for PoolGrad {
    fn name(&self) -> &'static str {
        "onnx-pool2d-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = l1.shape().dims4()?;
        let out = match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(dy)) => CpuStorage::F32(backward(
                &self.0,
                slice(x, l1)?,
                slice(dy, l2)?,
                b * c,
                h,
                w,
            )),
            (CpuStorage::F64(x), CpuStorage::F64(dy)) => CpuStorage::F64(backward(
                &self.0,
                slice(x, l1)?,
                slice(dy, l2)?,
                b * c,
                h,
                w,
            )),
            _ => candle_core::bail!("pool2d grad: f32 or f64 expected"),
        };
        Ok((out, l1.shape().clone()))
    }
}

/// Pools `x` `[b, c, h, w]` with `geom`.
///
/// # Errors
/// A candle error if `x` is not rank 4, f32 / f64 on the CPU, or the window does not fit.
pub(crate) fn pool2d(x: &Tensor, geom: PoolGeom) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(geom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use netinv_core::testing::{assert_close, central_diff};

    fn geom(kind: PoolKind, k: usize, s: usize, pad: usize, ceil: bool) -> PoolGeom {
        PoolGeom {
            kind,
            kernel: [k, k],
            stride: [s, s],
            dilation: [1, 1],
            pads: [pad; 4],
            ceil_mode: ceil,
        }
    }

    fn values(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| ((i * 37 % 23) as f64 * 0.71).sin())
            .collect()
    }

    #[test]
    fn known_values_on_a_ramp() {
        let x = Tensor::arange(0f32, 16., &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 4, 4))
            .unwrap();
        let max = pool2d(&x, geom(PoolKind::Max, 3, 2, 1, false)).unwrap();
        assert_eq!(
            max.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![5., 7., 13., 15.]
        );
        let avg = pool2d(
            &x,
            geom(
                PoolKind::Avg {
                    count_include_pad: false,
                },
                2,
                2,
                0,
                false,
            ),
        )
        .unwrap();
        assert_eq!(
            avg.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![2.5, 4.5, 10.5, 12.5]
        );
        // count_include_pad: the corner window [pad, pad; pad, 0] averages 0 over 4 taps
        let inc = pool2d(
            &x,
            geom(
                PoolKind::Avg {
                    count_include_pad: true,
                },
                2,
                2,
                1,
                false,
            ),
        )
        .unwrap();
        assert_eq!(inc.dims(), &[1, 1, 3, 3]);
        assert_eq!(inc.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0], 0.0);
        let exc = pool2d(
            &x,
            geom(
                PoolKind::Avg {
                    count_include_pad: false,
                },
                2,
                2,
                1,
                false,
            ),
        )
        .unwrap();
        assert_eq!(exc.flatten_all().unwrap().to_vec1::<f32>().unwrap()[1], 1.5);
        let ceil = pool2d(&x, geom(PoolKind::Max, 3, 2, 0, true)).unwrap();
        assert_eq!(ceil.dims(), &[1, 1, 2, 2]);
    }

    #[test]
    fn gradients_match_central_differences() {
        let (h, w) = (5, 6);
        let kinds = [
            PoolKind::Max,
            PoolKind::Avg {
                count_include_pad: true,
            },
            PoolKind::Avg {
                count_include_pad: false,
            },
        ];
        for kind in kinds {
            for (k, s, pad, ceil) in [(2, 2, 0, false), (3, 2, 1, true), (3, 1, 1, false)] {
                let g = geom(kind, k, s, pad, ceil);
                let weights = values(64);
                let loss = |v: &[f64]| -> f64 {
                    let x = Tensor::from_vec(v.to_vec(), (1, 2, h, w), &Device::Cpu).unwrap();
                    let y = pool2d(&x, g)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f64>()
                        .unwrap();
                    y.iter().zip(&weights).map(|(a, b)| a * b).sum()
                };
                let x0 = values(2 * h * w);
                let var = Var::from_vec(x0.clone(), (1, 2, h, w), &Device::Cpu).unwrap();
                let y = pool2d(var.as_tensor(), g).unwrap();
                let n = y.elem_count();
                let wt = Tensor::from_vec(weights[..n].to_vec(), y.dims(), &Device::Cpu).unwrap();
                let grads = (y * wt).unwrap().sum_all().unwrap().backward().unwrap();
                let analytic = grads
                    .get(var.as_tensor())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap();
                assert_close(&analytic, &central_diff(loss, &x0, 1e-6), 1e-6, 1e-8);
            }
        }
    }
}
