//! The paper's other networks and the new commands end to end: `qcnn theory` (AlexNet at the
//! authors' settings prints 4.156×, as reproduce records it), `reproduce --network` on a
//! 224×224 network, `qcnn evaluate` on a labelled data file (accuracy, agreement, the files
//! `qcnn report` renders), and clear errors for bad labels and models that do not fit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use qcnn_model::format::{encode_bin_u16, write_bin_f32};
use qcnn_model::synthetic::{synthetic_image, DEFAULT_SEED};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qcnn"))
        .args(args)
        .output()
        .expect("qcnn starts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "qcnn {args:?}\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn only_run(root: &Path) -> PathBuf {
    let runs = qcnn_results::list_runs(root).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

#[test]
fn theory_prints_the_authors_speedup_and_json() {
    let table = ok(&["theory"]);
    assert!(table.contains("| **4.156×** |"), "{table}");
    assert!(table.contains("| conv1 | 8/128 | 105.42 |"), "{table}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["theory", "--network", "vgg16", "--json"])).unwrap();
    assert_eq!(json["network"], "VGG-16");
    assert_eq!(json["layers"].as_array().unwrap().len(), 16);
    let vgg = qcnn_model::NetworkKind::Vgg16;
    let arch = vgg.architecture();
    let specs: Vec<_> = vgg
        .default_quantization()
        .specs(&arch)
        .into_iter()
        .map(Some)
        .collect();
    let cost = qcnn_model::cost::network_cost(&arch, &specs);
    assert_eq!(json["total"]["dense_macs"], cost.dense_macs());
    assert_eq!(json["total"]["speedup"], cost.speedup());
    let custom = ok(&["theory", "--network", "cnn-s", "--conv", "4/64", "--json"]);
    assert!(custom.contains("\"conv\": \"4/64\""), "{custom}");
    let bad = run(&["theory", "--conv", "3/128"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("conv3: d = 3, K = 128"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn reproduce_runs_a_224_network_and_records_its_theory() {
    let root = tempfile::tempdir().unwrap();
    let results = root.path().to_str().unwrap();
    ok(&[
        "reproduce",
        "--network",
        "cnn-s",
        "--repeats",
        "1",
        "--images",
        "1",
        "--warmup",
        "0",
        "--no-memory",
        "--results",
        results,
    ]);
    let run = qcnn_results::read_run(&only_run(root.path())).unwrap();
    assert!(
        run.meta.model.source.contains("CNN-S"),
        "{}",
        run.meta.model.source
    );
    let theory = run.meta.theoretical_speedup.unwrap();
    assert!((theory - 5.786).abs() < 5e-4, "{theory}");
    assert!(run
        .layers
        .iter()
        .any(|l| l.layer == "conv5" && l.mode == "qcnn"));
}

/// A labelled data file of synthetic images (the authors' layout), and its labels.
fn data_file(dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    let images: Vec<f32> = (0..n)
        .flat_map(|i| synthetic_image(DEFAULT_SEED, i))
        .collect();
    let data = dir.join("dataMatTst.single.bin");
    write_bin_f32(&data, &[n, 3, 227, 227], &images).unwrap();
    let labels = dir.join("lablVecTst.uint16.bin");
    let values: Vec<u16> = (0..n as u16).map(|i| i * 7).collect();
    std::fs::write(&labels, encode_bin_u16(&[n], &values)).unwrap();
    (data, labels)
}

#[test]
fn evaluate_records_accuracy_agreement_and_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    ok(&["generate-model", model.to_str().unwrap()]);
    let (data, _) = data_file(dir.path(), 3);
    let results = dir.path().join("runs");
    let stdout = ok(&[
        "evaluate",
        "--model",
        model.to_str().unwrap(),
        "--images",
        data.to_str().unwrap(),
        "--modes",
        "qcnn,qcnn-int8",
        "--results",
        results.to_str().unwrap(),
    ]);
    assert!(stdout.contains("| dense | 3 |"), "{stdout}");
    let run_dir = only_run(&results);
    let rows = qcnn_results::read_evaluation(&run_dir).unwrap().unwrap();
    assert_eq!(
        rows.iter().map(|r| r.mode.as_str()).collect::<Vec<_>>(),
        ["dense", "qcnn", "qcnn-int8"]
    );
    assert_eq!(rows[0].same_top1_as_dense, 3);
    // Exact Q-CNN is the dense function up to summation order: same classes.
    assert_eq!(rows[1].same_top1_as_dense, 3, "{rows:?}");
    let predictions = std::fs::read_to_string(run_dir.join("predictions.csv")).unwrap();
    assert_eq!(predictions.lines().count(), 1 + 3 * 3, "{predictions}");
    let run = qcnn_results::read_run(&run_dir).unwrap();
    assert!(run.complete);
    assert_eq!(run.repeats.len(), 3);
    let report = dir.path().join("report");
    ok(&[
        "report",
        run_dir.to_str().unwrap(),
        "--out",
        report.to_str().unwrap(),
    ]);
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(
        md.contains("### Accuracy") && md.contains("Same top-1 as dense"),
        "{md}"
    );
}

#[test]
fn evaluate_and_import_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    ok(&["generate-model", model.to_str().unwrap()]);
    let (data, labels) = data_file(dir.path(), 2);
    // Labels for another number of images.
    std::fs::write(&labels, encode_bin_u16(&[3], &[1, 2, 3])).unwrap();
    let out = run(&[
        "evaluate",
        "--model",
        model.to_str().unwrap(),
        "--images",
        data.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("3 labels for 2 images"),
        "{}",
        text(&out.stderr)
    );
    // An image folder without a ground-truth file.
    let out = run(&[
        "evaluate",
        "--model",
        model.to_str().unwrap(),
        "--images",
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        text(&out.stderr).contains("--labels"),
        "{}",
        text(&out.stderr)
    );
    // A model folder read as another network names the file that does not fit.
    let out = run(&[
        "classify",
        "--model",
        model.to_str().unwrap(),
        "--network",
        "vgg16",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("as vgg16"),
        "{}",
        text(&out.stderr)
    );
    // A dense ONNX model that fits no network.
    let onnx = dir.path().join("m.onnx");
    ok(&[
        "export-onnx",
        "--network",
        "cnn-s",
        "--out",
        onnx.to_str().unwrap(),
    ]);
    let out = run(&[
        "classify",
        "--model",
        onnx.to_str().unwrap(),
        "--network",
        "alexnet",
    ]);
    assert!(
        text(&out.stderr).contains("does not fit alexnet"),
        "{}",
        text(&out.stderr)
    );
    // The right network found by itself, dense only.
    let stdout = ok(&["classify", "--model", onnx.to_str().unwrap()]);
    assert!(stdout.contains("CNN-S, dense"), "{stdout}");
    let out = run(&[
        "classify",
        "--model",
        onnx.to_str().unwrap(),
        "--mode",
        "qcnn",
    ]);
    assert!(
        text(&out.stderr).contains("no codebooks"),
        "{}",
        text(&out.stderr)
    );
}
