//! Compute only: slices and small shape structs in, slices out. No files, clocks or CLI.
//!
//! - [`dense`]: the Caffe-style dense ops over BLAS, each with a reference twin.
//! - [`lut`]: the Q-CNN look-up-table kernels (scalar reference, AVX2, AVX-512).

pub mod blas;
pub mod dense;
pub mod isa;
pub mod lut;
pub mod shape;

pub use isa::{Isa, IsaError};
pub use lut::{LutError, Phase, PqSpec};
pub use shape::{ConvShape, FcShape};
