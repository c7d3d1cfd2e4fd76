//! The inner loops of the matrix-free Joseph projector: one image line (a row, or a column
//! of the transposed image) against one angle, forward (ray-driven) and adjoint
//! (pixel-driven), each in a portable form, an AVX2 form and (for the window loops below)
//! an AVX-512F form, all giving the same bits ([`SimdPath`] chooses).
//!
//! Data are f32 (the image lines and sinogram rows, read as pairs of neighbours with one
//! 64-bit load); coordinates, weights and sums are f64, computed by the same formula as
//! [`RayTransform::for_each_weight`](crate::RayTransform) so the forward projection equals
//! the f64 projector's bit for bit and the adjoint uses the very same weights:
//!
//! ```text
//! u = rb + i * di,  v = u + 1,  j = floor(v),  f = v - j     (ray i on this line)
//! forward:  acc[i] += (1 - f) * line[j] + f * line[j + 1]      (line padded by one zero)
//! adjoint:  pixel k gets (1 - f) from the ray with j = k + 1 and f from the ray with j = k
//! ```
//!
//! When rays are at least one pixel apart (`|di| >= 1`, every angle at detector spacing
//! 1), a pixel has exactly two candidate rays and the adjoint takes their weights from the
//! pixel's own position (`r = |u_i - k|`, `w = max(0, 1 - r)`): the same weights up to f64
//! rounding (about 1e-16), not the same bits. When `|di| <= 2` the four (AVX2) or eight
//! (AVX-512) rays or pixels of a SIMD step read one window of 8 or 16 neighbouring values
//! (one load and a permute) instead of a gather, which is slow on AMD CPUs; lines and
//! sinogram rows carry zero padding for it.
//!
//! Separate multiplies and adds (no FMA) everywhere, so the portable, AVX2 and AVX-512
//! loops agree to the bit; the adjoint sums each pixel's rays in a fixed order, so the
//! result does not depend on the thread count either.

use crate::{Error, Result};

/// The environment variable that forces [`SimdPath`] of every new
/// [`RayTransform`](crate::RayTransform): `portable`, `avx2` or `avx512` (unset or empty:
/// the fastest path the CPU has).
pub const SIMD_ENV: &str = "NETINV_TOMO_SIMD";

/// Which implementation of the matrix-free projector's inner loops runs. All give the same
/// bits (separate multiplies and adds, the same operations lane by lane); they differ in
/// speed only. Chosen once per operator: [`SimdPath::detect`] (the default), the
/// environment variable [`SIMD_ENV`], or
/// [`RayTransform::with_simd`](crate::RayTransform::with_simd).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimdPath {
    /// Plain Rust, any CPU.
    Portable,
    /// `std::arch` AVX2 (4 f64 lanes), x86-64 CPUs that have it.
    Avx2,
    /// AVX-512F (8 f64 lanes) for the loops at detector spacings where rays are between 1
    /// and 2 pixels apart (every angle at spacing 1: the usual case); the other loops
    /// (gathers, rays closer than a pixel) run the AVX2 code. x86-64 CPUs with AVX-512F
    /// (and AVX2), in builds by Rust 1.89 or newer (the first with these intrinsics).
    Avx512,
}

impl SimdPath {
    /// The fastest path this CPU runs: AVX-512 if present, else AVX2, else portable.
    pub fn detect() -> Self {
        *Self::available().last().unwrap_or(&SimdPath::Portable)
    }

    /// Every path this CPU runs, slowest first (always starts with `Portable`).
    pub fn available() -> Vec<Self> {
        [SimdPath::Portable, SimdPath::Avx2, SimdPath::Avx512]
            .into_iter()
            .filter(|p| p.is_supported())
            .collect()
    }

