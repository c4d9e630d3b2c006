//! The heavy linear algebra: safe wrappers over BLAS `sgemm`, and a Cholesky solver (blocked
//! over BLAS `dtrsm`/`dsyrk`, with a plain twin) for the small ridge-regularised normal
//! equations of error correction.
//!
//! Every matrix is row-major with its natural leading dimension (its column count).

use cblas::{Diagonal, Layout, Part, Side, Transpose};

/// Block size of the blocked Cholesky factorisation.
const CHOLESKY_BLOCK: usize = 64;
/// Each failed factorisation multiplies the ridge by this much before retrying.
const RIDGE_GROWTH: f64 = 100.0;
/// Retries with a larger ridge before giving up on a factorisation.
const RIDGE_RETRIES: usize = 8;

fn blas_int(n: usize) -> i32 {
    i32::try_from(n).expect("matrix dimension exceeds BLAS's 32-bit int")
}

fn trans(t: bool) -> Transpose {
    if t {
        Transpose::Ordinary
    } else {
        Transpose::None
    }
}

/// `C = alpha·op(A)·op(B) + beta·C`: C is m×n, op(A) m×k, op(B) k×n. A is stored m×k
/// (k×m when `ta`), B k×n (n×k when `tb`), all row-major, contiguous.
///
/// Panics if a slice length disagrees with the dimensions (checked before BLAS reads memory).
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    ta: bool,
    tb: bool,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    assert_eq!(a.len(), m * k, "gemm: A must hold m·k = {m}·{k} floats");
    assert_eq!(b.len(), k * n, "gemm: B must hold k·n = {k}·{n} floats");
    assert_eq!(c.len(), m * n, "gemm: C must hold m·n = {m}·{n} floats");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.iter_mut().for_each(|x| *x *= beta);
        return;
    }
    let lda = if ta { m } else { k };
    let ldb = if tb { k } else { n };
    // SAFETY: the asserts make A, B and C exactly the row-major matrices the call describes
    // (leading dimensions = their column counts, all ≥ 1).
    unsafe {
        cblas::sgemm(
            Layout::RowMajor,
            trans(ta),
            trans(tb),
            blas_int(m),
            blas_int(n),
            blas_int(k),
            alpha,
            a,
            blas_int(lda),
            b,
            blas_int(ldb),
            beta,
            c,
            blas_int(n),
        );
    }
}

/// The matrix was not positive definite: pivot `pivot` was ≤ 0 (or not finite).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotPositiveDefinite {
    pub pivot: usize,
}

/// Cholesky factorisation A = L·Lᵀ of the symmetric n×n matrix `a` (row-major; only the
/// lower triangle is read), in place: the lower triangle becomes L, the upper is left as it
/// was. Right-looking blocked algorithm: per block column, an unblocked factorisation of the
/// diagonal block, `dtrsm` for the panel below it and `dsyrk` for the trailing matrix.
pub fn cholesky(a: &mut [f64], n: usize) -> Result<(), NotPositiveDefinite> {
    assert_eq!(a.len(), n * n, "cholesky: A must hold n·n floats");
    let mut panel = Vec::new();
    for j0 in (0..n).step_by(CHOLESKY_BLOCK) {
        let b = CHOLESKY_BLOCK.min(n - j0);
        cholesky_block(a, n, j0, b)?;
        let rest = n - j0 - b;
        if rest == 0 {
            break;
        }
        // The panel A21 (rows j0+b.., columns j0..j0+b), copied out: dsyrk reads it while
        // writing A22, which shares its rows.
        panel.clear();
        for r in j0 + b..n {
            panel.extend_from_slice(&a[r * n + j0..r * n + j0 + b]);
        }
        let (top, bottom) = a.split_at_mut((j0 + b) * n);
        let l11 = &top[j0 * n + j0..];
        // SAFETY: L11 is b×b with leading dimension n inside `top` (rows j0..j0+b, columns
        // j0..j0+b: the last element read is (b−1)·n + b−1 past its start, inside `top`);
        // the panel is rest×b with leading dimension b, exactly its length.
        unsafe {
            cblas::dtrsm(
                Layout::RowMajor,
                Side::Right,
                Part::Lower,
                Transpose::Ordinary,
                Diagonal::Generic,
                blas_int(rest),
                blas_int(b),
                1.0,
                l11,
                blas_int(n),
                &mut panel,
                blas_int(b),
            );
        }
        for (i, r) in (j0 + b..n).enumerate() {
            let row = (r - j0 - b) * n;
            bottom[row + j0..row + j0 + b].copy_from_slice(&panel[i * b..(i + 1) * b]);
        }
        let a22 = &mut bottom[j0 + b..];
        // SAFETY: A22 is rest×rest with leading dimension n starting at column j0+b of the
        // first bottom row: its last element is (rest−1)·n + rest−1 past that start, inside
        // `bottom` (whose rows are n long); the panel is rest×b, leading dimension b.
        unsafe {
            cblas::dsyrk(
                Layout::RowMajor,
                Part::Lower,
                Transpose::None,
                blas_int(rest),
                blas_int(b),
                -1.0,
                &panel,
                blas_int(b),
                1.0,
                a22,
                blas_int(n),
            );
        }
    }
    Ok(())
}

