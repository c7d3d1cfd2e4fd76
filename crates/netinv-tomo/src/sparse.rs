//! A compressed sparse row (CSR) matrix and the operator built on it.

use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3};
use rayon::prelude::*;

use crate::operator::{assert_batch_shapes, assert_shapes};
use crate::{LinearOperator, RayTransform};

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
/// choice for many repeated applications (SIRT) when the matrix fits in memory.
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

impl CsrOperator {
    /// Builds the CSR matrix of `op` and its transpose.
    pub fn new(op: &RayTransform) -> Self {
        let matrix = op.to_csr();
        let transpose = matrix.transpose();
        Self {
            domain: op.domain_shape(),
            range: op.range_shape(),
            matrix,
            transpose,
        }
    }

    /// The matrix `A` (`[angles * n_det, rows * cols]`).
    pub fn matrix(&self) -> &SparseMatrix {
        &self.matrix
    }
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
