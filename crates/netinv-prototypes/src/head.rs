//! Prototype heads: the loss and prediction rule that turn a network with D outputs into a
//! prototype classifier, usable as the training loss of `netinv_models::train::Trainer`.

use std::path::Path;

use candle_core::{Device, Tensor};
use netinv_models::train::TrainLoss;
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::placement::Placement;
use crate::poincare::{busemann_loss, busemann_predict, penalty_weight, to_ball};
use crate::sphere::{cosine_loss, cosine_predict};
use crate::{Error, Result};

/// File (next to a model checkpoint) holding a head's prototypes ([`PrototypeFile`]).
pub const PROTOTYPES_FILE: &str = "prototypes.json";

/// Which geometry a prototype head uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrototypeKind {
    /// Unit prototypes on the hypersphere, [`crate::cosine_loss`] on the raw outputs.
    Hyperspherical,
    /// Ideal prototypes on the Poincare ball's boundary, [`crate::busemann_loss`] on
    /// [`crate::to_ball`] of the raw outputs.
    Busemann,
}

impl PrototypeKind {
    /// `"hyperspherical"` or `"busemann"`.
    pub fn name(self) -> &'static str {
        match self {
            PrototypeKind::Hyperspherical => "hyperspherical",
            PrototypeKind::Busemann => "busemann",
        }
    }
}

/// The saved form of a [`PrototypeHead`] ([`PROTOTYPES_FILE`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrototypeFile {
    /// The geometry.
    pub kind: PrototypeKind,
    /// Number of prototypes K.
    pub classes: usize,
    /// Dimension D.
    pub dim: usize,
    /// Penalty slope s (Busemann; `phi = s D`).
    pub slope: f64,
    /// The prototypes, row-major `[K, D]`.
    pub prototypes: Vec<f32>,
}

/// A prototype head: fixed prototypes `[K, D]` and the loss / prediction of a network's
/// raw outputs `v` `[b, D]`:
///
/// ```text
/// hyperspherical:  J = (1/b) sum_i (1 - cos(v_i, p_{y_i}))^2,      y^ = argmax_k cos(v, p_k)
/// busemann:        z = clip(exp_0(v)),  J = (1/b) sum_i l(z_i, p_{y_i}),  y^ = argmin_k b_{p_k}(z)
/// ```
///
/// # Examples
/// ```
/// use candle_core::{Device, Tensor};
/// use netinv_prototypes::{place_prototypes, PlacementConfig, PrototypeHead, PrototypeKind};
/// let placement = place_prototypes(3, 2, &PlacementConfig::default())?;
/// let head = PrototypeHead::new(PrototypeKind::Busemann, &placement, 0.75, &Device::Cpu)?;
/// let v = Tensor::new(&[[0.0f32, 0.0]], &Device::Cpu)?;
/// let j = head.loss(&v, &Tensor::new(&[2u32], &Device::Cpu)?)?.to_scalar::<f32>()?;
/// assert!(j.abs() < 1e-6);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct PrototypeHead {
    kind: PrototypeKind,
    prototypes: Tensor,
    classes: usize,
    dim: usize,
    slope: f64,
    phi: f64,
}

impl PrototypeHead {
    /// A head of `kind` with the prototypes of `placement` (unit rows) and Busemann slope
    /// `slope` (ignored by the hyperspherical head).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad slope; candle's errors.
    pub fn new(
        kind: PrototypeKind,
        placement: &Placement,
        slope: f64,
        device: &Device,
    ) -> Result<Self> {
        Self::from_rows(
            kind,
            placement.to_f32(),
            placement.classes,
            placement.dim,
            slope,
            device,
        )
    }

    fn from_rows(
        kind: PrototypeKind,
        rows: Vec<f32>,
        classes: usize,
        dim: usize,
        slope: f64,
        device: &Device,
    ) -> Result<Self> {
        let phi = penalty_weight(slope, dim)?;
        if classes == 0 || rows.len() != classes * dim {
            return Err(Error::Shape {
                expected: format!("{classes} x {dim} prototype values, K >= 1"),
                got: format!("{}", rows.len()),
            });
        }
        for (k, row) in rows.chunks(dim).enumerate() {
            let n = row
                .iter()
                .map(|&v| f64::from(v).powi(2))
                .sum::<f64>()
                .sqrt();
            if (n - 1.0).abs() > 1e-4 {
                return Err(invalid(
                    "prototypes",
                    format!("prototype {k} has norm {n}, not 1"),
                ));
            }
        }
        Ok(Self {
            kind,
            prototypes: Tensor::from_vec(rows, (classes, dim), device)?,
            classes,
            dim,
            slope,
            phi,
        })
    }