/// Unblocked Cholesky of the diagonal block at (j0, j0) of size b (leading dimension n).
fn cholesky_block(a: &mut [f64], n: usize, j0: usize, b: usize) -> Result<(), NotPositiveDefinite> {
    for j in j0..j0 + b {
        let mut pivot = a[j * n + j];
        for p in j0..j {
            pivot -= a[j * n + p] * a[j * n + p];
        }
        if pivot.is_nan() || pivot <= 0.0 {
            return Err(NotPositiveDefinite { pivot: j });
        }
        let l_jj = pivot.sqrt();
        a[j * n + j] = l_jj;
        for i in j + 1..j0 + b {
            let mut v = a[i * n + j];
            for p in j0..j {
                v -= a[i * n + p] * a[j * n + p];
            }
            a[i * n + j] = v / l_jj;
        }
    }
    Ok(())
}

/// The plain twin of [`cholesky`]: L[i][j] = (A[i][j] − Σ_{p<j} L[i][p]·L[j][p]) / L[j][j].
pub fn cholesky_reference(a: &mut [f64], n: usize) -> Result<(), NotPositiveDefinite> {
    assert_eq!(a.len(), n * n, "cholesky_reference: A must hold n·n floats");
    cholesky_block(a, n, 0, n)
}

/// Solves L·Lᵀ·x = b in place, L the lower triangle of `l` (n×n, row-major).
pub fn cholesky_solve(l: &[f64], n: usize, b: &mut [f64]) {
    assert_eq!(l.len(), n * n, "cholesky_solve: L must hold n·n floats");
    assert_eq!(b.len(), n, "cholesky_solve: b must hold n floats");
    for i in 0..n {
        let s: f64 = (0..i).map(|p| l[i * n + p] * b[p]).sum();
        b[i] = (b[i] - s) / l[i * n + i];
    }
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|p| l[p * n + i] * b[p]).sum();
        b[i] = (b[i] - s) / l[i * n + i];
    }
}

/// The minimiser of ‖·‖-regularised least squares in normal-equation form:
/// x = argmin xᵀHx − 2 rhsᵀx + λ‖x − anchor‖², i.e. (H + λI)·x = rhs + λ·anchor,
/// with λ = `ridge` · (mean diagonal of H). H (n×n, row-major, symmetric positive
/// semi-definite) is consumed as workspace. Unknowns that H does not constrain (zero rows,
/// e.g. codewords no sub-vector uses) stay at `anchor`. If rounding makes H + λI lose
/// definiteness, λ grows by [`RIDGE_GROWTH`] and the solve is retried.
/// The smallest relative ridge the solver takes: smaller values are raised to it (so
/// `EcParams::ridge` refuses them instead: a value is used as given or not at all).
pub const MIN_RIDGE: f64 = f64::EPSILON;

