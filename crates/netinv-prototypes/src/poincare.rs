//! The Poincare ball, ideal prototypes and the Busemann loss (Ghadimi Atigh et al. 2021,
//! "Hyperbolic Busemann Learning with Ideal Prototypes"; thesis section 4.2).
//!
//! The ball is the open unit ball of curvature -1. Network outputs are Euclidean; they are
//! put into the ball with the exponential map at 0 and clipped to the norm [`MAX_NORM`].

use candle_core::{DType, Tensor, D};

use crate::checks::{check_batch, sq_norms};
use crate::error::invalid;
use crate::placement::{place_prototypes, Placement, PlacementConfig};
use crate::{Error, Result};

/// Largest norm of a point produced by [`to_ball`] / [`clip_to_ball`]'s default use:
/// `1 - 1e-5`, so that `1 - ||z||^2 ~ 2e-5` is still resolved in f32.
pub const MAX_NORM: f64 = 1.0 - 1e-5;

/// Lower clamp of `||p - z||^2` and `1 - ||z||^2` inside logarithms (the `1e-6` of the
/// reference code of Ghadimi Atigh et al.).
pub const BUSEMANN_EPS: f64 = 1e-6;

const NORM_EPS: f64 = 1e-12;

/// Scales rows of `z` `[b, D]` whose norm exceeds `max_norm` back onto that norm:
///
/// ```text
/// clip(z) = z * min(1, max_norm / ||z||)
/// ```
///
/// # Errors
/// [`Error::InvalidConfig`] unless `0 < max_norm < 1`; [`Error::Shape`] unless `z` is 2-D.
pub fn clip_to_ball(z: &Tensor, max_norm: f64) -> Result<Tensor> {
    if max_norm.is_nan() || max_norm <= 0.0 || max_norm >= 1.0 {
        return Err(invalid(
            "max_norm",
            format!("must be in (0, 1), got {max_norm}"),
        ));
    }
    rank2(z)?;
    Ok(clip(z, max_norm)?)
}

fn clip(z: &Tensor, max_norm: f64) -> candle_core::Result<Tensor> {
    let norms = (sq_norms(z)? + NORM_EPS)?.sqrt()?;
    let factor = norms.recip()?.affine(max_norm, 0.0)?.minimum(1.0)?;
    z.broadcast_mul(&factor.unsqueeze(1)?)
}

fn rank2(z: &Tensor) -> Result<(usize, usize)> {
    z.dims2().map_err(|_| Error::Shape {
        expected: "points [b, D]".into(),
        got: format!("{:?}", z.dims()),
    })
}

/// The exponential map at the origin of the Poincare ball (curvature -1), row-wise on
/// tangent vectors `v` `[b, D]`:
///
/// ```text
/// exp_0(v) = tanh(||v||) v / ||v||
/// ```
///
/// (`||v||` is computed as `sqrt(||v||^2 + 1e-12)`, so `exp_0(0) = 0` with a finite
/// gradient). In f32, `tanh` rounds to 1 for `||v||` above ~9: use [`to_ball`] to stay
/// strictly inside.
///
/// # Errors
/// [`Error::Shape`] unless `v` is 2-D; candle's errors.
pub fn exp_map_zero(v: &Tensor) -> Result<Tensor> {
    rank2(v)?;
    Ok(exp0(v)?)
}

fn exp0(v: &Tensor) -> candle_core::Result<Tensor> {
    let norms = (sq_norms(v)? + NORM_EPS)?.sqrt()?;
    let factor = (norms.tanh()? / &norms)?;
    v.broadcast_mul(&factor.unsqueeze(1)?)
}

/// Network output `v` `[b, D]` to points strictly inside the ball:
/// `clip(exp_0(v), MAX_NORM)`.
///
/// # Errors
/// As [`exp_map_zero`].
pub fn to_ball(v: &Tensor) -> Result<Tensor> {
    rank2(v)?;
    Ok(clip(&exp0(v)?, MAX_NORM)?)
}

/// Checks that every row of `z` `[b, D]` is finite with norm < 1 (norms computed in f64).
///
/// # Errors
/// [`Error::OutsideBall`] for the first offending row; [`Error::Shape`] unless 2-D.
pub fn check_in_ball(z: &Tensor) -> Result<()> {
    rank2(z)?;
    let rows = z.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    for (index, row) in rows.iter().enumerate() {
        let norm = row
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        if !norm.is_finite() || norm >= 1.0 {
            return Err(Error::OutsideBall { index, norm });
        }
    }
    Ok(())
}

