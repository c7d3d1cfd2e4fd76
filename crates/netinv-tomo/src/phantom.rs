//! Test phantoms.

use ndarray::Array2;

use crate::{Error, Result};

/// The ten ellipses of the modified Shepp-Logan phantom (Toft 1996):
/// `(intensity, semi-axis a, semi-axis b, centre x, centre y, rotation in degrees)`, on
/// the square `[-1, 1]^2` with y pointing up.
pub const MODIFIED_SHEPP_LOGAN: [[f64; 6]; 10] = [
    [1.0, 0.69, 0.92, 0.0, 0.0, 0.0],
    [-0.8, 0.6624, 0.874, 0.0, -0.0184, 0.0],
    [-0.2, 0.11, 0.31, 0.22, 0.0, -18.0],
    [-0.2, 0.16, 0.41, -0.22, 0.0, 18.0],
    [0.1, 0.21, 0.25, 0.0, 0.35, 0.0],
    [0.1, 0.046, 0.046, 0.0, 0.1, 0.0],
    [0.1, 0.046, 0.046, 0.0, -0.1, 0.0],
    [0.1, 0.046, 0.023, -0.08, -0.605, 0.0],
    [0.1, 0.023, 0.023, 0.0, -0.606, 0.0],
    [0.1, 0.023, 0.046, 0.06, -0.605, 0.0],
];

/// The modified Shepp-Logan phantom (Toft's contrast-enhanced version, values in [0, 1])
/// at `rows x cols` pixels: the sum of the ellipses in [`MODIFIED_SHEPP_LOGAN`] sampled at
/// pixel centres, the image spanning `[-1, 1]^2` with row 0 at the top.
///
/// ```text
/// pixel (r, c) -> (x, y) = ((2c + 1) / cols - 1, 1 - (2r + 1) / rows)
/// ```
///
/// # Errors
/// [`Error::InvalidGeometry`] if `rows` or `cols` is 0.
///
/// # Examples
/// ```
/// let p = netinv_tomo::shepp_logan(64, 64).unwrap();
/// assert_eq!(p.dim(), (64, 64));
/// assert_eq!(p[[0, 0]], 0.0);
/// assert!((p[[32, 32]] - 0.2).abs() < 1e-6);
/// assert!(p.iter().all(|&v| (0.0..=1.0).contains(&v)));
/// ```
pub fn shepp_logan(rows: usize, cols: usize) -> Result<Array2<f32>> {
    if rows == 0 || cols == 0 {
        return Err(Error::InvalidGeometry {
            field: "rows/cols",
            reason: "the phantom must have at least one pixel".into(),
        });
    }
    Ok(Array2::from_shape_fn((rows, cols), |(r, c)| {
        let x = (2 * c + 1) as f64 / cols as f64 - 1.0;
        let y = 1.0 - (2 * r + 1) as f64 / rows as f64;
        let mut v = 0.0;
        for [value, a, b, x0, y0, phi] in MODIFIED_SHEPP_LOGAN {
            let (s, co) = phi.to_radians().sin_cos();
            let (dx, dy) = (x - x0, y - y0);
            let (u, w) = (dx * co + dy * s, -dx * s + dy * co);
            if (u / a).powi(2) + (w / b).powi(2) <= 1.0 {
                v += value;
            }
        }
        v.clamp(0.0, 1.0) as f32
    }))
}
