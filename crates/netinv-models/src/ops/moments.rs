//! Mean and biased variance along the last axis, in one pass each way.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

use super::{contiguous, par_each, Elem};

/// Which axes form a row: a tensor of rank `2` (`[rows, n]`, rows along the last axis) or
/// `4` (`[b, c, h, w]`, one row per plane `(b, c)`, `n = h * w`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rows {
    Last,
    Planes,
}

impl Rows {
    /// `(rows, n)` of a tensor of this kind, or an error for another rank or `n = 0`.
    fn of(self, layout: &Layout, op: &str) -> candle_core::Result<(usize, usize)> {
        match (self, layout.dims()) {
            (Rows::Last, &[rows, n]) if n > 0 => Ok((rows, n)),
            (Rows::Planes, &[b, c, h, w]) if h * w > 0 => Ok((b * c, h * w)),
            (Rows::Last, d) => {
                candle_core::bail!("{op}: expected [rows, n] with n >= 1, got {d:?}")
            }
            (Rows::Planes, d) => {
                candle_core::bail!("{op}: expected [b, c, h, w] with h * w >= 1, got {d:?}")
            }
        }
    }
}

/// `[rows, n]` (or the planes of `[b, c, h, w]`) -> `[rows, 2]`: (mean, biased variance) of
/// each row, accumulated in f64.
struct RowMoments(Rows);

/// The backward op of [`RowMoments`]: from the input and `[rows, 4]` = (mean, var,
/// dL/dmean, dL/dvar) to `dL/dx[r, i] = dL/dmean / n + dL/dvar * 2 (x - mean) / n`.
struct RowMomentsGrad(Rows);

/// Rows per parallel group of [`moments_fwd`] / [`moments_bwd`] for `rows` rows of `n`
/// values: a multiple of [`ROW_GROUP`] giving at most 16 groups, all rows in one group for
/// small inputs. Each row's sums are the same whatever the grouping (bit for bit).
fn rows_per_task(rows: usize, n: usize) -> usize {
    if rows * n < 1 << 15 {
        return rows.max(1);
    }
    rows.div_ceil(16).div_ceil(ROW_GROUP).max(1) * ROW_GROUP
}

/// Mean and variance of every row, the rows in parallel groups: `[rows, 2]`.
fn moments_fwd<T: Elem>(x: &[T], n: usize) -> Vec<T> {
    let rows = x.len() / n;
    let per = rows_per_task(rows, n);
    let mut out = vec![T::default(); 2 * rows];
    par_each(out.chunks_mut(2 * per).collect(), |t, o: &mut [T]| {
        let part = &x[t * per * n..(t * per + o.len() / 2) * n];
        o.copy_from_slice(&moments_rows(part, n));
    });
    out
}

/// [`moments_fwd`] of consecutive rows on this thread.
pub(super) fn moments_rows<T: Elem>(x: &[T], n: usize) -> Vec<T> {
    let rows = x.len() / n;
    let mut out = Vec::with_capacity(2 * rows);
    let mut groups = x.chunks_exact(ROW_GROUP * n);
    for group in groups.by_ref() {
        let (means, vars) = group_moments::<T, ROW_GROUP>(group, n);
        for (m, v) in means.into_iter().zip(vars) {
            out.extend([T::from_f64(m), T::from_f64(v)]);
        }
    }
    for row in groups.remainder().chunks_exact(n) {
        let (means, vars) = group_moments::<T, 1>(row, n);
        out.extend([T::from_f64(means[0]), T::from_f64(vars[0])]);
    }
    out
}

/// Rows whose sums run side by side in [`group_moments`].
const ROW_GROUP: usize = 8;

/// Mean and biased variance of `R` consecutive rows of length `n`, each summed in f64 in
/// index order (the same sums, bit for bit, as one row at a time): the `R` running sums
/// are independent, so they advance together instead of waiting on one add's latency.
#[inline(always)]
// `i` indexes the same position of all `R` rows at once, which no single iterator gives
#[allow(clippy::needless_range_loop)]
fn group_moments<T: Elem, const R: usize>(group: &[T], n: usize) -> ([f64; R], [f64; R]) {
    let rows: [&[T]; R] = std::array::from_fn(|r| &group[r * n..(r + 1) * n]);
    let mut sums = [0f64; R];
    for i in 0..n {
        let values: [f64; R] = std::array::from_fn(|r| rows[r][i].to_f64());
        for (s, v) in sums.iter_mut().zip(values) {
            *s += v;
        }
    }
    let means = sums.map(|s| s / n as f64);
    let mut squares = [0f64; R];
    for i in 0..n {
        let values: [f64; R] = std::array::from_fn(|r| rows[r][i].to_f64() - means[r]);
        for (s, v) in squares.iter_mut().zip(values) {
            *s += v * v;
        }
    }
    (means, squares.map(|s| s / n as f64))
}

