//! Statistics and speed-ups: from medians of per-repeat ms/image, over `dense`.

use std::collections::BTreeSet;

use proptest::prelude::*;
use qcnn_results::{atomic_write, sha256_file, stats, summarize, ImageRow, RepeatRow};

/// Statistics of a handful of values are exact up to a few roundings.
const STATS_REL_TOL: f64 = 1e-12;

fn row(repeat: u32, mode: &str, ms_per_image: f64) -> RepeatRow {
    RepeatRow::new(
        repeat,
        mode,
        &format!("k_{mode}"),
        10,
        ms_per_image * 10.0,
        0.0,
        0.0,
    )
}

#[test]
fn speedup_is_a_ratio_of_medians() {
    // Means would give 20 / 36.33; medians ignore the outlier 100.
    let rows = vec![
        row(1, "dense", 10.0),
        row(1, "qcnn", 5.0),
        row(2, "dense", 30.0),
        row(2, "qcnn", 4.0),
        row(3, "dense", 20.0),
        row(3, "qcnn", 100.0),
    ];
    let a = summarize(&rows, Some(4.156));
    assert!((a.modes["dense"].median_ms - 20.0).abs() < STATS_REL_TOL * 20.0);
    assert!((a.modes["qcnn"].median_ms - 5.0).abs() < STATS_REL_TOL * 5.0);
    assert!((a.speedup["qcnn"] - 4.0).abs() < STATS_REL_TOL * 4.0);
    assert_eq!(a.speedup.len(), 1);
    assert_eq!(a.theoretical_speedup, Some(4.156));
    assert_eq!(a.modes["qcnn"].ms_per_image.len(), 3);
    assert_eq!(a.modes["qcnn"].min_ms, 4.0);
    assert_eq!(a.modes["qcnn"].max_ms, 100.0);
    assert_eq!(a.modes["qcnn"].kernel, "k_qcnn");
    assert_eq!(a.modes["qcnn"].top1_accuracy, None);
}

#[test]
fn no_dense_mode_means_no_speedups() {
    let a = summarize(&[row(1, "qcnn", 5.0)], None);
    assert!(a.speedup.is_empty());
    assert_eq!(a.modes["qcnn"].cv, None);
    assert!(summarize(&[], None).modes.is_empty());
}

#[test]
fn accuracy_and_rss_over_repeats() {
    let rows = vec![
        row(1, "dense", 1.0).with_accuracy(6, 9).with_peak_rss(5),
        row(2, "dense", 1.0).with_accuracy(4, 8).with_peak_rss(7),
    ];
    let m = &summarize(&rows, None).modes["dense"];
    assert_eq!(m.top1_accuracy, Some(0.5));
    assert_eq!(m.top5_accuracy, Some(0.85));
    assert_eq!(m.peak_rss_bytes, Some(7));
}

#[test]
fn atomic_write_replaces_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.json");
    atomic_write(&path, b"first").unwrap();
    atomic_write(&path, b"second").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"second");
    let names: BTreeSet<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["summary.json".to_string()]));
}

#[test]
fn atomic_write_into_a_missing_folder_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let err = atomic_write(&dir.path().join("no/such.json"), b"x")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("such.json") && err.contains("cannot create"),
        "{err}"
    );
}

#[test]
fn sha256_of_a_known_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("abc");
    std::fs::write(&path, "abc").unwrap();
    assert_eq!(
        sha256_file(&path).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert!(sha256_file(&dir.path().join("missing"))
        .unwrap_err()
        .to_string()
        .contains("missing"));
}

proptest! {
    #[test]
    fn median_lies_between_min_and_max(values in prop::collection::vec(0.0f64..1e6, 1..20)) {
        let (lo, mid, hi) = (stats::min(&values).unwrap(), stats::median(&values).unwrap(), stats::max(&values).unwrap());
        prop_assert!(lo <= mid && mid <= hi);
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        prop_assert_eq!(lo, sorted[0]);
        if let Some(cv) = stats::cv(&values) {
            prop_assert!(cv >= 0.0);
        }
    }

    /// Rows survive the CSV text exactly (round-trip float formatting).
    #[test]
    fn image_rows_round_trip_through_csv(ms in prop::collection::vec(0.0f64..1e4, 1..8)) {
        let rows: Vec<ImageRow> = ms.iter().enumerate()
            .map(|(i, &ms)| ImageRow { repeat: 1, mode: "qcnn".into(), image: i as u32, ms })
            .collect();
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in &rows { w.serialize(r).unwrap(); }
        let bytes = w.into_inner().unwrap();
        let back: Vec<ImageRow> = csv::Reader::from_reader(&bytes[..])
            .deserialize().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(back, rows);
    }
}
