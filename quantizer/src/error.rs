//! Errors that say what is wrong and how to fix it (STYLE.md 13).

use qcnn_model::ModelError;

#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    /// A (d, K) setting that this layer cannot take.
    #[error("{layer}: d = {d}, K = {k}: {problem}")]
    Spec {
        layer: String,
        d: usize,
        k: usize,
        problem: String,
    },
    /// The calibration inputs are unusable (none, wrong size, unreadable).
    #[error("calibration inputs {source_name}: {problem}")]
    Calibration {
        source_name: String,
        problem: String,
    },
    /// The model or the request does not fit together (e.g. one spec per layer expected).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl QuantizeError {
    pub fn calibration(source: impl Into<String>, problem: impl Into<String>) -> Self {
        QuantizeError::Calibration {
            source_name: source.into(),
            problem: problem.into(),
        }
    }
}

pub type Result<T, E = QuantizeError> = std::result::Result<T, E>;