    /// Whether this CPU runs the path.
    pub fn is_supported(self) -> bool {
        match self {
            SimdPath::Portable => true,
            #[cfg(target_arch = "x86_64")]
            SimdPath::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(all(target_arch = "x86_64", netinv_avx512))]
            SimdPath::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx2")
            }
            #[cfg(not(all(target_arch = "x86_64", netinv_avx512)))]
            SimdPath::Avx512 => false,
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The path's name as [`SIMD_ENV`] spells it.
    pub fn name(self) -> &'static str {
        match self {
            SimdPath::Portable => "portable",
            SimdPath::Avx2 => "avx2",
            SimdPath::Avx512 => "avx512",
        }
    }

    /// The path named `name` (`portable`, `avx2`, `avx512`), if this CPU runs it.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for another name or a path the CPU does not run.
    pub fn from_name(name: &str) -> Result<Self> {
        let path = [SimdPath::Portable, SimdPath::Avx2, SimdPath::Avx512]
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| Error::InvalidConfig {
                field: SIMD_ENV,
                reason: format!("unknown SIMD path {name:?} (portable, avx2 or avx512)"),
            })?;
        path.check()
    }

    /// `Ok(self)` if this CPU runs the path.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if it does not.
    pub fn check(self) -> Result<Self> {
        if self.is_supported() {
            Ok(self)
        } else {
            Err(Error::InvalidConfig {
                field: "simd",
                reason: format!("this CPU does not run the {} path", self.name()),
            })
        }
    }

    /// The path [`SIMD_ENV`] asks for, or [`detect`](Self::detect)'s if it is unset or
    /// empty.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the variable names an unknown path or one the CPU does
    /// not run.
    pub fn from_env() -> Result<Self> {
        match std::env::var(SIMD_ENV) {
            Ok(name) if !name.trim().is_empty() => Self::from_name(name.trim()),
            _ => Ok(Self::detect()),
        }
    }

    /// Forward projection of one line: `acc[i] += ` the interpolated line at `u_i` for the
    /// rays `lo..hi`. `line` is padded: `n_minor + LINE_EXTRA` values, one zero before the
    /// pixels and `LINE_EXTRA - 1` after. `self` must be a path the CPU runs (callers hold
    /// only paths that passed [`check`](Self::check)).
    #[allow(unsafe_code)] // calls the SIMD loops of a path the CPU was checked to run
    pub(crate) fn forward(
        self,
        line: &[f32],
        ray: LineRays,
        lo: usize,
        hi: usize,
        acc: &mut [f64],
    ) {
        let len_ok = line.len() == ray.n_minor + LINE_EXTRA;
        assert!(hi <= acc.len() && len_ok && hi < i32::MAX as usize);
        debug_assert!(self.is_supported());
        match self {
            // SAFETY (every arm): a `RayTransform` holds only a path that `check` accepted
            // (the CPU has its features); the line length asserted above is the one the
            // loads rely on.
            #[cfg(all(target_arch = "x86_64", netinv_avx512))]
            SimdPath::Avx512 if ray.di.abs() <= 2.0 => unsafe {
                avx512::forward_window(line, ray, lo, hi, acc)
            },
            #[cfg(target_arch = "x86_64")]
            SimdPath::Avx2 | SimdPath::Avx512 if ray.di.abs() <= 2.0 => unsafe {
                avx2::forward_window(line, ray, lo, hi, acc)
            },
            #[cfg(target_arch = "x86_64")]
            SimdPath::Avx2 | SimdPath::Avx512 => unsafe { avx2::forward(line, ray, lo, hi, acc) },
            _ => forward_portable(line, ray, lo, hi, acc),
        }
    }

    /// Backprojection of one angle onto one line: `acc[k] += length * sum_i w_ik y_i` for
    /// the pixels `k` in `k_lo..k_hi`. `y` is the angle's sinogram row with `pad` zeros
    /// on each side, `pad >= row_pad(ray.span_pairs)` (see [`row_pad`]). `self` must be a
    /// path the CPU runs, as for [`forward`](Self::forward).
    #[allow(unsafe_code)] // calls the SIMD loops of a path the CPU was checked to run
    pub(crate) fn adjoint(
        self,
        y: &[f32],
        (n_det, pad): (usize, usize),
        ray: LineRays,
        (k_lo, k_hi): (usize, usize),
        acc: &mut [f64],
    ) {
        assert!(pad >= row_pad(ray.span_pairs) && y.len() == n_det + 2 * pad);
        assert!(k_hi <= acc.len() && y.len() < i32::MAX as usize && k_hi < i32::MAX as usize);
        debug_assert!(self.is_supported());
        let rows = Rows { y, n_det, pad };
        match (self, ray.span_pairs) {
            // SAFETY (every arm): a `RayTransform` holds only a path that `check` accepted;
            // the lengths asserted above are the ones the loads and gathers rely on.
            #[cfg(all(target_arch = "x86_64", netinv_avx512))]
            (SimdPath::Avx512, 1) => unsafe { avx512::adjoint_pair(rows, ray, k_lo, k_hi, acc) },
            #[cfg(target_arch = "x86_64")]
            (SimdPath::Avx2, 1) => unsafe { avx2::adjoint_pair(rows, ray, k_lo, k_hi, acc) },
            #[cfg(target_arch = "x86_64")]
            (SimdPath::Avx2 | SimdPath::Avx512, _) => unsafe {
                avx2::adjoint(rows, ray, k_lo, k_hi, acc)
            },
            (_, 1) => adjoint_pair_portable(rows, ray, k_lo, k_hi, acc),
            (_, _) => adjoint_portable(rows, ray, k_lo, k_hi, acc),
        }
    }
}

