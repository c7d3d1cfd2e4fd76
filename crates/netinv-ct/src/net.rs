//! Small bridges between images `[rows, cols]` (ndarray) and the classifier (candle).

use candle_core::{DType, Device, Tensor};
use ndarray::ArrayView2;
use netinv_invert::{
    BnStatsPrior, CrossEntropy, InvertibleNet, L2Norm, Objective, Prior, Reduction, SquaredTv,
};
use netinv_tomo::LinearOperator;

use crate::{Error, NetTerms, Result};

/// The image as a `[1, 1, rows, cols]` tensor on the CPU (netinv-models' bridge).
pub(crate) fn to_tensor(x: ArrayView2<f32>) -> Result<Tensor> {
    Ok(netinv_models::bridge::image_to_tensor(x, &Device::Cpu)?)
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
    let classes = net.predict(&to_tensor(image)?)?;
    Ok(classes[0])
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

/// The net terms of a batch: per image, the value of
/// `w_c CE(F(x), c) + tv TV2(x) + l2 ||x||^2 + bn R_BN(x)`, its gradient and the class the
/// network predicts (`None` when no term needs the network's output).
pub(crate) struct NetTermsBatch {
    /// One value per image.
    pub values: Vec<f64>,
    /// The gradients `[b, 1, rows, cols]`, flattened in that order.
    pub gradient: Vec<f32>,
    /// The predicted classes (argmax of the logits), if the network was run.
    pub predicted: Option<Vec<u32>>,
}

/// [`NetTermsBatch`] at `images` `[b, 1, rows, cols]`. The class of image `k` is
/// `classes[k]` or, if `None`, the class predicted from the same forward pass (a constant
/// for the gradient). BatchNorm statistics are per image, so every image's value and
/// gradient are those it would have alone.
pub(crate) fn net_terms_gradient(
    net: &(impl InvertibleNet + ?Sized),
    images: &Tensor,
    classes: &[Option<u32>],
    w: NetTerms,
) -> Result<NetTermsBatch> {
    let var = candle_core::Var::from_tensor(images)?;
    let input = var.as_tensor();
    let batch = classes.len();
    let mut total = Tensor::zeros(batch, DType::F32, &Device::Cpu)?;
    let mut predicted = None;
    if w.class > 0.0 || w.bn > 0.0 {
        let (logits, stats) = if w.bn > 0.0 {
            net.forward_with_image_bn_stats(input)?
        } else {
            (net.forward(input)?, Vec::new())
        };
        let guesses = classes_of(&logits)?;
        if w.class > 0.0 {
            let chosen: Vec<u32> = classes
                .iter()
                .zip(&guesses)
                .map(|(c, g)| c.unwrap_or(*g))
                .collect();
            let one_hot = Tensor::from_vec(
                chosen
                    .iter()
                    .flat_map(|&c| {
                        (0..net.outputs()).map(move |j| f32::from(u8::from(j == c as usize)))
                    })
                    .collect::<Vec<f32>>(),
                (batch, net.outputs()),
                &Device::Cpu,
            )?;
            let log_p = candle_nn::ops::log_softmax(&logits, 1)?;
            let ce = (log_p * one_hot)?.sum(1)?.neg()?;
            total = (total + ce.affine(w.class, 0.0)?)?;
        }
        if w.bn > 0.0 {
            total = (total + BnStatsPrior::new(w.bn)?.penalty_per_image(&stats)?)?;
        }
        predicted = Some(guesses);
    }
    if w.tv > 0.0 {
        total = (total + SquaredTv::new(w.tv)?.penalty_per_image(input)?)?;
    }
    if w.l2 > 0.0 {
        total = (total + L2Norm::new(w.l2)?.penalty_per_image(input)?)?;
    }
    let values: Vec<f64> = total.to_vec1::<f32>()?.into_iter().map(f64::from).collect();
    let grads = total.sum_all()?.backward()?;
    let gradient = match grads.get(input) {
        Some(g) => g.flatten_all()?.to_vec1::<f32>()?,
        None => vec![0.0; input.elem_count()],
    };
    Ok(NetTermsBatch {
        values,
        gradient,
        predicted,
    })
}

/// The class of largest softmax probability (the first on ties) of every row of `logits`
/// `[b, k]`, with netinv-models' host softmax (so the classes equal
/// [`InvertibleNet::predict`]'s for the same logits).
fn classes_of(logits: &Tensor) -> Result<Vec<u32>> {
    Ok(netinv_models::train::softmax_rows(logits)?
        .iter()
        .map(|p| {
            p.iter()
                .enumerate()
                .fold(0, |best, (i, &v)| if v > p[best] { i } else { best }) as u32
        })
        .collect())
}
