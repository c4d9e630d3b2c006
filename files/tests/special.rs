//! Every kind of path that is not a regular file is refused quickly, with the path and its
//! kind in the message: a FIFO (which would block a plain read forever), a symbolic link to
//! `/dev/zero` (which never ends), a directory, a socket, a symbolic link loop, a dangling
//! link. Each probe runs on a thread with a deadline, so a hang fails the test instead of
//! stalling the suite.

use std::path::{Path, PathBuf};

use qcnn_files::testing::make_fifo;
use qcnn_files::{
    open_regular, optional_dir, optional_file, read_regular, read_regular_text, FileError,
};

/// Runs `f` on its own thread; fails the test if it takes longer than two seconds.
fn within_deadline<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    qcnn_files::testing::within_deadline(what, 2, f)
}

struct Specials {
    _dir: tempfile::TempDir,
    fifo: PathBuf,
    zero: PathBuf,
    folder: PathBuf,
    socket: PathBuf,
    looping: PathBuf,
    dangling: PathBuf,
    _listener: std::os::unix::net::UnixListener,
}

fn specials() -> Specials {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let fifo = p("model.bin");
    make_fifo(&fifo).unwrap();
    let zero = p("zero.bin");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let folder = p("folder.bin");
    std::fs::create_dir(&folder).unwrap();
    let socket = p("socket.bin");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let looping = p("loop.bin");
    std::os::unix::fs::symlink(&looping, &looping).unwrap();
    let dangling = p("dangling.bin");
    std::os::unix::fs::symlink(p("nothing"), &dangling).unwrap();
    Specials {
        _dir: dir,
        fifo,
        zero,
        folder,
        socket,
        looping,
        dangling,
        _listener: listener,
    }
}

fn assert_refused(err: &FileError, path: &Path, needle: &str) {
    let text = err.to_string();
    assert!(
        text.starts_with(&path.display().to_string()) && text.contains(needle),
        "{text}"
    );
}

#[test]
fn special_files_are_refused_without_blocking() {
    let s = specials();
    let cases = [
        (s.fifo.clone(), "is a FIFO (named pipe), not a regular file"),
        (s.zero.clone(), "is a character device, not a regular file"),
        (s.folder.clone(), "is a directory, not a regular file"),
        (s.socket.clone(), "is a socket, not a regular file"),
        (s.looping.clone(), "symbolic links"),
        (s.dangling.clone(), "No such file or directory"),
    ];
    for (path, needle) in cases {
        let p = path.clone();
        let err = within_deadline("read_regular", move || {
            read_regular(&p, 1 << 20, "a test file").unwrap_err()
        });
        assert_refused(&err, &path, needle);
        let p = path.clone();
        let err = within_deadline("open_regular", move || open_regular(&p).unwrap_err());
        assert_refused(&err, &path, needle);
        let p = path.clone();
        within_deadline("read_regular_text", move || {
            read_regular_text(&p, 1 << 20, "a test file").unwrap_err()
        });
    }
}

#[test]
fn optional_entries_of_the_wrong_kind_are_errors_not_absent() {
    let s = specials();
    let absent = s.folder.join("nothing.bin");
    assert_eq!(optional_file(&absent).unwrap(), None);
    assert!(!optional_dir(&absent).unwrap());
    // Below a regular file: absent too, not an error.
    let file = s.folder.join("f");
    std::fs::write(&file, b"x").unwrap();
    assert_eq!(optional_file(&file.join("below")).unwrap(), None);
    assert_eq!(optional_file(&file).unwrap(), Some(file.clone()));
    assert!(optional_dir(&s.folder).unwrap());

    assert_refused(
        &optional_file(&s.folder).unwrap_err(),
        &s.folder,
        "is a directory, not a regular file",
    );
    assert_refused(
        &optional_file(&s.fifo).unwrap_err(),
        &s.fifo,
        "is a FIFO (named pipe)",
    );
    assert_refused(
        &optional_dir(&file).unwrap_err(),
        &file,
        "is a regular file, not a directory",
    );
    assert_refused(
        &optional_dir(&s.looping).unwrap_err(),
        &s.looping,
        "symbolic links",
    );
    assert_refused(
        &optional_file(&s.dangling).unwrap_err(),
        &s.dangling,
        "dangling symbolic link",
    );
}
