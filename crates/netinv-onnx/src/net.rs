//! [`OnnxNet`]: an ONNX image classifier as a frozen network for the inversion engine.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use ndarray::{Array2, ArrayView4};
use netinv_invert::{BnLayerStats, InvertibleNet};
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::eval::apply_channel_affine;
use crate::graph::{Graph, StatsMode};
use crate::proto::{self, ModelProto, ValueInfoProto};
use crate::value::Value;
use crate::{Error, Result};

/// The lowest and highest supported opset of the default (`ai.onnx`) domain.
pub const OPSET_RANGE: (i64, i64) = (13, 21);

/// Metadata keys read by [`OnnxNet::metadata_normalization`]: comma-separated per-channel
/// values, e.g. `mean = "0.485,0.456,0.406"`, `std = "0.229,0.224,0.225"`.
pub const METADATA_MEAN: &str = "mean";
/// See [`METADATA_MEAN`].
pub const METADATA_STD: &str = "std";

/// Facts about a loaded model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The producer (e.g. `pytorch 2.9.0`).
    pub producer: String,
    /// The default-domain opset.
    pub opset: i64,
    /// The image input's name.
    pub input_name: String,
    /// The output's name.
    pub output_name: String,
    /// Nodes in the file.
    pub nodes: usize,
    /// BatchNorm layers whose statistics feed the BN prior (folded or not).
    pub batch_norm_layers: usize,
    /// The model's metadata entries.
    pub metadata: Vec<(String, String)>,
}

/// Per-channel input normalisation `x' = (x - mean[c]) / std[c]`, applied before the
/// model, so the inversion works on images in [0, 1] for a model trained on normalised
/// inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Per-channel means.
    pub mean: Vec<f32>,
    /// Per-channel standard deviations (> 0).
    pub std: Vec<f32>,
}

impl Normalization {
    /// Checks that both lists have `channels` finite entries (one entry is repeated for
    /// every channel) and every std is > 0; returns the expanded lists.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] otherwise.
    pub fn for_channels(&self, channels: usize) -> Result<Self> {
        let expand = |v: &[f32], field: &'static str| -> Result<Vec<f32>> {
            let v = match v.len() {
                1 => vec![v[0]; channels],
                n if n == channels => v.to_vec(),
                n => {
                    return Err(Error::InvalidConfig {
                        field,
                        reason: format!("{n} values for a model with {channels} channels"),
                    })
                }
            };
            if v.iter().any(|x| !x.is_finite()) {
                return Err(Error::InvalidConfig {
                    field,
                    reason: "values must be finite".into(),
                });
            }
            Ok(v)
        };
        let mean = expand(&self.mean, "mean")?;
        let std = expand(&self.std, "std")?;
        if std.iter().any(|&s| s <= 0.0) {
            return Err(Error::InvalidConfig {
                field: "std",
                reason: "values must be > 0".into(),
            });
        }
        Ok(Self { mean, std })
    }
}

/// An ONNX image classifier loaded as a frozen candle network: inputs `[b, C, H, W]` f32,
/// outputs `[b, classes]`, differentiable with respect to the input; the weights are plain
/// tensors, so a backward pass computes no weight gradients.
///
/// Conv, max-pool and BatchNorm go to netinv-models' fast ops where they apply (stride-1
/// convolutions as im2col + gemm, 2x2 max-pooling, BatchNorm folded into the preceding
/// convolution); constant sub-graphs (shape arithmetic, weight transposes) are evaluated
/// once at load.
#[derive(Debug, Clone)]
pub struct OnnxNet {
    graph: Graph,
    dims: (usize, usize, usize),
    outputs: usize,
    normalization: Option<(Tensor, Tensor, Normalization)>,
    info: ModelInfo,
}

fn dims_of(v: &ValueInfoProto) -> Result<(i32, Vec<Option<i64>>)> {
    let t = v
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .ok_or_else(|| Error::NotImageModel(format!("input `{}` is not a tensor", v.name)))?;
    let dims = t
        .shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| d.dim_value.filter(|&v| v > 0))
                .collect()
        })
        .unwrap_or_default();
    Ok((t.elem_type, dims))
}

impl OnnxNet {
    /// Loads the model at `path`.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; as [`OnnxNet::from_bytes`] otherwise.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }

