//! Evaluation of one operator on candle tensors (float values) and host integers (shape
//! values). Errors are candle errors; the graph wraps them with the node's name.

use candle_core::{DType, Tensor};

use crate::op::{Binary, Op, Window};
use crate::pool::{pool2d, PoolGeom, PoolKind};
use crate::shape_ops::{
    concat, gather, pad, reshape, slice, squeeze, target_shape, transpose, unsqueeze,
};
use crate::value::{IntTensor, Value};

type R<T> = candle_core::Result<T>;

/// The `i`-th input, which must be present.
pub(crate) fn arg<'a>(inputs: &[Option<&'a Value>], i: usize) -> R<&'a Value> {
    match inputs.get(i).copied().flatten() {
        Some(v) => Ok(v),
        None => candle_core::bail!("input {i} is missing"),
    }
}

/// The `i`-th input if present.
pub(crate) fn opt<'a>(inputs: &[Option<&'a Value>], i: usize) -> Option<&'a Value> {
    inputs.get(i).copied().flatten()
}

/// `axis` (possibly negative) as an index into `rank` dimensions.
pub(crate) fn norm_axis(axis: i64, rank: usize) -> R<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    if a < 0 || a >= rank as i64 {
        candle_core::bail!("axis {axis} out of range for rank {rank}");
    }
    Ok(a as usize)
}

/// Evaluates `op` on `inputs` (absent optional inputs are `None`); one value per output.
///
/// # Errors
/// A candle error naming what does not fit.
pub(crate) fn eval(op: &Op, inputs: &[Option<&Value>]) -> R<Vec<Value>> {
    let x = || arg(inputs, 0);
    let xf = || arg(inputs, 0)?.float("input");
    let out = match op {
        Op::Conv { .. }
        | Op::Gemm { .. }
        | Op::MatMul
        | Op::Binary(_)
        | Op::Relu
        | Op::LeakyRelu(_)
        | Op::Sigmoid
        | Op::Tanh
        | Op::Erf
        | Op::Gelu { .. }
        | Op::Softmax { .. }
        | Op::MaxPool(_)
        | Op::AveragePool { .. }
        | Op::GlobalAveragePool
        | Op::BatchNorm { .. } => compute(op, inputs)?,
        Op::Flatten { axis } => {
            let dims = x()?.dims();
            let a = if *axis == dims.len() as i64 {
                dims.len()
            } else {
                norm_axis(*axis, dims.len())?
            };
            let outer: usize = dims[..a].iter().product();
            let inner: usize = dims[a..].iter().product();
            reshape(x()?, &[outer, inner])?
        }
        Op::Reshape { allow_zero } => {
            let shape = arg(inputs, 1)?.int("shape")?;
            let dims = target_shape(&x()?.dims(), &shape.data, *allow_zero)?;
            reshape(x()?, &dims)?
        }
        Op::Transpose { perm } => transpose(x()?, perm.as_deref())?,
        Op::Concat { axis } => concat(inputs, *axis)?,
        Op::Squeeze { axes } => squeeze(x()?, axes_of(axes, opt(inputs, 1))?.as_deref())?,
        Op::Unsqueeze { axes } => match axes_of(axes, opt(inputs, 1))? {
            Some(a) => unsqueeze(x()?, &a)?,
            None => candle_core::bail!("Unsqueeze needs axes"),
        },
        Op::Identity => {
            if let Some(mode) = opt(inputs, 2) {
                if mode.scalars()?.iter().any(|&v| v != 0.0) {
                    candle_core::bail!("Dropout in training mode is not supported");
                }
            }
            x()?.clone()
        }
        Op::Constant(v) => v.clone(),
        Op::Shape { start, end } => {
            let dims = x()?.dims();
            let r = dims.len() as i64;
            let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
            let (s, e) = (clampi(*start), clampi(end.unwrap_or(r)));
            let data = dims[s..e.max(s)].iter().map(|&d| d as i64).collect();
            Value::Int(IntTensor::vector(data))
        }
        Op::Gather { axis } => gather(x()?, arg(inputs, 1)?.int("indices")?, *axis)?,
        Op::Slice => slice(inputs)?,
        Op::Pad { edge } => pad(inputs, *edge)?,
        Op::Clip => {
            let mut y = xf()?.clone();
            if let Some(lo) = opt(inputs, 1) {
                y = y.maximum(scalar(lo)?)?;
            }
            if let Some(hi) = opt(inputs, 2) {
                y = y.minimum(scalar(hi)?)?;
            }
            Value::Float(y)
        }
        Op::Cast { to_float } => match (x()?, to_float) {
            (Value::Int(i), true) => Value::Float(int_to_float(i, &candle_core::Device::Cpu)?),
            (Value::Float(t), false) => {
                let data = t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
                Value::Int(IntTensor {
                    dims: t.dims().to_vec(),
                    data: data.iter().map(|&v| v as i64).collect(),
                })
            }
            (v, _) => v.clone(),
        },
        Op::ConstantOfShape(v) => constant_of_shape(v, arg(inputs, 0)?)?,
        Op::Reduce { .. } => reduce(op, inputs)?,
    };
    Ok(vec![out])
}

