//! The Q-CNN look-up-table kernels (docs/METHOD.md, docs/KERNELS.md).
//!
//! Every layer runs in two phases: (1) a table of inner products of the input sub-vectors
//! with every codeword, (2) accumulation of looked-up table values into the outputs.
//! Three families: exact f32 conv ([`conv`]), exact f32 fc ([`fc`]), int8-table conv
//! ([`int8`]). Each has a reference twin that follows the formula (the tests' oracle), a
//! scalar twin over its own layout (the fallback), and one vector body per phase, generic
//! over the ISA (`crate::simd`).

use crate::shape::{ConvShape, FcShape};

pub mod conv;
pub mod fc;
pub mod int8;
mod pad;
pub(crate) mod schedule;

/// Product-quantization settings of one layer as the kernels see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PqSpec {
    /// Dims per subspace.
    pub d: usize,
    /// Codewords per sub-codebook (2..=256: indices are bytes).
    pub k: usize,
}

impl PqSpec {
    /// M = ceil(channels / d).
    pub fn subspaces(&self, channels: usize) -> usize {
        channels.div_ceil(self.d)
    }
}

/// A phase inside a quantized layer, reported to the caller for the table-build vs look-up
/// split of the timings (the kernels never read clocks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Inner products of the input sub-vectors with every codeword.
    Table,
    /// Accumulating looked-up values into the outputs.
    Lookup,
}

/// Why a look-up layer could not be prepared. Checked once at construction, so the kernels'
/// `unsafe` code can rely on it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LutError {
    #[error("{what} has {got} elements, expected {want}")]
    Length {
        what: &'static str,
        got: usize,
        want: usize,
    },
    #[error("assignment {value} at position {position} is not below K = {k}")]
    IndexOutOfRange {
        position: usize,
        value: u8,
        k: usize,
    },
    #[error("unsupported quantization: {0}")]
    Spec(String),
}

/// Checks a buffer's length.
pub fn check_len(what: &'static str, got: usize, want: usize) -> Result<(), LutError> {
    if got == want {
        Ok(())
    } else {
        Err(LutError::Length { what, got, want })
    }
}

/// Checks every assignment against K: the invariant that lets kernels index tables unchecked.
pub fn check_indices(assignments: &[u8], k: usize) -> Result<(), LutError> {
    match assignments.iter().position(|&b| b as usize >= k) {
        None => Ok(()),
        Some(position) => Err(LutError::IndexOutOfRange {
            position,
            value: assignments[position],
            k,
        }),
    }
}

/// The checks every conv look-up family starts with: a supported (d, K) and a geometry
/// Caffe accepts.
pub fn check_conv_shape(shape: ConvShape, spec: PqSpec) -> Result<(), LutError> {
    check_spec(spec)?;
    if !shape.is_valid() {
        return Err(LutError::Spec(format!("invalid conv shape {shape:?}")));
    }
    Ok(())
}

/// The lengths of a conv layer's buffers and every index < K, after [`check_conv_shape`]:
/// centroids (M, K, d), assignments (C_t, kh, kw, M), bias (C_t). Returns M.
pub fn check_conv_buffers(
    shape: ConvShape,
    spec: PqSpec,
    centroids: &[f32],
    assignments: &[u8],
    bias: &[f32],
) -> Result<usize, LutError> {
    let m_count = spec.subspaces(shape.c_in_group());
    let taps = shape.kernel * shape.kernel;
    check_len(
        "centroids (M, K, d)",
        centroids.len(),
        m_count * spec.k * spec.d,
    )?;
    check_len(
        "assignments (C_t, kh, kw, M)",
        assignments.len(),
        shape.c_out * taps * m_count,
    )?;
    check_len("bias (C_t)", bias.len(), shape.c_out)?;
    check_indices(assignments, spec.k)?;
    Ok(m_count)
}

/// Everything an fc look-up family checks before re-laying its buffers: a supported
/// (d, K), centroids (M, K, d), assignments (C_t, M), bias (C_t), every index < K. Returns M.
pub fn check_fc(
    shape: FcShape,
    spec: PqSpec,
    centroids: &[f32],
    assignments: &[u8],
    bias: &[f32],
) -> Result<usize, LutError> {
    check_spec(spec)?;
    let m_count = spec.subspaces(shape.c_in);
    check_len(
        "centroids (M, K, d)",
        centroids.len(),
        m_count * spec.k * spec.d,
    )?;
    check_len(
        "assignments (C_t, M)",
        assignments.len(),
        shape.c_out * m_count,
    )?;
    check_len("bias (C_t)", bias.len(), shape.c_out)?;
    check_indices(assignments, spec.k)?;
    Ok(m_count)
}

/// Checks d and K are ones the kernels support.
pub fn check_spec(spec: PqSpec) -> Result<(), LutError> {
    if spec.d == 0 || !(1..=256).contains(&spec.k) {
        return Err(LutError::Spec(format!(
            "d = {}, K = {} (need d ≥ 1, 1 ≤ K ≤ 256)",
            spec.d, spec.k
        )));
    }
    Ok(())
}

/// Cache-line alignment of the scratch buffers: rows that start on a multiple of 64 bytes
/// are then whole cache lines (and whole AVX-512 vectors).
const ALIGN_BYTES: usize = 64;

/// A buffer whose usable part starts on a 64-byte boundary (recomputed on every access, so
/// clones and reallocations stay correct). New elements are `T::default()`.
#[derive(Clone, Debug, Default)]
pub(crate) struct AlignedBuf<T> {
    raw: Vec<T>,
}

impl<T: Copy + Default> AlignedBuf<T> {
    fn spare() -> usize {
        ALIGN_BYTES / std::mem::size_of::<T>()
    }

    /// Makes the usable part at least `len` elements.
    pub fn reserve(&mut self, len: usize) {
        if self.raw.len() < len + Self::spare() {
            self.raw.resize(len + Self::spare(), T::default());
        }
    }

    fn start(&self) -> usize {
        // An offset below ALIGN_BYTES / size_of::<T>() always exists for T's alignment; an
        // empty (never reserved) buffer has none.
        self.raw
            .as_ptr()
            .align_offset(ALIGN_BYTES)
            .min(Self::spare())
            .min(self.raw.len())
    }

    pub fn as_slice(&self) -> &[T] {
        &self.raw[self.start()..]
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        let start = self.start();
        &mut self.raw[start..]
    }
}
