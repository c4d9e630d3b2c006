//! Durable file writes: whole files replaced atomically, CSV rows appended and synced.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Result, ResultsError};

/// Replaces `path` with `bytes` so that a reader sees either the old or the new content,
/// never a mix: write a temporary file beside it, sync it, rename it over `path`, sync the
/// folder. The temporary file is removed if any step fails.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let result = write_synced(&tmp, bytes).and_then(|()| {
        fs::rename(&tmp, path)
            .map_err(|e| ResultsError::io(path, "rename the temporary file to", e))
    });
    if result.is_err() {
        // The original error is what matters; a leftover temp file is the lesser problem.
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(|e| ResultsError::io(path, "create", e))?;
    file.write_all(bytes)
        .map_err(|e| ResultsError::io(path, "write", e))?;
    file.sync_all()
        .map_err(|e| ResultsError::io(path, "sync", e))
}

/// Makes a rename or a new file in `dir` survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ResultsError::io(dir, "sync the folder", e))
}

/// Creates a new file (never overwriting one) holding the CSV header line.
pub(crate) fn create_csv(path: &Path, columns: &[&str]) -> Result<File> {
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(path)
        .map_err(|e| ResultsError::io(path, "create", e))?;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(columns)
        .map_err(|e| ResultsError::invalid(path, format!("cannot encode the header: {e}")))?;
    append_synced(&mut file, path, &into_bytes(w, path)?)?;
    Ok(file)
}

/// The rows as CSV lines without a header.
pub(crate) fn encode_rows<T: Serialize>(path: &Path, rows: &[T]) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for row in rows {
        w.serialize(row)
            .map_err(|e| ResultsError::invalid(path, format!("cannot encode a row: {e}")))?;
    }
    into_bytes(w, path)
}

fn into_bytes(w: csv::Writer<Vec<u8>>, path: &Path) -> Result<Vec<u8>> {
    w.into_inner()
        .map_err(|e| ResultsError::io(path, "encode CSV", e.into_error()))
}

/// Appends `bytes` in one write and waits until they are on disk.
pub(crate) fn append_synced(file: &mut File, path: &Path, bytes: &[u8]) -> Result<()> {
    file.write_all(bytes)
        .map_err(|e| ResultsError::io(path, "append to", e))?;
    file.flush()
        .map_err(|e| ResultsError::io(path, "flush", e))?;
    file.sync_data()
        .map_err(|e| ResultsError::io(path, "sync", e))
}
