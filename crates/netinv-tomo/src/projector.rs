//! The Joseph (linear-interpolation) ray transform, matching ASTRA's CPU `linear` projector.

use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

use crate::joseph::{row_pad, span_pairs, LineRays, SimdPath, LINE_EXTRA};
use crate::operator::assert_shapes;
use crate::sparse::SparseMatrix;
use crate::{LinearOperator, ParallelBeam2d, Result};

/// Whether the ray direction at `theta` is mainly vertical (the projector then steps
/// along image rows and interpolates between columns). Decided in f32 as ASTRA does:
/// `|sin theta| < |cos theta|`.
pub(crate) fn is_vertical(theta: f32) -> bool {
    theta.sin().abs() < theta.cos().abs()
}

/// Per-angle constants of the Joseph stepping.
///
/// The interpolation coordinate of ray `i` on major line `m` (an image row for vertical
/// rays, a column for horizontal ones) is `u = major_base[m] + i * di`, in pixel units of
/// the minor axis; the ray's weight on the two pixels around `u` is
/// `length * (1 - (u - floor u))` and `length * (u - floor u)`.
#[derive(Debug, Clone)]
pub(crate) struct AngleParams {
    pub(crate) vertical: bool,
    pub(crate) di: f64,
    pub(crate) length: f64,
    pub(crate) major_base: Vec<f64>,
}

impl AngleParams {
    /// The rays of this angle on major line `m` of a line of `n_minor` pixels.
    fn line_rays(&self, m: usize, n_minor: usize) -> LineRays {
        LineRays {
            rb: self.major_base[m],
            di: self.di,
            inv_di: 1.0 / self.di,
            length: self.length,
            span_pairs: span_pairs(self.di),
            n_minor,
        }
    }
}

impl AngleParams {
    fn new(geom: &ParallelBeam2d, theta: f32) -> Self {
        let (s, c) = (theta as f64).sin_cos();
        let (rows, cols) = (geom.rows() as f64, geom.cols() as f64);
        let sp = geom.det_spacing() as f64;
        let t0 = geom.detector_position(0);
        let vertical = is_vertical(theta);
        if vertical {
            // Row r: y = rows/2 - 0.5 - r; x = (t - y s) / c; column coordinate x + cols/2 - 0.5.
            let y0 = rows / 2.0 - 0.5;
            let base = (t0 - y0 * s) / c + cols / 2.0 - 0.5;
            let dm = s / c;
            Self {
                vertical,
                di: sp / c,
                length: 1.0 / c.abs(),
                major_base: (0..geom.rows()).map(|m| base + m as f64 * dm).collect(),
            }
        } else {
            // Column k: x = k - cols/2 + 0.5; y = (t - x c) / s; row coordinate rows/2 - 0.5 - y.
            let x0 = 0.5 - cols / 2.0;
            let base = rows / 2.0 - 0.5 - (t0 - x0 * c) / s;
            let dm = c / s;
            Self {
                vertical,
                di: -sp / s,
                length: 1.0 / s.abs(),
                major_base: (0..geom.cols()).map(|m| base + m as f64 * dm).collect(),
            }
        }
    }
}

/// The detector range `lo..hi` that can hit a minor line of `n_minor` pixels from a major
/// line with base `rb` (a superset; callers still check each ray).
#[inline]
pub(crate) fn ray_range(rb: f64, di: f64, n_det: usize, n_minor: usize) -> (usize, usize) {
    let a = (-1.0 - rb) / di;
    let b = (n_minor as f64 - rb) / di;
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let lo = (lo.floor() - 1.0).max(0.0);
    let hi = (hi.ceil() + 1.0).min(n_det as f64);
    if hi <= lo {
        (0, 0)
    } else {
        (lo as usize, hi as usize)
    }
}

