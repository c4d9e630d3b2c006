//! Reading a run folder back, trusting nothing: every row is parsed and checked against the
//! plan in `meta.json`, and any problem is an error naming the file and the 1-based line.
//!
//! An unfinished run (killed, or still running) reads fine: the writer appends a repeat's
//! image and layer rows before its repeat rows, so `repeats.csv` says which repeats were
//! committed, and rows of a later, half-written repeat are dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::check::{self, Unique};
use crate::error::{Result, ResultsError};
use crate::meta::{Meta, META_FILE};
use crate::rows::{
    ImageRow, LayerRow, RepeatRow, IMAGES_FILE, IMAGE_COLUMNS, LAYERS_FILE, LAYER_COLUMNS,
    REPEATS_FILE, REPEAT_COLUMNS,
};
use crate::summary::{summarize, Analysis, Summary, SUMMARY_FILE};

/// A run folder as read from disk.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub dir: PathBuf,
    pub meta: Meta,
    /// Rows of committed repeats only, in file order.
    pub repeats: Vec<RepeatRow>,
    pub layers: Vec<LayerRow>,
    pub images: Vec<ImageRow>,
    /// The stored `summary.json`, if present (recompute with [`Run::analysis`]).
    pub summary: Option<Summary>,
    /// Repeats with a row for every planned mode in `repeats.csv`.
    pub completed_repeats: u32,
    /// Finished, with every planned repeat completed.
    pub complete: bool,
}

impl Run {
    /// Statistics recomputed from the raw repeat rows.
    pub fn analysis(&self) -> Analysis {
        summarize(&self.repeats, self.meta.theoretical_speedup)
    }
}

/// Reads and validates the run folder `dir`.
pub fn read_run(dir: &Path) -> Result<Run> {
    let meta = read_meta(&dir.join(META_FILE))?;
    let unfinished = !meta.finished;
    let repeats_path = dir.join(REPEATS_FILE);
    let repeat_rows = read_csv::<RepeatRow>(&repeats_path, &REPEAT_COLUMNS, unfinished)?;
    let (repeats, completed) = committed_repeats(&repeats_path, &meta, repeat_rows)?;
    if meta.finished && meta.completed_repeats != completed {
        return Err(ResultsError::invalid(
            dir.join(META_FILE),
            format!(
                "says {} repeats completed but {REPEATS_FILE} holds {completed}",
                meta.completed_repeats
            ),
        ));
    }
    let layers = read_layers(&dir.join(LAYERS_FILE), &meta, completed)?;
    let images = read_images(&dir.join(IMAGES_FILE), &meta, completed)?;
    let summary = read_summary(&dir.join(SUMMARY_FILE))?;
    Ok(Run {
        dir: dir.to_path_buf(),
        complete: meta.finished && completed == meta.planned_repeats,
        completed_repeats: completed,
        meta,
        repeats,
        layers,
        images,
        summary,
    })
}

/// The runs at `path`: the run folder itself when it holds a `meta.json`, else every run
/// folder directly under it (several runs of one side, pooled by `qcnn compare`), oldest
/// first. A folder with no run is an error naming it.
pub fn read_runs(path: &Path) -> Result<Vec<Run>> {
    if path.join(META_FILE).is_file() {
        return Ok(vec![read_run(path)?]);
    }
    if !path.is_dir() {
        let problem = if path.exists() {
            "not a folder: expected a run folder or a folder of run folders"
        } else {
            "no such folder"
        };
        return Err(ResultsError::invalid(path, problem));
    }
    let dirs = list_runs(path)?;
    if dirs.is_empty() {
        return Err(ResultsError::invalid(
            path,
            format!("no {META_FILE} here nor in any folder directly under it: not a run folder, nor a folder of runs"),
        ));
    }
    dirs.iter().map(|d| read_run(d)).collect()
}

/// The run folders directly under `root`, oldest first (names start with the UTC time).
pub fn list_runs(root: &Path) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(root).map_err(|e| ResultsError::io(root, "list", e))?;
    let mut dirs = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| ResultsError::io(root, "list", e))?.path();
        if path.join(META_FILE).is_file() {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}

fn read_meta(path: &Path) -> Result<Meta> {
    let text = fs::read_to_string(path).map_err(|e| ResultsError::io(path, "read", e))?;
    let meta: Meta = serde_json::from_str(&text).map_err(|e| {
        ResultsError::row(path, e.line() as u64, format!("not a qcnn meta.json: {e}"))
    })?;
    meta.check().map_err(|p| ResultsError::invalid(path, p))?;
    Ok(meta)
}

fn read_summary(path: &Path) -> Result<Option<Summary>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = fs::read_to_string(path).map_err(|e| ResultsError::io(path, "read", e))?;
    serde_json::from_str(&text).map(Some).map_err(|e| {
        ResultsError::row(
            path,
            e.line() as u64,
            format!("not a qcnn summary.json: {e}"),
        )
    })
}

