//! A reader never trusts a file: malformed or foreign content is an error that names the
//! file and the 1-based line.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{meta, record};
use qcnn_results::{read_run, RunWriter, IMAGES_FILE, LAYERS_FILE, META_FILE, REPEATS_FILE};

/// A finished two-repeat run: repeats.csv has header + 4 rows (lines 2..=5).
fn finished_run(root: &Path) -> PathBuf {
    let mut w = RunWriter::create(root, meta(2)).unwrap();
    w.append_repeat(&record(1)).unwrap();
    w.append_repeat(&record(2)).unwrap();
    let dir = w.dir().to_path_buf();
    w.finish().unwrap();
    dir
}

/// Replaces 1-based line `line` of `file` and returns read_run's error message.
fn error_after_editing(file: &str, line: usize, edit: impl Fn(&str) -> String) -> String {
    let root = tempfile::tempdir().unwrap();
    let dir = finished_run(root.path());
    let path = dir.join(file);
    let text = fs::read_to_string(&path).unwrap();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == line {
                edit(l)
            } else {
                l.to_string()
            }
        })
        .collect();
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    read_run(&dir).unwrap_err().to_string()
}

fn assert_names(err: &str, file: &str, line: u64) {
    let needle = format!("{file}, line {line}:");
    assert!(err.contains(&needle), "expected '{needle}' in: {err}");
}

#[test]
fn bad_number_names_file_line_and_column() {
    let err = error_after_editing(REPEATS_FILE, 3, |l| l.replacen(",3,", ",three,", 1));
    assert_names(&err, REPEATS_FILE, 3);
    assert!(err.contains("column `images`"), "{err}");
}

#[test]
fn bad_float_in_images_csv() {
    let err = error_after_editing(IMAGES_FILE, 4, |l| format!("{l}x"));
    assert_names(&err, IMAGES_FILE, 4);
    assert!(err.contains("column `ms`"), "{err}");
}

#[test]
fn missing_column_in_a_row() {
    let err = error_after_editing(LAYERS_FILE, 2, |l| {
        l.rsplit_once(',').unwrap().0.to_string()
    });
    assert_names(&err, LAYERS_FILE, 2);
    assert!(err.contains("4 fields, expected 5"), "{err}");
}

#[test]
fn unknown_phase() {
    let err = error_after_editing(LAYERS_FILE, 3, |l| l.replace("lookup", "gather"));
    assert_names(&err, LAYERS_FILE, 3);
    assert!(err.contains("column `phase`"), "{err}");
}

#[test]
fn foreign_header() {
    let err = error_after_editing(REPEATS_FILE, 1, |_| "name,value,unit".into());
    assert_names(&err, REPEATS_FILE, 1);
    assert!(err.contains("not a qcnn repeats.csv file"), "{err}");
}

#[test]
fn header_missing_a_column() {
    let err = error_after_editing(IMAGES_FILE, 1, |_| "repeat,mode,image".into());
    assert_names(&err, IMAGES_FILE, 1);
}

#[test]
fn inconsistent_ms_per_image() {
    let err = error_after_editing(REPEATS_FILE, 2, |l| {
        let mut f: Vec<String> = l.split(',').map(String::from).collect();
        f[5] = "999".into();
        f.join(",")
    });
    assert_names(&err, REPEATS_FILE, 2);
    assert!(err.contains("ms_per_image"), "{err}");
}

#[test]
fn unplanned_mode_and_duplicate_rows() {
    let err = error_after_editing(IMAGES_FILE, 2, |l| l.replace("dense", "int4"));
    assert_names(&err, IMAGES_FILE, 2);
    assert!(err.contains("not a planned mode"), "{err}");
    let err = error_after_editing(REPEATS_FILE, 3, |l| l.replace("qcnn", "dense"));
    assert_names(&err, REPEATS_FILE, 3);
    assert!(err.contains("duplicate"), "{err}");
}

#[test]
fn missing_repeat_in_a_finished_run() {
    let err = error_after_editing(REPEATS_FILE, 5, |l| l.replace("2,qcnn", "2,dense"));
    assert_names(&err, REPEATS_FILE, 5);
}

#[test]
fn truncated_file_of_a_finished_run() {
    let root = tempfile::tempdir().unwrap();
    let dir = finished_run(root.path());
    let path = dir.join(IMAGES_FILE);
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, &text[..text.len() - 3]).unwrap();
    let err = read_run(&dir).unwrap_err().to_string();
    assert_names(&err, IMAGES_FILE, 13);
    assert!(err.contains("cut short"), "{err}");
}

#[test]
fn empty_csv() {
    let root = tempfile::tempdir().unwrap();
    let dir = finished_run(root.path());
    fs::write(dir.join(LAYERS_FILE), "").unwrap();
    assert_names(&read_run(&dir).unwrap_err().to_string(), LAYERS_FILE, 1);
}

#[test]
fn foreign_or_broken_meta_json() {
    let root = tempfile::tempdir().unwrap();
    let dir = finished_run(root.path());
    let path = dir.join(META_FILE);
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replace("qcnn-results/1", "qcnn-results/0")).unwrap();
    let err = read_run(&dir).unwrap_err().to_string();
    assert!(err.contains("meta.json") && err.contains("schema"), "{err}");
    fs::write(&path, "{\"schema\": 1").unwrap();
    let err = read_run(&dir).unwrap_err().to_string();
    assert!(err.contains("meta.json, line 1"), "{err}");
}

#[test]
fn meta_claiming_more_repeats_than_stored() {
    let root = tempfile::tempdir().unwrap();
    let dir = finished_run(root.path());
    let path = dir.join(META_FILE);
    let text = fs::read_to_string(&path).unwrap();
    fs::write(
        &path,
        text.replace("\"completed_repeats\": 2", "\"completed_repeats\": 1"),
    )
    .unwrap();
    let err = read_run(&dir).unwrap_err().to_string();
    assert!(
        err.contains("meta.json") && err.contains("holds 2"),
        "{err}"
    );
}

#[test]
fn missing_folder_names_the_file() {
    let err = read_run(Path::new("/nonexistent/run"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/run/meta.json"), "{err}");
}