/// The detector range `lo..hi` whose rays can reach pixel `k` of a minor line from a
/// major line with base `rb`: those with `u = rb + i * di` in `[k - 1, k + 1)` (the
/// pixel is then their left or right neighbour), from the floor of the first bound to the
/// ceiling of the last (a superset; rounding in the bounds is ~1e-15 of a ray spacing;
/// callers still check each ray).
#[inline]
fn pixel_ray_range(rb: f64, di: f64, k: usize, n_det: usize) -> (usize, usize) {
    let a = (k as f64 - 1.0 - rb) / di;
    let b = (k as f64 + 1.0 - rb) / di;
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let lo = lo.floor().max(0.0);
    let hi = (hi.ceil() + 1.0).min(n_det as f64);
    if hi <= lo {
        (0, 0)
    } else {
        (lo as usize, hi as usize)
    }
}

/// The interpolation of coordinate `u` in a line of `n_minor` pixels padded with one zero
/// at each end: the padded index `j = floor(u) + 1` of the left neighbour (pixel
/// `floor(u)`, which may be -1, sits at padded index `j`) and the fractional offset
/// `f = (u + 1) - j`, or `None` if neither neighbour is inside the image
/// (`u < -1` or `u >= n_minor`). The weights are `1 - f` on the left and `f` on the right.
///
/// `floor` is taken by truncating `u + 1 >= 0` (no libm call on baseline x86-64).
#[inline(always)]
pub(crate) fn split(u: f64, n_minor: usize) -> Option<(usize, f64)> {
    let v = u + 1.0;
    if !(v >= 0.0 && v < (n_minor + 1) as f64) {
        return None;
    }
    // i32 conversions compile to single instructions (usize <-> f64 does not on x86-64).
    let j = v as i32;
    Some((j as usize, v - j as f64))
}

/// The 2-D parallel-beam ray transform with the Joseph projector (ASTRA's CPU `linear`):
/// each ray steps along the image axis it is most aligned with and, on every row (or
/// column) it crosses, interpolates linearly between the two nearest pixel centres,
/// weighted by the ray length per step:
///
/// ```text
/// (A x)[a, i] = L_a * sum_m [ (1 - f) x[m, k] + f x[m, k + 1] ],   u = k + f
/// L_a = 1 / max(|cos theta_a|, |sin theta_a|),  pixels outside the image count as 0
/// ```
///
/// Images and sinograms are f32; coordinates, weights and sums are f64. The forward
/// projection is ray-driven and gives the same bits as summing the f64 weights of
/// [`CsrOperator`](crate::CsrOperator)'s matrix in order; the adjoint is pixel-driven with
/// the same weights (up to f64 rounding of the weights, ~1e-16 relative), so
/// `<A x, y> = <x, A^T y>` holds to f32 rounding. The inner loops use AVX-512 or AVX2
/// where the CPU has them (detected at run time, [`SimdPath`](crate::SimdPath); forced with
/// [`with_simd`](Self::with_simd) or `NETINV_TOMO_SIMD`; the portable loops give the same
/// bits). Work is split
/// without shared writes: the forward over blocks of 4 angles (each image line is read
/// once per block), the adjoint over tiles of 4 image lines (each sinogram row read once
/// per tile), so results are the same at any thread count. Memory: two padded f32 copies
/// of the image (forward) or one of the sinogram plus f64 sums of the image (adjoint).
///
/// # Examples
/// ```
/// use netinv_tomo::{ndarray::Array2, LinearOperator, ParallelBeam2d, RayTransform};
/// let geom = ParallelBeam2d::uniform(8, 8, 4, 8, 1.0).unwrap();
/// let op = RayTransform::new(geom).unwrap();
/// let mut x = Array2::zeros((8, 8));
/// x[[1, 6]] = 1.0; // centred at (2.5, 2.5)
/// let y = op.apply(x.view());
/// assert_eq!(y[[0, 6]], 1.0); // angle 0: t = x = 2.5 hits detector 6 (t_6 = 2.5)
/// let back = op.adjoint(y.view());
/// assert_eq!(back.dim(), (8, 8));
/// ```
#[derive(Debug, Clone)]
pub struct RayTransform {
    geom: ParallelBeam2d,
    params: Vec<AngleParams>,
    vertical: Vec<usize>,
    horizontal: Vec<usize>,
    kernels: SimdPath,
}

