//! The dense AlexNet forward pass over BLAS: the baseline every speed-up is measured against.
//!
//! - [`Pipeline`]: the one layer loop shared by the dense and the quantized networks. It runs
//!   the non-weighted layers (ReLU, LRN, max pooling, dropout, softmax) with
//!   `qcnn_kernels::dense` and delegates conv and fc layers to [`WeightedOp`]s.
//! - [`DenseNetwork`]: the pipeline with [`DenseConv`] (im2col + `sgemm`) and [`DenseFc`]
//!   (`sgemv`) ops, Caffe's algorithms over OpenBLAS.

pub mod dense;
pub mod peers;
pub mod pipeline;
pub mod reference;

pub use dense::{DenseConv, DenseFc, DenseNetwork};
pub use pipeline::{conv_shape, fc_shape, lrn_params, pool_shape, Pipeline, WeightedOp};
