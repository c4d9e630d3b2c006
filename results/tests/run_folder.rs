//! Writing run folders and reading them back: round trip, interruption, folder naming.

mod common;

use std::fs;
use std::io::Write;

use common::{meta, record, MODES};
use qcnn_results::{
    list_runs, read_run, RepeatRecord, RunWriter, IMAGES_FILE, LAYERS_FILE, META_FILE,
    REPEATS_FILE, SUMMARY_FILE,
};

#[test]
fn round_trip_of_a_finished_run() {
    let root = tempfile::tempdir().unwrap();
    let mut w = RunWriter::create(root.path(), meta(3)).unwrap();
    let records: Vec<RepeatRecord> = (1..=3).map(record).collect();
    for r in &records {
        w.append_repeat(r).unwrap();
    }
    let dir = w.dir().to_path_buf();
    let written_meta = w.meta().clone();
    let summary = w.finish().unwrap();

    let run = read_run(&dir).unwrap();
    assert!(run.complete);
    assert_eq!(run.completed_repeats, 3);
    assert!(run.meta.finished && run.meta.finished_utc.is_some());
    assert_eq!(run.meta.completed_repeats, 3);
    assert_eq!(run.meta.system, written_meta.system);
    assert_eq!(run.meta.modes, written_meta.modes);
    assert_eq!(
        run.repeats,
        records
            .iter()
            .flat_map(|r| r.rows.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        run.layers,
        records
            .iter()
            .flat_map(|r| r.layers.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        run.images,
        records
            .iter()
            .flat_map(|r| r.images.clone())
            .collect::<Vec<_>>()
    );
    let stored = run.summary.clone().unwrap();
    assert_eq!(stored, summary);
    assert!(stored.complete);
    assert_eq!(stored.analysis, run.analysis());
    assert_eq!(stored.results_dir, dir.display().to_string());
}

#[test]
fn summary_json_has_the_documented_shape() {
    let root = tempfile::tempdir().unwrap();
    let mut w = RunWriter::create(root.path(), meta(1)).unwrap();
    w.append_repeat(&record(1)).unwrap();
    let dir = w.dir().to_path_buf();
    w.finish().unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join(SUMMARY_FILE)).unwrap()).unwrap();
    for key in [
        "results_dir",
        "complete",
        "modes",
        "speedup",
        "theoretical_speedup",
    ] {
        assert!(json.get(key).is_some(), "summary.json lacks {key}: {json}");
    }
    let dense = &json["modes"]["dense"];
    for key in [
        "ms_per_image",
        "median_ms",
        "min_ms",
        "max_ms",
        "cv",
        "peak_rss_bytes",
        "kernel",
    ] {
        assert!(dense.get(key).is_some(), "modes.dense lacks {key}");
    }
    assert!(json["speedup"]["qcnn"].as_f64().unwrap() > 1.0);
    assert!(json["speedup"].get("dense").is_none());
}

#[test]
fn provenance_is_recorded() {
    let root = tempfile::tempdir().unwrap();
    let w = RunWriter::create(root.path(), meta(1)).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(w.dir().join(META_FILE)).unwrap()).unwrap();
    assert_eq!(json["finished"], false);
    assert!(json["build"]["rustc"]
        .as_str()
        .unwrap()
        .starts_with("rustc "));
    assert!(!json["build"]["profile"].as_str().unwrap().is_empty());
    assert_eq!(
        json["run_id"].as_str().unwrap(),
        w.dir().file_name().unwrap()
    );
    if cfg!(target_os = "linux") {
        assert!(!json["system"]["cpu_model"].as_str().unwrap().is_empty());
        assert!(json["system"]["memory_bytes"].as_u64().unwrap() > 0);
        assert!(json["load_at_start"]["threads"].as_u64().unwrap() > 0);
    }
}

