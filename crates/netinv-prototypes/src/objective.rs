//! Inversion objectives towards prototypes: `netinv_invert::Objective` for prototype nets.

use candle_core::Tensor;
use netinv_invert::Objective;

use crate::head::{PrototypeHead, PrototypeKind};
use crate::Result;

/// The inversion objective "the network's output of image i should sit at the prototype
/// of class `targets[i]`": the head's mean loss (cosine or Busemann, see
/// [`PrototypeHead`]) of the network output `[b, D]` against the targets.
///
/// # Examples
/// ```
/// use candle_core::{Device, Tensor};
/// use netinv_invert::Objective;
/// use netinv_prototypes::{place_prototypes, PlacementConfig, PrototypeHead, PrototypeKind, PrototypeObjective};
/// let p = place_prototypes(10, 2, &PlacementConfig::default())?;
/// let head = PrototypeHead::new(PrototypeKind::Hyperspherical, &p, 0.75, &Device::Cpu)?;
/// let objective = PrototypeObjective::new(head, vec![3, 7])?;
/// let out = Tensor::new(&[[1.0f32, 0.0], [0.0, 1.0]], &Device::Cpu)?;
/// assert!(objective.loss(&out)?.to_scalar::<f32>()? >= 0.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct PrototypeObjective {
    head: PrototypeHead,
    targets: Vec<u32>,
    labels: Tensor,
}

impl PrototypeObjective {
    /// The objective towards the prototypes of `targets` (one class per image).
    ///
    /// # Errors
    /// [`crate::Error::LabelOutOfRange`] for a target without prototype; candle's errors.
    pub fn new(head: PrototypeHead, targets: Vec<u32>) -> Result<Self> {
        let k = head.prototypes().dim(0)?;
        if let Some((index, &label)) = targets.iter().enumerate().find(|(_, &t)| t as usize >= k) {
            return Err(crate::Error::LabelOutOfRange {
                index,
                label,
                classes: k,
            });
        }
        let labels = Tensor::new(targets.as_slice(), head.prototypes().device())?;
        Ok(Self {
            head,
            targets,
            labels,
        })
    }

    /// The head.
    pub fn head(&self) -> &PrototypeHead {
        &self.head
    }
}

impl Objective for PrototypeObjective {
    fn loss(&self, output: &Tensor) -> candle_core::Result<Tensor> {
        self.head
            .loss(output, &self.labels)
            .map_err(candle_core::Error::wrap)
    }

    fn check(&self, batch: usize, outputs: usize) -> netinv_invert::Result<()> {
        if batch != self.targets.len() || outputs != self.head.dim() {
            return Err(netinv_invert::Error::Shape {
                expected: format!(
                    "{} images through a net with {} outputs",
                    self.targets.len(),
                    self.head.dim()
                ),
                got: format!("{batch} images, {outputs} outputs"),
            });
        }
        Ok(())
    }

    fn name(&self) -> &str {
        match self.head.kind() {
            PrototypeKind::Hyperspherical => "cosine",
            PrototypeKind::Busemann => "busemann",
        }
    }
}
