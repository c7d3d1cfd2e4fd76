//! Operators: what each supported ONNX node computes, parsed and checked at load time.

use candle_core::Device;

use crate::attrs::Attrs;
use crate::proto::NodeProto;
use crate::value::Value;
use crate::Result;

/// How `pads` are chosen (the `auto_pad` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AutoPad {
    /// Explicit `pads`.
    NotSet,
    /// No padding.
    Valid,
    /// `ceil(in / stride)` outputs, the extra pad at the end.
    SameUpper,
    /// `ceil(in / stride)` outputs, the extra pad at the start.
    SameLower,
}

/// The 2-d window geometry shared by Conv and the pooling ops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Window {
    /// Kernel `(kh, kw)`; `None` for Conv means "from the weight".
    pub kernel: Option<[usize; 2]>,
    /// Strides `(sh, sw)`.
    pub strides: [usize; 2],
    /// Dilations `(dh, dw)`.
    pub dilations: [usize; 2],
    /// Pads `(top, left, bottom, right)` (ONNX order: begins then ends).
    pub pads: [usize; 4],
    /// The auto_pad rule.
    pub auto_pad: AutoPad,
    /// Round the output size up (pooling's `ceil_mode`).
    pub ceil_mode: bool,
}

impl Window {
    /// The pads `(top, left, bottom, right)` for an input of `in_hw` and kernel `k`.
    pub fn resolve_pads(&self, in_hw: [usize; 2], k: [usize; 2]) -> [usize; 4] {
        match self.auto_pad {
            AutoPad::NotSet => self.pads,
            AutoPad::Valid => [0; 4],
            AutoPad::SameUpper | AutoPad::SameLower => {
                let mut p = [0; 4];
                for a in 0..2 {
                    let out = in_hw[a].div_ceil(self.strides[a]);
                    let span = (k[a] - 1) * self.dilations[a] + 1;
                    let total = ((out - 1) * self.strides[a] + span).saturating_sub(in_hw[a]);
                    let (small, big) = (total / 2, total - total / 2);
                    if self.auto_pad == AutoPad::SameUpper {
                        (p[a], p[a + 2]) = (small, big);
                    } else {
                        (p[a], p[a + 2]) = (big, small);
                    }
                }
                p
            }
        }
    }
}

/// An element-wise binary operator with numpy broadcasting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Binary {
    Add,
    Sub,
    Mul,
    Div,
}

/// A supported operator with its attributes.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Conv {
        window: Window,
        group: usize,
    },
    Gemm {
        alpha: f64,
        beta: f64,
        trans_a: bool,
        trans_b: bool,
    },
    MatMul,
    Binary(Binary),
    Relu,
    LeakyRelu(f64),
    Sigmoid,
    Tanh,
    Gelu {
        tanh: bool,
    },
    Erf,
    Softmax {
        axis: i64,
        log: bool,
    },
    MaxPool(Window),
    AveragePool {
        window: Window,
        count_include_pad: bool,
    },
    GlobalAveragePool,
    BatchNorm {
        eps: f64,
    },
    Flatten {
        axis: i64,
    },
    Reshape {
        allow_zero: bool,
    },
    Transpose {
        perm: Option<Vec<usize>>,
    },
    Concat {
        axis: i64,
    },
    Squeeze {
        axes: Option<Vec<i64>>,
    },
    Unsqueeze {
        axes: Option<Vec<i64>>,
    },
    Identity,
    Constant(Value),
    Shape {
        start: i64,
        end: Option<i64>,
    },
    Gather {
        axis: i64,
    },
    Slice,
    Pad {
        edge: bool,
    },
    Clip,
    Cast {
        to_float: bool,
    },
    Reduce {
        mean: bool,
        axes: Option<Vec<i64>>,
        keep_dims: bool,
        noop_with_empty_axes: bool,
    },
    ConstantOfShape(Value),
}

fn pair(a: &Attrs, name: &str, values: Option<Vec<i64>>, default: usize) -> Result<[usize; 2]> {
    match values {
        None => Ok([default; 2]),
        Some(v) if v.len() == 2 && v.iter().all(|&x| x >= 1) => Ok([v[0] as usize, v[1] as usize]),
        Some(v) => Err(a.unsupported(Some(name), format!("value {v:?} (2-d, >= 1 expected)"))),
    }
}