/// One angle's rays on one major line: ray `i` crosses it at `u = rb + i * di` (minor-axis
/// pixel units), with `inv_di = 1 / di` and `length` the weight per step.
///
/// `span_pairs = ceil(1 / |di|)`: a pixel is within one unit of at most `2 * span_pairs`
/// consecutive rays.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineRays {
    pub(crate) rb: f64,
    pub(crate) di: f64,
    pub(crate) inv_di: f64,
    pub(crate) length: f64,
    pub(crate) span_pairs: usize,
    pub(crate) n_minor: usize,
}

/// Values of a padded image line beyond its pixels: one zero before, fifteen after (a
/// 16-value window starting at any pixel stays inside the line).
pub(crate) const LINE_EXTRA: usize = 16;

/// The zeros [`SimdPath::adjoint`] needs before and after a sinogram row: room for every
/// candidate ray of a clamped window (`2 * span_pairs`) and for a 16-value window.
pub(crate) fn row_pad(span_pairs: usize) -> usize {
    (2 * span_pairs).max(16)
}

/// One padded sinogram row: the detectors are `y[pad..pad + n_det]`, zeros around them.
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    y: &'a [f32],
    n_det: usize,
    pad: usize,
}

/// `ceil(1 / |di|)`, at least 1.
pub(crate) fn span_pairs(di: f64) -> usize {
    ((1.0 / di.abs()).ceil() as usize).max(1)
}

fn forward_portable(line: &[f32], ray: LineRays, lo: usize, hi: usize, acc: &mut [f64]) {
    let limit = (ray.n_minor + 1) as f64;
    for (i, a) in (lo..hi).zip(&mut acc[lo..hi]) {
        let v = (ray.rb + (i as i32) as f64 * ray.di) + 1.0;
        // Only rays that touch the line (0 <= v < n_minor + 1) add a term; truncation is
        // floor there (and compiles to one instruction, floor to a libm call).
        let term = if v >= 0.0 && v < limit {
            let j = v as i32;
            let f = v - j as f64;
            let j = j as usize;
            (1.0 - f) * line[j] as f64 + f * line[j + 1] as f64
        } else {
            0.0
        };
        *a += term;
    }
}

/// The first candidate ray of pixel `k`, clamped so that every candidate lies in the
/// padded row (`-2 span_pairs..n_det + 2 span_pairs`); a clamped window holds only rays
/// outside the detector, which read zeros.
#[inline(always)]
fn first_candidate(ray: LineRays, k: f64, n_det: usize) -> f64 {
    let lowest = (2 * ray.span_pairs) as f64;
    let first = ((k - ray.rb) * ray.inv_di).floor() - (ray.span_pairs as f64 - 1.0);
    first.max(-lowest).min(n_det as f64)
}

/// The weight of ray `i` on pixel `k`: `1 - f` if the ray's left neighbour is `k`, `f`
/// if its right neighbour is, else 0.
#[inline(always)]
fn weight(ray: LineRays, i: f64, k: f64) -> f64 {
    let v = (ray.rb + i * ray.di) + 1.0;
    let j = v.floor();
    let f = v - j;
    if j == k + 1.0 {
        1.0 - f
    } else if j == k {
        f
    } else {
        0.0
    }
}

fn adjoint_portable(rows: Rows, ray: LineRays, k_lo: usize, k_hi: usize, acc: &mut [f64]) {
    let Rows { y, n_det, pad } = rows;
    for (k, a) in (k_lo..k_hi).zip(&mut acc[k_lo..k_hi]) {
        let kf = (k as i32) as f64;
        let first = first_candidate(ray, kf, n_det);
        let at = (first as i32 + pad as i32) as usize;
        let mut sum = 0.0;
        for t in 0..ray.span_pairs {
            let i = first + (2 * t) as f64;
            let (w0, w1) = (weight(ray, i, kf), weight(ray, i + 1.0, kf));
            let (y0, y1) = (y[at + 2 * t] as f64, y[at + 2 * t + 1] as f64);
            sum += w0 * y0 + w1 * y1;
        }
        *a += sum * ray.length;
    }
}

