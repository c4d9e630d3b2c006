//! Schedules of the int8-table conv and where each value lives (docs/KERNELS.md
//! "int8 conv"), sized from the target's caches like the f32 plans (`conv::plan`): a
//! whole-map table (i16, half the size of the f32 one) within [`WHOLE_TABLE_L2_SHARE`] of
//! L2 (1 MB: 512 KB, conv2's 254 KB table whole), else bands of [`DEFAULT_BAND_ROWS`] rows
//! and chunks within [`CHUNK_L2_SHARE`] (1 MB: 384 KB): whole phase planes, else codewords
//! of one plane.

use super::lookup;
use super::LANES;
use crate::lut::pad::PhasePlanes;
use crate::lut::schedule::ChunkGrid;
use crate::lut::PqSpec;
use crate::shape::ConvShape;
use crate::target::Target;

/// Share of L2 a whole-map i16 table may take.
const WHOLE_TABLE_L2_SHARE: f64 = 0.5;

/// Share of L2 a table chunk may take when the layer must be cut into bands and chunks.
const CHUNK_L2_SHARE: f64 = 0.375;

/// Output rows per band when the whole map's table does not fit (conv1: see the bench).
const DEFAULT_BAND_ROWS: usize = 11;

/// How the work is scheduled. Plans with the same [`ConvLutI8::q_range`] give bit-identical
/// outputs; the chunk (phase planes × codewords) sets the look-ups per pass, hence Q, so other
/// plans may differ within the error bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvI8Plan {
    /// R_b: output rows per band.
    pub band_rows: usize,
    /// K_c: codewords per table chunk.
    pub chunk_k: usize,
    /// P_c: phase planes per table chunk (strided layers; 1 plane for stride 1). A chunk
    /// covers P_c planes × K_c codewords.
    pub chunk_phases: usize,
    /// Rows padded to an aligned pitch ([`row_pitch`]), for the aligned look-ups of levels
    /// where a misaligned load costs two; else rows of W_t + (kw−1)/s positions.
    pub aligned_rows: bool,
}

/// Where each value lives, for one shape and plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub stride: usize,
    pub kernel: usize,
    pub pad: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub h_out: usize,
    pub w_out: usize,
    /// (kw − 1) / s: the largest row / column offset of a tap inside its phase plane.
    pub reach: usize,
    /// s².
    pub phases: usize,
    /// pw: positions per flattened plane row, W_t + reach rounded up to a power of two up to
    /// [`LANES`], a multiple of it beyond ([`row_pitch`]).
    pub pw: usize,
    /// J: tap lists per output channel and pass. Aligned rows: reach + 1, one per column
    /// offset j div s (and, in the aligned look-ups, one set of sums each); compact rows: 1
    /// (a tap's offset includes its column offset).
    pub shifts: usize,
    pub band_rows: usize,
    pub bands: usize,
    /// Plane rows one band reads: R_b + reach.
    pub band_plane_rows: usize,
    /// Rows of each padded plane: bands · R_b + reach.
    pub x_rows: usize,
    /// Floats per (channel, phase) plane of the padded input: x_rows·pw + slack.
    pub x_plane: usize,
    /// Qv: accumulator lanes per channel and band, R_b·pw rounded up to [`LANES`].
    pub out_lanes: usize,
    /// Positions a table row must hold: (R_b + reach)·pw.
    pub row_len: usize,
    /// Positions the table builder writes per row: row_len rounded up to [`LANES`].
    pub build_len: usize,
    /// i16 between consecutive table rows (a multiple of [`LANES`]).
    pub row_stride: usize,
    /// How the table is cut into chunks of P_c phase planes × K_c codewords ([`ChunkGrid`]).
    pub grid: ChunkGrid,
    /// `grid.count()`.
    pub chunks: usize,
    /// i16 of the table: P_c · K_c · row_stride, and a tail for the last row's reads.
    pub table_len: usize,
}