#[test]
fn interrupted_run_reads_as_incomplete() {
    let root = tempfile::tempdir().unwrap();
    let mut w = RunWriter::create(root.path(), meta(3)).unwrap();
    w.append_repeat(&record(1)).unwrap();
    let dir = w.dir().to_path_buf();
    drop(w); // killed: no finish

    let run = read_run(&dir).unwrap();
    assert!(!run.complete);
    assert!(!run.meta.finished);
    assert_eq!(run.completed_repeats, 1);
    assert_eq!(run.meta.planned_repeats, 3);
    assert_eq!(run.repeats.len(), MODES.len());
    let summary = run.summary.unwrap();
    assert!(!summary.complete);
    assert_eq!(summary.completed_repeats, 1);
}

#[test]
fn half_written_repeat_of_an_unfinished_run_is_dropped() {
    let root = tempfile::tempdir().unwrap();
    let mut w = RunWriter::create(root.path(), meta(3)).unwrap();
    w.append_repeat(&record(1)).unwrap();
    let dir = w.dir().to_path_buf();
    drop(w);
    // Killed while writing repeat 2: its layer rows landed, images.csv got half a line.
    append(&dir.join(LAYERS_FILE), "2,dense,conv1,table,1.5\n");
    append(&dir.join(IMAGES_FILE), "2,dense,0,3.2");

    let run = read_run(&dir).unwrap();
    assert_eq!(run.completed_repeats, 1);
    assert!(run.layers.iter().all(|l| l.repeat == 1));
    assert!(run.images.iter().all(|l| l.repeat == 1));
}

#[test]
fn partial_repeat_rows_of_an_unfinished_run_are_dropped() {
    let root = tempfile::tempdir().unwrap();
    let mut w = RunWriter::create(root.path(), meta(3)).unwrap();
    w.append_repeat(&record(1)).unwrap();
    let dir = w.dir().to_path_buf();
    drop(w);
    // Killed inside the write of repeat 2's repeat rows: only the dense row landed.
    let dense = fs::read_to_string(dir.join(REPEATS_FILE))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .replacen("1,", "2,", 1);
    append(&dir.join(REPEATS_FILE), &format!("{dense}\n"));
    let run = read_run(&dir).unwrap();
    assert_eq!(run.completed_repeats, 1);
    assert!(run.repeats.iter().all(|r| r.repeat == 1));

    // The same rows in a finished run are an error.
    let meta_path = dir.join(META_FILE);
    let text = fs::read_to_string(&meta_path).unwrap();
    fs::write(
        &meta_path,
        text.replace("\"finished\": false", "\"finished\": true"),
    )
    .unwrap();
    let err = read_run(&dir).unwrap_err().to_string();
    assert!(
        err.contains("repeats.csv, line 4") && err.contains("lacks rows"),
        "{err}"
    );
}

#[test]
fn finished_run_with_rows_of_an_uncommitted_repeat_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    let mut w = RunWriter::create(root.path(), meta(3)).unwrap();
    w.append_repeat(&record(1)).unwrap();
    let dir = w.dir().to_path_buf();
    w.finish().unwrap();
    append(&dir.join(LAYERS_FILE), "2,dense,conv1,table,1.5\n");
    let err = read_run(&dir).unwrap_err().to_string();
    assert!(err.contains("layers.csv, line 6"), "{err}");
    assert!(err.contains("repeat 2"), "{err}");
}

#[test]
fn finished_but_short_run_is_incomplete() {
    let root = tempfile::tempdir().unwrap();
    let mut w = RunWriter::create(root.path(), meta(3)).unwrap();
    w.append_repeat(&record(1)).unwrap();
    let dir = w.dir().to_path_buf();
    let summary = w.finish().unwrap();
    assert!(!summary.complete);
    let run = read_run(&dir).unwrap();
    assert!(run.meta.finished && !run.complete);
    assert_eq!(run.meta.completed_repeats, 1);
}

#[test]
fn two_runs_in_the_same_second_get_different_folders() {
    let root = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = (0..20)
        .map(|_| {
            RunWriter::create(root.path(), meta(1))
                .unwrap()
                .dir()
                .to_path_buf()
        })
        .collect();
    let mut names: Vec<String> = dirs
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for name in &names {
        let (stamp, id) = name.split_once('-').unwrap();
        assert_eq!(stamp.len(), 16, "{name}");
        assert!(
            stamp.ends_with('Z') && stamp.as_bytes()[8] == b'T',
            "{name}"
        );
        assert_eq!(id.len(), 6, "{name}");
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 20);
    assert_eq!(list_runs(root.path()).unwrap().len(), 20);
}

