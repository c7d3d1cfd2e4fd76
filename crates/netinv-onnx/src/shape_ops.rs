//! Shape and indexing operators (Reshape, Transpose, Concat, Squeeze, Unsqueeze, Gather,
//! Slice, Pad) on float tensors and host integer tensors.

use candle_core::Tensor;

use crate::eval::{arg, int_to_float, norm_axis, opt, scalar};
use crate::value::{IntTensor, Value};

type R<T> = candle_core::Result<T>;

pub(crate) fn reshape(v: &Value, dims: &[usize]) -> R<Value> {
    match v {
        Value::Float(t) => Ok(Value::Float(t.reshape(dims)?)),
        Value::Int(i) => {
            if dims.iter().product::<usize>() != i.data.len() {
                candle_core::bail!("cannot reshape {:?} to {dims:?}", i.dims);
            }
            Ok(Value::Int(IntTensor {
                dims: dims.to_vec(),
                data: i.data.clone(),
            }))
        }
    }
}

/// ONNX Reshape's target: `0` copies the input's dimension (unless `allow_zero`), `-1` is
/// inferred.
pub(crate) fn target_shape(input: &[usize], shape: &[i64], allow_zero: bool) -> R<Vec<usize>> {
    let total: usize = input.iter().product();
    let mut dims = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &s) in shape.iter().enumerate() {
        match s {
            0 if !allow_zero => match input.get(i) {
                Some(&d) => dims.push(d),
                None => candle_core::bail!("Reshape copies dimension {i} the input lacks"),
            },
            -1 if infer.is_none() => {
                infer = Some(i);
                dims.push(1);
            }
            s if s >= 0 => dims.push(s as usize),
            _ => candle_core::bail!("invalid Reshape target {shape:?}"),
        }
    }
    let known: usize = dims.iter().product();
    if let Some(i) = infer {
        if known == 0 || total % known != 0 {
            candle_core::bail!("cannot reshape {input:?} to {shape:?}");
        }
        dims[i] = total / known;
    }
    if dims.iter().product::<usize>() != total {
        candle_core::bail!("cannot reshape {input:?} ({total} values) to {shape:?}");
    }
    Ok(dims)
}

pub(crate) fn transpose(v: &Value, perm: Option<&[usize]>) -> R<Value> {
    let rank = v.dims().len();
    let perm: Vec<usize> = perm.map_or_else(|| (0..rank).rev().collect(), <[usize]>::to_vec);
    let mut sorted = perm.clone();
    sorted.sort_unstable();
    if sorted != (0..rank).collect::<Vec<_>>() {
        candle_core::bail!("perm {perm:?} is not a permutation of rank {rank}");
    }
    match v {
        Value::Float(t) => Ok(Value::Float(t.permute(perm)?.contiguous()?)),
        Value::Int(i) => {
            let dims: Vec<usize> = perm.iter().map(|&p| i.dims[p]).collect();
            let strides: Vec<usize> = (0..rank)
                .map(|a| i.dims[a + 1..].iter().product())
                .collect();
            let mut data = Vec::with_capacity(i.data.len());
            let mut index = vec![0usize; rank];
            for _ in 0..i.data.len() {
                data.push(
                    i.data[index
                        .iter()
                        .zip(&perm)
                        .map(|(&x, &p)| x * strides[p])
                        .sum::<usize>()],
                );
                for a in (0..rank).rev() {
                    index[a] += 1;
                    if index[a] < dims[a] {
                        break;
                    }
                    index[a] = 0;
                }
            }
            Ok(Value::Int(IntTensor { dims, data }))
        }
    }
}

