//! "fc-lut-f32-scalar": the look-up loop of the authors' code (one look-up and one add per
//! step), over the same table and re-laid indices as the SIMD kernels, with safe indexing.

use super::{store_tiles, FcLut, TILE};

/// T[m][k] = Σ_j x[m·d + j] · D^T[m][j][k] for every row m of the table (G·P, Kp); rows
/// m ≥ M are zero.
pub(super) fn build_table(lut: &FcLut, x: &[f32], table: &mut [f32]) {
    let (d, kp) = (lut.spec.d, lut.k_pitch);
    for (m, row) in table.chunks_exact_mut(kp).enumerate() {
        row.fill(0.0);
        if m >= lut.subspaces {
            continue;
        }
        for j in 0..lut.dims(m) {
            let xj = x[m * d + j];
            let column = &lut.codebooks_t[(m * d + j) * kp..(m * d + j + 1) * kp];
            for (t, w) in row.iter_mut().zip(column) {
                *t += xj * w;
            }
        }
    }
}

/// y_t = bias_t + Σ_m T[m][b_t^(m)], tile by tile.
pub(super) fn lookups(lut: &FcLut, table: &[f32], y: &mut [f32]) {
    let (kp, bits, mask) = (lut.k_pitch, lut.packing.bits, lut.packing.mask());
    let per_word = lut.packing.per_word();
    for (t0, n) in lut.blocks() {
        let base = lut.block_offset(t0);
        for a in 0..n {
            let tile = t0 + a;
            let mut acc = [0.0f32; TILE];
            acc.copy_from_slice(&lut.bias[tile * TILE..(tile + 1) * TILE]);
            for g in 0..lut.groups {
                let words = &lut.words[base + (g * n + a) * TILE..][..TILE];
                for (out, &word) in acc.iter_mut().zip(words) {
                    for j in 0..per_word {
                        let b = (word >> (j as u32 * bits)) & mask;
                        *out += table[(g * per_word + j) * kp + b as usize];
                    }
                }
            }
            store_tiles(y, tile, &acc);
        }
    }
}
