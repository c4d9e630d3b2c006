//! Schedules of the f32 look-up conv, sized from the target's caches (docs/KERNELS.md
//! "Plans from the machine").
//!
//! Two reuse levels decide the speed: the table a pass reads (every output channel of the
//! group reads all of it, in blocks of output rows) should stay in L2, and the few table
//! rows one register block reads should stay in L1 while every channel reads them.
//! - Whole-map table: at most [`WHOLE_TABLE_L2_SHARE`] of L2 (the rest holds the
//!   accumulators, the tap lists and the input). On a 1 MB L2 that is 614 KB: conv2's table
//!   (508 KB per subspace) is built once per subspace; on a 512 KB L2 (307 KB) conv2 is cut
//!   into two bands of rows.
//! - Chunks (when even a band of the fewest useful rows is too large, conv1): at most
//!   [`CHUNK_L2_SHARE`] of L2 (1 MB: 460 KB, measured best for conv1 on Zen 5) and at most
//!   [`CHUNK_MAX_BYTES`]; the band then grows as tall as the chunk's planes still fit, so
//!   that fewer of its rows are computed twice.
//! - Register block rows: the block's table rows ((rows + reach) × K_c × pitch floats)
//!   within L1d, between 3 and 6 rows (conv3 on a 48 KB L1d: 4 rows read a 48 KB slice;
//!   measured flat from 3 to 6 rows).

use super::Geometry;
use crate::lut::PqSpec;
use crate::shape::ConvShape;
use crate::target::Target;

/// How the work is scheduled; any plan computes the same function (up to summation order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvPlan {
    /// R_b: output rows per table band (H_t: one table covers the whole map).
    pub band_rows: usize,
    /// K_c: codewords per table chunk (K: every codeword at once).
    pub chunk_k: usize,
    /// P_c: phase planes per table chunk (s²: all at once). Chunks are P_c planes × K_c
    /// codewords.
    pub chunk_phases: usize,
    /// Most output rows per register block of the look-ups (the ISA's register count may
    /// cap it lower). Fewer rows keep the rows of the table they read in L1 across channels.
    pub block_rows: usize,
    /// S_p: subspaces per table, side by side. A pass then adds S_p·kh·kw taps per channel
    /// between loading and storing its sums instead of kh·kw (a 3×3 conv's 9 taps are too
    /// few to hide that round trip, see [`default_plan`]).
    pub table_subspaces: usize,
}

/// Share of L2 a whole-map (or band) table may take.
const WHOLE_TABLE_L2_SHARE: f64 = 0.6;
/// Share of L2 a table chunk may take.
const CHUNK_L2_SHARE: f64 = 0.45;
/// Largest table chunk, whatever the L2: 640 KB of rows and their slack (not the 672 KB of 3
/// conv1 planes). On the 2 MB L2 of the Xeon (Sapphire Rapids-class), conv1's 2-plane chunks
/// of 8-row bands (640 KB) took 6-9 % less time at AVX-512 than the 4-plane chunks of 5-row
/// bands (896 KB) that 0.45·L2 allows, and than 2-plane chunks of 12-row bands (896 KB): a
/// channel's 15 taps per pass amortize its sums' round trip as well as 30 do, and a larger
/// chunk loses more of its rows from L2 between the channels that read them.
const CHUNK_MAX_BYTES: usize = 656 << 10;
/// Register block rows: the range the L1 rule may pick from.
const BLOCK_ROWS: std::ops::RangeInclusive<usize> = 3..=6;
/// Most subspaces per whole-map table.
const MAX_TABLE_SUBSPACES: usize = 2;
/// Kernels of at most this many taps get several subspaces per table. More taps already hide
/// the sums' round trip: two of AlexNet conv2's (5×5) tables per pass made its look-ups
/// 5-10 % slower.
const FEW_TAPS: usize = 9;