/// ConstantOfShape: `value` repeated over the shape held by `shape`.
fn constant_of_shape(v: &Value, shape: &Value) -> R<Value> {
    Ok({
        let dims: Vec<usize> = shape
            .int("shape")?
            .data
            .iter()
            .map(|&d| d.max(0) as usize)
            .collect();
        let n: usize = dims.iter().product();
        match v {
            Value::Float(t) => Value::Float(
                t.flatten_all()?
                    .narrow(0, 0, 1)?
                    .broadcast_as(n)?
                    .contiguous()?
                    .reshape(dims)?,
            ),
            Value::Int(i) => Value::Int(IntTensor {
                data: vec![i.data.first().copied().unwrap_or(0); n],
                dims,
            }),
        }
    })
}

/// ReduceMean / ReduceSum over the axes of the attribute or the second input.
fn reduce(op: &Op, inputs: &[Option<&Value>]) -> R<Value> {
    let Op::Reduce {
        mean,
        axes,
        keep_dims,
        noop_with_empty_axes,
    } = op
    else {
        candle_core::bail!("not a reduction");
    };
    let xf = || arg(inputs, 0)?.float("input");
    Ok({
        let x = xf()?;
        let axes = axes_of(axes, opt(inputs, 1))?;
        let axes: Vec<usize> = match axes {
            Some(a) if !a.is_empty() => a
                .iter()
                .map(|&v| norm_axis(v, x.rank()))
                .collect::<R<_>>()?,
            _ if *noop_with_empty_axes => return Ok(Value::Float(x.clone())),
            _ => (0..x.rank()).collect(),
        };
        let mut y = if *mean {
            x.mean_keepdim(axes.clone())?
        } else {
            x.sum_keepdim(axes.clone())?
        };
        if !keep_dims {
            let dims: Vec<usize> = x
                .dims()
                .iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, &d)| d)
                .collect();
            y = y.reshape(dims)?;
        }
        Value::Float(y)
    })
}