impl RayTransform {
    /// Precomputes the per-angle stepping constants of `geom`. The inner loops are the
    /// fastest this CPU runs ([`SimdPath::detect`]) unless the environment variable
    /// [`SIMD_ENV`](crate::SIMD_ENV) (`NETINV_TOMO_SIMD=portable|avx2|avx512`) names
    /// another; all paths give the same bits.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) if `NETINV_TOMO_SIMD` names
    /// an unknown path or one this CPU does not run.
    pub fn new(geom: ParallelBeam2d) -> Result<Self> {
        let params: Vec<AngleParams> = geom
            .angles()
            .iter()
            .map(|&theta| AngleParams::new(&geom, theta))
            .collect();
        let vertical = (0..params.len()).filter(|&a| params[a].vertical).collect();
        let horizontal = (0..params.len()).filter(|&a| !params[a].vertical).collect();
        Ok(Self {
            geom,
            params,
            vertical,
            horizontal,
            kernels: SimdPath::from_env()?,
        })
    }

    /// The same operator with the inner loops of `path` (same bits, other speed; for
    /// timing and for tests that compare the paths).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) if this CPU does not run
    /// `path` (see [`SimdPath::available`]).
    ///
    /// # Examples
    /// ```
    /// use netinv_tomo::{ndarray::Array2, LinearOperator, ParallelBeam2d, RayTransform, SimdPath};
    /// let op = RayTransform::new(ParallelBeam2d::uniform(16, 16, 10, 24, 1.0).unwrap()).unwrap();
    /// let x = Array2::from_shape_fn((16, 16), |(r, c)| (r * 16 + c) as f32);
    /// let plain = op.clone().with_simd(SimdPath::Portable).unwrap();
    /// assert_eq!(plain.simd(), SimdPath::Portable);
    /// assert_eq!(plain.apply(x.view()), op.apply(x.view()));
    /// ```
    pub fn with_simd(mut self, path: SimdPath) -> Result<Self> {
        self.kernels = path.check()?;
        Ok(self)
    }

    /// The inner loops this operator runs.
    pub fn simd(&self) -> SimdPath {
        self.kernels
    }

    /// The scan geometry.
    pub fn geometry(&self) -> &ParallelBeam2d {
        &self.geom
    }

    /// Calls `f(pixel_index, weight)` for every nonzero weight of ray `(angle, det)`, in
    /// order of the major axis. Pixel indices are row-major (`r * cols + c`).
    pub(crate) fn for_each_weight(&self, angle: usize, det: usize, mut f: impl FnMut(usize, f64)) {
        let p = &self.params[angle];
        let cols = self.geom.cols();
        let n_minor = if p.vertical {
            self.geom.cols()
        } else {
            self.geom.rows()
        };
        for (m, &rb) in p.major_base.iter().enumerate() {
            let u = rb + (det as i32) as f64 * p.di;
            let Some((j, off)) = split(u, n_minor) else {
                continue;
            };
            // Padded index j is pixel j - 1; j + 1 is pixel j.
            let index = |kk: usize| {
                if p.vertical {
                    m * cols + kk
                } else {
                    kk * cols + m
                }
            };
            if j >= 1 && off < 1.0 {
                f(index(j - 1), p.length * (1.0 - off));
            }
            if j < n_minor && off > 0.0 {
                f(index(j), p.length * off);
            }
        }
    }

