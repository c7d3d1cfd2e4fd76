//! Values flowing through a graph: float tensors on candle (differentiable) and small
//! integer tensors on the host (shapes, indices, axes), plus decoding of `TensorProto`.

use candle_core::{Device, Tensor};

use crate::proto::{self, TensorProto};
use crate::{Error, Result};

/// A host integer tensor: the shape arithmetic of an exported graph (`Shape` -> `Gather` ->
/// `Concat` -> `Reshape`) runs on these, so it never enters candle's autograd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IntTensor {
    /// The shape (empty for a scalar).
    pub dims: Vec<usize>,
    /// Row-major values.
    pub data: Vec<i64>,
}

impl IntTensor {
    /// A 1-d tensor holding `data`.
    pub fn vector(data: Vec<i64>) -> Self {
        Self {
            dims: vec![data.len()],
            data,
        }
    }
}

/// A value of the graph.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// A float tensor (f32), possibly depending on the input image.
    Float(Tensor),
    /// A host integer (or boolean) tensor.
    Int(IntTensor),
}

impl Value {
    /// The shape.
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Value::Float(t) => t.dims().to_vec(),
            Value::Int(i) => i.dims.clone(),
        }
    }

    /// The float tensor, or an error naming `what`.
    pub fn float(&self, what: &str) -> candle_core::Result<&Tensor> {
        match self {
            Value::Float(t) => Ok(t),
            Value::Int(_) => {
                candle_core::bail!("{what} must be a float tensor, got an integer one")
            }
        }
    }

    /// The integer tensor, or an error naming `what`.
    pub fn int(&self, what: &str) -> candle_core::Result<&IntTensor> {
        match self {
            Value::Int(i) => Ok(i),
            Value::Float(_) => {
                candle_core::bail!("{what} must be an integer tensor known without the image")
            }
        }
    }

    /// The value as f64 numbers on the host (for scalar float inputs such as Clip bounds).
    pub fn scalars(&self) -> candle_core::Result<Vec<f64>> {
        match self {
            Value::Float(t) => t
                .flatten_all()?
                .to_dtype(candle_core::DType::F64)?
                .to_vec1::<f64>(),
            Value::Int(i) => Ok(i.data.iter().map(|&v| v as f64).collect()),
        }
    }
}

/// Little-endian fixed-width chunks of `raw` decoded by `f`, checked against `count`.
fn raw_values<T, const N: usize>(
    raw: &[u8],
    count: usize,
    name: &str,
    f: fn([u8; N]) -> T,
) -> Result<Vec<T>> {
    if raw.len() != count * N {
        return Err(Error::Format(format!(
            "tensor `{name}`: raw data has {} bytes, its shape needs {}",
            raw.len(),
            count * N
        )));
    }
    Ok(raw
        .chunks_exact(N)
        .map(|c| {
            let mut bytes = [0u8; N];
            bytes.copy_from_slice(c);
            f(bytes)
        })
        .collect())
}

/// Decodes a `TensorProto` (FLOAT and DOUBLE become f32 candle tensors; INT64, INT32 and
/// BOOL become host integer tensors).
///
/// # Errors
/// [`Error::Format`] for negative dimensions or data that does not match the shape,
/// [`Error::NotImageModel`] for external data or another element type.
pub(crate) fn decode_tensor(t: &TensorProto, device: &Device) -> Result<Value> {
    let name = t.name.as_str();
    if t.data_location == 1 || !t.external_data.is_empty() {
        return Err(Error::NotImageModel(format!(
            "tensor `{name}` keeps its data in an external file; save the model with the data inside"
        )));
    }
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| Error::Format(format!("tensor `{name}` has a negative dimension")))?;
    let count: usize = dims.iter().product();
    let raw = !t.raw_data.is_empty();
    let check = |n: usize| -> Result<()> {
        if n != count {
            return Err(Error::Format(format!(
                "tensor `{name}` has {n} values, its shape {dims:?} needs {count}"
            )));
        }
        Ok(())
    };
    match t.data_type {
        proto::FLOAT | proto::DOUBLE => {
            let data: Vec<f32> = match (t.data_type, raw) {
                (proto::FLOAT, true) => raw_values(&t.raw_data, count, name, f32::from_le_bytes)?,
                (proto::FLOAT, false) => t.float_data.clone(),
                (_, true) => raw_values(&t.raw_data, count, name, f64::from_le_bytes)?
                    .into_iter()
                    .map(|v| v as f32)
                    .collect(),
                (_, false) => t.double_data.iter().map(|&v| v as f32).collect(),
            };
            check(data.len())?;
            Ok(Value::Float(Tensor::from_vec(data, dims, device)?))
        }
        proto::INT64 | proto::INT32 | proto::BOOL => {
            let data: Vec<i64> = match (t.data_type, raw) {
                (proto::INT64, true) => raw_values(&t.raw_data, count, name, i64::from_le_bytes)?,
                (proto::INT64, false) => t.int64_data.clone(),
                (proto::INT32, true) => raw_values(&t.raw_data, count, name, i32::from_le_bytes)?
                    .into_iter()
                    .map(i64::from)
                    .collect(),
                (_, true) => t.raw_data.iter().map(|&b| i64::from(b != 0)).collect(),
                (_, false) => t.int32_data.iter().map(|&v| i64::from(v)).collect(),
            };
            check(data.len())?;
            Ok(Value::Int(IntTensor { dims, data }))
        }
        other => Err(Error::NotImageModel(format!(
            "tensor `{name}` has element type {other}; only float32 / float64 weights and integer shape tensors are supported"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_typed_data_decode_alike() {
        let raw: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let a = TensorProto {
            dims: vec![2],
            data_type: proto::FLOAT,
            raw_data: raw,
            ..Default::default()
        };
        let b = TensorProto {
            dims: vec![2],
            data_type: proto::FLOAT,
            float_data: vec![1.5, -2.0],
            ..Default::default()
        };
        for t in [a, b] {
            let v = decode_tensor(&t, &Device::Cpu).unwrap();
            assert_eq!(v.scalars().unwrap(), vec![1.5, -2.0]);
        }
        let ints = TensorProto {
            dims: vec![3],
            data_type: proto::INT64,
            raw_data: [-1i64, 0, 7].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        };
        let v = decode_tensor(&ints, &Device::Cpu).unwrap();
        assert_eq!(v.int("x").unwrap().data, vec![-1, 0, 7]);
    }

    #[test]
    fn short_data_is_a_format_error() {
        let t = TensorProto {
            dims: vec![2, 2],
            data_type: proto::FLOAT,
            float_data: vec![1.0; 3],
            ..Default::default()
        };
        assert!(matches!(
            decode_tensor(&t, &Device::Cpu),
            Err(Error::Format(_))
        ));
        let t = TensorProto {
            dims: vec![1],
            data_type: 10, // FLOAT16
            ..Default::default()
        };
        assert!(matches!(
            decode_tensor(&t, &Device::Cpu),
            Err(Error::NotImageModel(_))
        ));
    }
}
