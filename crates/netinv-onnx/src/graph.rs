//! The compiled graph: nodes as steps over numbered value slots, constants folded at load,
//! BatchNorm folded into the preceding convolution, values freed after their last use.

use std::collections::{HashMap, HashSet};

use candle_core::{Device, Tensor};
use netinv_invert::BnLayerStats;

use crate::attrs::Attrs;
use crate::eval::{bn_affine, eval};
use crate::op::{parse, Op};
use crate::proto::GraphProto;
use crate::value::{decode_tensor, Value};
use crate::{Error, Result};

/// Which BatchNorm statistics a forward pass collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatsMode {
    /// None (plain forward).
    Off,
    /// Over batch, height and width: `[C]`.
    Batch,
    /// Per image over height and width: `[b, C]`.
    PerImage,
}

/// A BatchNorm layer whose input statistics feed the BN prior.
#[derive(Debug, Clone)]
pub(crate) struct BnInfo {
    running_mean: Tensor,
    running_var: Tensor,
    /// For a convolution with the BatchNorm folded in, the BN's `(scale, shift)`: the
    /// step's output is `z * scale + shift` for the BN input `z`. `None` for a BatchNorm
    /// step, whose statistics are those of its own input.
    folded: Option<(Tensor, Tensor)>,
}

/// One node.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    label: String,
    op_type: String,
    op: Op,
    inputs: Vec<Option<usize>>,
    outputs: Vec<Option<usize>>,
    bn: Option<BnInfo>,
}

/// A compiled graph with one image input and one output.
#[derive(Debug, Clone)]
pub(crate) struct Graph {
    constants: Vec<Option<Value>>,
    steps: Vec<Step>,
    input: usize,
    output: usize,
    /// For every step, the slots whose last reader it is.
    free_after: Vec<Vec<usize>>,
}

/// Names to slots while compiling.
struct Slots {
    by_name: HashMap<String, usize>,
    constants: Vec<Option<Value>>,
}

impl Slots {
    fn add(&mut self, name: &str, value: Option<Value>) -> usize {
        let i = self.constants.len();
        self.constants.push(value);
        if !name.is_empty() {
            self.by_name.insert(name.to_string(), i);
        }
        i
    }
}