#[test]
fn writer_refuses_records_that_break_the_plan() {
    let root = tempfile::tempdir().unwrap();
    let mut w = RunWriter::create(root.path(), meta(2)).unwrap();
    let refuse = |w: &mut RunWriter, rec: &RepeatRecord, needle: &str| {
        let err = w.append_repeat(rec).unwrap_err().to_string();
        assert!(err.contains(needle), "expected '{needle}' in: {err}");
    };
    refuse(&mut w, &record(2), "repeat 1 is next");
    let mut missing = record(1);
    missing.rows.pop();
    refuse(&mut w, &missing, "no repeat row for mode(s) qcnn");
    let mut foreign = record(1);
    foreign.rows[0].mode = "int4".into();
    refuse(&mut w, &foreign, "not a planned mode");
    let mut nan = record(1);
    nan.images[0].ms = f64::NAN;
    refuse(&mut w, &nan, "column `ms`");
    let mut stray = record(1);
    stray.layers[0].repeat = 2;
    refuse(&mut w, &stray, "a row of repeat 2");
    let mut dup = record(1);
    dup.images.push(dup.images[0].clone());
    refuse(&mut w, &dup, "duplicate row");

    // Refusals write nothing: the run is still clean and accepts the right repeats.
    w.append_repeat(&record(1)).unwrap();
    w.append_repeat(&record(2)).unwrap();
    refuse(&mut w, &record(3), "outside 1..=2");
    let dir = w.dir().to_path_buf();
    w.finish().unwrap();
    assert!(read_run(&dir).unwrap().complete);
}

#[test]
fn invalid_plans_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let mut m = meta(1);
    m.modes.push(m.modes[0].clone());
    let err = RunWriter::create(root.path(), m).err().unwrap().to_string();
    assert!(err.contains("planned twice"), "{err}");
    assert!(RunWriter::create(root.path(), meta(0)).is_err());
    assert!(
        fs::read_dir(root.path()).unwrap().next().is_none(),
        "no folder for a refused plan"
    );
}

#[test]
fn repeats_csv_keeps_the_raw_columns() {
    let root = tempfile::tempdir().unwrap();
    let mut w = RunWriter::create(root.path(), meta(1)).unwrap();
    w.append_repeat(&record(1)).unwrap();
    let text = fs::read_to_string(w.dir().join(REPEATS_FILE)).unwrap();
    let header = text.lines().next().unwrap();
    assert_eq!(
        header,
        "repeat,mode,kernel,images,total_ms,ms_per_image,cpu_ms,wall_ms,top1_correct,top5_correct,peak_rss_bytes"
    );
    assert_eq!(text.lines().count(), 1 + MODES.len());
}

fn append(path: &std::path::Path, text: &str) {
    let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn column_constants_follow_the_row_structs() {
    use qcnn_results::{
        ImageRow, LayerRow, Phase, RepeatRow, IMAGE_COLUMNS, LAYER_COLUMNS, REPEAT_COLUMNS,
    };
    fn header<T: serde::Serialize>(row: &T) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(row).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        text.lines().next().unwrap().to_string()
    }
    let layer = LayerRow {
        repeat: 1,
        mode: "m".into(),
        layer: "l".into(),
        phase: Phase::All,
        ms_per_image: 1.0,
    };
    let image = ImageRow {
        repeat: 1,
        mode: "m".into(),
        image: 0,
        ms: 1.0,
    };
    assert_eq!(
        header(&RepeatRow::new(1, "m", "k", 1, 1.0, 1.0, 1.0)),
        REPEAT_COLUMNS.join(",")
    );
    assert_eq!(header(&layer), LAYER_COLUMNS.join(","));
    assert_eq!(header(&image), IMAGE_COLUMNS.join(","));
}
