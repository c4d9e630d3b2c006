//! `qcnn classify` and `qcnn generate-model` end to end.

use std::process::{Command, Output};

use qcnn_model::format::read_bin_f32;
use qcnn_testdata::{max_relative_error, shared_or_skip};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qcnn"))
        .args(args)
        .output()
        .expect("qcnn starts")
}

#[test]
fn classifies_the_embedded_default_in_every_mode() {
    for mode in ["dense", "qcnn"] {
        let out = run(&["classify", "--mode", mode]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ranks = stdout
            .lines()
            .filter(|l| {
                l.trim_start()
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit())
            })
            .count();
        assert_eq!(ranks, 5, "top-5 rows: {stdout}");
    }
}

#[test]
fn dumps_layers_that_match_the_authors_outputs() {
    let (Some(model), Some(golden)) = (
        shared_or_skip("classify dump", "qcnn-alexnet"),
        shared_or_skip("classify dump", "golden/ILSVRC2012_val_00000001"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bmp = model.join("Bmp.Files/ILSVRC2012_val_00000001.BMP");
    let out = run(&[
        "classify",
        bmp.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--mode",
        "qcnn",
        "--dump-layers",
        dir.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("truth:  65 sea snake"), "{stdout}");
    for name in [
        "input", "conv1", "norm1", "pool1", "conv2", "norm2", "pool2", "conv3", "conv4", "conv5",
        "pool5", "fc6", "fc7", "fc8", "prob",
    ] {
        let file = |d: &std::path::Path| read_bin_f32(&d.join(format!("{name}.bin"))).unwrap();
        let (got, want) = (file(dir.path()), file(&golden));
        assert_eq!(got.dims, want.dims, "{name}");
        assert!(max_relative_error(&got.data, &want.data) <= 1e-5, "{name}");
    }
}

#[test]
fn a_file_that_is_not_a_bmp_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("photo.bmp");
    std::fs::write(&fake, b"not an image at all").unwrap();
    let out = run(&["classify", fake.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("photo.bmp"),
        "{stderr}"
    );
}

#[test]
fn a_generated_model_reads_back_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    assert!(run(&["generate-model", path]).status.success());
    let embedded = run(&["classify", "--mode", "qcnn"]);
    let from_disk = run(&["classify", "--mode", "qcnn", "--model", path]);
    assert!(
        from_disk.status.success(),
        "{}",
        String::from_utf8_lossy(&from_disk.stderr)
    );
    let probs = |o: &Output| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .skip(3)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        probs(&embedded),
        probs(&from_disk),
        "same model, same image, same top-5"
    );
}