impl Geometry {
    /// The padded input's layout: (C_s, s², x_plane), rows of pw.
    pub(super) fn planes(&self) -> PhasePlanes {
        PhasePlanes {
            stride: self.stride,
            pad: self.pad,
            h_in: self.h_in,
            w_in: self.w_in,
            rows: self.x_rows,
            pitch: self.pw,
            plane_len: self.x_plane,
        }
    }

    pub(crate) fn new(shape: ConvShape, spec: PqSpec, plan: ConvI8Plan) -> Geometry {
        let s = shape.stride;
        let reach = (shape.kernel - 1) / s;
        let (h_out, w_out) = (shape.h_out(), shape.w_out());
        let pw = if plan.aligned_rows {
            row_pitch(w_out + reach)
        } else {
            w_out + reach
        };
        let band_rows = plan.band_rows.clamp(1, h_out);
        let bands = h_out.div_ceil(band_rows);
        let band_plane_rows = band_rows + reach;
        let x_rows = bands * band_rows + reach;
        let out_lanes = (band_rows * pw).next_multiple_of(LANES);
        let row_len = band_plane_rows * pw;
        let build_len = row_len.next_multiple_of(LANES);
        // Aligned rows: an odd number of 64-byte lines between table rows. The taps of one
        // output channel read rows of random codewords at the same position, which the
        // power-of-two strides aligned pitches make common would map to a few L1 sets.
        let mut row_stride = build_len;
        if plan.aligned_rows && (row_stride / LANES).is_multiple_of(2) {
            row_stride += LANES;
        }
        let grid = ChunkGrid::new(s * s, plan.chunk_phases, spec.k, plan.chunk_k);
        // A look-up reads out_lanes positions from a tap's offset ≤ reach·pw + reach: past
        // its row's end (those lanes only feed discarded outputs), and past the last row's
        // into the tail.
        let rows_len = grid.chunk_phases * grid.chunk_k * row_stride;
        let tail = (reach * pw + reach + out_lanes).saturating_sub(row_stride);
        Geometry {
            stride: s,
            kernel: shape.kernel,
            pad: shape.pad,
            h_in: shape.h_in,
            w_in: shape.w_in,
            h_out,
            w_out,
            reach,
            phases: s * s,
            pw,
            shifts: if plan.aligned_rows { reach + 1 } else { 1 },
            band_rows,
            bands,
            band_plane_rows,
            x_rows,
            // The builder reads up to build_len − 1 ≥ row_len + 31 positions from a band's
            // first row, the box sum up to reach·pw + reach past the band's lanes.
            x_plane: x_rows * pw + LANES + reach,
            out_lanes,
            row_len,
            build_len,
            row_stride,
            grid,
            chunks: grid.count(),
            table_len: rows_len + tail,
        }
    }

    /// Tap (i, j) reading codeword b: its chunk, its list's shift (< J) and its offset in
    /// the chunk's table for output lane 0 less the shift; it reads the table at offset +
    /// shift + q for output lane q. Aligned rows: the shift is the column offset j div s
    /// and the offset is its row's, a multiple of min(pw, [`LANES`]); compact rows: shift 0.
    pub(crate) fn tap(&self, i: usize, j: usize, b: usize) -> (usize, usize, usize) {
        let s = self.stride;
        let (chunk, plane, code) = self.grid.locate((i % s) * s + j % s, b);
        let row = (plane * self.grid.chunk_k + code) * self.row_stride + (i / s) * self.pw;
        if self.shifts > 1 {
            (chunk, j / s, row)
        } else {
            (chunk, 0, row + j / s)
        }
    }