/// Row-wise Poincare distance `[b]` between points `u`, `v` `[b, D]` of the ball:
///
/// ```text
/// d(u, v) = arcosh(1 + 2 ||u - v||^2 / ((1 - ||u||^2)(1 - ||v||^2)))
///         = ln(1 + a + sqrt(a (a + 2)))      a = 2 ||u - v||^2 / ((1 - ||u||^2)(1 - ||v||^2))
/// ```
///
/// (`1e-12` is added under the square root so that `u = v` has a finite gradient).
///
/// # Errors
/// [`Error::OutsideBall`] for a point with norm >= 1; [`Error::Shape`] for different shapes.
///
/// # Examples
/// ```
/// use candle_core::{Device, Tensor};
/// let dev = Device::Cpu;
/// let o = Tensor::new(&[[0.0f32, 0.0]], &dev)?;
/// let z = Tensor::new(&[[0.5f32, 0.0]], &dev)?;
/// let d = netinv_prototypes::poincare_distance(&o, &z)?.to_vec1::<f32>()?;
/// assert!((d[0] - 2.0 * 0.5f32.atanh()).abs() < 1e-5); // d(0, z) = 2 artanh ||z||
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn poincare_distance(u: &Tensor, v: &Tensor) -> Result<Tensor> {
    if u.dims() != v.dims() {
        return Err(Error::Shape {
            expected: format!("{:?}", u.dims()),
            got: format!("{:?}", v.dims()),
        });
    }
    check_in_ball(u)?;
    check_in_ball(v)?;
    let du = sq_norms(u)?.affine(-1.0, 1.0)?.maximum(BUSEMANN_EPS)?;
    let dv = sq_norms(v)?.affine(-1.0, 1.0)?.maximum(BUSEMANN_EPS)?;
    let a = (sq_norms(&(u - v)?)?.affine(2.0, 0.0)? / (du * dv)?)?;
    let root = ((&a * a.affine(1.0, 2.0)?)? + NORM_EPS)?.sqrt()?;
    Ok((a.affine(1.0, 1.0)? + root)?.log()?)
}

/// Ideal prototypes: `classes` points on the boundary of the ball (unit vectors), placed as
/// far apart as possible with [`place_prototypes`].
///
/// # Errors
/// As [`place_prototypes`].
pub fn ideal_prototypes(classes: usize, dim: usize, cfg: &PlacementConfig) -> Result<Placement> {
    place_prototypes(classes, dim, cfg)
}

/// Busemann values `[b, K]` of points `z` `[b, D]` inside the ball towards ideal prototypes
/// `[K, D]` (unit vectors):
///
/// ```text
/// b_p(z) = log(||p - z||^2 / (1 - ||z||^2))
///        = log(max(1 + ||z||^2 - 2 z . p, eps)) - log(max(1 - ||z||^2, eps))   (||p|| = 1)
/// ```
///
/// with `eps = BUSEMANN_EPS`. `b_p(0) = 0`; `b_p(z) -> -inf` as `z -> p`.
///
/// # Errors
/// [`Error::OutsideBall`] for a point with norm >= 1; [`Error::Shape`] for mismatched or
/// empty shapes.
pub fn busemann(z: &Tensor, prototypes: &Tensor) -> Result<Tensor> {
    check_batch(z, prototypes, None)?;
    check_in_ball(z)?;
    let sq = sq_norms(z)?;
    let dist = z
        .matmul(&prototypes.t()?)?
        .affine(-2.0, 1.0)?
        .broadcast_add(&sq.unsqueeze(1)?)?
        .maximum(BUSEMANN_EPS)?
        .log()?;
    let inner = sq.affine(-1.0, 1.0)?.maximum(BUSEMANN_EPS)?.log()?;
    Ok(dist.broadcast_sub(&inner.unsqueeze(1)?)?)
}

/// Predicted classes u32 `[b]`: the prototype of smallest Busemann value,
/// `argmin_k b_{p_k}(z_i)`.
///
/// # Errors
/// As [`busemann`].
pub fn busemann_predict(z: &Tensor, prototypes: &Tensor) -> Result<Tensor> {
    Ok(busemann(z, prototypes)?.neg()?.argmax(D::Minus1)?)
}