    /// Calls `f(ray, weight)` for every nonzero weight on pixel `(r, c)`, rays in
    /// increasing order (`angle * n_det + det`): column `r * cols + c` of the matrix that
    /// [`for_each_weight`](Self::for_each_weight) gives row by row, with the same f64
    /// weights bit for bit (the same stepping arithmetic, evaluated for the few rays that
    /// can reach the pixel). A ray crosses a pixel's major line once, so it has at most one
    /// weight on the pixel.
    pub(crate) fn for_each_ray(&self, r: usize, c: usize, mut f: impl FnMut(usize, f64)) {
        let (rows, cols) = self.geom.image_shape();
        let n_det = self.geom.n_det();
        for (a, p) in self.params.iter().enumerate() {
            let (m, k, n_minor) = if p.vertical {
                (r, c, cols)
            } else {
                (c, r, rows)
            };
            let rb = p.major_base[m];
            let (lo, hi) = pixel_ray_range(rb, p.di, k, n_det);
            for det in lo..hi {
                // as in for_each_weight: the left neighbour is pixel j - 1, the right one j
                let u = rb + (det as i32) as f64 * p.di;
                let Some((j, off)) = split(u, n_minor) else {
                    continue;
                };
                if j == k + 1 && off < 1.0 {
                    f(a * n_det + det, p.length * (1.0 - off));
                } else if j == k && off > 0.0 {
                    f(a * n_det + det, p.length * off);
                }
            }
        }
    }

    /// The row pointers of [`to_csr`](Self::to_csr)'s matrix (`angles * n_det + 1`
    /// entries, the last one the number of stored entries), counted in parallel without
    /// storing any entry.
    pub(crate) fn csr_row_pointers(&self) -> Vec<usize> {
        let n_rays = self.geom.n_angles() * self.geom.n_det();
        SparseMatrix::row_pointers(n_rays, self.ray_work(), |ray| {
            let mut n = 0;
            self.for_each_ray_weight(ray, |_, _| n += 1);
            n
        })
    }

    /// The weights of ray `angle * n_det + det` ([`for_each_weight`](Self::for_each_weight)).
    fn for_each_ray_weight(&self, ray: usize, f: impl FnMut(usize, f64)) {
        let n_det = self.geom.n_det();
        self.for_each_weight(ray / n_det, ray % n_det, f);
    }

    /// Steps of one ray (for the parallel split of the matrix build).
    fn ray_work(&self) -> usize {
        self.geom.rows().max(self.geom.cols())
    }

    /// The operator as a sparse matrix (CSR) of shape `[angles * n_det, rows * cols]`,
    /// rows ray-major (`angle * n_det + det`), columns pixel row-major, each row's entries
    /// in the order the ray steps along its major axis. Values are the projector's weights
    /// rounded to f32.
    ///
    /// Built in parallel (rayon) in two passes over the rays, one counting the entries of
    /// every ray, one writing each ray's entries into its own slice of the arrays: no
    /// temporary copy of the entries, and the same matrix, bit for bit, at any thread count.
    /// Memory is the matrix itself, `8 * nnz + 8 * (angles * n_det + 1)` bytes with
    /// `nnz` about `1.3 * min(rows, cols) * angles * n_det` (21 MB at 128x128 / 90 angles /
    /// 183 detectors; [`CsrOperator::required_bytes`](crate::CsrOperator::required_bytes)
    /// gives the exact figure for the matrix and its transpose without building them).
    ///
    /// # Examples
    /// ```
    /// use netinv_tomo::{ndarray::Array2, LinearOperator, ParallelBeam2d, RayTransform};
    /// let op = RayTransform::new(ParallelBeam2d::uniform(8, 8, 4, 12, 1.0).unwrap()).unwrap();
    /// let a = op.to_csr();
    /// assert_eq!((a.n_rows(), a.n_cols()), (4 * 12, 8 * 8));
    /// // row 6 is angle 0, detector 6 (t = 0.5): the column of pixels at x = 0.5
    /// assert_eq!(a.row(6).count(), 8);
    /// let mut y = vec![0.0; 48];
    /// a.matvec_into(&[1.0; 64], &mut y);
    /// assert_eq!(y[6], 8.0);
    /// ```
    pub fn to_csr(&self) -> SparseMatrix {
        self.to_csr_with(self.csr_row_pointers())
    }

    /// [`to_csr`](Self::to_csr) with its row pointers already counted.
    pub(crate) fn to_csr_with(&self, indptr: Vec<usize>) -> SparseMatrix {
        let n_pixels = self.geom.rows() * self.geom.cols();
        SparseMatrix::fill_rows(n_pixels, indptr, self.ray_work(), |ray, idx, val| {
            let mut n = 0;
            self.for_each_ray_weight(ray, |j, w| {
                idx[n] = j as u32;
                val[n] = w as f32;
                n += 1;
            });
            n
        })
    }

