//! Nearest-neighbour 2x upsampling as one graph node, with its backward (2x2 sum-pooling).

use candle_core::Tensor;

use super::contiguous;

/// Nearest-neighbour 2x upsampling `[b, c, h, w] -> [b, c, 2h, 2w]` (f32, CPU), one graph
/// node whose backward is a 2x2 sum-pooling of the gradient:
///
/// ```text
/// y[b, c, i, j] = x[b, c, i / 2, j / 2]
/// dL/dx[b, c, i, j] = sum_{u, v in {0, 1}} dL/dy[b, c, 2i + u, 2j + v]
/// ```
///
/// (A reshape + broadcast computes the same forward, but its backward is a strided
/// reduction that cost about a fifth of a VAE training step.)
pub fn upsample2(x: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(Upsample2)
}

/// The slice of a contiguous f32 CPU argument.
fn f32_slice<'a>(
    s: &'a candle_core::CpuStorage,
    l: &candle_core::Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let candle_core::CpuStorage::F32(v) = s else {
        candle_core::bail!("{op}: f32 only")
    };
    contiguous(v, l, op)
}

struct Upsample2;

impl candle_core::CustomOp1 for Upsample2 {
    fn name(&self) -> &'static str {
        "upsample2"
    }

    fn cpu_fwd(
        &self,
        s: &candle_core::CpuStorage,
        l: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let (b, c, h, w) = l.shape().dims4()?;
        let x = f32_slice(s, l, "upsample2")?;
        let mut out = vec![0f32; b * c * 4 * h * w];
        for (src, dst) in x.chunks_exact(h * w).zip(out.chunks_exact_mut(4 * h * w)) {
            for i in 0..h {
                let (top, bottom) = dst[2 * i * 2 * w..(2 * i + 2) * 2 * w].split_at_mut(2 * w);
                for j in 0..w {
                    let v = src[i * w + j];
                    top[2 * j] = v;
                    top[2 * j + 1] = v;
                }
                bottom.copy_from_slice(top);
            }
        }
        Ok((
            candle_core::CpuStorage::F32(out),
            candle_core::Shape::from((b, c, 2 * h, 2 * w)),
        ))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&SumPool2)?))
    }
}

/// 2x2 sum-pooling with stride 2, the backward of [`Upsample2`] (no backward of its own).
struct SumPool2;

impl candle_core::CustomOp1 for SumPool2 {
    fn name(&self) -> &'static str {
        "sum-pool2"
    }

    fn cpu_fwd(
        &self,
        s: &candle_core::CpuStorage,
        l: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let (b, c, h2, w2) = l.shape().dims4()?;
        if h2 % 2 != 0 || w2 % 2 != 0 {
            candle_core::bail!("sum-pool2: even sizes needed, got {h2}x{w2}")
        }
        let (h, w) = (h2 / 2, w2 / 2);
        let g = f32_slice(s, l, "sum-pool2")?;
        let mut out = vec![0f32; b * c * h * w];
        for (src, dst) in g.chunks_exact(4 * h * w).zip(out.chunks_exact_mut(h * w)) {
            for i in 0..h {
                let top = &src[2 * i * w2..(2 * i + 1) * w2];
                let bottom = &src[(2 * i + 1) * w2..(2 * i + 2) * w2];
                for j in 0..w {
                    dst[i * w + j] =
                        top[2 * j] + top[2 * j + 1] + bottom[2 * j] + bottom[2 * j + 1];
                }
            }
        }
        Ok((
            candle_core::CpuStorage::F32(out),
            candle_core::Shape::from((b, c, h, w)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn upsample_gradient_is_the_sum_over_each_block() {
        let dev = Device::Cpu;
        let vals: Vec<f32> = (0..2 * 3 * 2 * 3).map(|i| i as f32 * 0.1 - 1.0).collect();
        let x = Var::from_vec(vals.clone(), (2, 3, 2, 3), &dev).unwrap();
        let wts: Vec<f32> = (0..2 * 3 * 4 * 6).map(|i| ((i * 7) % 11) as f32).collect();
        let w = Tensor::from_vec(wts.clone(), (2, 3, 4, 6), &dev).unwrap();
        let y = upsample2(x.as_tensor()).unwrap();
        // Forward equals the reshape + broadcast definition.
        let reference = x
            .as_tensor()
            .reshape((2, 3, 2, 1, 3, 1))
            .unwrap()
            .broadcast_as((2, 3, 2, 2, 3, 2))
            .unwrap()
            .reshape((2, 3, 4, 6))
            .unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            reference.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        let grads = (y * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let g = grads.get(x.as_tensor()).unwrap();
        let g = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for p in 0..6 {
            for i in 0..2 {
                for j in 0..3 {
                    let at = |r: usize, c: usize| wts[p * 24 + r * 6 + c];
                    let expected = at(2 * i, 2 * j)
                        + at(2 * i, 2 * j + 1)
                        + at(2 * i + 1, 2 * j)
                        + at(2 * i + 1, 2 * j + 1);
                    assert_eq!(g[p * 6 + i * 3 + j], expected);
                }
            }
        }
    }

    #[test]
    fn upsample_repeats_pixels() {
        let dev = Device::Cpu;
        let x = Tensor::new(&[[[[1f32, 2.], [3., 4.]]]], &dev).unwrap();
        let y = upsample2(&x).unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.]
        );
    }
}
