//! Small bridges between images `[rows, cols]` (ndarray) and the classifier (candle).

use candle_core::{Device, Tensor};
use ndarray::{Array2, ArrayView2};
use netinv_invert::{
    argmax, softmax_rows, BnStatsPrior, CrossEntropy, InvertibleNet, L2Norm, Objective, Prior,
    Reduction, SquaredTv,
};
use netinv_tomo::LinearOperator;

use crate::{Error, Result};

/// The image as a `[1, 1, rows, cols]` tensor on the CPU.
pub(crate) fn to_tensor(x: ArrayView2<f32>) -> Result<Tensor> {
    let (r, c) = x.dim();
    Ok(Tensor::from_vec(
        x.iter().copied().collect::<Vec<f32>>(),
        (1, 1, r, c),
        &Device::Cpu,
    )?)
}

/// Checks that the operator has angles and that the classifier takes one-channel images of
/// the operator's image shape.
pub(crate) fn check_scan<N, O>(net: &N, op: &O) -> Result<()>
where
    N: InvertibleNet + ?Sized,
    O: LinearOperator + ?Sized,
{
    if op.range_shape().0 == 0 {
        return Err(Error::NoAngles);
    }
    let (rows, cols) = op.domain_shape();
    let dims = net.input_dims();
    if dims != (1, rows, cols) {
        return Err(Error::Shape {
            what: "classifier input vs reconstructed image",
            expected: format!("(1, {rows}, {cols})"),
            got: format!("{dims:?}"),
        });
    }
    Ok(())
}

/// The class `F` predicts for `image` `[rows, cols]` (argmax of the logits).
///
/// # Errors
/// [`Error::Shape`] if the image does not fit the network; candle errors.
pub fn predict_class<N: InvertibleNet + ?Sized>(net: &N, image: ArrayView2<f32>) -> Result<u32> {
    check_image(net, image)?;
    let p = softmax_rows(&net.forward(&to_tensor(image)?)?)?;
    Ok(argmax(&p[0]) as u32)
}

/// The cross-entropy `-log softmax(F(x))[class]` of one image `[rows, cols]`.
///
/// # Errors
/// [`Error::Shape`] if the image does not fit the network, [`Error::ClassOutOfRange`];
/// candle errors.
pub fn class_loss<N: InvertibleNet + ?Sized>(
    net: &N,
    image: ArrayView2<f32>,
    class: u32,
) -> Result<f64> {
    check_image(net, image)?;
    check_class(net, class)?;
    let logits = net.forward(&to_tensor(image)?)?;
    let l = CrossEntropy::new(vec![class], Reduction::Mean).loss(&logits)?;
    Ok(f64::from(l.to_scalar::<f32>()?))
}

pub(crate) fn check_image<N: InvertibleNet + ?Sized>(
    net: &N,
    image: ArrayView2<f32>,
) -> Result<()> {
    let (r, c) = image.dim();
    if net.input_dims() != (1, r, c) {
        return Err(Error::Shape {
            what: "image vs classifier input",
            expected: format!("{:?}", net.input_dims()),
            got: format!("(1, {r}, {c})"),
        });
    }
    Ok(())
}

pub(crate) fn check_class<N: InvertibleNet + ?Sized>(net: &N, class: u32) -> Result<()> {
    if class as usize >= net.outputs() {
        return Err(Error::ClassOutOfRange {
            class,
            outputs: net.outputs(),
        });
    }
    Ok(())
}

/// Weights of the network terms of a reconstruction objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NetTerms {
    pub class: f64,
    pub tv: f64,
    pub l2: f64,
    pub bn: f64,
}

/// Value, gradient and predicted class of
/// `class w_c CE(F(x), c) + tv TV2(x) + l2 ||x||^2 + bn R_BN(x)` at `x` `[rows, cols]`,
/// where `c` is `class` or, if `None`, the class predicted from the same forward pass (a
/// constant for the gradient).
pub(crate) fn net_terms_gradient<N: InvertibleNet + ?Sized>(
    net: &N,
    x: ArrayView2<f32>,
    class: Option<u32>,
    w: NetTerms,
) -> Result<(f64, Array2<f32>, u32)> {
    let var = candle_core::Var::from_tensor(&to_tensor(x)?)?;
    let input = var.as_tensor();
    let (logits, stats) = if w.bn > 0.0 {
        net.forward_with_bn_stats(input)?
    } else {
        (net.forward(input)?, Vec::new())
    };
    let probs = softmax_rows(&logits)?;
    let predicted = argmax(&probs[0]) as u32;
    let c = class.unwrap_or(predicted);
    let mut total = Tensor::zeros((), candle_core::DType::F32, &Device::Cpu)?;
    if w.class > 0.0 {
        let ce = CrossEntropy::new(vec![c], Reduction::Mean).loss(&logits)?;
        total = (total + ce.affine(w.class, 0.0)?)?;
    }
    if w.tv > 0.0 {
        total = (total + SquaredTv::new(w.tv)?.penalty(input)?)?;
    }
    if w.l2 > 0.0 {
        total = (total + L2Norm::new(w.l2)?.penalty(input)?)?;
    }
    if w.bn > 0.0 {
        total = (total + BnStatsPrior::new(w.bn)?.penalty(&stats)?)?;
    }
    let value = f64::from(total.to_scalar::<f32>()?);
    let grads = total.backward()?;
    let grad = match grads.get(input) {
        Some(g) => g.flatten_all()?.to_vec1::<f32>()?,
        None => vec![0.0; x.len()],
    };
    let grad = Array2::from_shape_vec(x.dim(), grad).map_err(|e| Error::Shape {
        what: "network gradient",
        expected: format!("{:?}", x.dim()),
        got: e.to_string(),
    })?;
    Ok((value, grad, predicted))
}