/// The window attributes of Conv / MaxPool / AveragePool.
fn window(a: &Attrs, pooling: bool) -> Result<Window> {
    let kernel = match a.ints("kernel_shape")? {
        None if pooling => return Err(a.unsupported(Some("kernel_shape"), "missing kernel_shape")),
        None => None,
        Some(k) => Some(pair(a, "kernel_shape", Some(k), 1)?),
    };
    let strides = pair(a, "strides", a.ints("strides")?, 1)?;
    let dilations = pair(a, "dilations", a.ints("dilations")?, 1)?;
    let pads = match a.ints("pads")? {
        None => [0; 4],
        Some(p) if p.len() == 4 && p.iter().all(|&x| x >= 0) => {
            [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize]
        }
        Some(p) => {
            return Err(a.unsupported(
                Some("pads"),
                format!("value {p:?} (4 values >= 0 expected)"),
            ))
        }
    };
    let auto_pad = match a.string("auto_pad", "NOTSET")?.as_str() {
        "NOTSET" => AutoPad::NotSet,
        "VALID" => AutoPad::Valid,
        "SAME_UPPER" => AutoPad::SameUpper,
        "SAME_LOWER" => AutoPad::SameLower,
        other => return Err(a.unsupported(Some("auto_pad"), format!("value `{other}`"))),
    };
    let ceil_mode = if pooling {
        a.int("ceil_mode", 0)? != 0
    } else {
        false
    };
    Ok(Window {
        kernel,
        strides,
        dilations,
        pads,
        auto_pad,
        ceil_mode,
    })
}

fn opt_axes(a: &Attrs) -> Result<Option<Vec<i64>>> {
    a.ints("axes")
}

