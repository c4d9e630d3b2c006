//! Files a user hands `qcnn` (model files, images, the mean image, labels, run folders) are
//! untrusted: a FIFO blocks a read forever, `/dev/zero` never ends, a directory or a symbolic
//! link loop is not the file the user meant, and a header may claim any size. Every reader of
//! such a file goes through here:
//! - **regular files only**, opened without blocking (`O_NONBLOCK`, so a FIFO cannot hang the
//!   open) and checked with `fstat` on the open descriptor (no race between check and read);
//! - **a size limit set by the caller from the file's format or role**, checked against the
//!   file's length before anything is read or allocated, and never more bytes read than the
//!   length checked, even if the file grows meanwhile;
//! - **errors that name the path and say the problem once**: the OS message is part of the
//!   text and is not also exposed as `source()`, which an `anyhow` `{:#}` chain would print a
//!   second time.
//!
//! Optional entries of a folder ("the mean image, if the folder has one") are probed with
//! [`optional_file`] and [`optional_dir`]: absent is `None`/`false`, but something of the
//! wrong kind (a directory where a file belongs, a dangling or looping symbolic link) is an
//! error, never a silent "not there".

use std::fs::{self, File, FileType, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Why a file could not be used. Both variants name the path first.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The path exists but is not something the caller may read: not a regular file, larger
    /// than its format allows, not text.
    #[error("{}: {problem}", path.display())]
    Refused { path: PathBuf, problem: String },
    /// The operating system refused an operation; `error` is its message, shown once.
    #[error("{}: cannot {action}: {error}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        error: io::Error,
    },
}

impl FileError {
    pub fn refused(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        FileError::Refused {
            path: path.as_ref().to_path_buf(),
            problem: problem.into(),
        }
    }

    pub fn io(path: impl AsRef<Path>, action: &'static str, error: io::Error) -> Self {
        FileError::Io {
            path: path.as_ref().to_path_buf(),
            action,
            error,
        }
    }

    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            FileError::Refused { path, .. } | FileError::Io { path, .. } => path,
        }
    }

    /// The problem without the path (for errors that name the file their own way).
    pub fn problem(&self) -> String {
        match self {
            FileError::Refused { problem, .. } => problem.clone(),
            FileError::Io { action, error, .. } => format!("cannot {action}: {error}"),
        }
    }
}

pub type Result<T, E = FileError> = std::result::Result<T, E>;

/// "a directory", "a FIFO (named pipe)", ...: what a non-regular file is, for errors.
pub fn describe(kind: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

fn not_regular(path: &Path, kind: FileType) -> FileError {
    FileError::refused(path, format!("is {}, not a regular file", describe(kind)))
}

/// Opens `path` for reading if it is (or links to) a regular file; returns it and its length.
/// Never blocks: a FIFO is opened non-blocking and refused.
pub fn open_regular(path: &Path) -> Result<(File, u64)> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(error) => {
            // A socket cannot be opened at all ("No such device or address"): say what it is.
            if let Ok(meta) = fs::metadata(path) {
                if !meta.is_file() {
                    return Err(not_regular(path, meta.file_type()));
                }
            }
            return Err(FileError::io(path, "open", error));
        }
    };
    let meta = file
        .metadata()
        .map_err(|e| FileError::io(path, "inspect", e))?;
    if !meta.is_file() {
        return Err(not_regular(path, meta.file_type()));
    }
    Ok((file, meta.len()))
}

/// Refuses a file of `len` bytes when its role allows at most `limit`; `what` names the role
/// ("a class-names file").
pub fn check_size(path: &Path, len: u64, limit: u64, what: &str) -> Result<()> {
    if len > limit {
        return Err(FileError::refused(
            path,
            format!("is {len} bytes; {what} is at most {limit} bytes"),
        ));
    }
    Ok(())
}

/// Checks, without reading it, that `path` is a regular file of at most `limit` bytes (`what`
/// names its role); returns its length. For arguments checked before any work and read later
/// (through [`read_regular`], which checks again).
pub fn check_regular(path: &Path, limit: u64, what: &str) -> Result<u64> {
    let (_, len) = open_regular(path)?;
    check_size(path, len, limit, what)?;
    Ok(len)
}

/// Reads exactly `len` bytes from `reader` (the rest of a file whose length was checked),
/// allocating `len` bytes up front and never reading more.
pub fn read_exactly(reader: impl Read, len: u64, path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    append_exactly(reader, len, path, &mut bytes)?;
    Ok(bytes)
}