fn moments_bwd<T: Elem>(x: &[T], packed: &[T], n: usize) -> Vec<T> {
    let per = rows_per_task(x.len() / n, n);
    let mut out = vec![T::default(); x.len()];
    par_each(out.chunks_mut(per * n).collect(), |t, o: &mut [T]| {
        let rows = x[t * per * n..].chunks_exact(n);
        for ((row, p), d) in rows
            .zip(packed[4 * t * per..].chunks_exact(4))
            .zip(o.chunks_exact_mut(n))
        {
            let (mean, g_mean, g_var) = (p[0].to_f64(), p[2].to_f64(), p[3].to_f64());
            let (a, b) = (g_mean / n as f64, 2.0 * g_var / n as f64);
            for (d, v) in d.iter_mut().zip(row) {
                *d = T::from_f64(a + b * (v.to_f64() - mean));
            }
        }
    });
    out
}

impl CustomOp1 for RowMoments {
    fn name(&self) -> &'static str {
        "netinv-row-moments"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, n) = self.0.of(l, self.name())?;
        let out = match s {
            CpuStorage::F32(v) => CpuStorage::F32(moments_fwd(contiguous(v, l, self.name())?, n)),
            CpuStorage::F64(v) => CpuStorage::F64(moments_fwd(contiguous(v, l, self.name())?, n)),
            _ => candle_core::bail!("{}: only f32 and f64 are supported", self.name()),
        };
        Ok((out, Shape::from((rows, 2))))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        if !arg.track_op() {
            return Ok(None);
        }
        let packed = Tensor::cat(&[res.detach(), grad_res.detach()], 1)?.contiguous()?;
        Ok(Some(
            arg.apply_op2_no_bwd(&packed, &RowMomentsGrad(self.0))?,
        ))
    }
}

impl CustomOp2 for RowMomentsGrad {
    fn name(&self) -> &'static str {
        "netinv-row-moments-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, n) = self.0.of(l1, self.name())?;
        if l2.dims() != [rows, 4] {
            candle_core::bail!("{}: expected [{rows}, 4], got {:?}", self.name(), l2.dims());
        }
        let out = match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(p)) => CpuStorage::F32(moments_bwd(
                contiguous(x, l1, self.name())?,
                contiguous(p, l2, self.name())?,
                n,
            )),
            (CpuStorage::F64(x), CpuStorage::F64(p)) => CpuStorage::F64(moments_bwd(
                contiguous(x, l1, self.name())?,
                contiguous(p, l2, self.name())?,
                n,
            )),
            _ => candle_core::bail!("{}: arguments must both be f32 or both f64", self.name()),
        };
        Ok((out, l1.shape().clone()))
    }
}

/// Mean and biased variance of each row of `x` `[rows, n]`, each `[rows]`, in one pass
/// over the data forward and one backward (candle's `mean` / broadcast-subtract / `sqr`
/// chain makes several full-size temporaries):
///
/// ```text
/// mean_r = (1/n) sum_i x[r, i]            var_r = (1/n) sum_i (x[r, i] - mean_r)^2
/// dL/dx[r, i] = dL/dmean_r / n + dL/dvar_r * 2 (x[r, i] - mean_r) / n
/// ```
///
/// # Errors
/// If `x` is not `[rows, n]` with `n >= 1`, or not f32 / f64.
///
/// # Examples
/// ```
/// use candle_core::{Device, Tensor};
/// let x = Tensor::new(&[[1.0f32, 3.0], [2.0, 2.0]], &Device::Cpu).unwrap();
/// let (mean, var) = netinv_models::ops::row_moments(&x).unwrap();
/// assert_eq!(mean.to_vec1::<f32>().unwrap(), vec![2.0, 2.0]);
/// assert_eq!(var.to_vec1::<f32>().unwrap(), vec![1.0, 0.0]);
/// ```
pub fn row_moments(x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
    let m = x.contiguous()?.apply_op1(RowMoments(Rows::Last))?;
    Ok((
        m.narrow(1, 0, 1)?.squeeze(1)?,
        m.narrow(1, 1, 1)?.squeeze(1)?,
    ))
}