/// Keeps the repeats that have a row for every planned mode: 1, 2, ..., n in order. Only an
/// unfinished run may end with one partial repeat, which is dropped.
fn committed_repeats(
    path: &Path,
    meta: &Meta,
    rows: Vec<(u64, RepeatRow)>,
) -> Result<(Vec<RepeatRow>, u32)> {
    let mut seen = Unique::new();
    let mut modes_of: BTreeMap<u32, BTreeSet<&str>> = BTreeMap::new();
    let mut last = 0;
    for (line, row) in &rows {
        let bad = |p: String| ResultsError::row(path, *line, p);
        check::repeat_row(meta, row).map_err(bad)?;
        seen.insert((row.repeat, row.mode.as_str()), "(repeat, mode)")
            .map_err(bad)?;
        if row.repeat < last {
            return Err(bad(format!(
                "repeat {} comes after repeat {last}",
                row.repeat
            )));
        }
        last = row.repeat;
        modes_of.entry(row.repeat).or_default().insert(&row.mode);
    }
    let mut completed = 0;
    for (&repeat, modes) in &modes_of {
        let first_line = rows
            .iter()
            .find(|(_, r)| r.repeat == repeat)
            .map_or(1, |r| r.0);
        if repeat != completed + 1 {
            let problem =
                format!("repeat {repeat} follows repeat {completed}: repeats are missing");
            return Err(ResultsError::row(path, first_line, problem));
        }
        if modes.len() < meta.modes.len() {
            if meta.finished || repeat != last {
                let problem = format!("repeat {repeat} lacks rows for some planned modes");
                return Err(ResultsError::row(path, first_line, problem));
            }
            break;
        }
        completed = repeat;
    }
    let kept = rows
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r.repeat <= completed)
        .collect();
    Ok((kept, completed))
}

fn read_layers(path: &Path, meta: &Meta, completed: u32) -> Result<Vec<LayerRow>> {
    let rows = read_csv::<LayerRow>(path, &LAYER_COLUMNS, !meta.finished)?;
    let mut seen = Unique::new();
    let mut kept = Vec::new();
    for (line, row) in rows {
        let bad = |p: String| ResultsError::row(path, line, p);
        check::layer_row(meta, &row).map_err(bad)?;
        if committed(meta, completed, row.repeat).map_err(bad)? {
            let key = (row.repeat, row.mode.clone(), row.layer.clone(), row.phase);
            seen.insert(key, "(repeat, mode, layer, phase)")
                .map_err(bad)?;
            kept.push(row);
        }
    }
    Ok(kept)
}

fn read_images(path: &Path, meta: &Meta, completed: u32) -> Result<Vec<ImageRow>> {
    let rows = read_csv::<ImageRow>(path, &IMAGE_COLUMNS, !meta.finished)?;
    let mut seen = Unique::new();
    let mut kept = Vec::new();
    for (line, row) in rows {
        let bad = |p: String| ResultsError::row(path, line, p);
        check::image_row(meta, &row).map_err(bad)?;
        if committed(meta, completed, row.repeat).map_err(bad)? {
            let key = (row.repeat, row.mode.clone(), row.image);
            seen.insert(key, "(repeat, mode, image)").map_err(bad)?;
            kept.push(row);
        }
    }
    Ok(kept)
}

/// Whether a layer or image row belongs to a committed repeat; rows of a later repeat are
/// the uncommitted tail of an unfinished run, and an error in a finished one.
fn committed(meta: &Meta, completed: u32, repeat: u32) -> Result<bool, String> {
    if repeat <= completed {
        Ok(true)
    } else if meta.finished {
        Err(format!("repeat {repeat} has no rows in {REPEATS_FILE}"))
    } else {
        Ok(false)
    }
}

/// Parses a CSV with exactly `columns` as header into rows tagged with their line number.
/// `unfinished`: a last line without newline is a write cut short, and is ignored.
pub(crate) fn read_csv<T: DeserializeOwned>(
    path: &Path,
    columns: &[&str],
    unfinished: bool,
) -> Result<Vec<(u64, T)>> {
    let bytes = fs::read(path).map_err(|e| ResultsError::io(path, "read", e))?;
    let text = complete_lines(path, &bytes, unfinished)?;
    let mut reader = csv::ReaderBuilder::new().from_reader(text);
    let header = reader
        .headers()
        .map_err(|e| csv_error(path, &e, columns, 1))?
        .clone();
    if header.iter().ne(columns.iter().copied()) {
        let problem = format!(
            "header is '{}', expected '{}' (not a qcnn {} file)",
            header.iter().collect::<Vec<_>>().join(","),
            columns.join(","),
            file_name(path)
        );
        return Err(ResultsError::row(path, 1, problem));
    }
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(path, &e, columns, line)),
        }
        let line = record.position().map_or(line, |p| p.line());
        let row = record
            .deserialize(Some(&header))
            .map_err(|e| csv_error(path, &e, columns, line))?;
        rows.push((line, row));
    }
    Ok(rows)
}

/// The bytes up to the last newline. A finished run must end in one; an unfinished run may
/// have a partial last line, which is cut.
fn complete_lines<'a>(path: &Path, bytes: &'a [u8], unfinished: bool) -> Result<&'a [u8]> {
    if bytes.is_empty() {
        return Err(ResultsError::row(path, 1, "empty file: no header line"));
    }
    if bytes.ends_with(b"\n") {
        return Ok(bytes);
    }
    let line = bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) if unfinished => Ok(&bytes[..=end]),
        _ => Err(ResultsError::row(
            path,
            line,
            "the last line has no newline: the file was cut short",
        )),
    }
}

fn csv_error(path: &Path, e: &csv::Error, columns: &[&str], line: u64) -> ResultsError {
    let line = e.position().map_or(line, |p| p.line());
    let problem = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "{len} fields, expected {expected_len} ({})",
            columns.join(",")
        ),
        csv::ErrorKind::Deserialize { err, .. } => match err.field() {
            Some(i) => {
                let column = columns.get(i as usize).copied().unwrap_or("?");
                format!("column `{column}`: {}", err.kind())
            }
            None => err.kind().to_string(),
        },
        csv::ErrorKind::Utf8 { err, .. } => format!("field {}: not UTF-8", err.field() + 1),
        _ => e.to_string(),
    };
    ResultsError::row(path, line, problem)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