pub(crate) fn concat(inputs: &[Option<&Value>], axis: i64) -> R<Value> {
    let values: Vec<&Value> = inputs.iter().flatten().copied().collect();
    if values.is_empty() {
        candle_core::bail!("Concat without inputs");
    }
    if values.iter().all(|v| matches!(v, Value::Int(_))) {
        let mut data = Vec::new();
        for v in &values {
            let i = v.int("input")?;
            if i.dims.len() > 1 {
                candle_core::bail!("Concat of integer tensors of rank > 1");
            }
            data.extend_from_slice(&i.data);
        }
        return Ok(Value::Int(IntTensor::vector(data)));
    }
    let tensors = values
        .iter()
        .map(|v| match v {
            Value::Float(t) => Ok(t.clone()),
            Value::Int(i) => int_to_float(i, &candle_core::Device::Cpu),
        })
        .collect::<R<Vec<_>>>()?;
    let a = norm_axis(axis, tensors[0].rank())?;
    Ok(Value::Float(Tensor::cat(&tensors, a)?))
}

pub(crate) fn squeeze(v: &Value, axes: Option<&[i64]>) -> R<Value> {
    let dims = v.dims();
    let remove: Vec<usize> = match axes {
        Some(a) => a
            .iter()
            .map(|&x| norm_axis(x, dims.len()))
            .collect::<R<_>>()?,
        None => (0..dims.len()).filter(|&i| dims[i] == 1).collect(),
    };
    if let Some(&bad) = remove.iter().find(|&&i| dims[i] != 1) {
        candle_core::bail!("Squeeze of axis {bad} of size {}", dims[bad]);
    }
    let kept: Vec<usize> = (0..dims.len())
        .filter(|i| !remove.contains(i))
        .map(|i| dims[i])
        .collect();
    reshape(v, &kept)
}

pub(crate) fn unsqueeze(v: &Value, axes: &[i64]) -> R<Value> {
    let mut dims = v.dims();
    let rank = dims.len() + axes.len();
    let mut positions = axes
        .iter()
        .map(|&a| norm_axis(a, rank))
        .collect::<R<Vec<_>>>()?;
    positions.sort_unstable();
    for p in positions {
        dims.insert(p.min(dims.len()), 1);
    }
    reshape(v, &dims)
}

pub(crate) fn gather(data: &Value, indices: &IntTensor, axis: i64) -> R<Value> {
    let dims = data.dims();
    let a = norm_axis(axis, dims.len())?;
    let n = dims[a] as i64;
    let idx = indices
        .data
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + n } else { i };
            if (0..n).contains(&j) {
                Ok(j as usize)
            } else {
                candle_core::bail!("Gather index {i} out of range {n}")
            }
        })
        .collect::<R<Vec<_>>>()?;
    if indices.dims.len() > 1 {
        candle_core::bail!(
            "Gather with indices of rank {} is not supported",
            indices.dims.len()
        );
    }
    let picked = take(data, a, &idx)?;
    if indices.dims.is_empty() {
        squeeze(&picked, Some(&[a as i64]))
    } else {
        Ok(picked)
    }
}

/// The indices ONNX Slice picks along an axis of length `n` (negative steps walk back).
fn slice_indices(start: i64, end: i64, step: i64, n: i64) -> R<Vec<usize>> {
    let wrap = |v: i64| if v < 0 { v + n } else { v };
    let mut idx = Vec::new();
    if step > 0 {
        let (s, e) = (wrap(start).clamp(0, n), wrap(end).clamp(0, n));
        let mut j = s;
        while j < e {
            idx.push(j as usize);
            j += step;
        }
    } else if step < 0 {
        let (s, e) = (wrap(start).clamp(0, n - 1), wrap(end).clamp(-1, n - 1));
        let mut j = s;
        while j > e {
            idx.push(j as usize);
            j += step;
        }
    } else {
        candle_core::bail!("Slice with step 0");
    }
    Ok(idx)
}