/// Mean and biased variance of every plane `x[b, c]` of `x` `[b, c, h, w]` (over `h * w`
/// pixels), each `[b, c]`: [`row_moments`] of `x` seen as `[b * c, h * w]`, without the
/// reshape (in candle's backward pass every node's gradient is a fresh zero-filled buffer
/// plus an add, so a reshape of a full-size activation costs two full-size passes).
///
/// # Errors
/// If `x` is not `[b, c, h, w]` with `h * w >= 1`, or not f32 / f64.
///
/// # Examples
/// ```
/// use candle_core::{Device, Tensor};
/// let x = Tensor::new(&[1.0f32, 3.0, 2.0, 2.0], &Device::Cpu).unwrap().reshape((1, 2, 1, 2)).unwrap();
/// let (mean, var) = netinv_models::ops::plane_moments(&x).unwrap();
/// assert_eq!(mean.to_vec2::<f32>().unwrap(), vec![vec![2.0, 2.0]]);
/// assert_eq!(var.to_vec2::<f32>().unwrap(), vec![vec![1.0, 0.0]]);
/// ```
pub fn plane_moments(x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
    let (b, c, _, _) = x.dims4()?;
    let m = x.contiguous()?.apply_op1(RowMoments(Rows::Planes))?;
    Ok((
        m.narrow(1, 0, 1)?.reshape((b, c))?,
        m.narrow(1, 1, 1)?.reshape((b, c))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use netinv_core::testing::central_diff;

    #[test]
    fn gradient_matches_central_differences() {
        let values: Vec<f64> = (0..12)
            .map(|i| ((i * 7 % 11) as f64 * 0.37).sin())
            .collect();
        // loss = sum_r (w_r mean_r + u_r var_r)
        let (w, u) = ([0.3, -1.2, 0.7], [1.1, 0.4, -0.9]);
        let loss = |v: &[f64]| -> f64 {
            v.chunks(4)
                .enumerate()
                .map(|(r, row)| {
                    let m = row.iter().sum::<f64>() / 4.0;
                    let var = row.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 4.0;
                    w[r] * m + u[r] * var
                })
                .sum()
        };
        let x = Var::from_vec(values.clone(), (3, 4), &Device::Cpu).unwrap();
        let (mean, var) = row_moments(x.as_tensor()).unwrap();
        let wt = Tensor::new(&w, &Device::Cpu).unwrap();
        let ut = Tensor::new(&u, &Device::Cpu).unwrap();
        let total = ((mean * wt).unwrap().sum_all().unwrap()
            + (var * ut).unwrap().sum_all().unwrap())
        .unwrap();
        assert!((total.to_scalar::<f64>().unwrap() - loss(&values)).abs() < 1e-12);
        let grads = total.backward().unwrap();
        let got = grads
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let expected = central_diff(loss, &values, 1e-6);
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() < 1e-7, "{g} vs {e}");
        }
    }

    /// Rows summed side by side in groups (and the rows left over) give exactly the sums
    /// of the plain one-row-at-a-time loop.
    #[test]
    fn grouped_rows_equal_row_by_row_bit_for_bit() {
        let n = 37;
        let x: Vec<f32> = (0..19 * n)
            .map(|i| ((i * 13 % 29) as f32 * 0.71).cos() * 3.0 + 0.5)
            .collect();
        let mut expected = Vec::new();
        for row in x.chunks_exact(n) {
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
            expected.extend([mean as f32, var as f32]);
        }
        let got = moments_fwd(&x, n);
        assert_eq!(got.len(), 2 * 19);
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g.to_bits(), e.to_bits(), "{g} vs {e}");
        }
    }

    /// `plane_moments` is `row_moments` of the `[b * c, h * w]` reshape, values and
    /// gradients.
    #[test]
    fn plane_moments_equal_row_moments_of_the_reshape() {
        let values: Vec<f32> = (0..2 * 3 * 4 * 5)
            .map(|i| ((i * 7 % 17) as f32 * 0.43).sin())
            .collect();
        let weights = Tensor::new(&[0.3f32, -1.0, 0.5, 2.0, -0.7, 1.3], &Device::Cpu).unwrap();
        let run = |planes: bool| {
            let x = Var::from_vec(values.clone(), (2, 3, 4, 5), &Device::Cpu).unwrap();
            let (m, v) = if planes {
                let (m, v) = plane_moments(x.as_tensor()).unwrap();
                (m.flatten_all().unwrap(), v.flatten_all().unwrap())
            } else {
                row_moments(&x.as_tensor().reshape((6, 20)).unwrap()).unwrap()
            };
            let loss = ((&m * &weights).unwrap().sum_all().unwrap()
                + v.sqr().unwrap().sum_all().unwrap())
            .unwrap();
            let grad = loss.backward().unwrap().get(x.as_tensor()).unwrap().clone();
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (flat(&m), flat(&v), flat(&grad))
        };
        assert_eq!(run(true), run(false));
    }

    #[test]
    fn bad_shapes_are_errors() {
        let x = Tensor::zeros((2, 3, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(row_moments(&x).is_err());
        let empty = Tensor::zeros((2, 0), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(row_moments(&empty).is_err());
        assert!(plane_moments(&x).is_err());
        let flat = Tensor::zeros((2, 3, 0, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(plane_moments(&flat).is_err());
    }
}
