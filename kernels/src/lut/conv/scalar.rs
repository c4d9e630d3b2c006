//! Phase 2 in plain Rust: the same table and tap lists as the SIMD kernels, one output at a
//! time, safe indexing. The fallback where no vector ISA is available.

use super::Pass;

/// For every output channel of the group and band row r: acc[r][c] (+)= Σ_taps
/// T[tap + r·row_stride + shift + c] over the W_t valid columns.
pub(super) fn run_pass(pass: &mut Pass) {
    for t_local in 0..pass.channels() {
        for r in 0..pass.rows {
            let row_start = pass.acc_offset(r, t_local);
            if pass.first {
                pass.acc[row_start..row_start + pass.cols].fill(pass.bias[t_local]);
            }
            for shift in 0..pass.shifts {
                let list = t_local * pass.shifts + shift;
                let taps = &pass.taps[pass.starts[list] as usize..pass.starts[list + 1] as usize];
                for &tap in taps {
                    let src_start = tap as usize + r * pass.row_stride + shift;
                    let src = &pass.table[src_start..src_start + pass.cols];
                    let row = &mut pass.acc[row_start..row_start + pass.cols];
                    for (a, v) in row.iter_mut().zip(src) {
                        *a += v;
                    }
                }
            }
        }
    }
}
