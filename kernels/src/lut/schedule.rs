//! What the two conv look-up families (exact f32 and int8 tables) share: the re-layout of
//! the assignments into per-channel tap lists, and the table-by-table schedule of a forward
//! pass (docs/KERNELS.md "conv: schedule").

use crate::lut::Phase;
use crate::shape::ConvShape;

/// Which table to build: output-row band, group, table of subspaces (one subspace, or a few
/// side by side, as the family's plan says) and chunk (of phase planes and codewords).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Source {
    pub band: usize,
    pub group: usize,
    /// The int8 family: the subspace. The f32 family: the table of subspaces
    /// table·S_p .. (its plan's S_p subspaces per table).
    pub table: usize,
    pub chunk: usize,
}

/// Re-lays (C_t, kh, kw, M) assignments as tap lists: for every group g and table t (the
/// subspaces t·per_table .. (t + 1)·per_table, fewer in the last), `lists` lists, each
/// holding table offsets in ascending order. `place(t_local, i, j, m_local, b)` names the
/// list (within the table) and the offset of output channel g·C_t/groups + t_local's tap
/// (i, j) in the table's subspace m_local, with index b. List l of (g, t) is
/// `taps[starts[(g·T + t)·lists + l] .. starts[(g·T + t)·lists + l + 1]]`, T = ceil(M /
/// per_table).
pub(crate) fn relay(
    shape: ConvShape,
    m_count: usize,
    per_table: usize,
    lists: usize,
    assignments: &[u8],
    place: impl Fn(usize, usize, usize, usize, usize) -> (usize, u32),
) -> (Vec<u32>, Vec<u32>) {
    let kk = shape.kernel;
    let ctg = shape.c_out_group();
    let tables = m_count.div_ceil(per_table);
    let mut starts = Vec::with_capacity(shape.groups * tables * lists + 1);
    let mut taps = Vec::with_capacity(assignments.len());
    starts.push(0u32);
    for g in 0..shape.groups {
        for table in 0..tables {
            let subspaces = table * per_table..((table + 1) * per_table).min(m_count);
            let mut entries = Vec::with_capacity(ctg * kk * kk * subspaces.len());
            for t_local in 0..ctg {
                let t = g * ctg + t_local;
                for i in 0..kk {
                    for j in 0..kk {
                        for m in subspaces.clone() {
                            let b = assignments[((t * kk + i) * kk + j) * m_count + m] as usize;
                            entries.push(place(t_local, i, j, m - subspaces.start, b));
                        }
                    }
                }
            }
            entries.sort_unstable();
            let mut next = entries.iter().peekable();
            for list in 0..lists {
                while let Some(&(_, offset)) = next.next_if(|e| e.0 == list) {
                    taps.push(offset);
                }
                starts.push(taps.len() as u32);
            }
        }
    }
    (starts, taps)
}

/// The steps of a conv forward pass, in the order [`run`] calls them.
pub(crate) trait Steps {
    /// Before the first table of group g in a band (int8: the band's offset box sums).
    fn group_start(&mut self, _band: usize, _group: usize) {}
    /// Builds one table (a chunk of one band's, for one group and table of subspaces).
    fn build(&mut self, src: Source);
    /// Adds that table's look-ups into the group's sums.
    fn lookups(&mut self, src: Source);
    /// Copies the band's outputs into y.
    fn band_end(&mut self, band: usize);
}

/// Band by band, group by group, table by table (`tables` per group: subspaces, or groups
/// of them), chunk by chunk: one table, then its look-ups. Reports `Phase::Table` after each
/// build and `Phase::Lookup` after each pass's look-ups (the band's last pass ends when its
/// outputs are written).
pub(crate) fn run(
    steps: &mut impl Steps,
    bands: usize,
    groups: usize,
    tables: usize,
    chunks: usize,
    phase: &mut dyn FnMut(Phase),
) {
    for band in 0..bands {
        for group in 0..groups {
            steps.group_start(band, group);
            for table in 0..tables {
                for chunk in 0..chunks {
                    let src = Source {
                        band,
                        group,
                        table,
                        chunk,
                    };
                    steps.build(src);
                    phase(Phase::Table);
                    steps.lookups(src);
                    let last = group + 1 == groups && table + 1 == tables && chunk + 1 == chunks;
                    if !last {
                        phase(Phase::Lookup);
                    }
                }
            }
        }
        steps.band_end(band);
        phase(Phase::Lookup);
    }
}

/// How both families cut a layer's table into chunks of P_c phase planes × K_c codewords:
/// chunk n covers planes (n / code_chunks)·P_c .. and codewords (n % code_chunks)·K_c ..,
/// code_chunks = ceil(K / K_c); inside a chunk, plane-major.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkGrid {
    /// s².
    pub phases: usize,
    pub chunk_phases: usize,
    pub k: usize,
    pub chunk_k: usize,
}

impl ChunkGrid {
    /// A plan's P_c and K_c, clamped to 1..=s² planes and 1..=K codewords.
    pub fn new(phases: usize, chunk_phases: usize, k: usize, chunk_k: usize) -> Self {
        ChunkGrid {
            phases,
            chunk_phases: chunk_phases.clamp(1, phases),
            k,
            chunk_k: chunk_k.clamp(1, k),
        }
    }

    fn code_chunks(&self) -> usize {
        self.k.div_ceil(self.chunk_k)
    }

    /// Chunks in all: ceil(s² / P_c) · ceil(K / K_c).
    pub fn count(&self) -> usize {
        self.phases.div_ceil(self.chunk_phases) * self.code_chunks()
    }

    /// Phase plane `phase`, codeword b: (its chunk, its plane within the chunk, its codeword
    /// within the chunk).
    pub fn locate(&self, phase: usize, b: usize) -> (usize, usize, usize) {
        let chunk = phase / self.chunk_phases * self.code_chunks() + b / self.chunk_k;
        (chunk, phase % self.chunk_phases, b % self.chunk_k)
    }

    /// The phase planes and the codewords of chunk `chunk`.
    pub fn span(&self, chunk: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let phase0 = chunk / self.code_chunks() * self.chunk_phases;
        let code0 = chunk % self.code_chunks() * self.chunk_k;
        (
            phase0..(phase0 + self.chunk_phases).min(self.phases),
            code0..(code0 + self.chunk_k).min(self.k),
        )
    }
}