/// The two rays around pixel `k` when rays are at least a pixel apart (`|di| >= 1`): the
/// first one `i = floor(q)`, `q = (k - rb) / di`, at distance `r = (q - i) |di|`, with
/// weight `max(0, 1 - r)`, and the next at distance `|di| - r`, with weight
/// `max(0, 1 - |di| + r)`. `i` is clamped to `-2..=n_det` (rays beyond read zeros).
#[inline(always)]
fn pair_weights(ray: LineRays, k: f64, n_det: usize) -> (f64, f64, f64) {
    let q = (k - ray.rb) * ray.inv_di;
    let first = q.floor();
    let r = (q - first) * ray.di.abs();
    let positive = |w: f64| if w > 0.0 { w } else { 0.0 };
    let w0 = positive(1.0 - r);
    let w1 = positive((1.0 - ray.di.abs()) + r);
    (first.max(-2.0).min(n_det as f64), w0, w1)
}

fn adjoint_pair_portable(rows: Rows, ray: LineRays, k_lo: usize, k_hi: usize, acc: &mut [f64]) {
    let Rows { y, n_det, pad } = rows;
    for (k, a) in (k_lo..k_hi).zip(&mut acc[k_lo..k_hi]) {
        let (first, w0, w1) = pair_weights(ray, (k as i32) as f64, n_det);
        let at = (first as i32 + pad as i32) as usize;
        let sum = w0 * y[at] as f64 + w1 * y[at + 1] as f64;
        *a += sum * ray.length;
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The AVX2 loops: four rays (forward) or four pixels (adjoint) per step, the same
    //! arithmetic as the portable loops lane by lane; remainders go to the portable loops.

    use super::{LineRays, Rows};
    use std::arch::x86_64::*;

    /// Splits four gathered `(a, b)` f32 pairs into `a` and `b` as f64 lanes.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn unpack_pairs(pairs: __m256i) -> (__m256d, __m256d) {
        // Register shuffles only: safe intrinsics under the callers' `target_feature`.
        let order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
        let split = _mm256_permutevar8x32_ps(_mm256_castsi256_ps(pairs), order);
        let first = _mm256_cvtps_pd(_mm256_castps256_ps128(split));
        let second = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(split));
        (first, second)
    }

    #[target_feature(enable = "avx2")]
    #[allow(unsafe_code)] // the gather reads raw memory; see the SAFETY notes inside
    pub(super) unsafe fn forward(
        line: &[f32],
        ray: LineRays,
        lo: usize,
        hi: usize,
        acc: &mut [f64],
    ) {
        let (rb, di) = (_mm256_set1_pd(ray.rb), _mm256_set1_pd(ray.di));
        let one = _mm256_set1_pd(1.0);
        let zero = _mm256_setzero_pd();
        let limit = _mm256_set1_pd((ray.n_minor + 1) as f64);
        let lanes = _mm256_setr_pd(0.0, 1.0, 2.0, 3.0);
        let mut i = lo;
        while i + 4 <= hi {
            let iv = _mm256_add_pd(_mm256_set1_pd((i as i32) as f64), lanes);
            let v = _mm256_add_pd(_mm256_add_pd(rb, _mm256_mul_pd(iv, di)), one);
            let inside = _mm256_and_pd(
                _mm256_cmp_pd::<_CMP_GE_OQ>(v, zero),
                _mm256_cmp_pd::<_CMP_LT_OQ>(v, limit),
            );
            let j = _mm256_floor_pd(v);
            let f = _mm256_sub_pd(v, j);
            // Lanes outside the line gather from index 0 (masked off below).
            let index = _mm256_cvttpd_epi32(_mm256_and_pd(j, inside));
            // SAFETY: inside lanes have 0 <= j <= n_minor, so the 8 bytes at line[j..j + 2]
            // are within `line` (n_minor + 2 values); other lanes read line[0..2].
            let pairs = _mm256_i32gather_epi64::<4>(line.as_ptr().cast::<i64>(), index);
            let (a, b) = unpack_pairs(pairs);
            let term = _mm256_add_pd(_mm256_mul_pd(_mm256_sub_pd(one, f), a), _mm256_mul_pd(f, b));
            let term = _mm256_and_pd(term, inside);
            let out = &mut acc[i..i + 4];
            // SAFETY: `out` holds exactly four f64 values; unaligned load and store.
            let sum = _mm256_add_pd(_mm256_loadu_pd(out.as_ptr()), term);
            _mm256_storeu_pd(out.as_mut_ptr(), sum);
            i += 4;
        }
        super::forward_portable(line, ray, i, hi, acc);
    }

    #[target_feature(enable = "avx2")]
    #[allow(unsafe_code)] // the gather reads raw memory; see the SAFETY notes inside
    pub(super) unsafe fn adjoint(
        rows: Rows,
        ray: LineRays,
        k_lo: usize,
        k_hi: usize,
        acc: &mut [f64],
    ) {
        let Rows { y, n_det, pad } = rows;
        let lowest = (2 * ray.span_pairs) as f64;
        let pad = pad as f64;
        let (rb, di) = (_mm256_set1_pd(ray.rb), _mm256_set1_pd(ray.di));
        let inv_di = _mm256_set1_pd(ray.inv_di);
        let one = _mm256_set1_pd(1.0);
        let back = _mm256_set1_pd(ray.span_pairs as f64 - 1.0);
        let (lowest, highest) = (_mm256_set1_pd(-lowest), _mm256_set1_pd(n_det as f64));
        let lanes = _mm256_setr_pd(0.0, 1.0, 2.0, 3.0);
        let weight = |i: __m256d, k: __m256d| {
            let v = _mm256_add_pd(_mm256_add_pd(rb, _mm256_mul_pd(i, di)), one);
            let j = _mm256_floor_pd(v);
            let f = _mm256_sub_pd(v, j);
            let left = _mm256_cmp_pd::<_CMP_EQ_OQ>(j, _mm256_add_pd(k, one));
            let right = _mm256_cmp_pd::<_CMP_EQ_OQ>(j, k);
            let w = _mm256_and_pd(f, right);
            _mm256_blendv_pd(w, _mm256_sub_pd(one, f), left)
        };
        let mut k = k_lo;
        while k + 4 <= k_hi {
            let kv = _mm256_add_pd(_mm256_set1_pd((k as i32) as f64), lanes);
            let q = _mm256_floor_pd(_mm256_mul_pd(_mm256_sub_pd(kv, rb), inv_di));
            let first = _mm256_min_pd(_mm256_max_pd(_mm256_sub_pd(q, back), lowest), highest);
            let base = _mm256_cvttpd_epi32(_mm256_add_pd(first, _mm256_set1_pd(pad)));
            let mut sum = _mm256_setzero_pd();
            for t in 0..ray.span_pairs {
                let i = _mm256_add_pd(first, _mm256_set1_pd((2 * t) as f64));
                let (w0, w1) = (weight(i, kv), weight(_mm256_add_pd(i, one), kv));
                let index = _mm_add_epi32(base, _mm_set1_epi32(2 * t as i32));
                // SAFETY: `first` is clamped to -2 span_pairs..=n_det and pad >=
                // 2 span_pairs, so the indices first + pad + 2t and + 1 lie in
                // 0..n_det + 2 pad = y.len() (asserted by the caller) for t < span_pairs.
                let pairs = _mm256_i32gather_epi64::<4>(y.as_ptr().cast::<i64>(), index);
                let (y0, y1) = unpack_pairs(pairs);
                let term = _mm256_add_pd(_mm256_mul_pd(w0, y0), _mm256_mul_pd(w1, y1));
                sum = _mm256_add_pd(sum, term);
            }
            let out = &mut acc[k..k + 4];
            let scaled = _mm256_mul_pd(sum, _mm256_set1_pd(ray.length));
            // SAFETY: `out` holds exactly four f64 values; unaligned load and store.
            let total = _mm256_add_pd(_mm256_loadu_pd(out.as_ptr()), scaled);
            _mm256_storeu_pd(out.as_mut_ptr(), total);
            k += 4;
        }
        super::adjoint_portable(rows, ray, k, k_hi, acc);
    }

    /// The first lane's value for rays or pixels running forward (`di > 0`), else the
    /// last's: the smallest index of a step, where its 8-value window starts.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) fn window_start(index: __m128i, forward: bool) -> i32 {
        if forward {
            _mm_cvtsi128_si32(index)
        } else {
            _mm_extract_epi32::<3>(index)
        }
    }

    /// Picks `(w[d], w[d + 1])` for the four lane offsets `d = index - start` (each in
    /// 0..=6) out of the 8 values `w` and widens them to f64.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn pick_pairs(window: &[f32], index: __m128i, start: i32) -> (__m256d, __m256d) {
        let offsets = _mm_sub_epi32(index, _mm_set1_epi32(start));
        let order = _mm256_set_m128i(_mm_add_epi32(offsets, _mm_set1_epi32(1)), offsets);
        assert_eq!(window.len(), 8);
        #[allow(unsafe_code)]
        // SAFETY: `window` holds exactly 8 f32 values (asserted); unaligned load.
        let values = unsafe { _mm256_loadu_ps(window.as_ptr()) };
        let picked = _mm256_permutevar8x32_ps(values, order);
        let first = _mm256_cvtps_pd(_mm256_castps256_ps128(picked));
        let second = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(picked));
        (first, second)
    }

    /// [`super::forward_portable`] for `|di| <= 2`, four rays per step: their left
    /// neighbours `j` span at most 6 pixels, so one 8-value window of the line holds all
    /// the pairs (lines carry `LINE_EXTRA - 1` zeros after the pixels for it).
    #[target_feature(enable = "avx2")]
    #[allow(unsafe_code)] // unsafe only because of target_feature; callers check the CPU
    pub(super) unsafe fn forward_window(
        line: &[f32],
        ray: LineRays,
        lo: usize,
        hi: usize,
        acc: &mut [f64],
    ) {
        let (rb, di) = (_mm256_set1_pd(ray.rb), _mm256_set1_pd(ray.di));
        let one = _mm256_set1_pd(1.0);
        let zero = _mm256_setzero_pd();
        let limit = _mm256_set1_pd((ray.n_minor + 1) as f64);
        let top = _mm256_set1_pd(ray.n_minor as f64);
        let lanes = _mm256_setr_pd(0.0, 1.0, 2.0, 3.0);
        let mut i = lo;
        while i + 4 <= hi {
            let iv = _mm256_add_pd(_mm256_set1_pd((i as i32) as f64), lanes);
            let v = _mm256_add_pd(_mm256_add_pd(rb, _mm256_mul_pd(iv, di)), one);
            let inside = _mm256_and_pd(
                _mm256_cmp_pd::<_CMP_GE_OQ>(v, zero),
                _mm256_cmp_pd::<_CMP_LT_OQ>(v, limit),
            );
            let j = _mm256_floor_pd(v);
            let f = _mm256_sub_pd(v, j);
            // Lanes outside the line are clamped into it (and masked off below).
            let index = _mm256_cvttpd_epi32(_mm256_min_pd(_mm256_max_pd(j, zero), top));
            let start = window_start(index, ray.di > 0.0);
            let window = &line[start as usize..start as usize + 8];
            let (a, b) = pick_pairs(window, index, start);
            let term = _mm256_add_pd(_mm256_mul_pd(_mm256_sub_pd(one, f), a), _mm256_mul_pd(f, b));
            let term = _mm256_and_pd(term, inside);
            let out = &mut acc[i..i + 4];
            // SAFETY: `out` holds exactly four f64 values; unaligned load and store.
            let sum = _mm256_add_pd(_mm256_loadu_pd(out.as_ptr()), term);
            _mm256_storeu_pd(out.as_mut_ptr(), sum);
            i += 4;
        }
        super::forward_portable(line, ray, i, hi, acc);
    }

    /// [`super::adjoint_pair_portable`], four pixels per step: for `|di| >= 1` their first
    /// rays span at most 4 detectors, so one 8-value window of the row holds all the pairs.
    #[target_feature(enable = "avx2")]
    #[allow(unsafe_code)] // unsafe only because of target_feature; callers check the CPU
    pub(super) unsafe fn adjoint_pair(
        rows: Rows,
        ray: LineRays,
        k_lo: usize,
        k_hi: usize,
        acc: &mut [f64],
    ) {
        let Rows { y, n_det, pad } = rows;
        let (rb, inv_di) = (_mm256_set1_pd(ray.rb), _mm256_set1_pd(ray.inv_di));
        let abs_di = _mm256_set1_pd(ray.di.abs());
        let one = _mm256_set1_pd(1.0);
        let one_minus_abs_di = _mm256_set1_pd(1.0 - ray.di.abs());
        let zero = _mm256_setzero_pd();
        let (lowest, highest) = (_mm256_set1_pd(-2.0), _mm256_set1_pd(n_det as f64));
        let shift = _mm256_set1_pd(pad as f64);
        let length = _mm256_set1_pd(ray.length);
        let lanes = _mm256_setr_pd(0.0, 1.0, 2.0, 3.0);
        let mut k = k_lo;
        while k + 4 <= k_hi {
            let kv = _mm256_add_pd(_mm256_set1_pd((k as i32) as f64), lanes);
            let q = _mm256_mul_pd(_mm256_sub_pd(kv, rb), inv_di);
            let first = _mm256_floor_pd(q);
            let r = _mm256_mul_pd(_mm256_sub_pd(q, first), abs_di);
            let w0 = _mm256_max_pd(_mm256_sub_pd(one, r), zero);
            let w1 = _mm256_max_pd(_mm256_add_pd(one_minus_abs_di, r), zero);
            let clamped = _mm256_min_pd(_mm256_max_pd(first, lowest), highest);
            let index = _mm256_cvttpd_epi32(_mm256_add_pd(clamped, shift));
            let start = window_start(index, ray.di > 0.0);
            let window = &y[start as usize..start as usize + 8];
            let (y0, y1) = pick_pairs(window, index, start);
            let sum = _mm256_add_pd(_mm256_mul_pd(w0, y0), _mm256_mul_pd(w1, y1));
            let out = &mut acc[k..k + 4];
            // SAFETY: `out` holds exactly four f64 values; unaligned load and store.
            let total = _mm256_add_pd(_mm256_loadu_pd(out.as_ptr()), _mm256_mul_pd(sum, length));
            _mm256_storeu_pd(out.as_mut_ptr(), total);
            k += 4;
        }
        super::adjoint_pair_portable(rows, ray, k, k_hi, acc);
    }
}

