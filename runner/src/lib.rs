//! The network runner: what every forward pass (dense, quantized, peers) offers the harness,
//! and the one layer loop the dense and the quantized networks share.
//!
//! - [`Network`], [`Observer`] and the observers every caller needs ([`NoObserver`],
//!   [`FiniteWatch`], [`LayerRecorder`]); [`Phase`] (from `qcnn_kernels`) names the steps
//!   inside a quantized layer.
//! - [`Pipeline`]: runs an architecture's layer list. It runs the non-weighted layers (ReLU,
//!   LRN, max pooling, dropout, softmax) with `qcnn_kernels::dense` and delegates conv and fc
//!   layers to [`WeightedOp`]s (dense: `qcnn-baselines`; look-ups: `qcnn-quantized`).

pub mod network;
pub mod pipeline;

pub use network::{FiniteWatch, LayerRecorder, Network, NoObserver, NonFinite, Observer, Phase};
pub use pipeline::{conv_shape, fc_shape, lrn_params, pool_shape, Pipeline, WeightedOp};