/// The arithmetic operators (convolutions, products, activations, pooling, BatchNorm).
fn compute(op: &Op, inputs: &[Option<&Value>]) -> R<Value> {
    let x = || arg(inputs, 0);
    let xf = || arg(inputs, 0)?.float("input");
    Ok(match op {
        Op::Conv { window, group } => {
            let bias = opt(inputs, 2).map(|b| b.float("bias")).transpose()?;
            Value::Float(conv(
                xf()?,
                arg(inputs, 1)?.float("weight")?,
                bias,
                window,
                *group,
            )?)
        }
        Op::Gemm {
            alpha,
            beta,
            trans_a,
            trans_b,
        } => {
            let mut a = xf()?.clone();
            let mut b = arg(inputs, 1)?.float("B")?.clone();
            if *trans_a {
                a = a.t()?;
            }
            if *trans_b {
                b = b.t()?;
            }
            let mut y = a.matmul(&b)?;
            if *alpha != 1.0 {
                y = y.affine(*alpha, 0.0)?;
            }
            if let Some(c) = opt(inputs, 2) {
                let c = c.float("C")?;
                let c = if *beta != 1.0 {
                    c.affine(*beta, 0.0)?
                } else {
                    c.clone()
                };
                y = y.broadcast_add(&c)?;
            }
            Value::Float(y)
        }
        Op::MatMul => {
            let (a, b) = (xf()?, arg(inputs, 1)?.float("B")?);
            if a.rank() < 2 || b.rank() < 2 {
                candle_core::bail!("MatMul of rank-1 operands is not supported");
            }
            Value::Float(a.broadcast_matmul(b)?)
        }
        Op::Binary(kind) => binary(*kind, x()?, arg(inputs, 1)?)?,
        Op::Relu => Value::Float(xf()?.relu()?),
        Op::LeakyRelu(alpha) => {
            let x = xf()?;
            let scaled = x.affine(*alpha, 0.0)?;
            Value::Float(if *alpha <= 1.0 {
                x.maximum(&scaled)?
            } else {
                x.minimum(&scaled)?
            })
        }
        // 0.5 (tanh(x / 2) + 1): finite gradient everywhere (1 / (1 + e^-x) overflows)
        Op::Sigmoid => Value::Float(xf()?.affine(0.5, 0.0)?.tanh()?.affine(0.5, 0.5)?),
        Op::Tanh => Value::Float(xf()?.tanh()?),
        Op::Erf => Value::Float(xf()?.erf()?),
        Op::Gelu { tanh } => Value::Float(if *tanh {
            xf()?.gelu()?
        } else {
            xf()?.gelu_erf()?
        }),
        Op::Softmax { axis, log } => Value::Float(softmax(xf()?, *axis, *log)?),
        Op::MaxPool(w) => Value::Float(max_pool(xf()?, w)?),
        Op::AveragePool {
            window,
            count_include_pad,
        } => {
            let geom = pool_geom(
                xf()?,
                window,
                PoolKind::Avg {
                    count_include_pad: *count_include_pad,
                },
            )?;
            Value::Float(pool2d(xf()?, geom)?)
        }
        Op::GlobalAveragePool => {
            let x = xf()?;
            if x.rank() != 4 {
                candle_core::bail!("GlobalAveragePool needs [b, c, h, w], got {:?}", x.dims());
            }
            Value::Float(x.mean_keepdim((2, 3))?)
        }
        Op::BatchNorm { eps } => {
            let p = |i: usize, what: &str| arg(inputs, i)?.float(what).cloned();
            let (scale, shift) = bn_affine(
                &p(1, "scale")?,
                &p(2, "B")?,
                &p(3, "mean")?,
                &p(4, "var")?,
                *eps,
            )?;
            Value::Float(apply_channel_affine(xf()?, &scale, &shift)?)
        }
        _ => candle_core::bail!("not an arithmetic operator"),
    })
}

pub(crate) fn scalar(v: &Value) -> R<f64> {
    match v.scalars()?.as_slice() {
        [s] => Ok(*s),
        other => candle_core::bail!("expected a scalar, got {} values", other.len()),
    }
}

pub(crate) fn int_to_float(i: &IntTensor, device: &candle_core::Device) -> R<Tensor> {
    let data: Vec<f32> = i.data.iter().map(|&v| v as f32).collect();
    Tensor::from_vec(data, i.dims.clone(), device)
}

/// The axes from the attribute (before opset 13) or the second input.
fn axes_of(attr: &Option<Vec<i64>>, input: Option<&Value>) -> R<Option<Vec<i64>>> {
    match (attr, input) {
        (Some(a), _) => Ok(Some(a.clone())),
        (None, Some(v)) => Ok(Some(v.int("axes")?.data.clone())),
        (None, None) => Ok(None),
    }
}

/// Per-channel `scale` and `shift` of an inference-mode BatchNorm:
/// `scale = gamma / sqrt(var + eps)`, `shift = beta - mean * scale`.
pub(crate) fn bn_affine(
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    eps: f64,
) -> R<(Tensor, Tensor)> {
    let scale = (gamma / var.affine(1.0, eps)?.sqrt()?)?;
    let shift = (beta - (mean * &scale)?)?;
    Ok((scale, shift))
}

