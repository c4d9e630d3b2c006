//! Every command checks all its arguments before any work: before a model is loaded, OpenBLAS
//! restarted, an image decoded, a memory probe started or a file written. A bad argument is
//! an error naming the argument, the value and the rule (exit code 1; clap's own range and
//! value errors exit with 2), never a failure halfway through a run.
//!
//! Each command's arguments implement [`Validate`]; `main` calls it first. A new command (or a
//! new option of an existing one) adds its checks to its `validate`, using the helpers here
//! for the common cases: files to read, folders to read or write, lists without duplicates,
//! counts that must fit in memory ([`crate::budget`]).

use std::path::Path;

use anyhow::{bail, Result};

use crate::models::ModelPath;

/// The most repeats a run may plan (`--repeats`).
pub const MAX_REPEATS: u32 = 1000;
/// The most single-image batches (or layer passes) per repeat and mode (`--images`,
/// `--runs`).
pub const MAX_IMAGES: u32 = 100_000;
/// The most untimed warm-up batches per mode (`--warmup`).
pub const MAX_WARMUP: u32 = 10_000;

/// A clap value parser for a whole number in `lo..=hi`: anything else (negative, fractional,
/// too large for any integer type) is refused naming the range, never wrapped or clamped.
pub fn count<T>(lo: u64, hi: u64) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync
where
    T: TryFrom<u64>,
{
    move |text| {
        let value = text.trim().parse::<u64>().ok();
        value
            .filter(|v| (lo..=hi).contains(v))
            .and_then(|v| T::try_from(v).ok())
            .ok_or_else(|| format!("'{text}' is not a whole number in {lo}..={hi}"))
    }
}

/// Checks a command's arguments, before anything else the command does.
pub trait Validate {
    fn validate(&self) -> Result<()>;
}

/// `path`, given as `arg`, is a regular file to read (a folder, a FIFO, a device or a
/// missing file is refused).
pub fn input_file(arg: &str, path: &Path) -> Result<()> {
    qcnn_files::require_file(path).map_err(|e| anyhow::anyhow!("{arg} {e}"))
}

/// `path`, given as `arg`, is a folder to read.
pub fn input_dir(arg: &str, path: &Path) -> Result<()> {
    qcnn_files::require_dir(path).map_err(|e| anyhow::anyhow!("{arg} {e}"))
}

/// `path`, given as `arg`, is a regular file or a folder to read; which one it is.
pub fn input_file_or_dir(arg: &str, path: &Path) -> Result<InputKind> {
    match qcnn_files::probe(path).map_err(|e| anyhow::anyhow!("{arg} {e}"))? {
        None => bail!("{arg} {}: no such file or folder", path.display()),
        Some(kind) if kind.is_dir() => Ok(InputKind::Dir),
        Some(kind) if kind.is_file() => Ok(InputKind::File),
        Some(kind) => bail!(
            "{arg} {}: is {}, neither a regular file nor a folder",
            path.display(),
            qcnn_files::describe(kind)
        ),
    }
}

/// What an argument that takes a file or a folder turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    File,
    Dir,
}

/// `path`, given as `arg`, is a folder the command may create or write into: an existing
/// folder, or a missing one whose nearest existing ancestor is a folder.
pub fn output_dir(arg: &str, path: &Path) -> Result<()> {
    let mut at = path;
    loop {
        match qcnn_files::probe(at).map_err(|e| anyhow::anyhow!("{arg} {e}"))? {
            Some(kind) if kind.is_dir() => return Ok(()),
            Some(kind) => bail!(
                "{arg} {}: {} is {}, not a folder",
                path.display(),
                at.display(),
                qcnn_files::describe(kind)
            ),
            None => match at.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => at = parent,
                // A relative path's first component: created in the working folder.
                _ => return Ok(()),
            },
        }
    }
}

/// `path`, given as `arg`, names a file the command may write: its folder exists or can be
/// created, and the path itself is not a folder.
pub fn output_file(arg: &str, path: &Path) -> Result<()> {
    if let Some(kind) = qcnn_files::probe(path).map_err(|e| anyhow::anyhow!("{arg} {e}"))? {
        if kind.is_dir() {
            bail!("{arg} {}: is a folder, not a file", path.display());
        }
    }
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => output_dir(arg, parent),
        _ => Ok(()),
    }
}

/// The values of the list option `arg` are all different.
pub fn no_duplicates<T: PartialEq + std::fmt::Display>(arg: &str, values: &[T]) -> Result<()> {
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            bail!("{arg}: '{v}' is given twice (each value may appear once)");
        }
    }
    Ok(())
}

/// The list option `arg` has at least one value.
pub fn not_empty<T>(arg: &str, values: &[T]) -> Result<()> {
    if values.is_empty() {
        bail!("{arg}: give at least one value");
    }
    Ok(())
}

/// A model given as `arg` (`--model`, `--dense`): a folder holding one model in the authors'
/// layout, or a dense `.onnx` / `.caffemodel` (+ `.prototxt`) of regular files within their
/// size limits. Located, not loaded: the files' own checks run when the command loads them.
pub fn model(arg: &str, path: &Path) -> Result<ModelPath> {
    ModelPath::locate(path).map_err(|e| anyhow::anyhow!("{arg}: {e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_dirs_may_be_missing_below_a_folder_but_not_below_a_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(output_dir("--out", &dir.path().join("a/b/c")).is_ok());
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let err = output_dir("--out", &file.join("sub"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--out") && err.contains("is a regular file, not a folder"),
            "{err}"
        );
        assert!(output_dir("--out", Path::new("relative/new")).is_ok());
        assert!(output_file("--out", dir.path()).is_err());
    }

    #[test]
    fn duplicates_and_empty_lists_are_named() {
        let err = no_duplicates("--modes", &["dense", "qcnn", "dense"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--modes: 'dense' is given twice (each value may appear once)"
        );
        assert!(not_empty::<u8>("--d", &[]).is_err());
    }
}