    /// The transpose of `matrix` (this operator's [`to_csr`](Self::to_csr)),
    /// `[rows * cols, angles * n_det]`, equal to `matrix.transpose()` bit for bit (each
    /// row's rays in increasing order) but built in parallel: the row pointers from the
    /// column counts of `matrix`, then each pixel's row from the stepping arithmetic.
    pub(crate) fn to_csr_transpose(&self, matrix: &SparseMatrix) -> SparseMatrix {
        let cols = self.geom.cols();
        let n_rays = self.geom.n_angles() * self.geom.n_det();
        // a pixel meets about 4 candidate rays per angle
        let work = 4 * self.geom.n_angles();
        let pixel = |p: usize| (p / cols, p % cols);
        let indptr = matrix.column_pointers();
        SparseMatrix::fill_rows(n_rays, indptr, work, |p, idx, val| {
            let (r, c) = pixel(p);
            let mut n = 0;
            self.for_each_ray(r, c, |ray, w| {
                idx[n] = ray as u32;
                val[n] = w as f32;
                n += 1;
            });
            n
        })
    }

    /// Forward projection of the angles `first..first + out.len() / n_det` into `out`
    /// (their sinogram rows). The image is read line by line, each line once for all the
    /// angles of the block while it sits in L1: `xv` is the image and `xh` its transpose,
    /// both f32 with a zero at each end of every line (empty if no angle needs them).
    fn project_block(&self, first: usize, xv: &[f32], xh: &[f32], out: &mut [f32]) {
        let (rows, cols) = self.geom.image_shape();
        let n_det = self.geom.n_det();
        let block = &self.params[first..first + out.len() / n_det];
        let mut acc = vec![0.0f64; out.len()];
        for (vertical, padded, n_major, n_minor) in
            [(true, xv, rows, cols), (false, xh, cols, rows)]
        {
            let members: Vec<usize> = (0..block.len())
                .filter(|&b| block[b].vertical == vertical)
                .collect();
            if members.is_empty() {
                continue;
            }
            for (m, line) in padded
                .chunks_exact(n_minor + LINE_EXTRA)
                .take(n_major)
                .enumerate()
            {
                for &b in &members {
                    let ray = block[b].line_rays(m, n_minor);
                    let (lo, hi) = ray_range(ray.rb, ray.di, n_det, n_minor);
                    let row = &mut acc[b * n_det..(b + 1) * n_det];
                    self.kernels.forward(line, ray, lo, hi, row);
                }
            }
        }
        for ((o, a), p) in out.chunks_mut(n_det).zip(acc.chunks(n_det)).zip(block) {
            for (o, a) in o.iter_mut().zip(a) {
                *o = (a * p.length) as f32;
            }
        }
    }

    /// Adds the backprojection of `angles` (all vertical or all horizontal) onto the
    /// major lines `first..` of `out` (`[lines, n_minor]` f64, one tile). `ypad` is the
    /// sinogram with `pad` zeros before and after every row. Angle by angle, so a
    /// sinogram row is read once for all the tile's lines.
    fn backproject_tile(
        &self,
        angles: &[usize],
        ypad: &[f32],
        pad: usize,
        first: usize,
        out: &mut [f64],
        n_minor: usize,
    ) {
        let n_det = self.geom.n_det();
        let row_len = n_det + 2 * pad;
        for &a in angles {
            let p = &self.params[a];
            let row = &ypad[a * row_len..(a + 1) * row_len];
            for (line, acc) in out.chunks_exact_mut(n_minor).enumerate() {
                let ray = p.line_rays(first + line, n_minor);
                let range = pixel_range(ray, n_det);
                self.kernels.adjoint(row, (n_det, pad), ray, range, acc);
            }
        }
    }
}