    /// The positions of band `band`'s table rows in phase plane `phase` that can hold a
    /// nonzero entry: its plane rows of input pixels (padded row s·(r0 + y) + a in
    /// pad..pad + H_s, a = phase div s), widened to multiples of `granule` (a divisor of
    /// [`LANES`]: the builder's step) within build_len. Every other row is padding, whose
    /// entries are round(0) = 0: conv3-conv5 (pad 1) have 2 such plane rows of 15, conv2
    /// (pad 2) 4 of 31.
    pub(crate) fn data_span(
        &self,
        phase: usize,
        band: usize,
        granule: usize,
    ) -> std::ops::Range<usize> {
        debug_assert!(LANES.is_multiple_of(granule));
        let first = band * self.band_rows;
        let rows = self
            .planes()
            .rows_inside(phase / self.stride, first, self.band_plane_rows);
        if rows.is_empty() {
            return 0..0;
        }
        let end = (rows.end * self.pw)
            .next_multiple_of(granule)
            .min(self.build_len);
        (rows.start * self.pw / granule * granule)..end
    }

    /// Output rows of band `band`.
    pub fn rows(&self, band: usize) -> usize {
        self.band_rows.min(self.h_out - band * self.band_rows)
    }
}

/// The row pitch for rows of `min` positions: a power of two up to [`LANES`] (a vector
/// of any level holds whole rows, or a row whole vectors), else a multiple of [`LANES`]. Every
/// tap's row offset is then a multiple of min(pw, LANES), so the aligned look-ups
/// (`lookup.rs`) load whole vectors (or, for pw = 16 at AVX-512, half vectors) aligned and
/// shift by the tap's column offset within rows once per block.
fn row_pitch(min: usize) -> usize {
    if min <= LANES {
        min.next_power_of_two()
    } else {
        min.next_multiple_of(LANES)
    }
}

/// Fewest look-ups per output channel, pass and extra column offset for which the aligned
/// look-ups pay: their per-block shifts cost about as much as the split loads of 4 taps
/// (simulated AVX2: AlexNet's conv1 in chunks of 7 codewords, 3.3 taps per extra offset,
/// looked up 15 % slower aligned; conv3-5, 4.5, 10 % faster; see the bench).
const ALIGNED_MIN_TAPS_PER_SHIFT: usize = 4;

/// Fewest vectors per set of an aligned block: each tap's list entry (offset load, address,
/// loop) is paid per block, so blocks of 2 vectors (AVX2, conv2's 5 sets) doubled the
/// instructions for no time gained.
const ALIGNED_MIN_VECS: usize = 3;

/// The default plan for `target`: the whole map and every codeword if its table fits the
/// whole-table budget; otherwise bands of [`DEFAULT_BAND_ROWS`] rows and the largest codeword
/// chunk within the chunk budget. Aligned rows where the level's aligned look-ups apply with
/// blocks of [`ALIGNED_MIN_VECS`] and a pass has enough look-ups per column offset to pay
/// for the shifts.
pub fn default_plan(target: Target, shape: ConvShape, spec: PqSpec) -> ConvI8Plan {
    let plan = sized_plan(target, shape, spec, true);
    let geo = Geometry::new(shape, spec, plan);
    let block_vecs = if target.isa.is_available() {
        lookup::aligned_block_vecs_at(target.isa, geo.shifts, geo.pw)
    } else {
        0
    };
    let reach = geo.shifts - 1;
    let taps_per_pass = shape.kernel * shape.kernel * geo.grid.chunk_k * geo.grid.chunk_phases
        / (spec.k * geo.phases);
    if block_vecs < ALIGNED_MIN_VECS || taps_per_pass < ALIGNED_MIN_TAPS_PER_SHIFT * reach {
        sized_plan(target, shape, spec, false)
    } else {
        plan
    }
}