    /// The geometry.
    pub fn kind(&self) -> PrototypeKind {
        self.kind
    }

    /// The prototypes `[K, D]`.
    pub fn prototypes(&self) -> &Tensor {
        &self.prototypes
    }

    /// Dimension D (the network's number of outputs).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The Busemann penalty weight `phi = slope * D`.
    pub fn phi(&self) -> f64 {
        self.phi
    }

    /// The embedding of raw outputs `[b, D]`: themselves (hyperspherical) or
    /// `clip(exp_0(v))` in the ball (Busemann).
    ///
    /// # Errors
    /// Shape and candle errors.
    pub fn embed(&self, outputs: &Tensor) -> Result<Tensor> {
        match self.kind {
            PrototypeKind::Hyperspherical => Ok(outputs.clone()),
            PrototypeKind::Busemann => to_ball(outputs),
        }
    }

    /// The mean batch loss of raw outputs `[b, D]` with labels u32 `[b]`.
    ///
    /// # Errors
    /// [`Error::Shape`] / [`Error::LabelOutOfRange`] for bad inputs; candle's errors.
    pub fn loss(&self, outputs: &Tensor, labels: &Tensor) -> Result<Tensor> {
        let z = self.embed(outputs)?;
        match self.kind {
            PrototypeKind::Hyperspherical => cosine_loss(&z, &self.prototypes, labels),
            PrototypeKind::Busemann => busemann_loss(&z, &self.prototypes, labels, self.phi),
        }
    }

    /// Predicted classes u32 `[b]` of raw outputs `[b, D]`.
    ///
    /// # Errors
    /// Shape and candle errors.
    pub fn predict(&self, outputs: &Tensor) -> Result<Tensor> {
        let z = self.embed(outputs)?;
        match self.kind {
            PrototypeKind::Hyperspherical => cosine_predict(&z, &self.prototypes),
            PrototypeKind::Busemann => busemann_predict(&z, &self.prototypes),
        }
    }

    /// Writes the prototypes to `dir/`[`PROTOTYPES_FILE`] (atomically), next to a model
    /// checkpoint.
    ///
    /// # Errors
    /// I/O and candle errors.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let file = PrototypeFile {
            kind: self.kind,
            classes: self.classes,
            dim: self.dim,
            slope: self.slope,
            prototypes: self.prototypes.flatten_all()?.to_vec1::<f32>()?,
        };
        netinv_core::write_json(dir.join(PROTOTYPES_FILE), &file)?;
        Ok(())
    }

    /// Reads a head written by [`PrototypeHead::save`].
    ///
    /// # Errors
    /// [`Error::Format`] for a missing or malformed file; as [`PrototypeHead::new`].
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let path = dir.join(PROTOTYPES_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::Format {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let f: PrototypeFile = serde_json::from_str(&text).map_err(|e| Error::Format {
            path,
            reason: e.to_string(),
        })?;
        Self::from_rows(f.kind, f.prototypes, f.classes, f.dim, f.slope, device)
    }
}

impl TrainLoss for PrototypeHead {
    fn loss(&self, outputs: &Tensor, labels: &Tensor) -> candle_core::Result<Tensor> {
        PrototypeHead::loss(self, outputs, labels).map_err(candle_core::Error::wrap)
    }

    fn predict(&self, outputs: &Tensor) -> candle_core::Result<Tensor> {
        PrototypeHead::predict(self, outputs).map_err(candle_core::Error::wrap)
    }

    fn classes(&self) -> usize {
        self.classes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{place_prototypes, PlacementConfig};

    #[test]
    fn save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = place_prototypes(4, 3, &PlacementConfig::default()).unwrap();
        let head = PrototypeHead::new(PrototypeKind::Busemann, &p, 0.5, &Device::Cpu).unwrap();
        head.save(dir.path()).unwrap();
        let back = PrototypeHead::load(dir.path(), &Device::Cpu).unwrap();
        assert_eq!(back.kind(), PrototypeKind::Busemann);
        assert!((back.phi() - 1.5).abs() < 1e-12);
        assert_eq!(
            back.prototypes().to_vec2::<f32>().unwrap(),
            head.prototypes().to_vec2::<f32>().unwrap()
        );
        assert!(PrototypeHead::load(&dir.path().join("missing"), &Device::Cpu).is_err());
    }
}
