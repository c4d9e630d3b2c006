//! The dense AlexNet forward pass over BLAS: the baseline every speed-up is measured against.
//!
//! - [`DenseNetwork`]: `qcnn_runner::Pipeline` (the one layer loop shared by the dense and the
//!   quantized networks) with [`DenseConv`] (im2col + `sgemm`) and [`DenseFc`] (`sgemv`) ops,
//!   Caffe's algorithms over OpenBLAS.
//! - [`peers`]: other engines run on the same network, behind the same `Network` trait.

pub mod dense;
pub mod peers;
pub mod reference;

pub use dense::{DenseConv, DenseFc, DenseNetwork};
