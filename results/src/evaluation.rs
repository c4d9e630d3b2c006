//! The files of a `qcnn evaluate` run, beside its raw rows: `predictions.csv`, every image's
//! top-5 classes per mode (appended and synced as the run goes, so a long run interrupted
//! keeps what it classified), and `evaluation.csv`, one row per mode (written atomically at
//! the end): top-1/top-5 accuracy over the labelled set, agreement with the dense network's
//! top-1, and how many images the mode changed against dense (and which way).

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::check::Unique;
use crate::error::{Result, ResultsError};
use crate::fsio::{append_synced, atomic_write, create_csv, encode_rows};
use crate::reader::read_csv;
use crate::rows::check_name;

/// `evaluation.csv` file name inside a run folder.
pub const EVALUATION_FILE: &str = "evaluation.csv";
/// `predictions.csv` file name inside a run folder.
pub const PREDICTIONS_FILE: &str = "predictions.csv";

/// Header of `evaluation.csv`, in the order of [`EvaluationRow`]'s fields.
pub const EVALUATION_COLUMNS: [&str; 10] = [
    "mode",
    "images",
    "top1_correct",
    "top5_correct",
    "top1_accuracy",
    "top5_accuracy",
    "same_top1_as_dense",
    "changed_vs_dense",
    "fixed_vs_dense",
    "broken_vs_dense",
];

/// Header of `predictions.csv`, in the order of [`PredictionRow`]'s fields.
pub const PREDICTION_COLUMNS: [&str; 10] = [
    "image", "name", "label", "mode", "top1", "top2", "top3", "top4", "top5", "ms",
];

/// One mode over the whole labelled set. Field order is column order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRow {
    pub mode: String,
    /// Images classified.
    pub images: u32,
    /// Images whose label is the top-1 class.
    pub top1_correct: u32,
    /// Images whose label is among the top-5 classes.
    pub top5_correct: u32,
    /// `top1_correct / images`.
    pub top1_accuracy: f64,
    /// `top5_correct / images`.
    pub top5_accuracy: f64,
    /// Images whose top-1 class is the dense network's (all of them for `dense`).
    pub same_top1_as_dense: u32,
    /// Images whose top-1 class differs from the dense network's: `images − same`.
    pub changed_vs_dense: u32,
    /// Changed images this mode gets right and dense gets wrong (top-1).
    pub fixed_vs_dense: u32,
    /// Changed images dense gets right and this mode gets wrong (top-1).
    pub broken_vs_dense: u32,
}

impl EvaluationRow {
    /// Checks that need no other row; the problem names the column.
    pub fn check(&self) -> Result<(), String> {
        check_name("mode", &self.mode)?;
        let n = self.images;
        if n == 0 {
            return Err("column `images`: must be at least 1".into());
        }
        if self.top1_correct > self.top5_correct || self.top5_correct > n {
            return Err(format!(
                "columns `top1_correct`, `top5_correct`: need top1 ≤ top5 ≤ images, got {}, {}, {n}",
                self.top1_correct, self.top5_correct
            ));
        }
        for (column, count, acc) in [
            ("top1_accuracy", self.top1_correct, self.top1_accuracy),
            ("top5_accuracy", self.top5_correct, self.top5_accuracy),
        ] {
            let want = f64::from(count) / f64::from(n);
            if (acc - want).abs() > 1e-9 {
                return Err(format!("column `{column}`: {acc} is not {count} / {n}"));
            }
        }
        if self.same_top1_as_dense + self.changed_vs_dense != n {
            return Err(format!(
                "columns `same_top1_as_dense` + `changed_vs_dense` = {} + {}, not images = {n}",
                self.same_top1_as_dense, self.changed_vs_dense
            ));
        }
        if self.fixed_vs_dense + self.broken_vs_dense > self.changed_vs_dense {
            return Err(
                "columns `fixed_vs_dense` + `broken_vs_dense` exceed `changed_vs_dense`".into(),
            );
        }
        Ok(())
    }
}

/// One image classified by one mode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionRow {
    /// 0-based index in the evaluated set.
    pub image: u32,
    /// The image's file name (or `<data file>#<index>`).
    pub name: String,
    pub label: u32,
    pub mode: String,
    pub top1: u32,
    pub top2: u32,
    pub top3: u32,
    pub top4: u32,
    pub top5: u32,
    /// The forward pass's time.
    pub ms: f64,
}

/// Appends prediction rows to `predictions.csv`, synced on every [`flush`].
///
/// [`flush`]: PredictionsWriter::flush
pub struct PredictionsWriter {
    path: PathBuf,
    file: File,
    pending: Vec<PredictionRow>,
}