    /// Loads a model from the bytes of an `.onnx` file (CPU).
    ///
    /// # Errors
    /// [`Error::Format`] for bytes that are not an ONNX model; [`Error::NotImageModel`]
    /// for an opset outside 13..=21, an input that is not one float32 `[batch, C, H, W]`
    /// tensor with batch dynamic or 1, or an output that is not `[batch, classes]`;
    /// [`Error::Unsupported`] naming the node, op type and attribute for anything outside
    /// the supported operators; [`Error::Node`] if evaluating a node on a zero image fails.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        // the allocator setting every network run profits from (page faults otherwise)
        netinv_core::retain_freed_memory_once();
        let model = ModelProto::decode(bytes)
            .map_err(|e| Error::Format(format!("protobuf decoding failed: {e}")))?;
        let graph = model
            .graph
            .as_ref()
            .filter(|g| !g.node.is_empty() || !g.output.is_empty())
            .ok_or_else(|| Error::Format("the file holds no graph".into()))?;
        let opset = model
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
            .ok_or_else(|| Error::Format("no opset import for the default domain".into()))?;
        if !(OPSET_RANGE.0..=OPSET_RANGE.1).contains(&opset) {
            return Err(Error::NotImageModel(format!(
                "opset {opset} is outside the supported {}..={}",
                OPSET_RANGE.0, OPSET_RANGE.1
            )));
        }
        let initialized: std::collections::HashSet<&str> =
            graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs: Vec<&ValueInfoProto> = graph
            .input
            .iter()
            .filter(|i| !initialized.contains(i.name.as_str()))
            .collect();
        let [input] = inputs.as_slice() else {
            let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
            return Err(Error::NotImageModel(format!(
                "expected one image input, found {} ({names:?})",
                names.len()
            )));
        };
        let dims = Self::image_dims(input)?;
        let device = Device::Cpu;
        let compiled = Graph::compile(graph, &input.name, opset, &device)?;
        let info = ModelInfo {
            producer: format!("{} {}", model.producer_name, model.producer_version)
                .trim()
                .to_string(),
            opset,
            input_name: input.name.clone(),
            output_name: graph
                .output
                .first()
                .map(|o| o.name.clone())
                .unwrap_or_default(),
            nodes: graph.node.len(),
            batch_norm_layers: 0,
            metadata: model
                .metadata_props
                .iter()
                .map(|e| (e.key.clone(), e.value.clone()))
                .collect(),
        };
        let mut net = Self {
            graph: compiled,
            dims,
            outputs: 0,
            normalization: None,
            info,
        };
        // A probe on a zero image checks every node and gives the number of classes.
        let (c, h, w) = dims;
        let zeros = Tensor::zeros((1, c, h, w), DType::F32, &device)?;
        let (out, stats) = net.graph.run(&zeros, StatsMode::Batch)?;
        net.info.batch_norm_layers = stats.len();
        net.outputs = match out {
            Value::Float(t) if t.dims().len() == 2 && t.dim(0)? == 1 && t.dim(1)? >= 1 => {
                t.dim(1)?
            }
            other => {
                return Err(Error::NotImageModel(format!(
                "the output of a [1, {c}, {h}, {w}] input has shape {:?}; expected [1, classes]",
                other.dims()
            )))
            }
        };
        Ok(net)
    }

    /// `(C, H, W)` of the image input, checked.
    fn image_dims(input: &ValueInfoProto) -> Result<(usize, usize, usize)> {
        let (elem, dims) = dims_of(input)?;
        if elem != proto::FLOAT {
            return Err(Error::NotImageModel(format!(
                "input `{}` has element type {elem}; float32 (1) is required",
                input.name
            )));
        }
        let [batch, c, h, w] = dims.as_slice() else {
            return Err(Error::NotImageModel(format!(
                "input `{}` has rank {}; an image classifier takes [batch, C, H, W]",
                input.name,
                dims.len()
            )));
        };
        if matches!(batch, Some(b) if *b != 1) {
            return Err(Error::NotImageModel(format!(
                "input `{}` has a fixed batch of {}; the batch must be dynamic or 1",
                input.name,
                batch.unwrap_or(0)
            )));
        }
        match (c, h, w) {
            (Some(c), Some(h), Some(w)) => Ok((*c as usize, *h as usize, *w as usize)),
            _ => Err(Error::NotImageModel(format!(
                "input `{}` needs fixed channel, height and width sizes, got {dims:?}",
                input.name
            ))),
        }
    }

    /// Facts about the model.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The normalisation applied in front of the model, if any.
    pub fn normalization(&self) -> Option<&Normalization> {
        self.normalization.as_ref().map(|(_, _, n)| n)
    }

    /// The per-channel normalisation stored in the model's metadata under
    /// [`METADATA_MEAN`] and [`METADATA_STD`], if both are present.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if a value is not a comma-separated list of numbers.
    pub fn metadata_normalization(&self) -> Result<Option<Normalization>> {
        let get = |key: &str| {
            self.info
                .metadata
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let parse = |s: String, field: &'static str| -> Result<Vec<f32>> {
            s.split(',')
                .map(|v| v.trim().parse::<f32>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| Error::InvalidConfig {
                    field,
                    reason: format!("metadata `{s}`: {e}"),
                })
        };
        match (get(METADATA_MEAN), get(METADATA_STD)) {
            (Some(m), Some(s)) => Ok(Some(Normalization {
                mean: parse(m, "mean")?,
                std: parse(s, "std")?,
            })),
            _ => Ok(None),
        }
    }

    /// Applies `norm` (or none) in front of the model from now on.
    ///
    /// # Errors
    /// As [`Normalization::for_channels`].
    pub fn set_normalization(&mut self, norm: Option<Normalization>) -> Result<()> {
        self.normalization = match norm {
            None => None,
            Some(n) => {
                let n = n.for_channels(self.dims.0)?;
                let scale: Vec<f32> = n.std.iter().map(|s| 1.0 / s).collect();
                let shift: Vec<f32> = n.mean.iter().zip(&n.std).map(|(m, s)| -m / s).collect();
                let c = scale.len();
                Some((
                    Tensor::from_vec(scale, c, &Device::Cpu)?,
                    Tensor::from_vec(shift, c, &Device::Cpu)?,
                    n,
                ))
            }
        };
        Ok(())
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        let (c, h, w) = self.dims;
        if x.rank() != 4 || x.dims()[1..] != [c, h, w] || x.dim(0)? == 0 || x.dtype() != DType::F32
        {
            return Err(Error::Shape {
                expected: format!("f32 [b >= 1, {c}, {h}, {w}]"),
                got: format!("{:?} {:?}", x.dtype(), x.dims()),
            });
        }
        Ok(())
    }

    fn run(&self, x: &Tensor, mode: StatsMode) -> Result<(Tensor, Vec<BnLayerStats>)> {
        self.check_input(x)?;
        let x = match &self.normalization {
            Some((scale, shift, _)) => apply_channel_affine(x, scale, shift)?,
            None => x.clone(),
        };
        let (out, stats) = self.graph.run(&x, mode)?;
        match out {
            Value::Float(t) if t.rank() == 2 && t.dim(0)? == x.dim(0)? => Ok((t, stats)),
            other => Err(Error::Shape {
                expected: format!("output [{}, {}]", x.dim(0)?, self.outputs),
                got: format!("{:?}", other.dims()),
            }),
        }
    }

    /// Logits `[b, classes]` for `x` `[b, C, H, W]` (after the normalisation, if set).
    ///
    /// # Errors
    /// [`Error::Shape`] for a wrong input shape or dtype; [`Error::Node`] naming a node
    /// that fails.
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.run(x, StatsMode::Off)?.0)
    }

    /// Logits `[n, classes]` of `images` `[n, C, H, W]`, in batches of `batch`.
    ///
    /// # Errors
    /// As [`OnnxNet::logits`]; [`Error::InvalidConfig`] for `batch == 0`.
    pub fn classify(&self, images: ArrayView4<f32>, batch: usize) -> Result<Array2<f32>> {
        if batch == 0 {
            return Err(Error::InvalidConfig {
                field: "batch",
                reason: "must be at least 1".into(),
            });
        }
        let (n, c, h, w) = images.dim();
        let mut out = Vec::with_capacity(n * self.outputs);
        let mut start = 0;
        while start < n {
            let m = batch.min(n - start);
            let chunk = images.slice(ndarray::s![start..start + m, .., .., ..]);
            let data: Vec<f32> = chunk.iter().copied().collect();
            let x = Tensor::from_vec(data, (m, c, h, w), &Device::Cpu)?;
            out.extend(self.logits(&x)?.flatten_all()?.to_vec1::<f32>()?);
            start += m;
        }
        Array2::from_shape_vec((n, self.outputs), out).map_err(|e| Error::Shape {
            expected: format!("[{n}, {}]", self.outputs),
            got: e.to_string(),
        })
    }
}

impl InvertibleNet for OnnxNet {
    fn input_dims(&self) -> (usize, usize, usize) {
        self.dims
    }

    fn outputs(&self) -> usize {
        self.outputs
    }

    fn forward(&self, x: &Tensor) -> netinv_invert::Result<Tensor> {
        Ok(self.logits(x)?)
    }

    fn has_batch_norm(&self) -> bool {
        self.info.batch_norm_layers > 0
    }

    fn forward_with_bn_stats(
        &self,
        x: &Tensor,
    ) -> netinv_invert::Result<(Tensor, Vec<BnLayerStats>)> {
        Ok(self.run(x, StatsMode::Batch)?)
    }

    fn forward_with_image_bn_stats(
        &self,
        x: &Tensor,
    ) -> netinv_invert::Result<(Tensor, Vec<BnLayerStats>)> {
        Ok(self.run(x, StatsMode::PerImage)?)
    }
}