/// Bands and chunks for the given row layout (see [`default_plan`]).
fn sized_plan(target: Target, shape: ConvShape, spec: PqSpec, aligned_rows: bool) -> ConvI8Plan {
    let l2 = target.caches.sane().l2 as f64;
    let phases = shape.stride * shape.stride;
    let plan = |band_rows, chunk_k, chunk_phases| ConvI8Plan {
        band_rows,
        chunk_k,
        chunk_phases,
        aligned_rows,
    };
    let bytes = |p| Geometry::new(shape, spec, p).table_len * 2;
    let h_out = shape.h_out();
    if bytes(plan(h_out, spec.k, phases)) as f64 <= l2 * WHOLE_TABLE_L2_SHARE {
        return plan(h_out, spec.k, phases);
    }
    let band_rows = DEFAULT_BAND_ROWS.min(h_out);
    let fits = |p| bytes(p) as f64 <= l2 * CHUNK_L2_SHARE;
    // Whole phase planes with every codeword where one fits: a channel then has at most its
    // taps in those planes per pass whatever the assignments, so Q stays large and flushes
    // rare. Codeword chunks across planes make that count grow with K_c and with skewed
    // assignments (the authors' conv1 in chunks of 8 codewords of all 16 planes: up to 42,
    // Q = 780 and a flush after every pass; in single planes: 9, Q = 1820, a flush every
    // 2–3 passes).
    if let Some(chunk_phases) = (1..=phases)
        .rev()
        .find(|&p| fits(plan(band_rows, spec.k, p)))
    {
        return plan(band_rows, spec.k, chunk_phases);
    }
    let chunk_k = (1..=spec.k)
        .rev()
        .find(|&c| fits(plan(band_rows, c, 1)))
        .unwrap_or(1);
    plan(band_rows, chunk_k, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(h: usize, kernel: usize, stride: usize, pad: usize) -> ConvShape {
        ConvShape {
            c_in: 8,
            h_in: h,
            w_in: h,
            c_out: 4,
            kernel,
            stride,
            pad,
            groups: 1,
        }
    }

    /// Every plane row of input pixels lies inside the span, which is within build_len on
    /// the granule's grid; AlexNet's conv3 (pad 1, pw 16) skips its first and last rows.
    #[test]
    fn data_spans_cover_every_row_of_pixels() {
        let spec = PqSpec { d: 8, k: 4 };
        for (h, kernel, stride, pad, band_rows) in [
            (13, 3, 1, 1, 13),
            (27, 5, 1, 2, 27),
            (27, 5, 1, 2, 4),
            (227, 11, 4, 0, 11),
            (9, 3, 2, 2, 2),
            (5, 5, 3, 2, 1),
            (4, 3, 1, 2, 3),
        ] {
            for aligned_rows in [false, true] {
                let plan = ConvI8Plan {
                    band_rows,
                    chunk_k: 4,
                    chunk_phases: 1,
                    aligned_rows,
                };
                let g = Geometry::new(shape(h, kernel, stride, pad), spec, plan);
                for (band, phase, granule) in (0..g.bands)
                    .flat_map(|b| (0..g.phases).flat_map(move |p| [8, 16, 32].map(|gr| (b, p, gr))))
                {
                    let span = g.data_span(phase, band, granule);
                    assert!(span.end <= g.build_len && span.start <= span.end);
                    assert!(span.start.is_multiple_of(granule));
                    assert!(span.end.is_multiple_of(granule) || span.end == g.build_len);
                    let a = phase / stride;
                    for row in 0..g.band_plane_rows {
                        let padded = stride * (band * g.band_rows + row) + a;
                        if (pad..pad + h).contains(&padded) {
                            let rows = row * g.pw..(row + 1) * g.pw;
                            assert!(
                                span.start <= rows.start && rows.end <= span.end,
                                "h {h} k {kernel} s {stride} pad {pad} band {band} row {row}"
                            );
                        }
                    }
                }
            }
        }
        let conv3 = ConvI8Plan {
            band_rows: 13,
            chunk_k: 4,
            chunk_phases: 1,
            aligned_rows: true,
        };
        let g = Geometry::new(shape(13, 3, 1, 1), spec, conv3);
        assert_eq!((g.pw, g.build_len), (16, 256));
        assert_eq!(g.data_span(0, 0, 16), 16..224);
    }
}
