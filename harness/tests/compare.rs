//! `qcnn compare` end to end: a real `--isa scalar` run against an `--isa auto` run (tiny, on
//! the embedded default) regresses in the look-up layers and exits 1; a run against itself
//! exits 0; bad input exits 2 with the error `qcnn report` gives.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use qcnn_kernels::Isa;

fn qcnn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qcnn"))
}

fn run(args: &[&str]) -> Output {
    qcnn().args(args).output().expect("qcnn starts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn fixture(id: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../reports/fixtures")
        .join(id)
        .display()
        .to_string()
}

const OLDER: &str = "20261120T090000Z-older1";
const COMPLETE: &str = "20261127T100000Z-cmplt1";

/// A 2 × 3-image reproduce run at `isa` into `root/<isa>/`; returns that folder.
fn tiny_run(root: &Path, isa: &str) -> PathBuf {
    let results = root.join(isa);
    let out = run(&[
        "--isa",
        isa,
        "reproduce",
        "--repeats",
        "2",
        "--images",
        "3",
        "--warmup",
        "1",
        "--no-memory",
        "--results",
        results.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    results
}

/// The Markdown table row whose first cell is `first`, as trimmed cells.
fn row(md: &str, first: &str) -> Vec<String> {
    md.lines()
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.first().map(String::as_str) == Some(first))
        .unwrap_or_else(|| panic!("no row {first:?} in:\n{md}"))
}

#[test]
fn scalar_lookups_against_auto_regress_and_exit_1_and_a_run_against_itself_exits_0() {
    if Isa::detect() == Isa::Scalar {
        println!("SKIPPED: this CPU has no SIMD look-up kernels: --isa auto is --isa scalar");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let auto = tiny_run(root.path(), "auto");
    let scalar = tiny_run(root.path(), "scalar");
    let (auto, scalar) = (auto.to_str().unwrap(), scalar.to_str().unwrap());

    let md_file = root.path().join("comment.md");
    let out = run(&[
        "compare",
        auto,
        scalar,
        "--markdown",
        md_file.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("regressed beyond 2%: exit status 1"));
    for layer in [
        "conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8",
    ] {
        let cells = row(&stdout, &format!("qcnn {layer} (lookup)"));
        assert_eq!(cells[4], "REGRESSED", "{cells:?}");
    }
    assert_eq!(row(&stdout, "qcnn (whole network)")[4], "REGRESSED");
    assert_eq!(row(&stdout, "qcnn speed-up over dense")[4], "REGRESSED");
    assert!(
        stdout.contains("**mode qcnn:** kernel conv-lut-f32-"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ISA scalar"),
        "the change is listed: {stdout}"
    );
    let md = fs::read_to_string(&md_file).unwrap();
    assert!(md.starts_with("## qcnn compare: "), "{md}");
    assert!(md.contains("REGRESSED") && md.contains("<details>"), "{md}");

    let out = run(&["compare", auto, auto, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["schema"], "qcnn-compare/1");
    assert_eq!(v["tally"]["regressed"], 0);
    assert_eq!(v["tally"]["improved"], 0);
    let changes = v["changes"].as_array().unwrap();
    assert!(changes.len() > 40, "{v}");
    assert!(
        changes.iter().all(|c| c["verdict"] == "within_noise"),
        "{v}"
    );
}

#[test]
fn damaged_or_missing_runs_exit_2_with_the_error_report_gives() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(COMPLETE);
    fs::create_dir(&dir).unwrap();
    for entry in fs::read_dir(fixture(COMPLETE)).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let layers = fs::read_to_string(dir.join("layers.csv")).unwrap();
    fs::write(dir.join("layers.csv"), layers.replacen("3.7", "3,7", 1)).unwrap();
    let dir = dir.to_str().unwrap();

    let report = run(&[
        "report",
        dir,
        "--out",
        tmp.path().join("r").to_str().unwrap(),
    ]);
    assert_eq!(report.status.code(), Some(1));
    let report_error = text(&report.stderr);
    assert!(
        report_error.contains("layers.csv, line 2"),
        "{report_error}"
    );

    let out = run(&["compare", &fixture(OLDER), dir]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr), report_error);

    let missing = tmp.path().join("nothing here");
    let out = run(&["compare", &fixture(OLDER), missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nothing here: no such folder"));
}

#[test]
fn incomparable_runs_exit_2_unless_allowed_and_bad_options_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(COMPLETE);
    fs::create_dir(&dir).unwrap();
    for entry in fs::read_dir(fixture(COMPLETE)).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let meta = fs::read_to_string(dir.join("meta.json")).unwrap();
    let meta = meta.replace("\"core_type\": \"SkylakeX\"", "\"core_type\": \"Haswell\"");
    fs::write(dir.join("meta.json"), meta).unwrap();
    let dir = dir.to_str().unwrap();

    let out = run(&["compare", &fixture(OLDER), dir]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("not comparable") && err.contains("OpenBLAS core type"),
        "{err}"
    );
    assert!(err.contains("BASE SkylakeX, NEW Haswell"), "{err}");

    let out = run(&["compare", &fixture(OLDER), dir, "--allow-different"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let warning = stdout.find("OpenBLAS core type differs").expect("listed");
    assert!(
        warning < stdout.find("## Whole network").unwrap(),
        "{stdout}"
    );

    let out = run(&[
        "compare",
        &fixture(OLDER),
        &fixture(COMPLETE),
        "--threshold",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("ambiguous"));
    let out = run(&[
        "compare",
        &fixture(OLDER),
        &fixture(COMPLETE),
        "--confidence",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--confidence"));
}
