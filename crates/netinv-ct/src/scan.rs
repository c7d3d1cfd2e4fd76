//! The few-angle scan of the study.

use netinv_tomo::{ParallelBeam2d, RayTransform};

use crate::{Error, Result};

/// Detector cells for an image of `size x size` pixels: `ceil(sqrt(2) size) + 2`, so every
/// ray through the image hits a cell at any angle.
pub fn detector_count(size: usize) -> usize {
    (size as f64 * std::f64::consts::SQRT_2).ceil() as usize + 2
}

/// The Joseph ray transform of an ASTRA-convention parallel-beam scan of a `size x size`
/// image at `n_angles` uniform angles over a half turn (`k pi / n_angles`), unit detector
/// spacing, [`detector_count`] cells.
///
/// # Errors
/// [`Error::NoAngles`] if `n_angles` is 0; [`Error::Tomo`] for a zero size.
///
/// # Examples
/// ```
/// use netinv_ct::scan_operator;
/// use netinv_tomo::LinearOperator;
/// let op = scan_operator(28, 4)?;
/// assert_eq!(op.range_shape(), (4, 42));
/// assert!(matches!(scan_operator(28, 0), Err(netinv_ct::Error::NoAngles)));
/// # Ok::<(), netinv_ct::Error>(())
/// ```
pub fn scan_operator(size: usize, n_angles: usize) -> Result<RayTransform> {
    if n_angles == 0 {
        return Err(Error::NoAngles);
    }
    let geom = ParallelBeam2d::uniform(size, size, n_angles, detector_count(size), 1.0)?;
    Ok(RayTransform::new(geom)?)
}
