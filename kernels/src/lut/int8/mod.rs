//! Approximate look-up kernels with integer tables (KERNELS.md "Layout 3"): a separate,
//! clearly labelled kernel family ("*-lut-i8-*"). Results differ from the exact f32 kernels
//! by the table quantization; the error bound is documented on each kernel and measured by
//! the tests and benches.
//!
//! Quantization, per layer and image: one scale s and offsets o such that every table entry
//! is `T ≈ o + s·q` with an integer q in [−Q, Q] (conv: Q per layer, 270–1820 for AlexNet, see
//! [`conv::flush_schedule`]'s doc; fc: Q = 127). Offsets do not depend on the output
//! channel, so their sum over the look-ups of an output is computed once per output position
//! and added at the end: `y = (bias + Σo) + s·Σq`. The integer sums Σq are exact (no
//! overflow by construction), so every ISA's kernel returns bit-identical results: the
//! scalar twin is the oracle of the SIMD kernels, and the exact f32 reference bounds the
//! approximation error: `|y − y_exact| ≤ n·s/2 + f32 slack` for n look-ups per output.
//!
//! - [`conv`]: tables stored as i16 holding q, accumulated in i16 lanes (32 per AVX-512
//!   register) and flushed to i32 before an overflow is possible.
//! - [`fc`]: tables stored as i8, looked up with byte permutes (`vpermi2b`: a 128-byte
//!   table in two registers, 64 look-ups per instruction) and summed 4 subspaces at a time
//!   into i32 lanes with `vpdpbusd` (VNNI).
//!
//! Only the scalar and AVX-512 levels have int8 kernels; `supports(Isa::Avx2)` is false.

pub mod conv;
#[cfg(target_arch = "x86_64")]
mod conv_avx512;
pub mod fc;
#[cfg(target_arch = "x86_64")]
mod fc_avx512;

pub use conv::{ConvI8Plan, ConvI8Scratch, ConvLutI8};
pub use fc::{FcI8Scratch, FcLutI8};

use crate::isa::Isa;

/// Largest |q| of a quantized fc table entry (i8).
pub const Q_MAX: f32 = 127.0;

/// Whether the CPU can run this family's kernels at `isa`: AVX-512 needs VNNI for the fc
/// kernel on top of the project's AVX-512 level (F/BW/VL/VBMI).
pub(crate) fn isa_supported(isa: Isa) -> bool {
    match isa {
        Isa::Scalar => true,
        Isa::Avx2 => false,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512vnni"),
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx512 => false,
    }
}

/// A buffer whose usable part starts on a 64-byte boundary (recomputed on every access, so
/// clones and reallocations stay correct). New elements are `T::default()`.
#[derive(Clone, Debug, Default)]
pub(crate) struct AlignedBuf<T> {
    raw: Vec<T>,
}

impl<T: Copy + Default> AlignedBuf<T> {
    const ALIGN: usize = 64;

    fn spare() -> usize {
        Self::ALIGN / std::mem::size_of::<T>()
    }

    /// Makes the usable part at least `len` elements.
    pub fn reserve(&mut self, len: usize) {
        if self.raw.len() < len + Self::spare() {
            self.raw.resize(len + Self::spare(), T::default());
        }
    }

    fn start(&self) -> usize {
        self.raw
            .as_ptr()
            .align_offset(Self::ALIGN)
            .min(Self::spare())
    }

    pub fn as_slice(&self) -> &[T] {
        &self.raw[self.start()..]
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        let start = self.start();
        &mut self.raw[start..]
    }
}