/// Parses `node` into an [`Op`], reading and checking every attribute.
///
/// # Errors
/// [`crate::Error::Unsupported`] for an unknown operator, attribute or attribute value.
pub(crate) fn parse(node: &NodeProto, a: &Attrs, opset: i64, device: &Device) -> Result<Op> {
    let op = match node.op_type.as_str() {
        "Conv" => {
            let group = a.int("group", 1)?;
            if group < 1 {
                return Err(a.unsupported(Some("group"), format!("value {group}")));
            }
            Op::Conv {
                window: window(a, false)?,
                group: group as usize,
            }
        }
        "Gemm" => Op::Gemm {
            alpha: f64::from(a.float("alpha", 1.0)?),
            beta: f64::from(a.float("beta", 1.0)?),
            trans_a: a.int("transA", 0)? != 0,
            trans_b: a.int("transB", 0)? != 0,
        },
        "MatMul" => Op::MatMul,
        "Add" => Op::Binary(Binary::Add),
        "Sub" => Op::Binary(Binary::Sub),
        "Mul" => Op::Binary(Binary::Mul),
        "Div" => Op::Binary(Binary::Div),
        "Relu" => Op::Relu,
        "LeakyRelu" => Op::LeakyRelu(f64::from(a.float("alpha", 0.01)?)),
        "Sigmoid" => Op::Sigmoid,
        "Tanh" => Op::Tanh,
        "Erf" => Op::Erf,
        "Gelu" => match a.string("approximate", "none")?.as_str() {
            "none" => Op::Gelu { tanh: false },
            "tanh" => Op::Gelu { tanh: true },
            other => return Err(a.unsupported(Some("approximate"), format!("value `{other}`"))),
        },
        "Softmax" | "LogSoftmax" => Op::Softmax {
            axis: a.int("axis", -1)?,
            log: node.op_type == "LogSoftmax",
        },
        "MaxPool" => {
            if a.int("storage_order", 0)? != 0 {
                return Err(a.unsupported(Some("storage_order"), "column-major indices"));
            }
            Op::MaxPool(window(a, true)?)
        }
        "AveragePool" => Op::AveragePool {
            window: window(a, true)?,
            count_include_pad: a.int("count_include_pad", 0)? != 0,
        },
        "GlobalAveragePool" => Op::GlobalAveragePool,
        "BatchNormalization" => {
            a.ignore("momentum");
            if a.int("training_mode", 0)? != 0 {
                return Err(a.unsupported(Some("training_mode"), "training mode (inference only)"));
            }
            if a.int("spatial", 1)? != 1 {
                return Err(a.unsupported(Some("spatial"), "spatial = 0"));
            }
            Op::BatchNorm {
                eps: f64::from(a.float("epsilon", 1e-5)?),
            }
        }
        "Flatten" => Op::Flatten {
            axis: a.int("axis", 1)?,
        },
        "Reshape" => Op::Reshape {
            allow_zero: a.int("allowzero", 0)? != 0,
        },
        "Transpose" => Op::Transpose {
            perm: a
                .ints("perm")?
                .map(|p| p.into_iter().map(|v| v.max(0) as usize).collect()),
        },
        "Concat" => Op::Concat {
            axis: a.int("axis", 0)?,
        },
        "Squeeze" => Op::Squeeze { axes: opt_axes(a)? },
        "Unsqueeze" => Op::Unsqueeze { axes: opt_axes(a)? },
        "Identity" => Op::Identity,
        "Dropout" => {
            a.ignore("seed");
            Op::Identity
        }
        "Constant" => constant(a, device)?,
        "Shape" => Op::Shape {
            start: a.int("start", 0)?,
            end: a.find_int("end")?,
        },
        "Gather" => Op::Gather {
            axis: a.int("axis", 0)?,
        },
        "Slice" => Op::Slice,
        "Pad" => match a.string("mode", "constant")?.as_str() {
            "constant" => Op::Pad { edge: false },
            "edge" => Op::Pad { edge: true },
            other => return Err(a.unsupported(Some("mode"), format!("mode `{other}`"))),
        },
        "Clip" => Op::Clip,
        "Cast" => {
            let to = a.int("to", 0)?;
            a.ignore("saturate");
            match to {
                1 | 11 => Op::Cast { to_float: true },
                6 | 7 | 9 => Op::Cast { to_float: false },
                other => return Err(a.unsupported(Some("to"), format!("element type {other}"))),
            }
        }
        "ConstantOfShape" => {
            Op::ConstantOfShape(a.tensor("value", device)?.unwrap_or(Value::Float(
                candle_core::Tensor::zeros(1, candle_core::DType::F32, device)?,
            )))
        }
        "ReduceMean" | "ReduceSum" => Op::Reduce {
            mean: node.op_type == "ReduceMean",
            axes: opt_axes(a)?,
            keep_dims: a.int("keepdims", 1)? != 0,
            noop_with_empty_axes: a.int("noop_with_empty_axes", 0)? != 0,
        },
        other => {
            return Err(a.unsupported(None, format!("operator `{other}` (opset {opset})")));
        }
    };
    a.finish()?;
    Ok(op)
}

/// The value of a `Constant` node.
fn constant(a: &Attrs, device: &Device) -> Result<Op> {
    if let Some(v) = a.tensor("value", device)? {
        return Ok(Op::Constant(v));
    }
    let float = |v: Vec<f32>, dims: Vec<usize>| -> Result<Op> {
        Ok(Op::Constant(Value::Float(candle_core::Tensor::from_vec(
            v, dims, device,
        )?)))
    };
    if let Some(f) = a.find_float("value_float")? {
        return float(vec![f], vec![]);
    }
    if let Some(f) = a.floats("value_floats")? {
        let n = f.len();
        return float(f, vec![n]);
    }
    if let Some(i) = a.find_int("value_int")? {
        return Ok(Op::Constant(Value::Int(crate::value::IntTensor {
            dims: vec![],
            data: vec![i],
        })));
    }
    if let Some(i) = a.ints("value_ints")? {
        return Ok(Op::Constant(Value::Int(crate::value::IntTensor::vector(i))));
    }
    Err(a.unsupported(
        None,
        "a Constant without value / value_float(s) / value_int(s)",
    ))
}
