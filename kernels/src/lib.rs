//! Compute only: slices and small shape structs in, slices out. No files, clocks or CLI.
//!
//! - [`dense`]: the Caffe-style dense ops over BLAS, each with a reference twin.
//! - [`lut`]: the Q-CNN look-up-table kernels (reference and scalar twins, one vector body
//!   per family over [`simd`]'s levels: AVX2, AVX-512, NEON).
//! - [`target`]: what a kernel is prepared for (ISA level and cache sizes).
//! - [`stream`]: buffers streamed once per image, on huge pages where the system allows.

pub mod blas;
pub mod dense;
pub mod isa;
pub mod lut;
pub mod shape;
pub(crate) mod simd;
pub mod stream;
pub mod target;

pub use isa::{Isa, IsaError};
pub use lut::{LutError, Phase, PqSpec};
pub use shape::{ConvShape, FcShape};
pub use target::{CacheSizes, Target};
