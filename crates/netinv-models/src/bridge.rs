//! The one bridge between ndarray images and candle tensors.
//!
//! Images are f32 `[batch, channels, height, width]` on both sides, in row-major (logical)
//! order: element `[b, c, i, j]` of the array is element `[b, c, i, j]` of the tensor.
//! Views with any strides are accepted (they are read in logical order); the copies are
//! exact, so a round trip returns the same bits.
//!
//! ```
//! use candle_core::Device;
//! use ndarray::Array4;
//! use netinv_models::bridge::{array4_to_tensor, tensor_to_array4};
//!
//! let a = Array4::from_shape_fn((2, 1, 3, 4), |(b, _, i, j)| (b * 12 + i * 4 + j) as f32);
//! let t = array4_to_tensor(a.view(), &Device::Cpu)?;
//! assert_eq!(t.dims(), &[2, 1, 3, 4]);
//! assert_eq!(tensor_to_array4(&t)?, a);
//! # Ok::<(), netinv_models::Error>(())
//! ```

use candle_core::{DType, Device, Tensor};
use ndarray::{Array4, ArrayView2, ArrayView4};

use crate::{Error, Result};

/// The images `[b, c, h, w]` as an f32 tensor of the same shape on `device`.
///
/// # Errors
/// [`Error::Candle`] if the tensor cannot be created.
pub fn array4_to_tensor(images: ArrayView4<'_, f32>, device: &Device) -> Result<Tensor> {
    let data: Vec<f32> = match images.as_slice() {
        Some(s) => s.to_vec(),
        None => images.iter().copied().collect(),
    };
    Ok(Tensor::from_vec(data, images.dim(), device)?)
}

/// One image `[rows, cols]` as a `[1, 1, rows, cols]` f32 tensor on `device`.
///
/// # Errors
/// [`Error::Candle`] if the tensor cannot be created.
pub fn image_to_tensor(image: ArrayView2<'_, f32>, device: &Device) -> Result<Tensor> {
    let (rows, cols) = image.dim();
    let data: Vec<f32> = image.iter().copied().collect();
    Ok(Tensor::from_vec(data, (1, 1, rows, cols), device)?)
}

/// A four-dimensional tensor of any float dtype as an f32 array `[b, c, h, w]` (f64 values
/// are rounded to f32; f32 values are copied exactly).
///
/// # Errors
/// [`Error::Candle`] for a tensor that is not four-dimensional or cannot be read;
/// [`Error::Shape`] if the data does not fill the shape (not expected from candle).
pub fn tensor_to_array4(t: &Tensor) -> Result<Array4<f32>> {
    let dims = t.dims4()?;
    let data = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    Array4::from_shape_vec(dims, data).map_err(|e| Error::Shape {
        expected: format!("{dims:?}"),
        got: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array2};

    #[test]
    fn round_trip_is_exact_and_views_read_in_logical_order() {
        let dev = Device::Cpu;
        let a = Array4::from_shape_fn((2, 3, 4, 5), |(b, c, i, j)| {
            (b as f32 + 0.1) * (c as f32 - 1.7) / (i as f32 + 3.3) + j as f32 * 1e-7
        });
        let t = array4_to_tensor(a.view(), &dev).unwrap();
        assert_eq!(tensor_to_array4(&t).unwrap(), a);
        // A permuted (non-standard) view: the tensor holds the logical order.
        let p = a.view().permuted_axes([0, 1, 3, 2]);
        let tp = array4_to_tensor(p, &dev).unwrap();
        assert_eq!(tp.dims(), &[2, 3, 5, 4]);
        assert_eq!(tensor_to_array4(&tp).unwrap(), p.to_owned());
        // A strided slice.
        let sl = a.slice(s![.., 1..2, ..;2, ..]);
        assert_eq!(
            tensor_to_array4(&array4_to_tensor(sl, &dev).unwrap()).unwrap(),
            sl.to_owned()
        );
    }

    #[test]
    fn image_becomes_one_by_one_batch_and_f64_tensors_are_read() {
        let dev = Device::Cpu;
        let img = Array2::from_shape_fn((3, 2), |(i, j)| (i * 2 + j) as f32);
        let t = image_to_tensor(img.view(), &dev).unwrap();
        assert_eq!(t.dims(), &[1, 1, 3, 2]);
        assert_eq!(
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![0., 1., 2., 3., 4., 5.]
        );
        let t64 = t.to_dtype(DType::F64).unwrap();
        assert_eq!(
            tensor_to_array4(&t64).unwrap(),
            tensor_to_array4(&t).unwrap()
        );
        let flat = Tensor::zeros(4, DType::F32, &dev).unwrap();
        assert!(tensor_to_array4(&flat).is_err());
    }
}