pub fn solve_ridge(mut h: Vec<f64>, n: usize, rhs: &[f64], anchor: &[f64], ridge: f64) -> Vec<f64> {
    assert_eq!(h.len(), n * n, "solve_ridge: H must hold n·n floats");
    assert_eq!(rhs.len(), n, "solve_ridge: rhs must hold n floats");
    assert_eq!(anchor.len(), n, "solve_ridge: anchor must hold n floats");
    let mean_diag = (0..n).map(|i| h[i * n + i]).sum::<f64>() / n.max(1) as f64;
    if mean_diag <= 0.0 || !mean_diag.is_finite() {
        return anchor.to_vec();
    }
    let original = h.clone();
    let mut lambda = ridge.max(MIN_RIDGE) * mean_diag;
    for _ in 0..=RIDGE_RETRIES {
        for i in 0..n {
            h[i * n + i] += lambda;
        }
        if cholesky(&mut h, n).is_ok() {
            let mut x: Vec<f64> = rhs
                .iter()
                .zip(anchor)
                .map(|(r, a)| r + lambda * a)
                .collect();
            cholesky_solve(&h, n, &mut x);
            return x;
        }
        h.copy_from_slice(&original);
        lambda *= RIDGE_GROWTH;
    }
    anchor.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Relative agreement of two f64 factorisations.
    const CHOLESKY_TOLERANCE: f64 = 1e-9;
    /// sgemm vs plain f64 loops, relative to the largest |value|.
    const GEMM_TOLERANCE: f32 = 1e-5;

    fn spd(n: usize, seed: &[f64]) -> Vec<f64> {
        // A = B·Bᵀ + n·I with B from the seed values.
        let b: Vec<f64> = (0..n * n)
            .map(|i| seed[i % seed.len()] + (i % 7) as f64 * 0.1)
            .collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|p| b[i * n + p] * b[j * n + p]).sum::<f64>();
            }
            a[i * n + i] += n as f64;
        }
        a
    }

    proptest! {
        #[test]
        fn blocked_cholesky_matches_its_twin(n in 1usize..150, seed in prop::collection::vec(-1.0f64..1.0, 1..32)) {
            let a = spd(n, &seed);
            let (mut fast, mut slow) = (a.clone(), a.clone());
            cholesky(&mut fast, n).unwrap();
            cholesky_reference(&mut slow, n).unwrap();
            let scale = slow.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for i in 0..n {
                for j in 0..=i {
                    let (x, y) = (fast[i * n + j], slow[i * n + j]);
                    prop_assert!((x - y).abs() <= CHOLESKY_TOLERANCE * scale, "({i},{j}) {x} vs {y}");
                }
            }
        }

        #[test]
        fn gemm_matches_plain_loops(m in 0usize..20, n in 0usize..20, k in 0usize..20, ta: bool, tb: bool) {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.3).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 13) as f32 - 6.0) * 0.2).collect();
            let mut c: Vec<f32> = (0..m * n).map(|i| i as f32 * 0.01).collect();
            let want: Vec<f32> = (0..m * n).map(|idx| {
                let (i, j) = (idx / n, idx % n);
                let s: f64 = (0..k).map(|p| {
                    let x = if ta { a[p * m + i] } else { a[i * k + p] };
                    let y = if tb { b[j * k + p] } else { b[p * n + j] };
                    f64::from(x) * f64::from(y)
                }).sum();
                (2.0 * s + 0.5 * f64::from(c[idx])) as f32
            }).collect();
            gemm(ta, tb, m, n, k, 2.0, &a, &b, 0.5, &mut c);
            let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            for (x, y) in c.iter().zip(&want) {
                prop_assert!((x - y).abs() <= GEMM_TOLERANCE * scale, "{x} vs {y}");
            }
        }
    }

    #[test]
    fn ridge_solve_keeps_unconstrained_unknowns_at_the_anchor() {
        // H constrains x0 only (x0 = 2); x1 has a zero row and stays at its anchor 7.
        let h = vec![4.0, 0.0, 0.0, 0.0];
        let x = solve_ridge(h, 2, &[8.0, 0.0], &[0.0, 7.0], 1e-9);
        assert!((x[0] - 2.0).abs() < 1e-6, "{x:?}");
        assert!((x[1] - 7.0).abs() < 1e-9, "{x:?}");
    }

    #[test]
    fn cholesky_rejects_an_indefinite_matrix() {
        let mut a = vec![1.0, 2.0, 2.0, 1.0];
        assert_eq!(cholesky(&mut a, 2), Err(NotPositiveDefinite { pivot: 1 }));
    }
}
