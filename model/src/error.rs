//! Errors that name the file and the problem (FORMAT.md: "never trust a file").

use std::path::{Path, PathBuf};

pub use qcnn_files::FileError;

/// Every variant's message is complete on its own (path, problem, OS message once): none
/// exposes a `source()` that an error chain would print a second time.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file exists but fails a check; `problem` says which.
    #[error("{}: {problem}", path.display())]
    Invalid { path: PathBuf, problem: String },
    /// A file could not be opened, read or written, or is not a regular file.
    #[error(transparent)]
    File(#[from] FileError),
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

    /// `action` ("read", "write", "list") failed on `path` with the OS error `error`.
    pub fn io(path: impl AsRef<Path>, action: &'static str, error: std::io::Error) -> Self {
        ModelError::File(FileError::io(path, action, error))
    }
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
