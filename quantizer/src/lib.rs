//! The Q-CNN training phase (METHOD.md "Training phase"): learning codebooks and assignments
//! from dense weights, so that any dense model (or the authors' model, rebuilt dense) can be
//! quantized at any (d, K) and written in the authors' format.
//!
//! - [`kmeans`]: k-means++ / Lloyd over the weight sub-vectors of one subspace (plain PQ),
//!   BLAS distances with a plain twin.
//! - [`ec`]: error correction: least-squares codebook updates and exhaustive assignment
//!   updates that minimise a layer's response error on calibration inputs; plain twins in
//!   [`ec::reference`].
//! - [`quantize`]: one layer ([`quantize_layer`]) or a whole model ([`quantize_model`]), layer
//!   by layer, the quantized network's maps feeding the next layer.
//! - [`calib`]: calibration images (BMP folder, the authors' data file, synthetic).
//! - [`spec`]: (d, K) per layer and the checks that reject impossible settings.
//! - [`linalg`]: `sgemm` wrappers and a ridge-regularised Cholesky solver.
//!
//! Glossary: C_s, C_t input and output channels; d dims per subspace; K codewords per
//! sub-codebook; M = ceil(C_s/groups / d) subspaces (C_s / d for fc); kh·kw kernel taps;
//! a *sub-vector* is the d weights of one output channel, tap and subspace; *response* is a
//! layer's output (before its ReLU) on calibration inputs.

pub mod calib;
pub mod ec;
pub mod error;
pub mod kmeans;
pub mod linalg;
pub mod quantize;
pub mod spec;
pub mod split;

pub use calib::Calibration;
pub use ec::{EcParams, EcProblem};
pub use error::{QuantizeError, Result};
pub use kmeans::KMeansParams;
pub use quantize::{
    dense_inputs, layer_outputs, layer_response_error, pq_codebooks, quantize_layer,
    quantize_model, response_errors, LayerInputs, LayerOutcome, LayerReport, Method, NoProgress,
    Progress, QuantizedModel, Settings,
};
pub use spec::{check_spec, layer_specs, parse_spec, MAX_CODEWORDS};