impl PredictionsWriter {
    /// Creates `dir/predictions.csv` with its header (the run folder must exist).
    pub fn create(dir: &Path) -> Result<Self> {
        let path = dir.join(PREDICTIONS_FILE);
        let file = create_csv(&path, &PREDICTION_COLUMNS)?;
        Ok(PredictionsWriter {
            path,
            file,
            pending: Vec::new(),
        })
    }

    pub fn push(&mut self, row: PredictionRow) {
        self.pending.push(row);
    }

    /// Writes and syncs the rows pushed since the last flush.
    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let bytes = encode_rows(&self.path, &self.pending)?;
        append_synced(&mut self.file, &self.path, &bytes)?;
        self.pending.clear();
        Ok(())
    }
}

/// Replaces `dir/evaluation.csv` atomically with `rows`. Refuses rows that fail
/// [`EvaluationRow::check`] or repeat a mode, naming the row.
pub fn write_evaluation(dir: &Path, rows: &[EvaluationRow]) -> Result<()> {
    let mut seen = Unique::new();
    for (i, row) in rows.iter().enumerate() {
        let bad = |p: String| {
            ResultsError::rejected(dir, format!("{EVALUATION_FILE} row {}: {p}", i + 1))
        };
        row.check().map_err(bad)?;
        seen.insert(row.mode.as_str(), "mode").map_err(bad)?;
    }
    let path = dir.join(EVALUATION_FILE);
    let mut bytes = EVALUATION_COLUMNS.join(",").into_bytes();
    bytes.push(b'\n');
    bytes.extend(encode_rows(&path, rows)?);
    atomic_write(&path, &bytes)
}

/// Reads `dir/evaluation.csv`: None when the run has none (not an evaluation, or one that
/// never finished); a malformed or duplicate row is an error naming the file and line.
pub fn read_evaluation(dir: &Path) -> Result<Option<Vec<EvaluationRow>>> {
    let path = dir.join(EVALUATION_FILE);
    match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ResultsError::io(&path, "read", e)),
        Ok(_) => {}
    }
    let rows = read_csv::<EvaluationRow>(&path, &EVALUATION_COLUMNS, false)?;
    let mut seen = Unique::new();
    let mut kept = Vec::with_capacity(rows.len());
    for (line, row) in rows {
        let bad = |p: String| ResultsError::row(&path, line, p);
        row.check().map_err(bad)?;
        seen.insert(row.mode.clone(), "mode").map_err(bad)?;
        kept.push(row);
    }
    Ok(Some(kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(mode: &str, top1: u32, same: u32) -> EvaluationRow {
        EvaluationRow {
            mode: mode.into(),
            images: 10,
            top1_correct: top1,
            top5_correct: 9,
            top1_accuracy: f64::from(top1) / 10.0,
            top5_accuracy: 0.9,
            same_top1_as_dense: same,
            changed_vs_dense: 10 - same,
            fixed_vs_dense: 0,
            broken_vs_dense: 10 - same,
        }
    }

    #[test]
    fn evaluation_round_trips_and_refuses_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![row("dense", 6, 10), row("qcnn", 5, 9)];
        write_evaluation(dir.path(), &rows).unwrap();
        assert_eq!(read_evaluation(dir.path()).unwrap(), Some(rows));
        let mut bad = row("qcnn", 5, 9);
        bad.top1_accuracy = 0.7;
        let err = write_evaluation(dir.path(), &[bad])
            .unwrap_err()
            .to_string();
        assert!(err.contains("row 1: column `top1_accuracy`"), "{err}");
        let path = dir.path().join(EVALUATION_FILE);
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("qcnn,10,5", "qcnn,10,11");
        fs::write(&path, text).unwrap();
        let err = read_evaluation(dir.path()).unwrap_err().to_string();
        assert!(err.contains("evaluation.csv, line 3"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(read_evaluation(empty.path()).unwrap(), None);
    }

    #[test]
    fn predictions_are_appended() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PredictionsWriter::create(dir.path()).unwrap();
        for i in 0..3 {
            w.push(PredictionRow {
                image: i,
                name: format!("img{i}.JPEG"),
                label: 7,
                mode: "dense".into(),
                top1: 7,
                top2: 1,
                top3: 2,
                top4: 3,
                top5: 4,
                ms: 1.5,
            });
        }
        w.flush().unwrap();
        let text = fs::read_to_string(dir.path().join(PREDICTIONS_FILE)).unwrap();
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.starts_with("image,name,label,mode,top1"), "{text}");
    }
}