/// The default plan for `target`: one table for the whole map and every codeword when it
/// fits the whole-table budget, with as many subspaces side by side as still fit (see
/// [`table_subspaces`]); otherwise bands of rows (the tallest whose whole table fits, at
/// least 2·(kh−1)/s + 1 rows so that at most about half the rows are computed twice) and, if
/// even those do not fit, chunks within the chunk budget: of phase planes with every
/// codeword (predictable tap lists, see the module docs of `conv`) when one plane fits, as
/// many planes as fit a band of that minimum height, in the tallest band that still fits;
/// else of codewords.
pub fn default_plan(target: Target, shape: ConvShape, spec: PqSpec) -> ConvPlan {
    let caches = target.caches.sane();
    let whole_budget = (caches.l2 as f64 * WHOLE_TABLE_L2_SHARE) as usize;
    let chunk_budget = ((caches.l2 as f64 * CHUNK_L2_SHARE) as usize).min(CHUNK_MAX_BYTES);
    let phases = shape.stride * shape.stride;
    let plan = |band_rows, chunk_k, chunk_phases| ConvPlan {
        band_rows,
        chunk_k,
        chunk_phases,
        block_rows: block_rows(caches.l1d, shape, spec, chunk_k),
        table_subspaces: 1,
    };
    let bytes = |p: ConvPlan| Geometry::new(shape, spec, p).table_len * 4;
    let h_out = shape.h_out();
    let reach = (shape.kernel - 1) / shape.stride;
    let min_band = (2 * reach + 1).min(h_out);
    // The tallest band of at least min_band rows whose table of P_c planes fits `budget`.
    let tallest_band = |chunk_phases, budget| {
        (min_band..=h_out)
            .rev()
            .find(|&band| bytes(plan(band, spec.k, chunk_phases)) <= budget)
    };
    if let Some(band_rows) = tallest_band(phases, whole_budget) {
        let one = plan(band_rows, spec.k, phases);
        if band_rows < h_out {
            return one;
        }
        return ConvPlan {
            table_subspaces: table_subspaces(shape, spec, bytes(one), whole_budget),
            ..one
        };
    }
    if let Some(chunk_phases) = (1..=phases)
        .rev()
        .find(|&p| bytes(plan(min_band, spec.k, p)) <= chunk_budget)
    {
        let band_rows = tallest_band(chunk_phases, chunk_budget).unwrap_or(min_band);
        return plan(band_rows, spec.k, chunk_phases);
    }
    let chunk_k = (1..=spec.k)
        .rev()
        .find(|&c| bytes(plan(min_band, c, 1)) <= chunk_budget)
        .unwrap_or(1);
    plan(min_band, chunk_k, 1)
}

/// S_p for a whole-map table of `table_bytes` per subspace: as many subspaces side by side
/// as fit `budget`, at most [`MAX_TABLE_SUBSPACES`], for kernels of at most [`FEW_TAPS`]
/// taps; else 1.
///
/// Measured on AlexNet's conv3-conv5 (Xeon SPR, f32 tables): the look-ups of 2 subspaces per
/// table take 14 % (AVX2) and 9 % (AVX-512) less time than one; 4 gain no more on AVX2 and
/// lose on AVX-512 (the register block's table rows no longer stay in L1). The int8 tables
/// keep one subspace per table: two made their look-ups 5-9 % slower on both levels.
fn table_subspaces(shape: ConvShape, spec: PqSpec, table_bytes: usize, budget: usize) -> usize {
    if shape.kernel * shape.kernel > FEW_TAPS {
        return 1;
    }
    let m_count = spec.subspaces(shape.c_in_group());
    (1..=MAX_TABLE_SUBSPACES.min(m_count))
        .rev()
        .find(|&s| s * table_bytes <= budget)
        .unwrap_or(1)
}

