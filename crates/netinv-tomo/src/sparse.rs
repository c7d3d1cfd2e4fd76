//! A compressed sparse row (CSR) matrix and the operator built on it.

use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3};
use rayon::prelude::*;

use crate::operator::{assert_batch_shapes, assert_shapes};
use crate::{Error, LinearOperator, RayTransform, Result};

/// A sparse matrix in compressed sparse row form, f32 values, f64 accumulation.
///
/// ```text
/// row i holds the entries values[indptr[i]..indptr[i+1]] at columns indices[..]
/// (A v)_i = sum_j A_ij v_j
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SparseMatrix {
    n_rows: usize,
    n_cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

impl SparseMatrix {
    /// Assembles a matrix from its CSR arrays.
    ///
    /// # Panics
    /// If `indptr` does not have `n_rows + 1` non-decreasing entries ending at
    /// `indices.len()`, if `indices` and `values` differ in length, or if a column index is
    /// out of range.
    pub fn from_parts(
        n_rows: usize,
        n_cols: usize,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        values: Vec<f32>,
    ) -> Self {
        assert_eq!(indptr.len(), n_rows + 1, "indptr needs n_rows + 1 entries");
        assert_eq!(
            indices.len(),
            values.len(),
            "indices and values differ in length"
        );
        assert_eq!(indptr[n_rows], indices.len(), "indptr must end at nnz");
        assert!(
            indptr.windows(2).all(|w| w[0] <= w[1]),
            "indptr must not decrease"
        );
        assert!(
            indices.iter().all(|&j| (j as usize) < n_cols),
            "column index out of range"
        );
        Self {
            n_rows,
            n_cols,
            indptr,
            indices,
            values,
        }
    }

    /// Row pointers from the entry count of every row, `count(i)` evaluated in parallel
    /// (jobs of at least [`crate::par::min_items`]`(row_work)` rows, `row_work` the
    /// multiply-adds of one count), then summed in order: `indptr[0] = 0`,
    /// `indptr[i + 1] = indptr[i] + count(i)`. The same at any thread count.
    pub(crate) fn row_pointers(
        n_rows: usize,
        row_work: usize,
        count: impl Fn(usize) -> usize + Sync,
    ) -> Vec<usize> {
        let mut indptr = vec![0usize; n_rows + 1];
        indptr[1..]
            .par_iter_mut()
            .with_min_len(crate::par::min_items(row_work))
            .enumerate()
            .for_each(|(i, n)| *n = count(i));
        for i in 0..n_rows {
            indptr[i + 1] += indptr[i];
        }
        indptr
    }

    /// The row pointers of the transpose: `n_cols + 1` running sums of how many entries
    /// each column holds, counted in parallel over one block of entries per thread
    /// (integer sums, so the same at any thread count; `threads * n_cols` counters).
    pub(crate) fn column_pointers(&self) -> Vec<usize> {
        let n_cols = self.n_cols;
        let block = self
            .indices
            .len()
            .div_ceil(rayon::current_num_threads())
            .max(1 << 16);
        let counts = self
            .indices
            .par_chunks(block)
            .map(|chunk| {
                let mut counts = vec![0usize; n_cols];
                for &j in chunk {
                    counts[j as usize] += 1;
                }
                counts
            })
            .reduce_with(|mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                a
            })
            .unwrap_or_else(|| vec![0; n_cols]);
        let mut indptr = Vec::with_capacity(n_cols + 1);
        indptr.push(0);
        for c in counts {
            indptr.push(indptr[indptr.len() - 1] + c);
        }
        indptr
    }

    /// Assembles a matrix with the given row pointers in parallel: `fill(i, indices,
    /// values)` writes row `i` into its own slices (of `indptr[i + 1] - indptr[i]`
    /// entries) and returns how many it wrote. Jobs are runs of rows with disjoint slices,
    /// so the matrix is the same at any thread count, and nothing but the matrix is
    /// allocated.
    ///
    /// # Panics
    /// If `fill` writes more entries than a row has room for or returns a different count.
    /// Column indices are not checked: `fill` must write indices below `n_cols`.
    pub(crate) fn fill_rows(
        n_cols: usize,
        indptr: Vec<usize>,
        row_work: usize,
        fill: impl Fn(usize, &mut [u32], &mut [f32]) -> usize + Sync,
    ) -> Self {
        let n_rows = indptr.len() - 1;
        let nnz = indptr[n_rows];
        let mut indices = vec![0u32; nnz];
        let mut values = vec![0.0f32; nnz];
        let rows_per_job = crate::par::min_items(row_work);
        let mut jobs = Vec::with_capacity(n_rows.div_ceil(rows_per_job));
        let (mut idx_rest, mut val_rest) = (&mut indices[..], &mut values[..]);
        for first in (0..n_rows).step_by(rows_per_job) {
            let rows = first..(first + rows_per_job).min(n_rows);
            let len = indptr[rows.end] - indptr[rows.start];
            let (idx, rest) = std::mem::take(&mut idx_rest).split_at_mut(len);
            idx_rest = rest;
            let (val, rest) = std::mem::take(&mut val_rest).split_at_mut(len);
            val_rest = rest;
            jobs.push((rows, idx, val));
        }
        jobs.into_par_iter().for_each(|(rows, idx, val)| {
            let base = indptr[rows.start];
            for i in rows {
                let range = indptr[i] - base..indptr[i + 1] - base;
                let len = range.len();
                let written = fill(i, &mut idx[range.clone()], &mut val[range]);
                assert_eq!(
                    written, len,
                    "row {i}: {written} entries written, {len} counted"
                );
            }
        });
        // `from_parts` would re-check every column index serially; the callers' indices
        // come from the projector's own stepping and are in range by construction.
        Self {
            n_rows,
            n_cols,
            indptr,
            indices,
            values,
        }
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Number of columns.
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// Row pointers (`n_rows + 1` entries).
    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }

    /// Column index of every stored entry.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// Value of every stored entry.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The entries of row `i` as `(column, value)` pairs.
    ///
    /// # Panics
    /// If `i >= n_rows`.
    pub fn row(&self, i: usize) -> impl Iterator<Item = (usize, f32)> + '_ {
        let range = self.indptr[i]..self.indptr[i + 1];
        self.indices[range.clone()]
            .iter()
            .zip(&self.values[range])
            .map(|(&j, &v)| (j as usize, v))
    }

    /// The transpose, again in CSR form (equivalently, this matrix in CSC form).
    pub fn transpose(&self) -> SparseMatrix {
        let mut counts = vec![0usize; self.n_cols + 1];
        for &j in &self.indices {
            counts[j as usize + 1] += 1;
        }
        for j in 0..self.n_cols {
            counts[j + 1] += counts[j];
        }
        let indptr = counts.clone();
        let mut next = counts;
        let mut indices = vec![0u32; self.nnz()];
        let mut values = vec![0.0f32; self.nnz()];
        for i in 0..self.n_rows {
            for k in self.indptr[i]..self.indptr[i + 1] {
                let j = self.indices[k] as usize;
                indices[next[j]] = i as u32;
                values[next[j]] = self.values[k];
                next[j] += 1;
            }
        }
        SparseMatrix {
            n_rows: self.n_cols,
            n_cols: self.n_rows,
            indptr,
            indices,
            values,
        }
    }

    /// `out = A v`, in parallel over rows, each row summed in f64.
    ///
    /// # Panics
    /// If `v.len() != n_cols` or `out.len() != n_rows`.
    pub fn matvec_into(&self, v: &[f32], out: &mut [f32]) {
        assert_eq!(v.len(), self.n_cols, "vector length must be n_cols");
        assert_eq!(out.len(), self.n_rows, "output length must be n_rows");
        const CHUNK: usize = 256;
        let nnz_per_chunk = CHUNK * self.values.len() / self.n_rows.max(1);
        out.par_chunks_mut(CHUNK)
            .with_min_len(crate::par::min_items(nnz_per_chunk))
            .enumerate()
            .for_each(|(c, chunk)| {
                for (o, i) in chunk.iter_mut().zip(c * CHUNK..) {
                    let mut acc = 0.0f64;
                    for k in self.indptr[i]..self.indptr[i + 1] {
                        acc += self.values[k] as f64 * v[self.indices[k] as usize] as f64;
                    }
                    *o = acc as f32;
                }
            });
    }

    /// `out = A V` for `batch` vectors at once, stored one per column: `v` is
    /// `[n_cols, batch]` and `out` `[n_rows, batch]`, both row-major. Each output value is
    /// summed in f64 in the same order as [`matvec_into`](Self::matvec_into), so column
    /// `k` of `out` equals `A` times column `k` of `v` bit for bit; the indices and values
    /// of a row are read once for the whole batch, which is what makes this faster than
    /// `batch` separate products.
    ///
    /// # Panics
    /// If `v.len() != n_cols * batch` or `out.len() != n_rows * batch`.
    pub fn matmat_into(&self, v: &[f32], batch: usize, out: &mut [f32]) {
        assert_eq!(v.len(), self.n_cols * batch, "v must be [n_cols, batch]");
        assert_eq!(
            out.len(),
            self.n_rows * batch,
            "out must be [n_rows, batch]"
        );
        match batch {
            0 => return,
            // the scalar loop is faster for one vector and gives the same bits
            1 => return self.matvec_into(v, out),
            _ => {}
        }
        let nnz_per_row = self.values.len() / self.n_rows.max(1);
        let kernel = rows_times_batch_kernel();
        out.par_chunks_mut(ROWS_PER_JOB * batch)
            .with_min_len(crate::par::min_items(ROWS_PER_JOB * nnz_per_row * batch))
            .enumerate()
            .for_each(|(c, out_rows)| {
                let first = c * ROWS_PER_JOB;
                let rows = first..first + out_rows.len() / batch;
                let entries = Entries {
                    indptr: &self.indptr[rows.start..=rows.end],
                    indices: &self.indices,
                    values: &self.values,
                };
                kernel(entries, v, batch, out_rows);
            });
    }
}

