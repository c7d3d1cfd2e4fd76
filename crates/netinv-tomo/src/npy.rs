//! `.npy` input and output of images, sinograms and angle lists (numpy's format, so data
//! move to and from numpy and ASTRA).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use ndarray::{Array1, Array2, ArrayD, ArrayView1, ArrayView2};
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

/// The parts of an `.npy` header that say how many bytes of data follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NpyHeader {
    /// Bytes before the data (magic, version, length field, header text).
    data_offset: u64,
    /// Bytes per element (from `descr`, for example 4 for `'<f4'`).
    item_size: u64,
    /// The declared shape.
    shape: Vec<u64>,
}

/// Reads and parses the header of an `.npy` file (format versions 1 to 3): the magic
/// string, the header length and, from the header's dict, `descr` and `shape`.
fn read_header(path: &Path) -> Result<NpyHeader> {
    use std::io::Read;
    let bad = |reason: &str| npy_error(path, format!("not a valid .npy file: {reason}"));
    let mut file = open(path)?;
    let mut lead = [0u8; 10];
    file.read_exact(&mut lead)
        .map_err(|_| bad("shorter than an .npy preamble"))?;
    if &lead[..6] != b"\x93NUMPY" {
        return Err(bad("no .npy magic string"));
    }
    let (header_len, offset) = match lead[6] {
        1 => (u16::from_le_bytes([lead[8], lead[9]]) as u64, 10),
        2 | 3 => {
            let mut rest = [0u8; 2];
            file.read_exact(&mut rest)
                .map_err(|_| bad("truncated header length"))?;
            (
                u32::from_le_bytes([lead[8], lead[9], rest[0], rest[1]]) as u64,
                12,
            )
        }
        v => return Err(bad(&format!("unsupported format version {v}"))),
    };
    // a header longer than 1 MiB is not one numpy writes; refuse before allocating it
    if header_len > 1 << 20 {
        return Err(bad(&format!("header of {header_len} bytes")));
    }
    let mut text = vec![0u8; header_len as usize];
    file.read_exact(&mut text)
        .map_err(|_| bad("header longer than the file"))?;
    let text = String::from_utf8_lossy(&text);
    let (item_size, shape) = parse_header_dict(&text).ok_or_else(|| bad("unreadable header"))?;
    Ok(NpyHeader {
        data_offset: offset + header_len,
        item_size,
        shape,
    })
}

/// `(item size, shape)` from a header dict such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5), }`.
fn parse_header_dict(text: &str) -> Option<(u64, Vec<u64>)> {
    let descr = text.split("'descr'").nth(1)?;
    let descr = descr.split(['\'', '"']).nth(1)?;
    let digits: String = descr.chars().skip_while(|c| !c.is_ascii_digit()).collect();
    let item_size: u64 = digits.parse().ok()?;
    let shape = text.split("'shape'").nth(1)?;
    let shape = shape.split('(').nth(1)?.split(')').next()?;
    let shape = shape
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.trim_end_matches('L').parse().ok())
        .collect::<Option<Vec<u64>>>()?;
    Some((item_size, shape))
}

/// Checks, before anything is allocated for the data, that the file holds as many bytes
/// as its header declares (so a corrupt or hostile header cannot ask for a huge array).
fn check_declared_size(path: &Path) -> Result<()> {
    let header = read_header(path)?;
    let file_size = std::fs::metadata(path)
        .map_err(|e| npy_error(path, e))?
        .len();
    let declared = header
        .shape
        .iter()
        .try_fold(header.item_size, |n, &d| n.checked_mul(d));
    let available = file_size.saturating_sub(header.data_offset);
    match declared {
        Some(bytes) if bytes <= available => Ok(()),
        _ => Err(npy_error(
            path,
            format!(
                "the header declares shape {:?} of {}-byte values ({} bytes of data), \
                 but the file holds {available} bytes after its header",
                header.shape,
                header.item_size,
                declared.map_or_else(|| "more than 2^64".to_string(), |b| b.to_string()),
            ),
        )),
    }
}

