//! Invert any image classifier a user brings: ONNX import for netinv's inversion engine.
//!
//! [`OnnxNet::load`] reads an `.onnx` image classifier (opset 13 to 21, float32, input
//! `[batch, C, H, W]` with any channel count and size, batch dynamic or 1, output
//! `[batch, classes]`) into a frozen candle network that implements
//! [`netinv_invert::InvertibleNet`]: logits and gradients with respect to the input image,
//! and, when the model has BatchNorm layers, the statistics DeepInversion's BN prior
//! ([`netinv_invert::BnStatsPrior`]) needs.
//!
//! Supported operators: Conv (groups, strides, pads, dilations, auto_pad), Gemm, MatMul,
//! Add, Sub, Mul, Div, Relu, LeakyRelu, Sigmoid, Tanh, Gelu, Erf, Softmax, LogSoftmax,
//! MaxPool, AveragePool, GlobalAveragePool, BatchNormalization (inference), Flatten,
//! Reshape, Transpose, Concat, Squeeze, Unsqueeze, Identity, Dropout (inference),
//! Constant, ConstantOfShape, Shape, Gather, Slice, Pad (constant / edge), Clip, Cast,
//! ReduceMean, ReduceSum. Anything
//! else is an [`Error::Unsupported`] naming the node, the op type and the attribute; never
//! a silent approximation.
//!
//! The ONNX protobuf messages are declared by hand in [`proto`] (prost derive, no
//! `protoc` at build time).
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use netinv_invert::InvertibleNet;
//! use netinv_onnx::proto::*;
//! use prost::Message;
//!
//! // A 2-class linear model on 1x2x2 images: Flatten, then Gemm with W = [[1, 1, 0, 0], [0, 0, 1, 1]].
//! let dim = |v: Option<i64>, p: &str| Dimension { dim_value: v, dim_param: v.is_none().then(|| p.to_string()) };
//! let input = ValueInfoProto {
//!     name: "x".into(),
//!     r#type: Some(TypeProto { tensor_type: Some(TypeProtoTensor {
//!         elem_type: FLOAT,
//!         shape: Some(TensorShapeProto { dim: vec![dim(None, "N"), dim(Some(1), ""), dim(Some(2), ""), dim(Some(2), "")] }),
//!     }) }),
//! };
//! let weight = TensorProto { name: "W".into(), dims: vec![2, 4], data_type: FLOAT,
//!     float_data: vec![1., 1., 0., 0., 0., 0., 1., 1.], ..Default::default() };
//! let node = |op: &str, i: &[&str], o: &str| NodeProto { op_type: op.into(), name: o.into(),
//!     input: i.iter().map(|s| s.to_string()).collect(), output: vec![o.into()], ..Default::default() };
//! let model = ModelProto {
//!     ir_version: 8,
//!     opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 17 }],
//!     graph: Some(GraphProto {
//!         node: vec![node("Flatten", &["x"], "f"), NodeProto {
//!             attribute: vec![AttributeProto { name: "transB".into(), r#type: 2, i: 1, ..Default::default() }],
//!             ..node("Gemm", &["f", "W"], "y") }],
//!         initializer: vec![weight],
//!         input: vec![input],
//!         output: vec![ValueInfoProto { name: "y".into(), r#type: None }],
//!         ..Default::default()
//!     }),
//!     ..Default::default()
//! };
//! let net = netinv_onnx::OnnxNet::from_bytes(&model.encode_to_vec())?;
//! assert_eq!((net.input_dims(), net.outputs()), ((1, 2, 2), 2));
//! let x = Tensor::new(&[1f32, 2., 3., 4.], &Device::Cpu)?.reshape((1, 1, 2, 2))?;
//! assert_eq!(net.logits(&x)?.to_vec2::<f32>()?, vec![vec![3.0, 7.0]]);
//! # Ok::<(), netinv_onnx::Error>(())
//! ```
//!
//! Conventions: images are f32 `[b, C, H, W]`; an optional per-channel [`Normalization`]
//! (from the command line or the model's `mean` / `std` metadata) maps images in [0, 1] to
//! the model's input range. CPU only.
#![warn(missing_docs)]

mod attrs;
mod error;
mod eval;
mod graph;
mod grid;
mod net;
mod op;
mod pool;
pub mod proto;
mod shape_ops;
mod value;

pub use error::{Error, Result};
pub use grid::{render_grid, write_grid_png};
pub use net::{ModelInfo, Normalization, OnnxNet, METADATA_MEAN, METADATA_STD, OPSET_RANGE};