/// Rows handed to one parallel job of [`SparseMatrix::matmat_into`].
const ROWS_PER_JOB: usize = 64;

/// Batch columns summed together in registers: 16 f64 accumulators are four AVX2
/// registers (two AVX-512 ones), so the inner loop loads only the batch values, never the
/// sums.
const LANES: usize = 16;

/// Consecutive rows of a CSR matrix: `indptr` has one more entry than there are rows and
/// indexes into the whole `indices` / `values`.
#[derive(Clone, Copy)]
struct Entries<'a> {
    indptr: &'a [usize],
    indices: &'a [u32],
    values: &'a [f32],
}

/// `out[r, ..] = sum_k values[k] * v[indices[k], ..]` for the rows of `Entries` and a
/// batch `v` `[n_cols, batch]`, each sum accumulated in f64 term by term in order.
type RowsKernel = fn(Entries<'_>, &[f32], usize, &mut [f32]);

/// The kernel for this CPU: the same loop compiled for AVX-512 or AVX2 where the CPU has
/// it (8 or 4 f64 lanes instead of SSE2's 2; separate multiply and add, no FMA, so the bits
/// are the same as the scalar product's). AVX-512 was 0-20% faster than AVX2 (noisy) on the
/// CT study's batches (`csr-batch` bench, docs/performance.md).
#[allow(unsafe_code)] // calls the target-feature kernels after detecting the feature
fn rows_times_batch_kernel() -> RowsKernel {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return |entries, v, batch, out| {
                // SAFETY: the CPU supports AVX-512F, checked just above.
                unsafe { rows_times_batch_avx512(entries, v, batch, out) }
            };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return |entries, v, batch, out| {
                // SAFETY: the CPU supports AVX2, checked just above.
                unsafe { rows_times_batch_avx2(entries, v, batch, out) }
            };
        }
    }
    rows_times_batch
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(unsafe_code)] // unsafe only because of target_feature; callers check the CPU
unsafe fn rows_times_batch_avx512(entries: Entries<'_>, v: &[f32], batch: usize, out: &mut [f32]) {
    rows_times_batch(entries, v, batch, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(unsafe_code)] // unsafe only because of target_feature; callers check the CPU
unsafe fn rows_times_batch_avx2(entries: Entries<'_>, v: &[f32], batch: usize, out: &mut [f32]) {
    rows_times_batch(entries, v, batch, out)
}

/// Block by block of `LANES` batch columns, then row by row: one block of `v` is
/// `n_cols` cache lines, which stay in cache while every row of the job reads them (a
/// whole batch row per entry would stream `nnz * batch` values from memory).
#[inline(always)]
fn rows_times_batch(entries: Entries<'_>, v: &[f32], batch: usize, out: &mut [f32]) {
    for start in (0..batch).step_by(LANES) {
        let width = LANES.min(batch - start);
        for (r, k) in entries.indptr.windows(2).enumerate() {
            let mut sums = [0.0f64; LANES];
            for (&j, &a) in entries.indices[k[0]..k[1]]
                .iter()
                .zip(&entries.values[k[0]..k[1]])
            {
                let a = a as f64;
                let offset = j as usize * batch + start;
                if width == LANES {
                    let x: &[f32; LANES] = v[offset..offset + LANES]
                        .try_into()
                        .expect("a slice of LANES values");
                    for (s, &x) in sums.iter_mut().zip(x) {
                        *s += a * x as f64;
                    }
                } else {
                    for (s, &x) in sums.iter_mut().zip(&v[offset..offset + width]) {
                        *s += a * x as f64;
                    }
                }
            }
            let row_out = &mut out[r * batch + start..r * batch + start + width];
            for (o, &s) in row_out.iter_mut().zip(&sums) {
                *o = s as f32;
            }
        }
    }
}

/// A [`LinearOperator`] backed by a precomputed CSR matrix and its transpose: the fastest
/// choice for many repeated applications (SIRT, the CT study's batches of digits) when
/// the matrix fits in memory. It takes [`required_bytes`](Self::required_bytes) of memory
/// (42 MB at 128x128 / 90 angles / 183 detectors, 681 MB at 256 px / 360 angles,
/// 5.4 GB at 512 px / 720 angles); [`with_budget`](Self::with_budget) refuses to build it
/// above a budget, and [`AutoOperator`](crate::AutoOperator) falls back to the matrix-free
/// [`RayTransform`] there.
///
/// # Examples
/// ```
/// use netinv_tomo::{ndarray::Array2, CsrOperator, LinearOperator, ParallelBeam2d, RayTransform};
/// let op = RayTransform::new(ParallelBeam2d::uniform(16, 16, 10, 20, 1.0).unwrap()).unwrap();
/// let csr = CsrOperator::new(&op);
/// let x = Array2::from_elem((16, 16), 0.5f32);
/// let (a, b) = (op.apply(x.view()), csr.apply(x.view()));
/// assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-4));
/// ```
#[derive(Debug, Clone)]
pub struct CsrOperator {
    domain: (usize, usize),
    range: (usize, usize),
    matrix: SparseMatrix,
    transpose: SparseMatrix,
}

/// Up to this many entries [`CsrOperator`]'s transpose is the serial scatter of the matrix
/// at any thread count. At 1 thread, in process CPU time, the scatter took 0.15 / 3.0 /
/// 22 ms at 28 / 64 / 128 px and 90 angles where the per-pixel recomputation took about
/// 2.4 / 11 / 45 ms (`tests/csr_build_timing.rs`, `csr_build_phases_one_thread`), so only
/// above ~4M entries (128 px / 90 angles has 2.8M) can two threads of the recomputation win.
const SCATTER_TRANSPOSE_NNZ: usize = 1 << 22;

impl CsrOperator {
    /// Builds the CSR matrix of `op` and its transpose, whatever their size: calling `new`
    /// is the caller asking for the matrix explicitly. It takes
    /// [`required_bytes`](Self::required_bytes) of memory (5.4 GB at 512 px / 720 angles;
    /// 1024 px does not fit in 24 GB); [`with_budget`](Self::with_budget) checks that
    /// figure first, [`AutoOperator`](crate::AutoOperator) picks the matrix-free projector
    /// above a budget.
    ///
    /// The matrix is built in parallel (rayon) ray by ray ([`RayTransform::to_csr`]), in a
    /// counting pass and a filling pass. The transpose of a large matrix (above 4M
    /// entries, with more than one thread) is built in parallel pixel by pixel from the same
    /// stepping arithmetic (its row pointers from the matrix's column counts); a small one,
    /// or any on one thread, is the serial scatter of the matrix, which is faster there.
    /// Both are the same bit for bit at any thread count, and the build allocates nothing
    /// beyond them (and the transpose's column counters).
    ///
    /// # Examples
    /// ```
    /// use netinv_tomo::{CsrOperator, ParallelBeam2d, RayTransform};
    /// let op = RayTransform::new(ParallelBeam2d::uniform(8, 8, 4, 12, 1.0).unwrap()).unwrap();
    /// let csr = CsrOperator::new(&op);
    /// assert_eq!(csr.matrix().n_rows(), 4 * 12);
    /// assert_eq!(csr.memory_bytes(), CsrOperator::required_bytes(&op));
    /// ```
    pub fn new(op: &RayTransform) -> Self {
        Self::with_row_pointers(op, op.csr_row_pointers())
    }

    /// Builds the operator as [`new`](Self::new) does if it takes at most `max_bytes` of
    /// memory ([`required_bytes`](Self::required_bytes), counted before anything is
    /// built).
    ///
    /// # Errors
    /// [`Error::OverMemoryBudget`] with the bytes needed, the budget and the shapes if
    /// the operator needs more than `max_bytes`.
    ///
    /// # Examples
    /// ```
    /// use netinv_tomo::{CsrOperator, Error, ParallelBeam2d, RayTransform};
    /// let op = RayTransform::new(ParallelBeam2d::uniform(28, 28, 30, 42, 1.0).unwrap()).unwrap();
    /// let needed = CsrOperator::required_bytes(&op);
    /// assert!(CsrOperator::with_budget(&op, needed).is_ok());
    /// let refused = CsrOperator::with_budget(&op, needed - 1);
    /// assert!(matches!(refused, Err(Error::OverMemoryBudget { budget, .. }) if budget == needed - 1));
    /// ```
    pub fn with_budget(op: &RayTransform, max_bytes: usize) -> Result<Self> {
        let indptr = op.csr_row_pointers();
        let needed = csr_operator_bytes(op, indptr[indptr.len() - 1]);
        if needed > max_bytes {
            return Err(Error::OverMemoryBudget {
                what: "CSR operator",
                needed,
                budget: max_bytes,
                image: op.domain_shape(),
                sinogram: op.range_shape(),
            });
        }
        Ok(Self::with_row_pointers(op, indptr))
    }

    /// The bytes of memory the operator of `op` holds once built, computed without
    /// building it (a parallel counting pass over the rays, about a tenth of the build):
    ///
    /// ```text
    /// 2 * nnz * (4 + 4)                        column indices (u32) and values (f32), A and A^T
    /// + 8 * (angles * n_det + 1 + rows * cols + 1)   row pointers (usize) of A and A^T
    /// ```
    ///
    /// exactly the buffers of [`new`](Self::new)'s result
    /// ([`memory_bytes`](Self::memory_bytes)), and the build's peak too up to a few
    /// megabytes of job bookkeeping and column counters (`8 * threads * rows * cols`) (peak RSS of a 512 px / 720 angle build:
    /// 5,455 MB for 5,444 MB required); the few hundred bytes of the struct itself and the
    /// allocator's rounding are not counted. `nnz` is about
    /// `1.3 * min(rows, cols) * angles * n_det` (rays outside the image have none).
    ///
    /// # Examples
    /// ```
    /// use netinv_tomo::{CsrOperator, ParallelBeam2d, RayTransform};
    /// let op = RayTransform::new(ParallelBeam2d::uniform(28, 28, 90, 42, 1.0).unwrap()).unwrap();
    /// let bytes = CsrOperator::required_bytes(&op);
    /// assert!(bytes > 1 << 20 && bytes < 8 << 20); // a digit at 90 angles: a few MB
    /// ```
    pub fn required_bytes(op: &RayTransform) -> usize {
        let indptr = op.csr_row_pointers();
        csr_operator_bytes(op, indptr[indptr.len() - 1])
    }

    /// The bytes held by the operator's buffers: the capacities of the column indices,
    /// values and row pointers of the matrix and its transpose (what
    /// [`required_bytes`](Self::required_bytes) predicts).
    ///
    /// # Examples
    /// ```
    /// use netinv_tomo::{CsrOperator, ParallelBeam2d, RayTransform};
    /// let op = RayTransform::new(ParallelBeam2d::uniform(8, 8, 4, 12, 1.0).unwrap()).unwrap();
    /// let csr = CsrOperator::new(&op);
    /// let nnz = csr.matrix().nnz();
    /// assert_eq!(csr.memory_bytes(), 2 * nnz * 8 + 8 * (4 * 12 + 1 + 8 * 8 + 1));
    /// ```
    pub fn memory_bytes(&self) -> usize {
        [&self.matrix, &self.transpose]
            .iter()
            .map(|m| {
                m.indices.capacity() * std::mem::size_of::<u32>()
                    + m.values.capacity() * std::mem::size_of::<f32>()
                    + m.indptr.capacity() * std::mem::size_of::<usize>()
            })
            .sum()
    }

    /// Builds both matrices from the counted row pointers of `op`'s matrix. The transpose
    /// is the serial scatter of the matrix ([`SparseMatrix::transpose`]) on one thread or
    /// below [`SCATTER_TRANSPOSE_NNZ`] entries, else recomputed pixel by pixel in parallel
    /// ([`RayTransform::to_csr_transpose`]); the two are equal bit for bit (tested).
    fn with_row_pointers(op: &RayTransform, indptr: Vec<usize>) -> Self {
        let matrix = op.to_csr_with(indptr);
        let transpose =
            if rayon::current_num_threads() == 1 || matrix.nnz() <= SCATTER_TRANSPOSE_NNZ {
                matrix.transpose()
            } else {
                op.to_csr_transpose(&matrix)
            };
        Self {
            domain: op.domain_shape(),
            range: op.range_shape(),
            matrix,
            transpose,
        }
    }

    /// The matrix `A` (`[angles * n_det, rows * cols]`).
    ///
    /// # Examples
    /// ```
    /// use netinv_tomo::{CsrOperator, ParallelBeam2d, RayTransform};
    /// let op = RayTransform::new(ParallelBeam2d::uniform(8, 8, 4, 12, 1.0).unwrap()).unwrap();
    /// assert_eq!(CsrOperator::new(&op).matrix().n_cols(), 64);
    /// ```
    pub fn matrix(&self) -> &SparseMatrix {
        &self.matrix
    }

    /// The transpose `A^T` (`[rows * cols, angles * n_det]`), equal bit for bit to
    /// `self.matrix().transpose()`.
    ///
    /// # Examples
    /// ```
    /// use netinv_tomo::{CsrOperator, ParallelBeam2d, RayTransform};
    /// let op = RayTransform::new(ParallelBeam2d::uniform(8, 8, 4, 12, 1.0).unwrap()).unwrap();
    /// let csr = CsrOperator::new(&op);
    /// assert_eq!(csr.transpose(), &csr.matrix().transpose());
    /// ```
    pub fn transpose(&self) -> &SparseMatrix {
        &self.transpose
    }
}

/// [`CsrOperator::required_bytes`] from the number of entries of `A`.
fn csr_operator_bytes(op: &RayTransform, nnz: usize) -> usize {
    let (rows, cols) = op.domain_shape();
    let (angles, n_det) = op.range_shape();
    let entry = std::mem::size_of::<u32>() + std::mem::size_of::<f32>();
    let pointers = (angles * n_det + 1) + (rows * cols + 1);
    2 * nnz * entry + pointers * std::mem::size_of::<usize>()
}

impl LinearOperator for CsrOperator {
    fn domain_shape(&self) -> (usize, usize) {
        self.domain
    }

    fn range_shape(&self) -> (usize, usize) {
        self.range
    }

    fn apply_into(&self, x: ArrayView2<f32>, mut y: ArrayViewMut2<f32>) {
        assert_shapes(
            "image",
            x.dim(),
            self.domain,
            "sinogram",
            y.dim(),
            self.range,
        );
        let x = x.as_standard_layout();
        match y.as_slice_mut() {
            Some(out) => self.matrix.matvec_into(x.as_slice().unwrap_or(&[]), out),
            None => {
                let mut out = vec![0.0; self.range.0 * self.range.1];
                self.matrix
                    .matvec_into(x.as_slice().unwrap_or(&[]), &mut out);
                y.iter_mut().zip(&out).for_each(|(d, s)| *d = *s);
            }
        }
    }

    fn apply_batch_into(&self, x: ArrayView3<f32>, y: ArrayViewMut3<f32>) {
        assert_batch_shapes(self.domain, x.dim(), self.range, y.dim());
        matmat_batch(&self.matrix, x, y);
    }

    fn adjoint_batch_into(&self, y: ArrayView3<f32>, x: ArrayViewMut3<f32>) {
        assert_batch_shapes(self.domain, x.dim(), self.range, y.dim());
        matmat_batch(&self.transpose, y, x);
    }

    fn adjoint_into(&self, y: ArrayView2<f32>, mut x: ArrayViewMut2<f32>) {
        assert_shapes(
            "sinogram",
            y.dim(),
            self.range,
            "image",
            x.dim(),
            self.domain,
        );
        let y = y.as_standard_layout();
        match x.as_slice_mut() {
            Some(out) => self.transpose.matvec_into(y.as_slice().unwrap_or(&[]), out),
            None => {
                let mut out = vec![0.0; self.domain.0 * self.domain.1];
                self.transpose
                    .matvec_into(y.as_slice().unwrap_or(&[]), &mut out);
                x.iter_mut().zip(&out).for_each(|(d, s)| *d = *s);
            }
        }
    }
}

/// `out = M v` for a batch in a `[.., .., batch]` array, through a standard-layout copy
/// where either side is not contiguous.
fn matmat_batch(matrix: &SparseMatrix, v: ArrayView3<f32>, mut out: ArrayViewMut3<f32>) {
    let batch = v.dim().2;
    let v = v.as_standard_layout();
    let v = v.as_slice().unwrap_or(&[]);
    match out.as_slice_mut() {
        Some(o) => matrix.matmat_into(v, batch, o),
        None => {
            let mut o = vec![0.0; matrix.n_rows() * batch];
            matrix.matmat_into(v, batch, &mut o);
            out.iter_mut().zip(&o).for_each(|(d, s)| *d = *s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParallelBeam2d;

    /// `RayTransform::to_csr` as it was before the parallel build (commit 36bf6fa): every
    /// ray's entries collected into its own vectors, then concatenated in ray order.
    fn serial_to_csr(op: &RayTransform) -> SparseMatrix {
        let (n_angles, n_det) = op.range_shape();
        let (rows, cols) = op.domain_shape();
        let per_ray: Vec<(Vec<u32>, Vec<f32>)> = (0..n_angles * n_det)
            .map(|ray| {
                let mut idx = Vec::new();
                let mut val = Vec::new();
                op.for_each_weight(ray / n_det, ray % n_det, |j, w| {
                    idx.push(j as u32);
                    val.push(w as f32);
                });
                (idx, val)
            })
            .collect();
        let mut indptr = vec![0usize];
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        for (idx, val) in per_ray {
            indices.extend_from_slice(&idx);
            values.extend_from_slice(&val);
            indptr.push(indices.len());
        }
        SparseMatrix::from_parts(n_angles * n_det, rows * cols, indptr, indices, values)
    }

    /// Equal shapes, row pointers, column indices and value bits.
    fn assert_same_bits(a: &SparseMatrix, b: &SparseMatrix, what: &str) {
        assert_eq!((a.n_rows, a.n_cols), (b.n_rows, b.n_cols), "{what}: shape");
        assert_eq!(a.indptr, b.indptr, "{what}: indptr");
        assert_eq!(a.indices, b.indices, "{what}: indices");
        let bits = |m: &SparseMatrix| m.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert!(bits(a) == bits(b), "{what}: values differ");
    }

    /// Square, rectangular, fine and coarse detectors, angles on and off the axes and
    /// diagonals (where rays switch between vertical and horizontal stepping), a detector
    /// row narrower than the image.
    fn geometries() -> Vec<ParallelBeam2d> {
        use std::f32::consts::{FRAC_PI_2, FRAC_PI_4, PI};
        let odd = vec![
            0.0,
            0.1,
            FRAC_PI_4,
            1.0,
            FRAC_PI_2,
            2.0,
            3.0 * FRAC_PI_4,
            3.1,
            PI,
        ];
        vec![
            ParallelBeam2d::uniform(16, 16, 12, 24, 1.0).unwrap(),
            ParallelBeam2d::uniform(64, 64, 45, 93, 1.0).unwrap(),
            ParallelBeam2d::new(20, 13, odd.clone(), 31, 0.7).unwrap(),
            ParallelBeam2d::new(9, 17, odd.clone(), 11, 1.6).unwrap(),
            ParallelBeam2d::new(24, 24, odd, 10, 1.0).unwrap(),
        ]
    }

    #[test]
    fn parallel_build_equals_the_serial_build() {
        for geom in geometries() {
            let op = RayTransform::new(geom.clone()).unwrap();
            let serial = serial_to_csr(&op);
            let csr = CsrOperator::new(&op);
            assert_same_bits(&csr.matrix, &serial, &format!("A {geom:?}"));
            assert_same_bits(
                &csr.transpose,
                &serial.transpose(),
                &format!("A^T {geom:?}"),
            );
        }
    }

    #[test]
    fn parallel_transpose_equals_the_scatter() {
        // CsrOperator uses the per-pixel transpose only above SCATTER_TRANSPOSE_NNZ
        // entries at several threads; it must give the scatter's bits everywhere.
        for geom in geometries() {
            let op = RayTransform::new(geom.clone()).unwrap();
            let matrix = op.to_csr();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            let parallel = pool.install(|| op.to_csr_transpose(&matrix));
            assert_same_bits(&parallel, &matrix.transpose(), &format!("A^T {geom:?}"));
        }
    }

    #[test]
    fn builds_on_one_and_two_threads_are_byte_equal(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        // 64 px / 45 angles splits into many jobs: rows of 64 steps, 512 rows per job
        let op = RayTransform::new(ParallelBeam2d::uniform(64, 64, 45, 93, 1.0)?)?;
        let build = |threads| -> std::result::Result<CsrOperator, Box<dyn std::error::Error>> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()?;
            Ok(pool.install(|| CsrOperator::new(&op)))
        };
        let (one, two) = (build(1)?, build(2)?);
        assert!(op.csr_row_pointers().len() / crate::par::min_items(64) > 4);
        assert_same_bits(&one.matrix, &two.matrix, "A");
        assert_same_bits(&one.transpose, &two.transpose, "A^T");
        Ok(())
    }

    #[test]
    fn required_bytes_are_the_built_buffers() {
        for geom in geometries() {
            let op = RayTransform::new(geom).unwrap();
            let csr = CsrOperator::new(&op);
            let nnz = csr.matrix.nnz();
            assert_eq!(csr.transpose.nnz(), nnz);
            let (rows, cols) = op.domain_shape();
            let (angles, n_det) = op.range_shape();
            let exact = 16 * nnz + 8 * (angles * n_det + 1 + rows * cols + 1);
            assert_eq!(CsrOperator::required_bytes(&op), exact);
            assert_eq!(csr.memory_bytes(), exact);
        }
    }

    #[test]
    fn with_budget_refuses_above_and_builds_at_the_budget() {
        let op = RayTransform::new(ParallelBeam2d::uniform(16, 16, 12, 24, 1.0).unwrap()).unwrap();
        let needed = CsrOperator::required_bytes(&op);
        let at = CsrOperator::with_budget(&op, needed).expect("fits exactly");
        assert_same_bits(&at.matrix, &CsrOperator::new(&op).matrix, "A");
        assert!(CsrOperator::with_budget(&op, usize::MAX).is_ok());
        match CsrOperator::with_budget(&op, needed - 1).map(|_| ()) {
            Err(Error::OverMemoryBudget {
                needed: n,
                budget,
                image,
                sinogram,
                ..
            }) => {
                assert_eq!((n, budget), (needed, needed - 1));
                assert_eq!((image, sinogram), ((16, 16), (12, 24)));
            }
            other => panic!("expected OverMemoryBudget, got {other:?}"),
        }
        let message = CsrOperator::with_budget(&op, 0).unwrap_err().to_string();
        assert!(message.contains(&needed.to_string()) && message.contains("budget of 0"));
    }

    #[test]
    fn transpose_round_trips() {
        let m = SparseMatrix::from_parts(2, 3, vec![0, 2, 3], vec![0, 2, 1], vec![1.0, 2.0, 3.0]);
        let t = m.transpose();
        assert_eq!(t.n_rows(), 3);
        assert_eq!(t.row(2).collect::<Vec<_>>(), vec![(0, 2.0)]);
        assert_eq!(t.transpose(), m);
        let mut out = vec![0.0; 2];
        m.matvec_into(&[1.0, 1.0, 1.0], &mut out);
        assert_eq!(out, vec![3.0, 3.0]);
    }
}