/// The penalty weight `phi = slope * dim` of [`busemann_loss`].
///
/// # Errors
/// [`Error::InvalidConfig`] unless `slope` is finite and `>= 0` and `dim >= 1`.
pub fn penalty_weight(slope: f64, dim: usize) -> Result<f64> {
    if !(slope.is_finite() && slope >= 0.0) {
        return Err(invalid(
            "slope",
            format!("must be finite and >= 0, got {slope}"),
        ));
    }
    if dim == 0 {
        return Err(invalid("dim", "the dimension must be at least 1"));
    }
    Ok(slope * dim as f64)
}

/// Mean penalised Busemann loss of points `z` `[b, D]` inside the ball with labels u32
/// `[b]` towards ideal prototypes `[K, D]` (Ghadimi Atigh et al. 2021, Eq. 9):
///
/// ```text
/// l(z, p) = b_p(z) - phi log(1 - ||z||^2)
///         = log ||p - z||^2 - (1 + phi) log(1 - ||z||^2)
/// J       = (1/b) sum_i l(z_i, p_{y_i})
/// ```
///
/// with `phi = slope * D` ([`penalty_weight`]; the paper's code calls the slope `mult`,
/// 0.75 worked for the thesis) and both logarithm arguments clamped below at
/// `BUSEMANN_EPS`. The authors' reference code (`PeBusePenalty`) computes exactly this
/// plus the constant `phi log 2`, which changes no gradient and is left out here. Along
/// `z = r p`, `l = (1 - phi) log(1 - r) - (1 + phi) log(1 + r)`, minimal at `r = 1/phi`
/// (for `phi > 1`): the penalty keeps points off the boundary.
///
/// # Errors
/// [`Error::OutsideBall`], [`Error::Shape`], [`Error::LabelOutOfRange`] for bad inputs,
/// [`Error::InvalidConfig`] for a negative or non-finite `phi`; candle's errors.
///
/// # Examples
/// ```
/// use candle_core::{Device, Tensor};
/// let dev = Device::Cpu;
/// let protos = Tensor::new(&[[1.0f32, 0.0], [-1.0, 0.0]], &dev)?;
/// let z = Tensor::new(&[[0.0f32, 0.0]], &dev)?;
/// let labels = Tensor::new(&[1u32], &dev)?;
/// let j = netinv_prototypes::busemann_loss(&z, &protos, &labels, 1.5)?.to_scalar::<f32>()?;
/// assert!(j.abs() < 1e-6); // b_p(0) = 0 and log(1 - 0) = 0
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn busemann_loss(z: &Tensor, prototypes: &Tensor, labels: &Tensor, phi: f64) -> Result<Tensor> {
    if !(phi.is_finite() && phi >= 0.0) {
        return Err(invalid(
            "phi",
            format!("must be finite and >= 0, got {phi}"),
        ));
    }
    let (b, _, _) = check_batch(z, prototypes, Some(labels))?;
    check_in_ball(z)?;
    let targets = prototypes.index_select(&labels.to_dtype(DType::U32)?, 0)?;
    let dist = sq_norms(&(targets - z)?)?.maximum(BUSEMANN_EPS)?.log()?;
    let inner = sq_norms(z)?
        .affine(-1.0, 1.0)?
        .maximum(BUSEMANN_EPS)?
        .log()?;
    let per = (dist - inner.affine(1.0 + phi, 0.0)?)?;
    Ok(per.sum_all()?.affine(1.0 / b as f64, 0.0)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use netinv_core::testing::{assert_close, central_diff};

    fn t(v: &[f32], rows: usize, cols: usize) -> Tensor {
        Tensor::from_vec(v.to_vec(), (rows, cols), &Device::Cpu).unwrap()
    }

    fn scalar(x: &Tensor) -> f64 {
        f64::from(x.to_scalar::<f32>().unwrap())
    }

    fn grad_of(f: impl Fn(&Tensor) -> Tensor, x: &[f64], rows: usize, cols: usize) -> Vec<f64> {
        let v: Vec<f32> = x.iter().map(|&a| a as f32).collect();
        let var = Var::from_tensor(&t(&v, rows, cols)).unwrap();
        let loss = f(var.as_tensor());
        let g = loss.backward().unwrap();
        g.get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|&a| f64::from(a))
            .collect()
    }

    fn protos() -> Tensor {
        // unit vectors in 3-D
        t(&[1.0, 0.0, 0.0, 0.0, 0.6, 0.8, -1.0, 0.0, 0.0], 3, 3)
    }

    #[test]
    fn origin_has_zero_busemann() {
        let z = t(&[0.0, 0.0, 0.0], 1, 3);
        let b = busemann(&z, &protos()).unwrap().to_vec2::<f32>().unwrap();
        assert!(b[0].iter().all(|v| v.abs() < 1e-6), "{b:?}");
    }

    #[test]
    fn closed_form_along_the_prototype() {
        let p = protos();
        let labels = Tensor::new(&[1u32], &Device::Cpu).unwrap();
        let phi = penalty_weight(0.75, 3).unwrap(); // 2.25
        let loss_at = |r: f64| {
            let z = t(&[0.0, (0.6 * r) as f32, (0.8 * r) as f32], 1, 3);
            scalar(&busemann_loss(&z, &p, &labels, phi).unwrap())
        };
        for r in [0.0f64, 0.2, 0.5, 0.9, 0.99] {
            let expected = (1.0 - phi) * (1.0 - r).ln() - (1.0 + phi) * (1.0 + r).ln();
            assert!((loss_at(r) - expected).abs() < 1e-4, "r = {r}");
        }
        let r_star = 1.0 / phi;
        assert!(loss_at(r_star) < loss_at(r_star - 0.02));
        assert!(loss_at(r_star) < loss_at(r_star + 0.02));
        // b_p along r p: log((1 - r)^2 / (1 - r^2)) = log((1 - r) / (1 + r))
        let z = t(&[0.0, 0.3, 0.4], 1, 3);
        let b = busemann(&z, &p).unwrap().to_vec2::<f32>().unwrap();
        assert!((f64::from(b[0][1]) - (0.5f64 / 1.5).ln()).abs() < 1e-5);
        assert_eq!(
            busemann_predict(&z, &p).unwrap().to_vec1::<u32>().unwrap(),
            [1]
        );
    }

    #[test]
    fn loss_gradient_matches_central_differences() {
        let p = protos();
        let labels = Tensor::new(&[0u32, 2], &Device::Cpu).unwrap();
        let x0 = [0.3, -0.2, 0.1, -0.1, 0.5, 0.4];
        let f = |z: &Tensor| busemann_loss(z, &p, &labels, 1.5).unwrap();
        let numeric = central_diff(
            |x| {
                let v: Vec<f32> = x.iter().map(|&a| a as f32).collect();
                scalar(&f(&t(&v, 2, 3)))
            },
            &x0,
            1e-3,
        );
        assert_close(&grad_of(f, &x0, 2, 3), &numeric, 1e-2, 1e-3);
    }

    #[test]
    fn ball_map_gradient_matches_central_differences() {
        let p = protos();
        let labels = Tensor::new(&[0u32, 1], &Device::Cpu).unwrap();
        let x0 = [0.8, -0.3, 0.2, -0.4, 1.2, 0.7];
        let f = |v: &Tensor| busemann_loss(&to_ball(v).unwrap(), &p, &labels, 2.25).unwrap();
        let numeric = central_diff(
            |x| {
                let v: Vec<f32> = x.iter().map(|&a| a as f32).collect();
                scalar(&f(&t(&v, 2, 3)))
            },
            &x0,
            1e-3,
        );
        assert_close(&grad_of(f, &x0, 2, 3), &numeric, 2e-2, 2e-3);
        let d = |v: &Tensor| {
            let u = to_ball(v).unwrap();
            let w = t(&[0.1, 0.2, -0.3, 0.0, -0.5, 0.1], 2, 3);
            poincare_distance(&u, &w).unwrap().sum_all().unwrap()
        };
        let numeric = central_diff(
            |x| {
                let v: Vec<f32> = x.iter().map(|&a| a as f32).collect();
                scalar(&d(&t(&v, 2, 3)))
            },
            &x0,
            1e-3,
        );
        assert_close(&grad_of(d, &x0, 2, 3), &numeric, 2e-2, 2e-3);
    }

    #[test]
    fn distance_known_values() {
        let u = t(&[0.0, 0.0, 0.3, 0.0], 2, 2);
        let v = t(&[0.0, 0.6, -0.3, 0.0], 2, 2);
        let d = poincare_distance(&u, &v).unwrap().to_vec1::<f32>().unwrap();
        assert!((f64::from(d[0]) - 2.0 * 0.6f64.atanh()).abs() < 1e-5);
        // symmetric points on a diameter: d = 2 * d(0, 0.3)
        assert!((f64::from(d[1]) - 4.0 * 0.3f64.atanh()).abs() < 1e-5);
        let same = poincare_distance(&v, &v).unwrap().to_vec1::<f32>().unwrap();
        assert!(same.iter().all(|x| x.abs() < 1e-5));
    }

    #[test]
    fn exp_map_and_clip() {
        let v = t(&[3.0, 4.0, 0.0, 0.0, 1e4, 0.0], 3, 2);
        let z = exp_map_zero(&v).unwrap().to_vec2::<f32>().unwrap();
        let n = (f64::from(z[0][0]).powi(2) + f64::from(z[0][1]).powi(2)).sqrt();
        assert!((n - 5f64.tanh()).abs() < 1e-6);
        assert_eq!(z[1], [0.0, 0.0]);
        let zb = to_ball(&v).unwrap();
        check_in_ball(&zb).unwrap();
        let c = clip_to_ball(&t(&[3.0, 4.0, 0.1, 0.0], 2, 2), 0.5).unwrap();
        let c = c.to_vec2::<f32>().unwrap();
        assert!((c[0][0] - 0.3).abs() < 1e-6 && (c[0][1] - 0.4).abs() < 1e-6);
        assert_eq!(c[1], [0.1, 0.0]);
        assert!(clip_to_ball(&v, 1.0).is_err());
    }

    #[test]
    fn no_nan_near_the_boundary() {
        let p = protos();
        let labels = Tensor::new(&[0u32, 0, 1, 2], &Device::Cpu).unwrap();
        // huge network outputs (tanh saturates), one exactly at a prototype's direction
        let v = [
            50.0, 0.0, 0.0, 1e6, 1.0, 0.0, 0.0, -30.0, 40.0, 0.0, 1e-3, 0.0,
        ];
        let f = |v: &Tensor| busemann_loss(&to_ball(v).unwrap(), &p, &labels, 2.25).unwrap();
        let value = scalar(&f(&t(&v.map(|a| a as f32), 4, 3)));
        assert!(value.is_finite(), "{value}");
        let g = grad_of(f, &v, 4, 3);
        assert!(g.iter().all(|x| x.is_finite()), "{g:?}");
        for r in [0.999, 0.99999, 0.9999999] {
            let z = t(&[r as f32, 0.0, 0.0], 1, 3);
            if check_in_ball(&z).is_ok() {
                let b = busemann(&z, &p).unwrap().to_vec2::<f32>().unwrap();
                assert!(b[0].iter().all(|x| x.is_finite()), "r = {r}: {b:?}");
                let l = busemann_loss(&z, &p, &labels.narrow(0, 0, 1).unwrap(), 2.25).unwrap();
                assert!(scalar(&l).is_finite());
            }
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let p = protos();
        let outside = t(&[0.8, 0.8, 0.0], 1, 3);
        let l0 = Tensor::new(&[0u32], &Device::Cpu).unwrap();
        assert!(matches!(
            busemann_loss(&outside, &p, &l0, 1.5),
            Err(Error::OutsideBall { index: 0, .. })
        ));
        assert!(matches!(
            busemann(&outside, &p),
            Err(Error::OutsideBall { .. })
        ));
        let z = t(&[0.1, 0.0, 0.0], 1, 3);
        assert!(matches!(
            busemann_loss(&z, &p, &Tensor::new(&[3u32], &Device::Cpu).unwrap(), 1.5),
            Err(Error::LabelOutOfRange {
                label: 3,
                classes: 3,
                ..
            })
        ));
        assert!(busemann_loss(&z, &p, &l0, -1.0).is_err());
        assert!(penalty_weight(0.75, 0).is_err());
        let p0 = Tensor::zeros((0, 3), DType::F32, &Device::Cpu).unwrap();
        assert!(busemann(&z, &p0).is_err());
        let nan = t(&[f32::NAN, 0.0, 0.0], 1, 3);
        assert!(check_in_ball(&nan).is_err());
        assert!(poincare_distance(&z, &outside).is_err());
    }
}