/// Major lines per adjoint tile: the tile's f64 sums (`TILE_LINES * n_minor * 8` bytes,
/// 16 KB at 512 px) stay in L1 while every angle passes over them.
const TILE_LINES: usize = 4;

/// Angles per forward block: their f64 sums (`ANGLE_BLOCK * n_det * 8` bytes, 23 KB at
/// 512 px) stay in L1 while every image line passes under them.
const ANGLE_BLOCK: usize = 4;

/// The pixels `k_lo..k_hi` of a line that some ray of `ray` passes within one pixel of
/// (a superset by one pixel each side; the kernel gives the others exactly zero).
fn pixel_range(ray: LineRays, n_det: usize) -> (usize, usize) {
    let ends = [ray.rb, ray.rb + (n_det as f64 - 1.0) * ray.di];
    let (lo, hi) = (ends[0].min(ends[1]), ends[0].max(ends[1]));
    let n = ray.n_minor as f64;
    let k_lo = (lo - 2.0).floor().clamp(0.0, n);
    let k_hi = (hi + 3.0).ceil().clamp(0.0, n);
    (k_lo as usize, k_hi.max(k_lo) as usize)
}

/// The image (or, with `transpose`, its transpose) as f32 lines with one zero before the
/// pixels and `LINE_EXTRA - 1` after (the layout `SimdPath::forward` reads).
fn padded_lines(x: &ArrayView2<f32>, transpose: bool) -> Vec<f32> {
    let x = if transpose { x.t() } else { x.view() };
    let (n_major, n_minor) = x.dim();
    let mut v = vec![0.0f32; n_major * (n_minor + LINE_EXTRA)];
    for (line, src) in v.chunks_exact_mut(n_minor + LINE_EXTRA).zip(x.rows()) {
        for (dst, &s) in line[1..=n_minor].iter_mut().zip(src) {
            *dst = s;
        }
    }
    v
}

impl LinearOperator for RayTransform {
    fn domain_shape(&self) -> (usize, usize) {
        self.geom.image_shape()
    }

    fn range_shape(&self) -> (usize, usize) {
        self.geom.sinogram_shape()
    }

    fn apply_into(&self, x: ArrayView2<f32>, mut y: ArrayViewMut2<f32>) {
        assert_shapes(
            "image",
            x.dim(),
            self.domain_shape(),
            "sinogram",
            y.dim(),
            self.range_shape(),
        );
        let (rows, cols) = self.geom.image_shape();
        let n_det = self.geom.n_det();
        let xv = if self.vertical.is_empty() {
            Vec::new()
        } else {
            padded_lines(&x, false)
        };
        let xh = if self.horizontal.is_empty() {
            Vec::new()
        } else {
            padded_lines(&x, true)
        };
        let work = |out: &mut [f32], at: usize| self.project_block(at / n_det, &xv, &xh, out);
        let block_work = ANGLE_BLOCK * n_det * rows.max(cols);
        match y.as_slice_mut() {
            Some(out) => par_blocks(out, ANGLE_BLOCK * n_det, block_work, work),
            None => {
                let mut out = vec![0.0f32; self.geom.n_angles() * n_det];
                par_blocks(&mut out, ANGLE_BLOCK * n_det, block_work, work);
                y.iter_mut().zip(&out).for_each(|(d, s)| *d = *s);
            }
        }
    }

