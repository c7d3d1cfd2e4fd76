//! The data-consistency refinement of a decoded image: PDHG with an anchor term.

use ndarray::{Array2, ArrayView2};
use netinv_tomo::{LinearOperator, TvPdhg, TvRun};

use super::RefineConfig;
use crate::study::tv_config;
use crate::{Error, Result};

/// The refinement of [`RefineConfig`]: data consistency around decoded images.
#[derive(Debug, Clone)]
pub struct DcRefinement {
    cfg: RefineConfig,
}

impl DcRefinement {
    /// A refinement with checked settings.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] as [`RefineConfig::validate`].
    pub fn new(cfg: RefineConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self { cfg })
    }

    /// The settings.
    pub fn config(&self) -> &RefineConfig {
        &self.cfg
    }

    /// A PDHG run on every sinogram around its anchor (`anchors[k]`, `[rows, cols]` in
    /// [0, 1]), ready to step: with `anchor > 0` from the anchors, with `anchor = 0` the
    /// TV arm's run (from zero; the anchors are not used).
    ///
    /// # Errors
    /// [`Error::Shape`] if the sinograms and anchors differ in number or do not fit `op`;
    /// the solver's errors.
    pub fn start<'a, O: LinearOperator + ?Sized>(
        &self,
        op: &'a O,
        sinograms: &[ArrayView2<f32>],
        anchors: &[ArrayView2<f32>],
    ) -> Result<TvRun<'a, O>> {
        if anchors.len() != sinograms.len() {
            return Err(Error::Shape {
                what: "anchor images",
                expected: format!("one per sinogram ({})", sinograms.len()),
                got: anchors.len().to_string(),
            });
        }
        let c = &self.cfg;
        let weights = vec![c.tv_weight; sinograms.len()];
        if c.anchor == 0.0 {
            let solver = TvPdhg::new(tv_config(c.tv_weight, c.tv_iterations))?;
            return Ok(solver.start_batch_weighted(op, sinograms, &weights)?);
        }
        let solver = TvPdhg::new(tv_config(c.tv_weight, c.iterations))?;
        let mus = vec![c.anchor; sinograms.len()];
        Ok(solver.start_batch_anchored(op, sinograms, &weights, anchors, &mus, Some(anchors))?)
    }

    /// The refined images (every step of [`start`](Self::start)'s run).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn run<O: LinearOperator + ?Sized>(
        &self,
        op: &O,
        sinograms: &[ArrayView2<f32>],
        anchors: &[ArrayView2<f32>],
    ) -> Result<Vec<Array2<f32>>> {
        finish(self.start(op, sinograms, anchors)?)
    }
}

/// Steps a run to its end and returns its images.
fn finish<O: LinearOperator + ?Sized>(mut run: TvRun<'_, O>) -> Result<Vec<Array2<f32>>> {
    while run.running() {
        run.step()?;
    }
    Ok(run.finish().into_iter().map(|r| r.image).collect())
}

/// Refines every sinogram at every `(anchor, tv_weight)` candidate of `grid` (each
/// anchor > 0) with `iterations`, as one PDHG batch (candidate-major): `out[g][k]` is
/// what [`DcRefinement`] with candidate `g` gives for sinogram `k` (bit for bit: the
/// images of a batch do not interact). How the refinement is tuned cheaply.
///
/// # Errors
/// [`Error::InvalidConfig`] for an empty grid or an anchor weight that is not > 0; as
/// [`DcRefinement::start`].
pub fn refine_grid<O: LinearOperator + ?Sized>(
    op: &O,
    sinograms: &[ArrayView2<f32>],
    anchors: &[ArrayView2<f32>],
    grid: &[(f32, f32)],
    iterations: usize,
) -> Result<Vec<Vec<Array2<f32>>>> {
    if grid.is_empty() || grid.iter().any(|&(mu, _)| mu.is_nan() || mu <= 0.0) {
        return Err(crate::error::invalid(
            "grid",
            "at least one candidate, every anchor weight > 0",
        ));
    }
    if anchors.len() != sinograms.len() {
        return Err(Error::Shape {
            what: "anchor images",
            expected: format!("one per sinogram ({})", sinograms.len()),
            got: anchors.len().to_string(),
        });
    }
    let n = sinograms.len();
    let sinos: Vec<ArrayView2<f32>> = grid
        .iter()
        .flat_map(|_| sinograms.iter().copied())
        .collect();
    let x0: Vec<ArrayView2<f32>> = grid.iter().flat_map(|_| anchors.iter().copied()).collect();
    let mus: Vec<f32> = grid.iter().flat_map(|g| vec![g.0; n]).collect();
    let weights: Vec<f32> = grid.iter().flat_map(|g| vec![g.1; n]).collect();
    // the box and every other setting as the TV arm's; the weight is per image
    let solver = TvPdhg::new(tv_config(0.0, iterations))?;
    let run = solver.start_batch_anchored(op, &sinos, &weights, &x0, &mus, Some(&x0))?;
    let images = finish(run)?;
    Ok(images.chunks(n).map(<[_]>::to_vec).collect())
}