// Rust 1.89+ only (`cfg(netinv_avx512)` from build.rs): older compilers of the workspace's
// minimum Rust lack the intrinsics, and `SimdPath::Avx512` is then unsupported.
#[cfg(all(target_arch = "x86_64", netinv_avx512))]
#[allow(clippy::incompatible_msrv)]
mod avx512 {
    //! The AVX-512F window loops: eight rays (forward) or eight pixels (adjoint) per step,
    //! the same arithmetic as the portable loops lane by lane (so the same bits); a step's
    //! pairs come from one 16-value window (one load and one `vpermps`), and remainders go
    //! to the AVX2 loops.

    use super::{LineRays, Rows};
    use std::arch::x86_64::*;

    /// Floor, as `_mm256_floor_pd` (round toward minus infinity, no exceptions).
    const FLOOR: i32 = _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC;

    /// The first lane's value for rays or pixels running forward (`di > 0`), else the
    /// last's: the smallest index of a step, where its 16-value window starts.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn window_start(index: __m256i, forward: bool) -> i32 {
        if forward {
            _mm256_extract_epi32::<0>(index)
        } else {
            _mm256_extract_epi32::<7>(index)
        }
    }

    /// Picks `(w[d], w[d + 1])` for the eight lane offsets `d = index - start` (each in
    /// 0..=14) out of the 16 values `w` and widens them to f64.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn pick_pairs(window: &[f32], index: __m256i, start: i32) -> (__m512d, __m512d) {
        let offsets = _mm256_sub_epi32(index, _mm256_set1_epi32(start));
        let next = _mm256_add_epi32(offsets, _mm256_set1_epi32(1));
        let order = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(offsets), next);
        assert_eq!(window.len(), 16);
        #[allow(unsafe_code)]
        // SAFETY: `window` holds exactly 16 f32 values (asserted); unaligned load.
        let values = unsafe { _mm512_loadu_ps(window.as_ptr()) };
        let picked = _mm512_castps_pd(_mm512_permutexvar_ps(order, values));
        let first = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_castpd512_pd256(picked)));
        let second = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(picked)));
        (first, second)
    }

    /// The lane offsets 0..8 as f64.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn lanes() -> __m512d {
        _mm512_setr_pd(0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)
    }

    /// `acc[at..at + 8] += term`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn add_to(acc: &mut [f64], at: usize, term: __m512d) {
        let out = &mut acc[at..at + 8];
        #[allow(unsafe_code)]
        // SAFETY: `out` holds exactly eight f64 values; unaligned load and store.
        unsafe {
            let sum = _mm512_add_pd(_mm512_loadu_pd(out.as_ptr()), term);
            _mm512_storeu_pd(out.as_mut_ptr(), sum);
        }
    }

    /// [`super::forward_portable`] for `|di| <= 2`, eight rays per step: their left
    /// neighbours `j` span at most 14 pixels, so one 16-value window of the line holds all
    /// the pairs (lines carry `LINE_EXTRA - 1` zeros after the pixels for it).
    #[target_feature(enable = "avx512f")]
    #[allow(unsafe_code)] // unsafe only because of target_feature; callers check the CPU
    pub(super) unsafe fn forward_window(
        line: &[f32],
        ray: LineRays,
        lo: usize,
        hi: usize,
        acc: &mut [f64],
    ) {
        let (rb, di) = (_mm512_set1_pd(ray.rb), _mm512_set1_pd(ray.di));
        let one = _mm512_set1_pd(1.0);
        let zero = _mm512_setzero_pd();
        let limit = _mm512_set1_pd((ray.n_minor + 1) as f64);
        let top = _mm512_set1_pd(ray.n_minor as f64);
        let lanes = lanes();
        let mut i = lo;
        while i + 8 <= hi {
            let iv = _mm512_add_pd(_mm512_set1_pd((i as i32) as f64), lanes);
            let v = _mm512_add_pd(_mm512_add_pd(rb, _mm512_mul_pd(iv, di)), one);
            let inside = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(v, zero)
                & _mm512_cmp_pd_mask::<_CMP_LT_OQ>(v, limit);
            let j = _mm512_roundscale_pd::<FLOOR>(v);
            let f = _mm512_sub_pd(v, j);
            // Lanes outside the line are clamped into it (and masked off below).
            let index = _mm512_cvttpd_epi32(_mm512_min_pd(_mm512_max_pd(j, zero), top));
            let start = window_start(index, ray.di > 0.0);
            let window = &line[start as usize..start as usize + 16];
            let (a, b) = pick_pairs(window, index, start);
            let term = _mm512_add_pd(_mm512_mul_pd(_mm512_sub_pd(one, f), a), _mm512_mul_pd(f, b));
            add_to(acc, i, _mm512_maskz_mov_pd(inside, term));
            i += 8;
        }
        // SAFETY: AVX-512F CPUs have AVX2 (`SimdPath::Avx512` requires both).
        unsafe { super::avx2::forward_window(line, ray, i, hi, acc) }
    }

    /// [`super::adjoint_pair_portable`], eight pixels per step: for `|di| >= 1` their
    /// first rays span at most 8 detectors, so one 16-value window of the row holds all the
    /// pairs (rows carry at least 16 zeros on each side for it).
    #[target_feature(enable = "avx512f")]
    #[allow(unsafe_code)] // unsafe only because of target_feature; callers check the CPU
    pub(super) unsafe fn adjoint_pair(
        rows: Rows,
        ray: LineRays,
        k_lo: usize,
        k_hi: usize,
        acc: &mut [f64],
    ) {
        let Rows { y, n_det, pad } = rows;
        let (rb, inv_di) = (_mm512_set1_pd(ray.rb), _mm512_set1_pd(ray.inv_di));
        let abs_di = _mm512_set1_pd(ray.di.abs());
        let one = _mm512_set1_pd(1.0);
        let one_minus_abs_di = _mm512_set1_pd(1.0 - ray.di.abs());
        let zero = _mm512_setzero_pd();
        let (lowest, highest) = (_mm512_set1_pd(-2.0), _mm512_set1_pd(n_det as f64));
        let shift = _mm512_set1_pd(pad as f64);
        let length = _mm512_set1_pd(ray.length);
        let lanes = lanes();
        let mut k = k_lo;
        while k + 8 <= k_hi {
            let kv = _mm512_add_pd(_mm512_set1_pd((k as i32) as f64), lanes);
            let q = _mm512_mul_pd(_mm512_sub_pd(kv, rb), inv_di);
            let first = _mm512_roundscale_pd::<FLOOR>(q);
            let r = _mm512_mul_pd(_mm512_sub_pd(q, first), abs_di);
            let w0 = _mm512_max_pd(_mm512_sub_pd(one, r), zero);
            let w1 = _mm512_max_pd(_mm512_add_pd(one_minus_abs_di, r), zero);
            let clamped = _mm512_min_pd(_mm512_max_pd(first, lowest), highest);
            let index = _mm512_cvttpd_epi32(_mm512_add_pd(clamped, shift));
            let start = window_start(index, ray.di > 0.0);
            let window = &y[start as usize..start as usize + 16];
            let (y0, y1) = pick_pairs(window, index, start);
            let sum = _mm512_add_pd(_mm512_mul_pd(w0, y0), _mm512_mul_pd(w1, y1));
            add_to(acc, k, _mm512_mul_pd(sum, length));
            k += 8;
        }
        // SAFETY: AVX-512F CPUs have AVX2 (`SimdPath::Avx512` requires both).
        unsafe { super::avx2::adjoint_pair(rows, ray, k, k_hi, acc) }
    }
}
