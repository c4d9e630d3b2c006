//! Dense Caffe-style ops: convolution (im2col + `sgemm` per group), fully connected
//! (`sgemv`, batch 1), ReLU, cross-channel LRN, max pooling and softmax.
//!
//! Compute only: slices and shape structs in, slices out. Every feature map is in Caffe's
//! (C, H, W) layout, one image. Scratch memory (the im2col matrix, LRN's running sums,
//! pooling's column maxima) lives in caller-owned structs, so a forward pass that reuses them
//! allocates nothing. LRN, the one non-BLAS op that costs real time, takes an [`crate::Isa`]
//! selecting the vector width its (safe, bit-identical) loops are compiled for.
//!
//! Each op has a plain twin in [`reference`] (direct loops that read like the formula), the
//! oracle of the tests. The twins accumulate in f64, so they are more accurate than any f32
//! summation order and the fast ops are compared against them with a relative tolerance.

pub mod activation;
pub mod conv;
pub mod fc;
pub mod lrn;
pub mod pool;
pub mod reference;

pub use activation::{relu, softmax};
pub use conv::{conv, ConvScratch};
pub use fc::fc;
pub use lrn::{lrn, lrn_kernel_name, LrnParams, LrnScratch};
pub use pool::{max_pool, pool_kernel_name, PoolScratch, PoolShape};

/// The name of the dense conv kernel, for results' provenance (STYLE.md 8).
pub const CONV_KERNEL: &str = "sgemm-openblas";
/// The name of the dense fc kernel.
pub const FC_KERNEL: &str = "sgemv-openblas";

/// BLAS takes `i32` sizes; every size this project uses is far below `i32::MAX`.
fn blas_int(n: usize) -> i32 {
    i32::try_from(n).expect("matrix dimension exceeds i32::MAX (BLAS limit)")
}
