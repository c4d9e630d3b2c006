//! Errors of report rendering: each names the file (or run folder) and what went wrong.

use std::path::{Path, PathBuf};

use qcnn_results::ResultsError;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A run folder could not be read or failed validation; the inner error names the file
    /// and, for CSV rows, the 1-based line.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// `--compare BASE NEW` could not be compared (unreadable, incomparable, bad option).
    #[error(transparent)]
    Compare(#[from] qcnn_results::compare::CompareError),
    /// An output file or folder could not be created or written.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A chart could not be drawn or encoded.
    #[error("{}: cannot draw the chart: {problem}", path.display())]
    Chart { path: PathBuf, problem: String },
    /// The output folder is a run folder or inside one; run folders are append-only.
    #[error(
        "{}: the report folder is inside the run folder {}: run folders are append-only, \
         choose another --out",
        out.display(),
        run.display()
    )]
    OutputInRun { out: PathBuf, run: PathBuf },
    /// `render` was given nothing to render.
    #[error("no run folders given: pass at least one results/runs/<run> folder")]
    NoRuns,
}

impl ReportError {
    pub(crate) fn io(path: &Path, action: &'static str, source: std::io::Error) -> Self {
        ReportError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    pub(crate) fn chart(path: &Path, problem: impl ToString) -> Self {
        ReportError::Chart {
            path: path.to_path_buf(),
            problem: problem.to_string(),
        }
    }
}

pub type Result<T, E = ReportError> = std::result::Result<T, E>;