/// The entries `idx` along `axis` of an integer tensor.
fn int_take(i: &IntTensor, axis: usize, idx: &[usize]) -> IntTensor {
    let n = i.dims[axis];
    let outer: usize = i.dims[..axis].iter().product();
    let inner: usize = i.dims[axis + 1..].iter().product();
    let mut data = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &j in idx {
            data.extend_from_slice(&i.data[(o * n + j) * inner..(o * n + j + 1) * inner]);
        }
    }
    let mut dims = i.dims.clone();
    dims[axis] = idx.len();
    IntTensor { dims, data }
}

/// The entries `idx` along `axis` of a value: a narrow for a contiguous run, an
/// index_select (differentiable) otherwise.
fn take(v: &Value, axis: usize, idx: &[usize]) -> R<Value> {
    match v {
        Value::Int(i) => Ok(Value::Int(int_take(i, axis, idx))),
        Value::Float(t) => {
            let contiguous = idx.windows(2).all(|w| w[1] == w[0] + 1);
            if contiguous && !idx.is_empty() {
                return Ok(Value::Float(t.narrow(axis, idx[0], idx.len())?));
            }
            if idx.is_empty() {
                return Ok(Value::Float(t.narrow(axis, 0, 0)?));
            }
            let ids = Tensor::from_vec(
                idx.iter().map(|&j| j as u32).collect::<Vec<_>>(),
                idx.len(),
                t.device(),
            )?;
            Ok(Value::Float(t.index_select(&ids, axis)?))
        }
    }
}

/// Slice with ONNX's clamping of starts and ends and any non-zero steps.
pub(crate) fn slice(inputs: &[Option<&Value>]) -> R<Value> {
    let data = arg(inputs, 0)?;
    let dims = data.dims();
    let starts = &arg(inputs, 1)?.int("starts")?.data;
    let ends = &arg(inputs, 2)?.int("ends")?.data;
    let axes: Vec<i64> = match opt(inputs, 3) {
        Some(v) => v.int("axes")?.data.clone(),
        None => (0..starts.len() as i64).collect(),
    };
    let steps: Vec<i64> = match opt(inputs, 4) {
        Some(v) => v.int("steps")?.data.clone(),
        None => vec![1; starts.len()],
    };
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        candle_core::bail!("Slice: starts, ends, axes and steps differ in length");
    }
    let mut out = data.clone();
    for k in 0..starts.len() {
        let a = norm_axis(axes[k], dims.len())?;
        let idx = slice_indices(starts[k], ends[k], steps[k], dims[a] as i64)?;
        out = take(&out, a, &idx)?;
    }
    Ok(out)
}

pub(crate) fn pad(inputs: &[Option<&Value>], edge: bool) -> R<Value> {
    let x = arg(inputs, 0)?.float("data")?;
    let rank = x.rank();
    let pads = &arg(inputs, 1)?.int("pads")?.data;
    let axes: Vec<usize> = match opt(inputs, 3) {
        Some(v) => v
            .int("axes")?
            .data
            .iter()
            .map(|&a| norm_axis(a, rank))
            .collect::<R<_>>()?,
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        candle_core::bail!("Pad: {} pads for {} axes", pads.len(), axes.len());
    }
    let value = match opt(inputs, 2) {
        Some(v) => scalar(v)?,
        None => 0.0,
    };
    let mut y = if value != 0.0 {
        x.affine(1.0, -value)?
    } else {
        x.clone()
    };
    for (k, &a) in axes.iter().enumerate() {
        let (begin, end) = (pads[k], pads[k + axes.len()]);
        if begin < 0 || end < 0 {
            let n = y.dim(a)? as i64;
            let (s, e) = ((-begin).max(0), n - (-end).max(0));
            y = y.narrow(a, s as usize, (e - s).max(0) as usize)?;
        }
        let (b, e) = (begin.max(0) as usize, end.max(0) as usize);
        if b + e > 0 {
            y = if edge {
                y.pad_with_same(a, b, e)?
            } else {
                y.pad_with_zeros(a, b, e)?
            };
        }
    }
    Ok(Value::Float(if value != 0.0 {
        y.affine(1.0, value)?
    } else {
        y
    }))
}