/// `x * scale + shift` with `[C]` vectors broadcast over channel axis 1.
pub(crate) fn apply_channel_affine(x: &Tensor, scale: &Tensor, shift: &Tensor) -> R<Tensor> {
    let mut dims = vec![1; x.rank()];
    dims[1] = scale.dim(0)?;
    x.broadcast_mul(&scale.reshape(dims.clone())?)?
        .broadcast_add(&shift.reshape(dims)?)
}

fn binary(kind: Binary, a: &Value, b: &Value) -> R<Value> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => int_binary(kind, x, y).map(Value::Int),
        _ => {
            let to_f = |v: &Value| -> R<Tensor> {
                match v {
                    Value::Float(t) => Ok(t.clone()),
                    Value::Int(i) => int_to_float(i, &candle_core::Device::Cpu),
                }
            };
            let (x, y) = (to_f(a)?, to_f(b)?);
            Ok(Value::Float(match kind {
                Binary::Add => x.broadcast_add(&y)?,
                Binary::Sub => x.broadcast_sub(&y)?,
                Binary::Mul => x.broadcast_mul(&y)?,
                Binary::Div => x.broadcast_div(&y)?,
            }))
        }
    }
}

/// Integer arithmetic for shape computations: equal shapes or one side a single value.
fn int_binary(kind: Binary, x: &IntTensor, y: &IntTensor) -> R<IntTensor> {
    let f = |a: i64, b: i64| -> R<i64> {
        Ok(match kind {
            Binary::Add => a + b,
            Binary::Sub => a - b,
            Binary::Mul => a * b,
            Binary::Div if b == 0 => candle_core::bail!("integer division by zero"),
            Binary::Div => a.div_euclid(b),
        })
    };
    let (dims, data) = if x.data.len() == y.data.len() {
        let dims = if x.dims.len() >= y.dims.len() {
            x.dims.clone()
        } else {
            y.dims.clone()
        };
        (
            dims,
            x.data
                .iter()
                .zip(&y.data)
                .map(|(&a, &b)| f(a, b))
                .collect::<R<_>>()?,
        )
    } else if y.data.len() == 1 {
        (
            x.dims.clone(),
            x.data.iter().map(|&a| f(a, y.data[0])).collect::<R<_>>()?,
        )
    } else if x.data.len() == 1 {
        (
            y.dims.clone(),
            y.data.iter().map(|&b| f(x.data[0], b)).collect::<R<_>>()?,
        )
    } else {
        candle_core::bail!(
            "integer broadcast of {:?} and {:?} is not supported",
            x.dims,
            y.dims
        );
    };
    Ok(IntTensor { dims, data })
}

fn softmax(x: &Tensor, axis: i64, log: bool) -> R<Tensor> {
    let a = norm_axis(axis, x.rank())?;
    let shifted = x.broadcast_sub(&x.max_keepdim(a)?.detach())?;
    let e = shifted.exp()?;
    let s = e.sum_keepdim(a)?;
    if log {
        shifted.broadcast_sub(&s.log()?)
    } else {
        e.broadcast_div(&s)
    }
}

fn pool_geom(x: &Tensor, w: &Window, kind: PoolKind) -> R<PoolGeom> {
    let (_, _, h, wd) = x.dims4()?;
    let kernel = w.kernel.unwrap_or([1, 1]);
    Ok(PoolGeom {
        kind,
        kernel,
        stride: w.strides,
        dilation: w.dilations,
        pads: w.resolve_pads([h, wd], kernel),
        ceil_mode: w.ceil_mode,
    })
}

fn max_pool(x: &Tensor, w: &Window) -> R<Tensor> {
    let geom = pool_geom(x, w, PoolKind::Max)?;
    if geom.kernel == [2, 2]
        && geom.stride == [2, 2]
        && geom.dilation == [1, 1]
        && geom.pads == [0; 4]
        && !geom.ceil_mode
    {
        // netinv-models' fast 2x2 max-pool: same floor rule, same first-maximum gradient
        return netinv_models::ops::max_pool2x2(x);
    }
    pool2d(x, geom)
}

