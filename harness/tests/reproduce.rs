//! `qcnn reproduce` end to end on the embedded default: the table's shape, result files that
//! parse with the schema, a killed run that stays readable, and clear errors for bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use qcnn_model::format::write_bin_f32;

fn qcnn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qcnn"))
}

fn run(args: &[&str]) -> Output {
    qcnn().args(args).output().expect("qcnn starts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The one run folder under `root`.
fn only_run(root: &Path) -> PathBuf {
    let runs = qcnn_results::list_runs(root).expect("runs listed");
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

#[test]
fn a_short_run_prints_the_authors_table_and_records_readable_files() {
    let root = tempfile::tempdir().unwrap();
    let results = root.path().to_str().unwrap();
    let out = run(&[
        "reproduce",
        "--repeats",
        "2",
        "--images",
        "3",
        "--warmup",
        "1",
        "--results",
        results,
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{}", stdout, text(&out.stderr));

    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("| Time (ms)"))
        .take(5)
        .collect();
    let header: Vec<&str> = table[0]
        .split('|')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        ["Time (ms)", "CNN", "Quantized-CNN", "Speed-up"],
        "{table:?}"
    );
    assert!(
        table[2].starts_with("| 1 ")
            && table[3].starts_with("| 2 ")
            && table[4].starts_with("| Ave."),
        "{table:?}"
    );
    assert!(
        stdout.contains("Theoretical") && stdout.contains("4.156×"),
        "{stdout}"
    );
    assert!(stdout.contains("Peak RSS"), "{stdout}");

    let run = qcnn_results::read_run(&only_run(root.path())).expect("every result file parses");
    assert!(run.complete);
    assert_eq!(run.repeats.len(), 2 * 2, "two repeats × two modes");
    assert_eq!(run.images.len(), 2 * 2 * 3);
    assert!(run
        .layers
        .iter()
        .any(|l| l.layer == "conv3" && l.phase == qcnn_results::Phase::Lookup));
    assert!(run
        .repeats
        .iter()
        .all(|r| r.peak_rss_bytes.is_some_and(|b| b > 0)));
    let meta = &run.meta;
    assert_eq!(
        meta.blas.as_ref().map(|b| b.library.as_str()),
        Some("OpenBLAS")
    );
    assert!(meta.pinned_core.is_some() && meta.storage.is_some() && meta.layer_ops.len() == 8);
    let summary = run.summary.expect("summary.json");
    assert!(summary.analysis.speedup["qcnn"] > 0.0);
}

#[test]
fn json_prints_the_documented_summary() {
    let root = tempfile::tempdir().unwrap();
    let out = run(&[
        "reproduce",
        "--repeats",
        "1",
        "--images",
        "2",
        "--warmup",
        "0",
        "--no-memory",
        "--json",
        "--results",
        root.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");
    assert!(v["results_dir"].is_string());
    for mode in ["dense", "qcnn"] {
        let m = &v["modes"][mode];
        assert_eq!(m["ms_per_image"].as_array().map(Vec::len), Some(1), "{v}");
        assert!(m["median_ms"].is_f64() && m["kernel"].is_string(), "{v}");
        assert!(m.get("peak_rss_bytes").is_some(), "{v}");
    }
    assert!(
        v["speedup"]["qcnn"].is_f64() && v["theoretical_speedup"].is_f64(),
        "{v}"
    );
}

#[test]
fn a_killed_run_leaves_the_finished_repeats_readable() {
    let root = tempfile::tempdir().unwrap();
    let mut child = qcnn()
        .args([
            "reproduce",
            "--repeats",
            "200",
            "--images",
            "4",
            "--warmup",
            "0",
            "--no-memory",
            "--results",
        ])
        .arg(root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let finished_repeats = || {
        qcnn_results::list_runs(root.path())
            .ok()
            .and_then(|runs| {
                runs.first()
                    .and_then(|r| std::fs::read_to_string(r.join("repeats.csv")).ok())
            })
            .map_or(0, |csv| csv.lines().count().saturating_sub(1) / 2)
    };
    while finished_repeats() < 1 {
        assert!(Instant::now() < deadline, "no repeat recorded in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let run = qcnn_results::read_run(&only_run(root.path())).expect("a killed run reads");
    assert!(
        !run.complete && run.completed_repeats >= 1,
        "{} of {}",
        run.completed_repeats,
        run.meta.planned_repeats
    );
}

fn fails_with(args: &[&str], needles: &[&str]) {
    let out = run(args);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{args:?}: '{needle}' not in: {stderr}"
        );
    }
}

#[test]
fn bad_arguments_give_clear_errors() {
    let root = tempfile::tempdir().unwrap();
    let results = root.path().join("runs");
    let results = results.to_str().unwrap();
    fails_with(
        &["reproduce", "--repeats", "0", "--results", results],
        &["--repeats", "0"],
    );
    fails_with(
        &["reproduce", "--core", "9999", "--results", results],
        &["--core 9999", "no such core"],
    );
    fails_with(
        &[
            "reproduce",
            "--data",
            "/no/such/dataMatTst.single.bin",
            "--results",
            results,
        ],
        &["/no/such/dataMatTst.single.bin"],
    );
    let wrong = root.path().join("wrong.bin");
    write_bin_f32(&wrong, &[2, 3, 10, 10], &vec![0.0; 600]).unwrap();
    fails_with(
        &[
            "reproduce",
            "--data",
            wrong.to_str().unwrap(),
            "--results",
            results,
        ],
        &["wrong.bin", "(N, 3, 227, 227)"],
    );
    fails_with(
        &["reproduce", "--modes", "dense,turbo", "--results", results],
        &["unknown mode 'turbo'"],
    );
    assert!(
        !root.path().join("runs").exists(),
        "no run folder for a refused run"
    );
}
