//! `sweep.csv`: one row per (d, K) configuration of one layer, written by `qcnn sweep` beside
//! the run's raw rows, read back by reports for the error vs speed-up trade-off.
//!
//! The times are medians over the run's repeats (ms per pass through the layer); the raw
//! timings stay in `repeats.csv` (modes `dense` and `d<d>-k<K>-<isa>`). Empty cells are
//! figures that were not measured: an ISA not timed, no held-out images.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::check::Unique;
use crate::error::{Result, ResultsError};
use crate::fsio::{atomic_write, encode_rows};
use crate::reader::read_csv;
use crate::rows::{check_ms, check_name, check_range};

/// The largest speed-up or compression ratio a row may hold.
pub const MAX_RATIO: f64 = 1e9;
/// The largest relative error a row may hold (errors of a sane layer are below 10).
pub const MAX_REL_ERROR: f64 = 1e6;
/// The most configurations a `sweep.csv` may hold (far more than any grid of d and K ≤ 256).
pub const MAX_SWEEP_ROWS: u64 = 1 << 16;
/// The longest quantization a row may record, in seconds (11.6 days).
pub const MAX_SECONDS: f64 = 1e6;

/// `sweep.csv` file name inside a run folder.
pub const SWEEP_FILE: &str = "sweep.csv";

/// Header of `sweep.csv`, in the order of [`SweepRow`]'s fields.
pub const SWEEP_COLUMNS: [&str; 16] = [
    "layer",
    "d",
    "k",
    "method",
    "theoretical_speedup",
    "compression",
    "dense_ms",
    "lut_ms_scalar",
    "lut_ms_avx2",
    "lut_ms_avx512",
    "response_rel_error",
    "weight_rel_error",
    "pq_response_rel_error",
    "holdout_response_rel_error",
    "holdout_pq_response_rel_error",
    "quantize_s",
];

/// The ISA names of the `lut_ms_<isa>` columns, in column order.
pub const SWEEP_ISAS: [&str; 3] = ["scalar", "avx2", "avx512"];

/// One (d, K) configuration of the swept layer. Field order is column order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    /// Layer name as in the architecture (`conv3`, `fc6`, ...).
    pub layer: String,
    /// Dimensions per subspace.
    pub d: u32,
    /// Codewords per sub-codebook.
    pub k: u32,
    /// Quantization method (`pq`, `ec`).
    pub method: String,
    /// Dense multiply-adds over (table multiply-adds + look-ups) of the layer (METHOD.md).
    pub theoretical_speedup: f64,
    /// Dense f32 weight bytes over codebook + packed index bytes.
    pub compression: f64,
    /// Median ms per pass of the dense (BLAS) layer; the same in every row of a run.
    pub dense_ms: Option<f64>,
    /// Median ms per pass of the scalar look-up kernel; empty when not timed.
    pub lut_ms_scalar: Option<f64>,
    /// Median ms per pass of the AVX2 look-up kernel; empty when not timed.
    pub lut_ms_avx2: Option<f64>,
    /// Median ms per pass of the AVX-512 look-up kernel; empty when not timed.
    pub lut_ms_avx512: Option<f64>,
    /// Relative error of the layer's response on the calibration images (final codebooks).
    pub response_rel_error: f64,
    /// Relative error of the rebuilt weights.
    pub weight_rel_error: f64,
    /// Relative response error on the calibration images of the plain-PQ codebooks.
    pub pq_response_rel_error: f64,
    /// Relative response error on held-out images (final codebooks); empty without them.
    pub holdout_response_rel_error: Option<f64>,
    /// Relative response error on held-out images (plain-PQ codebooks); empty without them.
    pub holdout_pq_response_rel_error: Option<f64>,
    /// Seconds spent quantizing this configuration.
    pub quantize_s: f64,
}

impl SweepRow {
    /// Median look-up ms of `isa` (one of [`SWEEP_ISAS`]); None if not timed or unknown.
    pub fn lut_ms(&self, isa: &str) -> Option<f64> {
        match isa {
            "scalar" => self.lut_ms_scalar,
            "avx2" => self.lut_ms_avx2,
            "avx512" => self.lut_ms_avx512,
            _ => None,
        }
    }