/// Conv on `[b, c, h, w]`: netinv-models' im2col + gemm op where it applies (stride 1,
/// dilation 1; groups as one op per group), candle's conv2d otherwise.
fn conv(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    window: &Window,
    group: usize,
) -> R<Tensor> {
    let (_, c, h, w) = x.dims4()?;
    let (co, cg, kh, kw) = weight.dims4()?;
    if let Some(k) = window.kernel {
        if k != [kh, kw] {
            candle_core::bail!(
                "kernel_shape {k:?} does not match the weight {:?}",
                weight.dims()
            );
        }
    }
    if c != cg * group || co % group != 0 {
        candle_core::bail!(
            "input has {c} channels, weight {:?} with group {group}",
            weight.dims()
        );
    }
    let [t, l, b, r] = window.resolve_pads([h, w], [kh, kw]);
    let fast = window.strides == [1, 1] && window.dilations == [1, 1];
    let symmetric = t == b && l == r && t == l;
    let (x, pad) = if symmetric {
        (x.clone(), t)
    } else {
        (x.pad_with_zeros(2, t, b)?.pad_with_zeros(3, l, r)?, 0)
    };
    if fast {
        let conv_one = |x: &Tensor, k: &Tensor, b: Option<Tensor>| -> R<Tensor> {
            match b {
                Some(b) => netinv_models::ops::conv2d_bias(x, k, &b, pad),
                None => netinv_models::ops::conv2d(x, k, pad),
            }
        };
        if group == 1 {
            return conv_one(&x, weight, bias.cloned());
        }
        let per = co / group;
        let parts = (0..group)
            .map(|g| {
                let xb = x.narrow(1, g * cg, cg)?;
                let kb = weight.narrow(0, g * per, per)?;
                conv_one(
                    &xb,
                    &kb,
                    bias.map(|b| b.narrow(0, g * per, per)).transpose()?,
                )
            })
            .collect::<R<Vec<_>>>()?;
        return Tensor::cat(&parts, 1);
    }
    if window.strides[0] != window.strides[1] || window.dilations[0] != window.dilations[1] {
        candle_core::bail!(
            "different strides / dilations along height and width need stride 1 and dilation 1"
        );
    }
    let y = x.conv2d(weight, pad, window.strides[0], window.dilations[0], group)?;
    match bias {
        Some(b) => y.broadcast_add(&b.reshape((1, co, 1, 1))?),
        None => Ok(y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape_ops::{concat, gather, target_shape, unsqueeze};

    #[test]
    fn reshape_targets_follow_onnx_rules() {
        assert_eq!(
            target_shape(&[2, 3, 4], &[0, -1], false).unwrap(),
            vec![2, 12]
        );
        assert_eq!(target_shape(&[2, 3, 4], &[-1], false).unwrap(), vec![24]);
        assert!(target_shape(&[2, 3, 4], &[5, -1], false).is_err());
        assert!(target_shape(&[2, 3, 4], &[-1, -1], false).is_err());
    }

    #[test]
    fn torch_flatten_chain_on_integers() {
        // Shape -> Gather(0) -> Unsqueeze(0) -> Concat([-1]) as torch exports x.view(b, -1)
        let shape = Value::Int(IntTensor::vector(vec![5, 8, 3, 3]));
        let idx = IntTensor {
            dims: vec![],
            data: vec![0],
        };
        let b = gather(&shape, &idx, 0).unwrap();
        let b1 = unsqueeze(&b, &[0]).unwrap();
        let minus = Value::Int(IntTensor::vector(vec![-1]));
        let target = concat(&[Some(&b1), Some(&minus)], 0).unwrap();
        let t = target.int("t").unwrap();
        assert_eq!(t.data, vec![5, -1]);
        assert_eq!(
            target_shape(&[5, 8, 3, 3], &t.data, false).unwrap(),
            vec![5, 72]
        );
    }

    #[test]
    fn softmax_rows_sum_to_one_and_log_matches() {
        let x = Tensor::new(
            &[[1.0f32, 2.0, 3.0], [-1.0, 0.0, 100.0]],
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let p = softmax(&x, -1, false).unwrap().to_vec2::<f32>().unwrap();
        for row in &p {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        let lp = softmax(&x, 1, true).unwrap().to_vec2::<f32>().unwrap();
        assert!((lp[0][2] - p[0][2].ln()).abs() < 1e-6);
        assert!(lp[1][0].is_finite());
    }
}