/// Reads a 2-D `.npy` array (an image or a sinogram) of dtype float32 or float64
/// (converted to f32), C or Fortran order.
///
/// The header's declared shape is checked against the file size before the data are
/// read, so a truncated or corrupt file is an error, never a huge allocation.
///
/// # Errors
/// [`Error::Npy`] if the file cannot be read, is not 2-D or not a float array, or holds
/// fewer bytes than its header declares; [`Error::NonFinite`] if it holds NaN or
/// infinities.
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
    check_declared_size(path)?;
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
    check_declared_size(path)?;
    let a = match Array1::<f32>::read_npy(open(path)?) {
        Ok(a) => a,
        Err(first) => Array1::<f64>::read_npy(open(path)?)
            .map(|a| a.mapv(|v| v as f32))
            .map_err(|_| npy_error(path, first))?,
    };
    check_finite("angles", a.iter())?;
    Ok(a.to_vec())
}

/// Reads a float32 `.npy` array of any rank (an image batch `[n, c, h, w]`, say), after
/// checking the header's declared shape against the file size.
///
/// # Errors
/// [`Error::Npy`] if the file cannot be read, is not a float32 array, or holds fewer bytes
/// than its header declares; [`Error::NonFinite`] if it holds NaN or infinities.
///
/// # Examples
/// ```
/// use netinv_tomo::{ndarray::array, read_npy_f32, write_npy};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("x.npy");
/// write_npy(&path, array![[1.0f32, 2.0]].view()).unwrap();
/// assert_eq!(read_npy_f32(&path).unwrap().shape(), &[1, 2]);
/// ```
pub fn read_npy_f32(path: impl AsRef<Path>) -> Result<ArrayD<f32>> {
    let path = path.as_ref();
    check_declared_size(path)?;
    let a = ArrayD::<f32>::read_npy(open(path)?).map_err(|e| npy_error(path, e))?;
    check_finite("npy array", a.iter())?;
    Ok(a)
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

    /// An `.npy` file with a version-1 header `dict` (padded as numpy pads it) and `data`.
    fn npy_bytes(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut header = dict.to_string();
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn a_header_declaring_more_data_than_the_file_holds_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        // 136 bytes declaring 100000 x 100000 float32 values (40 GB): must not allocate
        let huge = dir.path().join("huge.npy");
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }";
        let mut bytes = npy_bytes(dict, &[0u8; 8]);
        bytes.resize(136, 0);
        assert_eq!(bytes.len(), 136);
        std::fs::write(&huge, &bytes).unwrap();
        let err = read_npy2(&huge).unwrap_err();
        assert!(matches!(err, Error::Npy { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("[100000, 100000]") && message.contains("40000000000"),
            "{message}"
        );
        // a shape whose byte count overflows u64, and a 1-D angle list cut short
        let overflow = dir.path().join("overflow.npy");
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }";
        std::fs::write(&overflow, npy_bytes(dict, &[])).unwrap();
        assert!(matches!(read_npy2(&overflow), Err(Error::Npy { .. })));
        let short = dir.path().join("short.npy");
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
        std::fs::write(&short, npy_bytes(dict, &[0u8; 8])).unwrap();
        assert!(matches!(read_angles(&short), Err(Error::Npy { .. })));
        // the same header with all its data reads
        std::fs::write(&short, npy_bytes(dict, &[0u8; 12])).unwrap();
        assert_eq!(read_angles(&short).unwrap(), vec![0.0; 3]);
    }

    #[test]
    fn header_dicts_parse() {
        let dict = "{'descr': '<f8', 'fortran_order': True, 'shape': (3, 5), }";
        assert_eq!(parse_header_dict(dict), Some((8, vec![3, 5])));
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }";
        assert_eq!(parse_header_dict(dict), Some((4, vec![7])));
        assert_eq!(parse_header_dict("{'shape': (1, 2)}"), None);
    }
}
