//! `.npy` input and output of images, sinograms and angle lists (numpy's format, so data
//! move to and from numpy and ASTRA).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};

use crate::error::check_finite;
use crate::{Error, Result};

fn npy_error(path: &Path, reason: impl ToString) -> Error {
    Error::Npy {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn open(path: &Path) -> Result<BufReader<File>> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|e| npy_error(path, e))
}

/// Reads a 2-D `.npy` array (an image or a sinogram) of dtype float32 or float64
/// (converted to f32), C or Fortran order.
///
/// # Errors
/// [`Error::Npy`] if the file cannot be read, is not 2-D or not a float array;
/// [`Error::NonFinite`] if it holds NaN or infinities.
///
/// # Examples
/// ```
/// use netinv_tomo::{ndarray::array, read_npy2, write_npy};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("x.npy");
/// write_npy(&path, array![[1.0f32, 2.0], [3.0, 4.0]].view()).unwrap();
/// assert_eq!(read_npy2(&path).unwrap(), array![[1.0f32, 2.0], [3.0, 4.0]]);
/// ```
pub fn read_npy2(path: impl AsRef<Path>) -> Result<Array2<f32>> {
    let path = path.as_ref();
    let a = match Array2::<f32>::read_npy(open(path)?) {
        Ok(a) => a,
        Err(first) => Array2::<f64>::read_npy(open(path)?)
            .map(|a| a.mapv(|v| v as f32))
            .map_err(|_| npy_error(path, first))?,
    };
    check_finite("npy array", a.iter())?;
    Ok(a)
}

/// Reads a 1-D `.npy` array of angles in radians (float32 or float64).
///
/// # Errors
/// As [`read_npy2`], for 1-D arrays.
pub fn read_angles(path: impl AsRef<Path>) -> Result<Vec<f32>> {
    let path = path.as_ref();
    let a = match Array1::<f32>::read_npy(open(path)?) {
        Ok(a) => a,
        Err(first) => Array1::<f64>::read_npy(open(path)?)
            .map(|a| a.mapv(|v| v as f32))
            .map_err(|_| npy_error(path, first))?,
    };
    check_finite("angles", a.iter())?;
    Ok(a.to_vec())
}

/// Writes a 2-D f32 array as `.npy` (float32, C order), atomically.
///
/// # Errors
/// [`Error::Core`] wrapping the I/O error if writing fails.
pub fn write_npy(path: impl AsRef<Path>, array: ArrayView2<f32>) -> Result<()> {
    let owned = array.as_standard_layout();
    netinv_core::atomic_write(path, |w| {
        owned.write_npy(w).map_err(|e| e.to_string().into())
    })?;
    Ok(())
}

/// Writes a 1-D f32 array (for example an angle list) as `.npy`, atomically.
///
/// # Errors
/// [`Error::Core`] wrapping the I/O error if writing fails.
pub fn write_npy1(path: impl AsRef<Path>, array: ArrayView1<f32>) -> Result<()> {
    let owned = array.as_standard_layout();
    netinv_core::atomic_write(path, |w| {
        owned.write_npy(w).map_err(|e| e.to_string().into())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let p2 = dir.path().join("a.npy");
        let a = Array2::from_shape_fn((3, 5), |(i, j)| (i * 5 + j) as f32 * 0.5);
        write_npy(&p2, a.t()).unwrap();
        assert_eq!(read_npy2(&p2).unwrap(), a.t().to_owned());
        let p1 = dir.path().join("angles.npy");
        write_npy1(&p1, Array1::from(vec![0.0f32, 0.5, 1.0]).view()).unwrap();
        assert_eq!(read_angles(&p1).unwrap(), vec![0.0, 0.5, 1.0]);
        assert!(matches!(read_npy2(&p1), Err(Error::Npy { .. })));
        assert!(matches!(read_angles(&p2), Err(Error::Npy { .. })));
        assert!(matches!(
            read_npy2(dir.path().join("missing.npy")),
            Err(Error::Npy { .. })
        ));
        let garbage = dir.path().join("garbage.npy");
        std::fs::write(&garbage, b"not an npy file").unwrap();
        assert!(matches!(read_npy2(&garbage), Err(Error::Npy { .. })));
        let nan = dir.path().join("nan.npy");
        write_npy(&nan, Array2::from_elem((2, 2), f32::NAN).view()).unwrap();
        assert!(matches!(read_npy2(&nan), Err(Error::NonFinite { .. })));
    }
}
