//! The 2-D parallel-beam scan geometry, with ASTRA's conventions.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A 2-D parallel-beam geometry: an image of `rows x cols` unit pixels centred on the
/// origin, and a flat detector of `n_det` cells of width `det_spacing`, read at each angle.
///
/// The conventions are ASTRA's (`astra.create_vol_geom(rows, cols)` and
/// `astra.create_proj_geom('parallel', det_spacing, n_det, angles)`), so sinograms and
/// images move between ASTRA and netinv unchanged:
///
/// ```text
/// image [rows, cols], row 0 at the top; pixel (r, c) is centred at
///     (x, y) = (c - cols/2 + 0.5, rows/2 - 0.5 - r)
/// sinogram [angles, detectors]; detector i sits at
///     t_i = (i + 0.5 - n_det/2) * det_spacing
/// ray (theta, i) is the line { p : p . (cos theta, sin theta) = t_i }
/// ```
///
/// Angles are in radians, any finite values in any order (not only uniform).
///
/// # Examples
/// ```
/// use netinv_tomo::ParallelBeam2d;
/// let geom = ParallelBeam2d::new(64, 64, vec![0.0, 0.5, 1.0], 91, 1.0).unwrap();
/// assert_eq!(geom.sinogram_shape(), (3, 91));
/// assert_eq!(geom.pixel_centre(0, 0), (-31.5, 31.5));
/// assert!(ParallelBeam2d::new(64, 64, vec![], 91, 1.0).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParallelBeam2d {
    rows: usize,
    cols: usize,
    angles: Vec<f32>,
    n_det: usize,
    det_spacing: f32,
}

impl ParallelBeam2d {
    /// Builds and checks a geometry.
    ///
    /// # Errors
    /// [`Error::InvalidGeometry`] if `rows`, `cols` or `n_det` is zero, the angle list is
    /// empty, an angle is not finite, or `det_spacing` is not finite and positive.
    pub fn new(
        rows: usize,
        cols: usize,
        angles: Vec<f32>,
        n_det: usize,
        det_spacing: f32,
    ) -> Result<Self> {
        let bad = |field, reason: &str| {
            Err(Error::InvalidGeometry {
                field,
                reason: reason.to_string(),
            })
        };
        if rows == 0 || cols == 0 {
            return bad("rows/cols", "the image must have at least one pixel");
        }
        if n_det == 0 {
            return bad("n_det", "there must be at least one detector");
        }
        if rows.max(cols).max(n_det) > 1 << 24 {
            return bad("rows/cols/n_det", "sizes above 2^24 are not supported");
        }
        if angles.is_empty() {
            return bad("angles", "the angle list is empty");
        }
        if let Some(i) = angles.iter().position(|a| !a.is_finite()) {
            return Err(Error::InvalidGeometry {
                field: "angles",
                reason: format!("angle {i} is not finite ({})", angles[i]),
            });
        }
        if !(det_spacing.is_finite() && det_spacing > 0.0) {
            return Err(Error::InvalidGeometry {
                field: "det_spacing",
                reason: format!("must be finite and > 0, got {det_spacing}"),
            });
        }
        Ok(Self {
            rows,
            cols,
            angles,
            n_det,
            det_spacing,
        })
    }

    /// `n_angles` angles `k * pi / n_angles`, `k = 0..n_angles` (a half turn, as
    /// `np.linspace(0, np.pi, n_angles, endpoint=False)`).
    ///
    /// # Errors
    /// As [`ParallelBeam2d::new`].
    pub fn uniform(
        rows: usize,
        cols: usize,
        n_angles: usize,
        n_det: usize,
        det_spacing: f32,
    ) -> Result<Self> {
        let angles = (0..n_angles)
            .map(|k| (k as f64 * std::f64::consts::PI / n_angles as f64) as f32)
            .collect();
        Self::new(rows, cols, angles, n_det, det_spacing)
    }

    /// Image rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Image columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The projection angles in radians.
    pub fn angles(&self) -> &[f32] {
        &self.angles
    }

    /// Number of projection angles.
    pub fn n_angles(&self) -> usize {
        self.angles.len()
    }

    /// Number of detector cells.
    pub fn n_det(&self) -> usize {
        self.n_det
    }

    /// Width of a detector cell (pixel widths).
    pub fn det_spacing(&self) -> f32 {
        self.det_spacing
    }

    /// The image shape `(rows, cols)`.
    pub fn image_shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The sinogram shape `(angles, detectors)`.
    pub fn sinogram_shape(&self) -> (usize, usize) {
        (self.angles.len(), self.n_det)
    }

    /// Centre `(x, y)` of pixel `(r, c)`: `(c - cols/2 + 0.5, rows/2 - 0.5 - r)`.
    pub fn pixel_centre(&self, r: usize, c: usize) -> (f64, f64) {
        (
            c as f64 - self.cols as f64 / 2.0 + 0.5,
            self.rows as f64 / 2.0 - 0.5 - r as f64,
        )
    }

    /// Position of detector `i` on the detector line: `(i + 0.5 - n_det/2) * det_spacing`.
    pub fn detector_position(&self, i: usize) -> f64 {
        (i as f64 + 0.5 - self.n_det as f64 / 2.0) * self.det_spacing as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_inputs_are_errors() {
        let ok = |r, c, a: Vec<f32>, n, s| ParallelBeam2d::new(r, c, a, n, s);
        assert!(ok(0, 4, vec![0.0], 4, 1.0).is_err());
        assert!(ok(4, 0, vec![0.0], 4, 1.0).is_err());
        assert!(ok(4, 4, vec![], 4, 1.0).is_err());
        assert!(ok(4, 4, vec![0.0], 0, 1.0).is_err());
        assert!(ok(4, 4, vec![0.0, f32::NAN], 4, 1.0).is_err());
        assert!(ok(4, 4, vec![f32::INFINITY], 4, 1.0).is_err());
        assert!(ok(4, 4, vec![0.0], 4, 0.0).is_err());
        assert!(ok(4, 4, vec![0.0], 4, f32::NAN).is_err());
        assert!(ParallelBeam2d::uniform(4, 4, 0, 4, 1.0).is_err());
        let g = ok(4, 6, vec![0.3], 5, 2.0).unwrap();
        assert_eq!(g.image_shape(), (4, 6));
        assert_eq!(g.detector_position(0), -4.0);
        assert_eq!(g.detector_position(4), 4.0);
        assert_eq!(g.pixel_centre(3, 5), (2.5, -1.5));
    }
}