    /// Measured speed-up of `isa`'s look-up kernel: `dense_ms / lut_ms_<isa>`.
    pub fn measured_speedup(&self, isa: &str) -> Option<f64> {
        let (dense, lut) = (self.dense_ms?, self.lut_ms(isa)?);
        (lut > 0.0).then(|| dense / lut)
    }

    /// The response error a trade-off shows: on held-out images when measured (what the
    /// layer does on unseen inputs), else on the calibration images; `true` if held out.
    pub fn response_error(&self) -> (f64, bool) {
        match self.holdout_response_rel_error {
            Some(e) => (e, true),
            None => (self.response_rel_error, false),
        }
    }

    /// Checks that need no other row; the problem names the column.
    pub fn check(&self) -> Result<(), String> {
        check_name("layer", &self.layer)?;
        check_name("method", &self.method)?;
        for (column, v) in [("d", self.d), ("k", self.k)] {
            if v == 0 {
                return Err(format!("column `{column}`: must be at least 1"));
            }
        }
        for (column, v) in [
            ("theoretical_speedup", self.theoretical_speedup),
            ("compression", self.compression),
        ] {
            check_range(column, v, 0.0..=MAX_RATIO, "(ratio)")?;
        }
        let errors = [
            ("response_rel_error", Some(self.response_rel_error)),
            ("weight_rel_error", Some(self.weight_rel_error)),
            ("pq_response_rel_error", Some(self.pq_response_rel_error)),
            (
                "holdout_response_rel_error",
                self.holdout_response_rel_error,
            ),
            (
                "holdout_pq_response_rel_error",
                self.holdout_pq_response_rel_error,
            ),
        ];
        for (column, v) in errors.iter().filter_map(|&(c, v)| Some((c, v?))) {
            check_range(column, v, 0.0..=MAX_REL_ERROR, "(relative error)")?;
        }
        let times = [
            ("dense_ms", self.dense_ms),
            ("lut_ms_scalar", self.lut_ms_scalar),
            ("lut_ms_avx2", self.lut_ms_avx2),
            ("lut_ms_avx512", self.lut_ms_avx512),
        ];
        for (column, v) in times.iter().filter_map(|&(c, v)| Some((c, v?))) {
            check_ms(column, v)?;
        }
        check_range("quantize_s", self.quantize_s, 0.0..=MAX_SECONDS, "s")
    }
}

/// Replaces `dir/sweep.csv` atomically with `rows` (header first). Refuses rows that fail
/// [`SweepRow::check`] or repeat a (layer, d, K), naming the row.
pub fn write_sweep(dir: &Path, rows: &[SweepRow]) -> Result<()> {
    check_rows(rows).map_err(|(i, p)| {
        ResultsError::rejected(dir, format!("{SWEEP_FILE} row {}: {p}", i + 1))
    })?;
    let path = dir.join(SWEEP_FILE);
    let mut bytes = SWEEP_COLUMNS.join(",").into_bytes();
    bytes.push(b'\n');
    bytes.extend(encode_rows(&path, rows)?);
    atomic_write(&path, &bytes)
}

/// Reads `dir/sweep.csv`: None when the run has none (not a sweep); a malformed or
/// duplicate row is an error naming the file and its 1-based line.
pub fn read_sweep(dir: &Path) -> Result<Option<Vec<SweepRow>>> {
    let path = dir.join(SWEEP_FILE);
    match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ResultsError::io(&path, "read", e)),
        Ok(_) => {}
    }
    // Written atomically, so never legitimately cut short.
    let rows = read_csv::<SweepRow>(&path, &SWEEP_COLUMNS, false, MAX_SWEEP_ROWS)?;
    let mut seen = Unique::new();
    let mut kept = Vec::with_capacity(rows.len());
    for (line, row) in rows {
        let bad = |p: String| ResultsError::row(&path, line, p);
        row.check().map_err(bad)?;
        seen.insert((row.layer.clone(), row.d, row.k), "(layer, d, k)")
            .map_err(bad)?;
        kept.push(row);
    }
    Ok(Some(kept))
}

