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

/// Sets fields 4 and 5 (total_ms, ms_per_image) of a repeat row (3 images).
fn with_total(l: &str, total: &str, per_image: &str) -> String {
    let mut f: Vec<String> = l.split(',').map(String::from).collect();
    f[4] = total.into();
    f[5] = per_image.into();
    f.join(",")
}

/// Times a report would render as "0.00×" or as 300-digit numbers are refused, naming the
/// allowed range.
#[test]
fn absurd_times_are_refused_with_the_allowed_range() {
    for (total, per_image) in [
        ("0", "0"),
        ("1e308", "3.3333333333333333e307"),
        ("1e-300", "3.333333333333333e-301"),
    ] {
        let err = error_after_editing(REPEATS_FILE, 2, |l| with_total(l, total, per_image));
        assert_names(&err, REPEATS_FILE, 2);
        assert!(
            err.contains("column `total_ms`") && err.contains("allowed range 1e-6..=1e9 ms"),
            "{err}"
        );
    }
    let err = error_after_editing(IMAGES_FILE, 3, |l| {
        let (head, _) = l.rsplit_once(',').unwrap();
        format!("{head},1e308")
    });
    assert_names(&err, IMAGES_FILE, 3);
    assert!(
        err.contains("column `ms`") && err.contains("(or 0)"),
        "{err}"
    );
    let err = error_after_editing(LAYERS_FILE, 2, |l| {
        let (head, _) = l.rsplit_once(',').unwrap();
        format!("{head},1e-200")
    });
    assert_names(&err, LAYERS_FILE, 2);
}

#[test]
fn absurd_meta_figures_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = finished_run(root.path());
    let path = dir.join(META_FILE);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"theoretical_speedup\": 4.156"));
    fs::write(
        &path,
        text.replace(
            "\"theoretical_speedup\": 4.156",
            "\"theoretical_speedup\": 1e308",
        ),
    )
    .unwrap();
    let err = read_run(&dir).unwrap_err().to_string();
    assert!(
        err.contains("meta.json") && err.contains("theoretical_speedup") && err.contains("1e9"),
        "{err}"
    );
}

/// A FIFO in place of meta.json would block a plain read; a sparse images.csv of 1 TiB
/// would be read whole. Both are refused at once, naming the file.
#[test]
fn special_and_oversized_run_files_are_refused_unread() {
    let root = tempfile::tempdir().unwrap();
    let dir = finished_run(root.path());
    let images = dir.join(IMAGES_FILE);
    fs::OpenOptions::new()
        .write(true)
        .open(&images)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    let err = read_run(&dir).unwrap_err().to_string();
    assert!(
        err.contains("images.csv: is 1099511627776 bytes; this run's images.csv"),
        "{err}"
    );

    let meta = dir.join(META_FILE);
    fs::remove_file(&meta).unwrap();
    qcnn_files::testing::make_fifo(&meta).unwrap();
    let d = dir.clone();
    let err = qcnn_files::testing::within_deadline("read_run on a FIFO meta.json", 5, move || {
        read_run(&d).map(drop).unwrap_err().to_string()
    });
    assert!(err.contains("meta.json: is a FIFO"), "{err}");
}
