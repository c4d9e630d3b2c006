//! The Q-CNN look-up-table kernels (METHOD.md, KERNELS.md).
//!
//! Every layer runs in two phases: (1) a table of inner products of the input sub-vectors
//! with every codeword, (2) accumulation of looked-up table values into the outputs.
//! Each kernel family has a plain reference twin that follows the formula (the oracle).

pub mod conv;
pub mod fc;
pub mod int8;

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
