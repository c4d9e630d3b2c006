//! Errors that name the file (and the 1-based line of a CSV row) and say what is wrong.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// A file or folder could not be created, read, written or synced. (`error` is shown in
    /// the message and not exposed as `source()`, so an error chain prints it once.)
    #[error("{}: cannot {action}: {error}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        error: std::io::Error,
    },
    /// A CSV row (or its header, line 1) is malformed or inconsistent with the run.
    #[error("{}, line {line}: {problem}", path.display())]
    Row {
        path: PathBuf,
        line: u64,
        problem: String,
    },
    /// A file as a whole is malformed, foreign or inconsistent with the rest of the run.
    #[error("{}: {problem}", path.display())]
    Invalid { path: PathBuf, problem: String },
    /// The harness handed the writer data that would make the run folder inconsistent;
    /// `path` is the run folder.
    #[error("{}: refused to record: {problem}", path.display())]
    Rejected { path: PathBuf, problem: String },
    /// A file is not a regular file, or larger than its role allows.
    #[error(transparent)]
    File(#[from] qcnn_files::FileError),
}

impl ResultsError {
    pub(crate) fn io(path: impl AsRef<Path>, action: &'static str, error: std::io::Error) -> Self {
        ResultsError::Io {
            path: path.as_ref().to_path_buf(),
            action,
            error,
        }
    }

    pub(crate) fn row(path: impl AsRef<Path>, line: u64, problem: impl Into<String>) -> Self {
        ResultsError::Row {
            path: path.as_ref().to_path_buf(),
            line,
            problem: problem.into(),
        }
    }

    pub(crate) fn invalid(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        ResultsError::Invalid {
            path: path.as_ref().to_path_buf(),
            problem: problem.into(),
        }
    }

    pub(crate) fn rejected(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        ResultsError::Rejected {
            path: path.as_ref().to_path_buf(),
            problem: problem.into(),
        }
    }
}

pub type Result<T, E = ResultsError> = std::result::Result<T, E>;