/// The first bad row: its 0-based index and the problem.
fn check_rows(rows: &[SweepRow]) -> Result<(), (usize, String)> {
    let mut seen = Unique::new();
    for (i, row) in rows.iter().enumerate() {
        row.check().map_err(|p| (i, p))?;
        seen.insert((row.layer.as_str(), row.d, row.k), "(layer, d, k)")
            .map_err(|p| (i, p))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(d: u32, k: u32) -> SweepRow {
        SweepRow {
            layer: "conv5".into(),
            d,
            k,
            method: "pq".into(),
            theoretical_speedup: 3.789473684210526,
            compression: 26.181818181818183,
            dense_ms: Some(1.1421608333333333),
            lut_ms_scalar: None,
            lut_ms_avx2: Some(0.5),
            lut_ms_avx512: Some(0.4359238333333333),
            response_rel_error: 0.5114641516413981,
            weight_rel_error: 0.4996990181443383,
            pq_response_rel_error: 0.5114641516413981,
            holdout_response_rel_error: None,
            holdout_pq_response_rel_error: None,
            quantize_s: 1e-5,
        }
    }

    #[test]
    fn rows_round_trip_with_empty_cells() {
        let dir = tempfile::tempdir().unwrap();
        let mut rows = vec![row(4, 16), row(8, 64)];
        rows[1].holdout_response_rel_error = Some(0.25);
        rows[1].holdout_pq_response_rel_error = Some(0.3);
        write_sweep(dir.path(), &rows).unwrap();
        let text = fs::read_to_string(dir.path().join(SWEEP_FILE)).unwrap();
        assert!(
            text.starts_with(&(SWEEP_COLUMNS.join(",") + "\n")),
            "{text}"
        );
        assert!(text.contains(",,0.5,"), "empty scalar cell: {text}");
        assert_eq!(read_sweep(dir.path()).unwrap(), Some(rows));
    }

    #[test]
    fn an_empty_sweep_keeps_its_header() {
        let dir = tempfile::tempdir().unwrap();
        write_sweep(dir.path(), &[]).unwrap();
        assert_eq!(read_sweep(dir.path()).unwrap(), Some(Vec::new()));
    }

    #[test]
    fn absent_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_sweep(dir.path()).unwrap(), None);
    }

    #[test]
    fn speedup_and_error_follow_the_row() {
        let mut r = row(4, 16);
        assert_eq!(r.measured_speedup("scalar"), None);
        assert_eq!(r.measured_speedup("avx2"), Some(1.1421608333333333 / 0.5));
        assert_eq!(r.response_error(), (0.5114641516413981, false));
        r.holdout_response_rel_error = Some(0.6);
        assert_eq!(r.response_error(), (0.6, true));
        r.dense_ms = None;
        assert_eq!(r.measured_speedup("avx2"), None);
    }

    #[test]
    fn malformed_rows_name_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        write_sweep(dir.path(), &[row(4, 16), row(8, 16)]).unwrap();
        let path = dir.path().join(SWEEP_FILE);
        let text = fs::read_to_string(&path).unwrap();
        let cases = [
            (
                text.replacen(",8,16,", ",8,sixteen,", 1),
                "line 3",
                "column `k`",
            ),
            (text.replacen(",8,16,", ",4,16,", 1), "line 3", "duplicate"),
            (text.replacen(",8,16,", ",0,16,", 1), "line 3", "column `d`"),
            (text.replacen(",pq,", ",pq,-1.0,", 1), "line 2", "fields"),
            (
                "layer,d\nconv5,4\n".to_string(),
                "line 1",
                "not a qcnn sweep.csv",
            ),
        ];
        for (bad, line, problem) in cases {
            fs::write(&path, bad).unwrap();
            let err = read_sweep(dir.path()).unwrap_err().to_string();
            assert!(err.contains(&format!("sweep.csv, {line}")), "{err}");
            assert!(err.contains(problem), "{err}");
        }
    }

    #[test]
    fn writer_refuses_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut bad = row(4, 16);
        bad.lut_ms_avx2 = Some(f64::NAN);
        let err = write_sweep(dir.path(), &[row(2, 16), bad]).unwrap_err();
        assert!(
            err.to_string().contains("row 2: column `lut_ms_avx2`"),
            "{err}"
        );
        assert!(!dir.path().join(SWEEP_FILE).exists());
    }
}
