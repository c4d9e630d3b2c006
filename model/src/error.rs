//! Errors that name the file and the problem (FORMAT.md: "never trust a file").

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file exists but fails a check; `problem` says which.
    #[error("{}: {problem}", path.display())]
    Invalid { path: PathBuf, problem: String },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A model folder lacks a file it needs.
    #[error("{}: missing file {name} ({what})", dir.display())]
    Missing {
        dir: PathBuf,
        name: String,
        what: String,
    },
}

impl ModelError {
    pub fn invalid(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        ModelError::Invalid {
            path: path.as_ref().to_path_buf(),
            problem: problem.into(),
        }
    }
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
