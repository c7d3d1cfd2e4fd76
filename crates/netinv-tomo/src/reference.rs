//! A slow dense reference of the Joseph projector, written from the geometry directly.

use ndarray::Array2;

use crate::projector::is_vertical;
use crate::ParallelBeam2d;

/// The system matrix of [`RayTransform`](crate::RayTransform) as a dense
/// `[angles * n_det, rows * cols]` array, computed entry by entry from the geometry (no
/// stepping): for a mainly vertical ray (`|sin| < |cos|`) the weight of pixel `(r, c)`
/// centred at `(x_c, y_r)` is
///
/// ```text
/// w = max(0, 1 - |x* - x_c|) / |cos theta|,   x* = (t_i - y_r sin theta) / cos theta
/// ```
///
/// (the ray's crossing with the pixel row), and with the roles of rows and columns swapped
/// for mainly horizontal rays. Meant for tests on small images (8x8): it costs
/// `O(angles * n_det * rows * cols)` time and memory.
///
/// # Examples
/// ```
/// use netinv_tomo::{dense_matrix, ParallelBeam2d};
/// let a = dense_matrix(&ParallelBeam2d::uniform(4, 4, 2, 4, 1.0).unwrap());
/// assert_eq!(a.dim(), (8, 16));
/// // At angle 0 each detector sees one column of 4 pixels with weight 1.
/// assert_eq!(a.row(1).sum(), 4.0);
/// ```
pub fn dense_matrix(geom: &ParallelBeam2d) -> Array2<f64> {
    let (rows, cols) = geom.image_shape();
    let n_det = geom.n_det();
    let mut a = Array2::zeros((geom.n_angles() * n_det, rows * cols));
    for (ai, &theta) in geom.angles().iter().enumerate() {
        let (s, c) = (theta as f64).sin_cos();
        let vertical = is_vertical(theta);
        for i in 0..n_det {
            let t = geom.detector_position(i);
            for r in 0..rows {
                for col in 0..cols {
                    let (x, y) = geom.pixel_centre(r, col);
                    let w = if vertical {
                        let xs = (t - y * s) / c;
                        (1.0 - (xs - x).abs()).max(0.0) / c.abs()
                    } else {
                        let ys = (t - x * c) / s;
                        (1.0 - (ys - y).abs()).max(0.0) / s.abs()
                    };
                    a[[ai * n_det + i, r * cols + col]] = w;
                }
            }
        }
    }
    a
}