impl Graph {
    /// Compiles `graph`; `input` is the name of the image input.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for unsupported nodes, [`Error::Format`] for dangling names,
    /// [`Error::Node`] when folding a constant node fails.
    pub fn compile(graph: &GraphProto, input: &str, opset: i64, device: &Device) -> Result<Self> {
        let mut slots = Slots {
            by_name: HashMap::new(),
            constants: Vec::new(),
        };
        for t in &graph.initializer {
            let v = decode_tensor(t, device)?;
            slots.add(&t.name, Some(v));
        }
        let input_slot = slots.add(input, None);
        let mut steps = Vec::with_capacity(graph.node.len());
        let mut unreadable: HashSet<String> = HashSet::new();
        for (index, node) in graph.node.iter().enumerate() {
            let label = if node.name.is_empty() {
                format!("#{index}")
            } else {
                node.name.clone()
            };
            let attrs = Attrs::new(node, label.clone());
            if !(node.domain.is_empty() || node.domain == "ai.onnx") {
                return Err(attrs.unsupported(None, format!("operator domain `{}`", node.domain)));
            }
            let op = parse(node, &attrs, opset, device)?;
            let inputs = node
                .input
                .iter()
                .map(|name| {
                    if name.is_empty() {
                        return Ok(None);
                    }
                    if unreadable.contains(name) {
                        return Err(attrs.unsupported(None, format!("use of the extra output `{name}` (only the first output is computed)")));
                    }
                    slots.by_name.get(name).copied().map(Some).ok_or_else(|| {
                        Error::Format(format!("node `{label}` reads `{name}`, which no earlier node or initializer defines"))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            // Every supported op has one real output; further outputs (Dropout's mask,
            // MaxPool's indices) are accepted only while nothing reads them.
            let mut outputs = Vec::with_capacity(node.output.len());
            for (k, name) in node.output.iter().enumerate() {
                if k > 0 {
                    unreadable.insert(name.clone());
                    outputs.push(None);
                } else {
                    outputs.push(Some(slots.add(name, None)));
                }
            }
            steps.push(Step {
                label,
                op_type: node.op_type.clone(),
                op,
                inputs,
                outputs,
                bn: None,
            });
        }
        let out_name = graph
            .output
            .first()
            .map(|o| o.name.clone())
            .ok_or_else(|| Error::NotImageModel("the graph has no output".into()))?;
        if unreadable.contains(&out_name) {
            return Err(Error::NotImageModel(format!(
                "the output `{out_name}` is an extra output of a node"
            )));
        }
        let output = *slots
            .by_name
            .get(&out_name)
            .ok_or_else(|| Error::Format(format!("graph output `{out_name}` is never produced")))?;
        let mut g = Graph {
            constants: slots.constants,
            steps,
            input: input_slot,
            output,
            free_after: Vec::new(),
        };
        g.fold_constants()?;
        g.fold_batch_norms()?;
        g.mark_batch_norms()?;
        g.plan_frees();
        Ok(g)
    }

    /// Evaluates every step whose inputs are all constants, once, at load time.
    fn fold_constants(&mut self) -> Result<()> {
        let mut kept = Vec::with_capacity(self.steps.len());
        for step in std::mem::take(&mut self.steps) {
            let constant = step
                .inputs
                .iter()
                .flatten()
                .all(|&i| self.constants[i].is_some());
            if !constant || step.outputs.first().copied().flatten().is_none() {
                kept.push(step);
                continue;
            }
            let args: Vec<Option<&Value>> = step
                .inputs
                .iter()
                .map(|i| i.and_then(|i| self.constants[i].as_ref()))
                .collect();
            let mut values = eval(&step.op, &args).map_err(|e| node_error(&step, e))?;
            if let Some(Some(o)) = step.outputs.first() {
                self.constants[*o] = Some(values.remove(0));
            }
        }
        self.steps = kept;
        Ok(())
    }

    /// How many steps (and the graph output) read each slot.
    fn readers(&self) -> Vec<usize> {
        let mut n = vec![0; self.constants.len()];
        for s in &self.steps {
            for &i in s.inputs.iter().flatten() {
                n[i] += 1;
            }
        }
        n[self.output] += 1;
        n
    }

    fn constant_float(&self, slot: Option<usize>) -> Option<Tensor> {
        match slot.and_then(|i| self.constants[i].as_ref()) {
            Some(Value::Float(t)) => Some(t.clone()),
            _ => None,
        }
    }

    /// Folds an inference BatchNorm into the Conv that feeds only it (`kernel * scale`,
    /// `bias * scale + shift`, as netinv-models does), keeping the BN's running statistics
    /// on the conv step for the BN prior.
    fn fold_batch_norms(&mut self) -> Result<()> {
        let readers = self.readers();
        let mut remove = HashSet::new();
        for bi in 0..self.steps.len() {
            let Op::BatchNorm { eps } = self.steps[bi].op else {
                continue;
            };
            let bn = &self.steps[bi];
            let Some(z) = bn.inputs.first().copied().flatten() else {
                continue;
            };
            let params: Option<Vec<Tensor>> = (1..5)
                .map(|k| self.constant_float(bn.inputs.get(k).copied().flatten()))
                .collect();
            let Some(params) = params else { continue };
            let Some(ci) = self.steps[..bi]
                .iter()
                .rposition(|s| s.outputs.first() == Some(&Some(z)))
            else {
                continue;
            };
            let conv = &self.steps[ci];
            if readers[z] != 1 || !matches!(conv.op, Op::Conv { .. }) {
                continue;
            }
            let Some(kernel) = self.constant_float(conv.inputs.get(1).copied().flatten()) else {
                continue;
            };
            let bias = conv.inputs.get(2).copied().flatten();
            let bias = match bias {
                Some(_) => match self.constant_float(bias) {
                    Some(b) => b,
                    None => continue,
                },
                None => Tensor::zeros(kernel.dim(0)?, kernel.dtype(), kernel.device())?,
            };
            let (scale, shift) = bn_affine(&params[0], &params[1], &params[2], &params[3], eps)?;
            let smallest = scale.abs()?.min(0)?.to_scalar::<f32>()?;
            if smallest.is_nan() || smallest <= 1e-12 {
                continue; // statistics could not be mapped back through a zero scale
            }
            let co = kernel.dim(0)?;
            let folded_kernel = kernel.broadcast_mul(&scale.reshape((co, 1, 1, 1))?)?;
            let folded_bias = ((&bias * &scale)? + &shift)?;
            let k_slot = self.push_constant(Value::Float(folded_kernel));
            let b_slot = self.push_constant(Value::Float(folded_bias));
            let bn_out = self.steps[bi].outputs[0];
            let conv = &mut self.steps[ci];
            conv.inputs = vec![conv.inputs[0], Some(k_slot), Some(b_slot)];
            conv.outputs = vec![bn_out];
            conv.bn = Some(BnInfo {
                running_mean: params[2].clone(),
                running_var: params[3].clone(),
                folded: Some((scale, shift)),
            });
            remove.insert(bi);
        }
        let mut i = 0;
        self.steps.retain(|_| {
            i += 1;
            !remove.contains(&(i - 1))
        });
        Ok(())
    }

    /// BatchNorm steps left unfolded collect the statistics of their own input.
    fn mark_batch_norms(&mut self) -> Result<()> {
        for k in 0..self.steps.len() {
            if !matches!(self.steps[k].op, Op::BatchNorm { .. }) {
                continue;
            }
            let mean = self.constant_float(self.steps[k].inputs.get(3).copied().flatten());
            let var = self.constant_float(self.steps[k].inputs.get(4).copied().flatten());
            if let (Some(running_mean), Some(running_var)) = (mean, var) {
                self.steps[k].bn = Some(BnInfo {
                    running_mean,
                    running_var,
                    folded: None,
                });
            }
        }
        Ok(())
    }

    fn push_constant(&mut self, v: Value) -> usize {
        self.constants.push(Some(v));
        self.constants.len() - 1
    }

    /// Records after which step each computed value is read for the last time.
    fn plan_frees(&mut self) {
        let mut last = vec![None; self.constants.len()];
        for (k, s) in self.steps.iter().enumerate() {
            for &i in s.inputs.iter().flatten() {
                last[i] = Some(k);
            }
        }
        let mut free_after = vec![Vec::new(); self.steps.len()];
        for (slot, at) in last.iter().enumerate() {
            if let Some(k) = at {
                if self.constants[slot].is_none() && slot != self.output {
                    free_after[*k].push(slot);
                }
            }
        }
        self.free_after = free_after;
    }

    /// Runs the graph on `x`; with `mode` other than `Off`, also the statistics of every
    /// BatchNorm input in graph order.
    ///
    /// # Errors
    /// [`Error::Node`] naming the node whose evaluation failed.
    pub fn run(&self, x: &Tensor, mode: StatsMode) -> Result<(Value, Vec<BnLayerStats>)> {
        let mut env: Vec<Option<Value>> = vec![None; self.constants.len()];
        env[self.input] = Some(Value::Float(x.clone()));
        let mut stats = Vec::new();
        for (k, step) in self.steps.iter().enumerate() {
            let args: Vec<Option<&Value>> = step
                .inputs
                .iter()
                .map(|i| i.and_then(|i| env[i].as_ref().or(self.constants[i].as_ref())))
                .collect();
            let mut values = eval(&step.op, &args).map_err(|e| node_error(step, e))?;
            if let (Some(bn), true) = (&step.bn, mode != StatsMode::Off) {
                let z = match &bn.folded {
                    Some(_) => &values[0],
                    None => args[0].ok_or_else(|| {
                        node_error(step, candle_core::Error::Msg("missing input".into()))
                    })?,
                };
                let z = z
                    .float("BatchNorm input")
                    .map_err(|e| node_error(step, e))?;
                stats.push(layer_stats(z, bn, mode).map_err(|e| node_error(step, e))?);
            }
            if let Some(Some(o)) = step.outputs.first() {
                env[*o] = Some(values.remove(0));
            }
            for &i in &self.free_after[k] {
                env[i] = None;
            }
        }
        let out = env[self.output]
            .take()
            .or_else(|| self.constants[self.output].clone())
            .ok_or_else(|| Error::Format("the graph output was not computed".into()))?;
        Ok((out, stats))
    }
}

fn node_error(step: &Step, e: candle_core::Error) -> Error {
    Error::Node {
        node: step.label.clone(),
        op_type: step.op_type.clone(),
        reason: e.to_string(),
    }
}

/// The statistics of the BN input: of `z` itself, or, for a folded conv whose output is
/// `y = z * scale + shift`, of `y` mapped back (`(mean_y - shift) / scale`, `var_y / scale^2`).
fn layer_stats(y: &Tensor, bn: &BnInfo, mode: StatsMode) -> candle_core::Result<BnLayerStats> {
    let c = y.dim(1)?;
    let (mean, var) = match (y.rank(), mode) {
        (4, StatsMode::PerImage) => netinv_models::ops::plane_moments(y)?,
        (4, _) => netinv_models::ops::row_moments(&y.transpose(0, 1)?.flatten_from(1)?)?,
        (2, StatsMode::PerImage) => (y.clone(), y.zeros_like()?),
        (2, _) => netinv_models::ops::row_moments(&y.t()?.contiguous()?)?,
        (r, _) => candle_core::bail!("BatchNorm statistics of a rank-{r} input are not supported"),
    };
    let (batch_mean, batch_var) = match &bn.folded {
        None => (mean, var),
        Some((scale, shift)) => {
            let shape: Vec<usize> = if mean.rank() == 2 {
                vec![1, c]
            } else {
                vec![c]
            };
            let (scale, shift) = (scale.reshape(shape.clone())?, shift.reshape(shape)?);
            (
                mean.broadcast_sub(&shift)?.broadcast_div(&scale)?,
                var.broadcast_div(&scale.sqr()?)?,
            )
        }
    };
    Ok(BnLayerStats {
        batch_mean,
        batch_var,
        running_mean: bn.running_mean.clone(),
        running_var: bn.running_var.clone(),
    })
}
