//! The study's data and its classical arms (FBP, SIRT-100, box-constrained least squares,
//! TV), which need no network.

use ndarray::{Array2, ArrayView2};
use netinv_tomo::{
    poisson_noise, CsrOperator, Fbp, FbpConfig, LinearOperator, Sirt, SirtConfig, TvConfig, TvPdhg,
};

use super::method::{Arm, ArmLabels, Method};
use super::{ArmImages, SIZE};
use crate::Result;

/// Optical depth per unit line integral of the Poisson model: an object of intensity 1
/// across the 28-pixel image attenuates by `e^-4`.
pub const ATTENUATION_SCALE: f64 = 4.0 / SIZE as f64;

/// The data of one digit: the projection of `truth`, with Poisson noise of `noise`
/// photons per ray (seeded by `seed`) or none.
///
/// # Errors
/// [`crate::Error::Tomo`] for an invalid photon count.
pub fn sinogram(
    op: &CsrOperator,
    truth: ArrayView2<f32>,
    noise: Option<f64>,
    seed: u64,
) -> Result<Array2<f32>> {
    let clean = op.apply(truth);
    Ok(match noise {
        None => clean,
        Some(i0) => poisson_noise(clean.view(), i0, ATTENUATION_SCALE, seed)?,
    })
}

/// TV + box [0, 1] by PDHG with `weight` and `iterations`.
pub fn tv_config(weight: f32, iterations: usize) -> TvConfig {
    TvConfig {
        weight,
        iterations,
        min: Some(0.0),
        max: Some(1.0),
        ..TvConfig::default()
    }
}

/// SIRT-100 with the box [0, 1].
///
/// # Errors
/// Never for these settings; the constructor's check is passed on.
pub fn sirt100() -> Result<Sirt> {
    Ok(Sirt::new(SirtConfig {
        iterations: 100,
        min: Some(0.0),
        max: Some(1.0),
        ..Default::default()
    })?)
}

/// The classical arms on every sinogram of one setting, batched where the method allows:
/// `out[k]` holds digit k's `(arm, image)` pairs for FBP (clipped to [0, 1]), SIRT-100,
/// box-constrained least squares and TV (`tv_weight`), both PDHG runs with
/// `pdhg_iterations`. Also returns the SIRT-100 images (the start of the pg arms).
///
/// # Errors
/// [`crate::Error::Tomo`] for sinograms that do not fit `op` or invalid settings.
pub fn classical_arms(
    op: &CsrOperator,
    sinograms: &[ArrayView2<f32>],
    tv_weight: f32,
    pdhg_iterations: usize,
) -> Result<(Vec<ArmImages>, Vec<Array2<f32>>)> {
    // the classical arms have no class term
    let index = |m| Arm::new(m, ArmLabels::None).index();
    let fbp = Fbp::new(FbpConfig::default())?;
    let mut out: Vec<ArmImages> = sinograms
        .iter()
        .map(|b| {
            Ok(vec![(
                index(Method::Fbp),
                fbp.reconstruct(op, *b)?.mapv(|v| v.clamp(0.0, 1.0)),
            )])
        })
        .collect::<Result<_>>()?;
    let sirt = sirt100()?.reconstruct_batch(op, sinograms, None)?;
    let ls = TvPdhg::new(TvConfig::least_squares(
        pdhg_iterations,
        Some(0.0),
        Some(1.0),
    ))?;
    let tv = TvPdhg::new(tv_config(tv_weight, pdhg_iterations))?;
    let (ls, tv) = (
        ls.reconstruct_batch(op, sinograms)?,
        tv.reconstruct_batch(op, sinograms)?,
    );
    let mut starts = Vec::with_capacity(sirt.len());
    for (k, ((s, l), t)) in sirt.into_iter().zip(ls).zip(tv).enumerate() {
        out[k].extend([
            (index(Method::Sirt100), s.image.clone()),
            (index(Method::BoxLsPdhg), l.image),
            (index(Method::TvPdhg), t.image),
        ]);
        starts.push(s.image);
    }
    Ok((out, starts))
}