/// Appends exactly `len` bytes from `reader` to `bytes`, reserving them up front and never
/// reading more; fewer is an error (the file shrank while being read).
pub fn append_exactly(reader: impl Read, len: u64, path: &Path, bytes: &mut Vec<u8>) -> Result<()> {
    let wanted = usize::try_from(len)
        .map_err(|_| FileError::refused(path, format!("{len} bytes do not fit in memory")))?;
    bytes.reserve_exact(wanted);
    let start = bytes.len();
    reader
        .take(len)
        .read_to_end(bytes)
        .map_err(|e| FileError::io(path, "read", e))?;
    let got = bytes.len() - start;
    if got != wanted {
        return Err(FileError::refused(
            path,
            format!("changed while being read: {len} bytes expected, {got} read"),
        ));
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file renamed over it: the path's old entry
/// (even a FIFO, which a plain write would block on) is replaced, never written through, and
/// a reader never sees half a file.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| FileError::io(&tmp, "write", e))
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| FileError::io(path, "replace", e)));
    if written.is_err() {
        // The first error matters; a leftover temporary file is the lesser problem.
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// The whole content of the regular file `path`, refused unread when longer than `limit`
/// bytes (`what` names the file's role in that error).
pub fn read_regular(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let (file, len) = open_regular(path)?;
    check_size(path, len, limit, what)?;
    read_exactly(file, len, path)
}

/// [`read_regular`] for UTF-8 text.
pub fn read_regular_text(path: &Path, limit: u64, what: &str) -> Result<String> {
    let bytes = read_regular(path, limit, what)?;
    String::from_utf8(bytes).map_err(|e| {
        FileError::refused(
            path,
            format!(
                "is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// What `path` is after following symbolic links: None when nothing is there (a missing path
/// or one under a regular file). A dangling or looping link is an error, not "absent".
pub fn probe(path: &Path) -> Result<Option<FileType>> {
    match fs::symlink_metadata(path) {
        Ok(_) => {}
        Err(e) if is_absent(&e) => return Ok(None),
        Err(e) => return Err(FileError::io(path, "inspect", e)),
    }
    match fs::metadata(path) {
        Ok(meta) => Ok(Some(meta.file_type())),
        Err(e) if is_absent(&e) => Err(FileError::refused(
            path,
            "is a dangling symbolic link (its target does not exist)",
        )),
        Err(e) => Err(FileError::io(path, "follow the symbolic link", e)),
    }
}

fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// `Some(path)` if it is a regular file, None if nothing is there; anything else (a
/// directory, a FIFO, a broken link) is an error.
pub fn optional_file(path: &Path) -> Result<Option<PathBuf>> {
    match probe(path)? {
        None => Ok(None),
        Some(kind) if kind.is_file() => Ok(Some(path.to_path_buf())),
        Some(kind) => Err(not_regular(path, kind)),
    }
}

/// True if `path` is a directory, false if nothing is there; anything else is an error.
pub fn optional_dir(path: &Path) -> Result<bool> {
    match probe(path)? {
        None => Ok(false),
        Some(kind) if kind.is_dir() => Ok(true),
        Some(kind) => Err(FileError::refused(
            path,
            format!("is {}, not a directory", describe(kind)),
        )),
    }
}

/// Checks that `path` is an existing directory.
pub fn require_dir(path: &Path) -> Result<()> {
    if optional_dir(path)? {
        Ok(())
    } else {
        Err(FileError::refused(path, "no such folder"))
    }
}

/// Checks that `path` is an existing regular file (without opening it).
pub fn require_file(path: &Path) -> Result<()> {
    match optional_file(path)? {
        Some(_) => Ok(()),
        None => Err(FileError::refused(path, "no such file")),
    }
}

/// The entries of directory `dir`, sorted by path. A listing error is an error, never a
/// shorter list.
pub fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|e| FileError::io(dir, "list", e))?;
    let mut paths = Vec::new();
    for entry in entries {
        paths.push(entry.map_err(|e| FileError::io(dir, "list", e))?.path());
    }
    paths.sort();
    Ok(paths)
}

/// Helpers for the tests of every crate that reads files: special files to plant and a
/// deadline that turns a hang into a failure.
pub mod testing {
    use std::path::Path;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Creates a FIFO (named pipe) at `path`: a plain read of it blocks until a writer comes.
    pub fn make_fifo(path: &Path) -> std::io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())?;
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a file system entry.
        match unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) } {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        }
    }

    /// Runs `f` on its own thread; panics naming `what` if it has not returned within
    /// `seconds` (a blocking or endless read), so a hang fails the test.
    pub fn within_deadline<T: Send + 'static>(
        what: &str,
        seconds: u64,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(seconds))
            .unwrap_or_else(|_| panic!("{what}: no answer within {seconds} s (a hang?)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_reads_within_its_limit_and_is_refused_beyond() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        fs::write(&path, "hello").unwrap();
        assert_eq!(read_regular(&path, 5, "a test file").unwrap(), b"hello");
        let err = read_regular(&path, 4, "a test file").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: is 5 bytes; a test file is at most 4 bytes",
                path.display()
            )
        );
    }

    #[test]
    fn check_regular_sizes_a_file_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.onnx");
        // Sparse: a length no test machine could read in time, and no disk used.
        let file = File::create(&path).unwrap();
        file.set_len(1 << 40).unwrap();
        assert!(check_regular(&path, u64::MAX, "a model").unwrap() == 1 << 40);
        let err = check_regular(&path, 1 << 30, "a model").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("is 1099511627776 bytes; a model is at most 1073741824 bytes"),
            "{err}"
        );
        assert!(check_regular(dir.path(), 10, "a model").is_err());
    }

    #[test]
    fn errors_say_the_os_message_once_and_expose_no_source() {
        let err = read_regular(Path::new("/no/such/file"), 10, "x").unwrap_err();
        let text = err.to_string();
        assert_eq!(
            text.matches("No such file or directory").count(),
            1,
            "{text}"
        );
        assert!(std::error::Error::source(&err).is_none());
    }
}
