//! The hyperspherical mapping loss and prediction (Mettes et al. 2019; thesis section 4.1).

use candle_core::{DType, Tensor, D};

use crate::checks::{check_batch, sq_norms};
use crate::Result;

/// Added to squared norms before the square root, so that `z = 0` has a finite gradient.
pub const COSINE_EPS: f64 = 1e-12;

/// Cosines `[b, K]` between embeddings `z` `[b, D]` and unit prototypes `[K, D]`:
///
/// ```text
/// cos(z_i, p_k) = z_i . p_k / sqrt(||z_i||^2 + eps)      (||p_k|| = 1, eps = COSINE_EPS)
/// ```
///
/// # Errors
/// [`crate::Error::Shape`] for mismatched or empty shapes; candle's errors.
pub fn cosine_similarities(z: &Tensor, prototypes: &Tensor) -> Result<Tensor> {
    check_batch(z, prototypes, None)?;
    Ok(cosines(z, prototypes)?)
}

pub(crate) fn cosines(z: &Tensor, prototypes: &Tensor) -> candle_core::Result<Tensor> {
    let norms = (sq_norms(z)? + COSINE_EPS)?.sqrt()?.unsqueeze(1)?;
    z.matmul(&prototypes.t()?)?.broadcast_div(&norms)
}

/// Mean hyperspherical mapping loss of embeddings `z` `[b, D]` with labels u32 `[b]`
/// towards unit prototypes `[K, D]`:
///
/// ```text
/// J = (1/b) sum_i (1 - cos(z_i, p_{y_i}))^2
/// ```
///
/// with the signed cosine (the thesis writes `|z . p|`, which cannot tell antipodal
/// prototypes apart; Mettes et al. use the signed one). J is in [0, 4].
///
/// # Errors
/// [`crate::Error::Shape`] for mismatched shapes or D = 0 / K = 0,
/// [`crate::Error::LabelOutOfRange`] for a label `>= K`; candle's errors.
///
/// # Examples
/// ```
/// use candle_core::{Device, Tensor};
/// let dev = Device::Cpu;
/// let protos = Tensor::new(&[[1.0f32, 0.0], [-1.0, 0.0]], &dev)?;
/// let z = Tensor::new(&[[2.0f32, 0.0], [0.0, 3.0]], &dev)?;
/// let labels = Tensor::new(&[0u32, 1], &dev)?;
/// let j = netinv_prototypes::cosine_loss(&z, &protos, &labels)?.to_scalar::<f32>()?;
/// assert!((j - 0.5).abs() < 1e-6); // (0^2 + 1^2) / 2
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn cosine_loss(z: &Tensor, prototypes: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let (b, _, _) = check_batch(z, prototypes, Some(labels))?;
    let labels = labels.to_dtype(DType::U32)?;
    let targets = prototypes.index_select(&labels, 0)?;
    let norms = (sq_norms(z)? + COSINE_EPS)?.sqrt()?;
    let cos = (z * targets)?.sum(1)?.div(&norms)?;
    let per = cos.affine(-1.0, 1.0)?.sqr()?;
    Ok(per.sum_all()?.affine(1.0 / b as f64, 0.0)?)
}

/// Predicted classes u32 `[b]`: the prototype of largest cosine, `argmax_k cos(z_i, p_k)`.
///
/// # Errors
/// As [`cosine_similarities`].
pub fn cosine_predict(z: &Tensor, prototypes: &Tensor) -> Result<Tensor> {
    Ok(cosine_similarities(z, prototypes)?.argmax(D::Minus1)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use netinv_core::testing::{assert_close, central_diff};

    fn t(v: &[f32], rows: usize, cols: usize) -> Tensor {
        Tensor::from_vec(v.to_vec(), (rows, cols), &Device::Cpu).unwrap()
    }

    #[test]
    fn antipodal_prototypes_known_values() {
        let p = t(&[0.0, 1.0, 0.0, -1.0], 2, 2);
        let labels = Tensor::new(&[0u32, 0, 0], &Device::Cpu).unwrap();
        // on p0, orthogonal, on p1 (antipodal): (0, 1, 4) -> mean 5/3
        let z = t(&[0.0, 3.0, 0.5, 0.0, 0.0, -0.2], 3, 2);
        let j = cosine_loss(&z, &p, &labels)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((j - 5.0 / 3.0).abs() < 1e-6, "{j}");
        let pred = cosine_predict(&z, &p).unwrap().to_vec1::<u32>().unwrap();
        assert_eq!(pred[0], 0);
        assert_eq!(pred[2], 1);
    }

    #[test]
    fn gradient_matches_central_differences() {
        let p = t(&[0.6, 0.8, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0], 3, 3);
        let labels = Tensor::new(&[0u32, 2], &Device::Cpu).unwrap();
        let z0 = [0.3f64, -0.7, 0.2, 1.1, 0.4, -0.5];
        let f = |x: &[f64]| {
            let v: Vec<f32> = x.iter().map(|&a| a as f32).collect();
            let z = t(&v, 2, 3);
            f64::from(
                cosine_loss(&z, &p, &labels)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap(),
            )
        };
        let numeric = central_diff(f, &z0, 1e-3);
        let v: Vec<f32> = z0.iter().map(|&a| a as f32).collect();
        let var = Var::from_tensor(&t(&v, 2, 3)).unwrap();
        let loss = cosine_loss(var.as_tensor(), &p, &labels).unwrap();
        let g = loss.backward().unwrap();
        let g: Vec<f64> = g
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|&a| f64::from(a))
            .collect();
        assert_close(&g, &numeric, 1e-2, 1e-3);
    }

    #[test]
    fn zero_embedding_is_finite() {
        let p = t(&[1.0, 0.0], 1, 2);
        let z = Var::from_tensor(&t(&[0.0, 0.0], 1, 2)).unwrap();
        let labels = Tensor::new(&[0u32], &Device::Cpu).unwrap();
        let loss = cosine_loss(z.as_tensor(), &p, &labels).unwrap();
        assert!((loss.to_scalar::<f32>().unwrap() - 1.0).abs() < 1e-6);
        let g = loss.backward().unwrap();
        let g = g
            .get(z.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(g.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn bad_input_is_an_error() {
        let p = t(&[1.0, 0.0, 0.0, 1.0], 2, 2);
        let z = t(&[1.0, 0.0], 1, 2);
        let bad = Tensor::new(&[2u32], &Device::Cpu).unwrap();
        assert!(matches!(
            cosine_loss(&z, &p, &bad),
            Err(crate::Error::LabelOutOfRange { label: 2, .. })
        ));
        let z3 = t(&[1.0, 0.0, 0.0], 1, 3);
        let ok = Tensor::new(&[0u32], &Device::Cpu).unwrap();
        assert!(matches!(
            cosine_loss(&z3, &p, &ok),
            Err(crate::Error::Shape { .. })
        ));
        let empty = Tensor::zeros((0, 2), DType::F32, &Device::Cpu).unwrap();
        assert!(cosine_similarities(&z, &empty).is_err());
        let d0 = Tensor::zeros((1, 0), DType::F32, &Device::Cpu).unwrap();
        let p0 = Tensor::zeros((2, 0), DType::F32, &Device::Cpu).unwrap();
        assert!(cosine_similarities(&d0, &p0).is_err());
    }
}