/// The most register-block rows whose table rows ((rows + reach) × K_c rows of one pitch)
/// fit L1d, within [`BLOCK_ROWS`].
fn block_rows(l1d: usize, shape: ConvShape, spec: PqSpec, chunk_k: usize) -> usize {
    let reach = (shape.kernel - 1) / shape.stride;
    let pitch_bytes = Geometry::new(
        shape,
        spec,
        ConvPlan {
            band_rows: 1,
            chunk_k,
            chunk_phases: 1,
            block_rows: 1,
            table_subspaces: 1,
        },
    )
    .pitch
        * 4;
    let rows = (l1d / (chunk_k * pitch_bytes)).saturating_sub(reach);
    rows.clamp(*BLOCK_ROWS.start(), *BLOCK_ROWS.end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::Isa;
    use crate::target::CacheSizes;

    const SPEC: PqSpec = PqSpec { d: 8, k: 128 };

    fn shape(
        c_in: usize,
        h: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
        groups: usize,
    ) -> ConvShape {
        ConvShape {
            c_in,
            h_in: h,
            w_in: h,
            c_out,
            kernel,
            stride,
            pad,
            groups,
        }
    }

    /// AlexNet's layers the tests plan for.
    fn conv1() -> ConvShape {
        shape(3, 227, 96, 11, 4, 0, 1)
    }
    fn conv2() -> ConvShape {
        shape(96, 27, 256, 5, 1, 2, 2)
    }
    fn conv3() -> ConvShape {
        shape(256, 13, 384, 3, 1, 1, 1)
    }

    fn target(l1d: usize, l2: usize) -> Target {
        Target::new(
            Isa::Scalar,
            CacheSizes {
                l1d,
                l2,
                l3: 32 << 20,
            },
        )
    }

    #[test]
    fn plans_follow_the_l2_size() {
        let conv2 = conv2();
        let conv1 = conv1();
        // 1 MB L2: conv2 whole (508 KB), conv1 in 2-plane chunks of 5-row bands.
        let big = target(48 << 10, 1 << 20);
        assert_eq!(default_plan(big, conv2, SPEC).band_rows, 27);
        let p = default_plan(big, conv1, SPEC);
        assert_eq!((p.band_rows, p.chunk_k, p.chunk_phases), (5, 128, 2));
        // 512 KB L2: conv2's table no longer fits whole; conv1's chunks shrink.
        let small = target(32 << 10, 512 << 10);
        let p = default_plan(small, conv2, SPEC);
        assert!(p.band_rows < 27, "{p:?}");
        assert!(Geometry::new(conv2, SPEC, p).table_len * 4 <= (512 << 10) * 6 / 10);
        let p = default_plan(small, conv1, SPEC);
        assert!(p.chunk_phases * p.chunk_k < 2 * 128, "{p:?}");
        // 2 MB L2: the chunk stays within CHUNK_MAX_BYTES (2 planes, not 4), and the band
        // grows to the 8 rows whose 10 table rows per plane still fit.
        let p = default_plan(target(48 << 10, 2 << 20), conv1, SPEC);
        assert_eq!((p.band_rows, p.chunk_k, p.chunk_phases), (8, 128, 2));
    }

    #[test]
    fn small_kernels_get_two_subspaces_per_table_when_both_fit() {
        let conv3 = conv3();
        let conv2 = conv2();
        let big = target(48 << 10, 2 << 20);
        assert_eq!(default_plan(big, conv3, SPEC).table_subspaces, 2);
        // conv2's two tables would fit 0.6 · 2 MB, but its 25 taps need no help.
        assert_eq!(default_plan(big, conv2, SPEC).table_subspaces, 1);
        // conv3's table is 123 KB: two fit 0.6 · 512 KB, not 0.6 · 256 KB.
        let small = |l2| default_plan(target(32 << 10, l2), conv3, SPEC).table_subspaces;
        assert_eq!((small(512 << 10), small(256 << 10)), (2, 1));
        // A single subspace cannot be doubled.
        let one = shape(8, 13, 16, 3, 1, 1, 1);
        assert_eq!(default_plan(big, one, SPEC).table_subspaces, 1);
    }

    #[test]
    fn block_rows_follow_the_l1_size() {
        let conv3 = conv3();
        assert_eq!(
            default_plan(target(48 << 10, 1 << 20), conv3, SPEC).block_rows,
            4
        );
        assert_eq!(
            default_plan(target(32 << 10, 1 << 20), conv3, SPEC).block_rows,
            3
        );
        assert_eq!(
            default_plan(target(128 << 10, 1 << 20), conv3, SPEC).block_rows,
            6
        );
    }
}