    fn adjoint_into(&self, y: ArrayView2<f32>, mut x: ArrayViewMut2<f32>) {
        assert_shapes(
            "sinogram",
            y.dim(),
            self.range_shape(),
            "image",
            x.dim(),
            self.domain_shape(),
        );
        let (rows, cols) = self.geom.image_shape();
        let n_det = self.geom.n_det();
        let widest = self.params.iter().map(|p| span_pairs(p.di)).max();
        let pad = row_pad(widest.unwrap_or(1));
        let row_len = n_det + 2 * pad;
        let mut ypad = vec![0.0f32; self.geom.n_angles() * row_len];
        for (dst, src) in ypad.chunks_exact_mut(row_len).zip(y.rows()) {
            for (d, &s) in dst[pad..pad + n_det].iter_mut().zip(src) {
                *d = s;
            }
        }
        let sum_over = |angles: &[usize], n_major: usize, n_minor: usize| -> Vec<f64> {
            if angles.is_empty() {
                return Vec::new();
            }
            let mut acc = vec![0.0f64; n_major * n_minor];
            let tile_work = TILE_LINES * n_minor * angles.len() * 2;
            par_blocks(&mut acc, TILE_LINES * n_minor, tile_work, |tile, first| {
                self.backproject_tile(angles, &ypad, pad, first / n_minor, tile, n_minor)
            });
            acc
        };
        let xv = sum_over(&self.vertical, rows, cols);
        let xh = sum_over(&self.horizontal, cols, rows);
        for ((r, c), dst) in x.indexed_iter_mut() {
            let v = xv.get(r * cols + c).copied().unwrap_or(0.0);
            let h = xh.get(c * rows + r).copied().unwrap_or(0.0);
            *dst = (v + h) as f32;
        }
    }
}

/// Runs `work(chunk, offset)` on the chunks of `block` values of `out` in parallel (rayon),
/// grouping chunks so that a job does at least [`crate::par::min_items`]' worth of work
/// (`block_work` multiply-adds per chunk). Each job writes only its own chunk.
fn par_blocks<T: Send>(
    out: &mut [T],
    block: usize,
    block_work: usize,
    work: impl Fn(&mut [T], usize) + Sync,
) {
    out.par_chunks_mut(block.max(1))
        .with_min_len(crate::par::min_items(block_work))
        .enumerate()
        .for_each(|(b, chunk)| work(chunk, b * block));
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn single_pixel_lands_where_astra_puts_it() {
        // Values from ASTRA 2.5: 8x8 image, 12 detectors, pixel (6, 6) = 1 at (2.5, -2.5).
        let geom = ParallelBeam2d::new(
            8,
            8,
            vec![0.0, std::f32::consts::FRAC_PI_2, 0.3, 2.0],
            12,
            1.0,
        )
        .unwrap();
        let op = RayTransform::new(geom).unwrap();
        let mut x = Array2::zeros((8, 8));
        x[[6, 6]] = 1.0;
        let y = op.apply(x.view());
        assert!((y[[0, 8]] - 1.0).abs() < 1e-6);
        assert!((y[[1, 3]] - 1.0).abs() < 1e-6);
        assert!((y[[2, 7]] - 0.883).abs() < 1e-3 && (y[[2, 8]] - 0.115).abs() < 1e-3);
        assert!((y[[3, 2]] - 0.874).abs() < 1e-3 && (y[[3, 3]] - 0.116).abs() < 1e-3);
        let total: f32 = y.iter().map(|v| v.abs()).sum();
        assert!(
            (total - (1.0 + 1.0 + 0.998 + 0.990)).abs() < 1e-2,
            "{total}"
        );
    }

    #[test]
    fn split_is_floor() {
        for &u in &[
            -1.0, -0.999, -0.5, -1e-12, 0.0, 0.25, 3.999999, 4.0, 8.5, 9.999,
        ] {
            let (j, off) = split(u, 10).unwrap();
            assert_eq!(j as f64 - 1.0, u.floor(), "{u}");
            assert!((off - (u - u.floor())).abs() < 1e-12 && (0.0..1.0).contains(&off));
        }
        for &u in &[-1.0000001, -5.0, 10.0, 12.5, f64::NAN] {
            assert!(split(u, 10).is_none(), "{u}");
        }
    }

    #[test]
    fn ray_range_covers_all_hits() {
        for &(rb, di) in &[(3.2, 0.7), (-5.0, 1.3), (20.0, -0.9), (0.0, -2.0)] {
            let (lo, hi) = ray_range(rb, di, 40, 10);
            for i in 0..40 {
                let hit = split(rb + i as f64 * di, 10).is_some();
                if hit {
                    assert!(i >= lo && i < hi, "rb {rb} di {di} i {i} not in {lo}..{hi}");
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "projector_tests.rs"]
mod fast_loop_tests;
