//! The `qcnn` binary over a table of bad invocations, one or more per class of issue 13:
//! special files and unbounded reads, non-finite numbers, sizes that would allocate before
//! being checked, values that would be changed silently, checks that came after the work,
//! folder entries of the wrong kind. Every case must end within its deadline with exit code
//! 1 (our check) or 2 (clap's), a message naming the argument or the file and the rule, and
//! no panic. Cases refused by the argument check must print nothing before the error: no
//! BLAS restart notice, no note about a mean image, no progress (nothing was loaded,
//! restarted or measured).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qcnn_model::folder::{self, file_name, BIAS, CENTROIDS};
use qcnn_model::format::{encode_bin_f32, parse_bin_f32, write_bin_f32};
use qcnn_model::synthetic::synthetic_model;

/// Longest any bad invocation may take (the slowest load the embedded-size model).
const DEADLINE: Duration = Duration::from_secs(120);
const PREFIX: &str = "m";

/// How a case must end.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Refusal {
    /// By the argument check (exit 1), before any work: stderr starts with the error.
    Validation,
    /// By clap (exit 2).
    Clap,
    /// While working (exit 1), naming a file or a layer.
    Work,
}

struct Case {
    args: Vec<String>,
    refusal: Refusal,
    needles: Vec<String>,
}

fn case(args: &[&str], refusal: Refusal, needles: &[&str]) -> Case {
    Case {
        args: args.iter().map(|s| s.to_string()).collect(),
        refusal,
        needles: needles.iter().map(|s| s.to_string()).collect(),
    }
}

/// Runs `qcnn args`, killing it at the deadline; returns (exit code, stderr).
fn run(args: &[String], cwd: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_qcnn"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qcnn starts");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            return (status.code(), stderr);
        }
        if start.elapsed() > DEADLINE {
            child.kill().unwrap();
            panic!("qcnn {args:?} still running after {DEADLINE:?} (a hang?)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn check(c: &Case, cwd: &Path) {
    let (code, stderr) = run(&c.args, cwd);
    let what = format!("qcnn {:?}\nstderr:\n{stderr}", c.args);
    assert!(!stderr.contains("panicked"), "panic: {what}");
    let want = match c.refusal {
        Refusal::Clap => 2,
        Refusal::Validation | Refusal::Work => 1,
    };
    assert_eq!(code, Some(want), "exit code: {what}");
    for needle in &c.needles {
        assert!(
            stderr.contains(needle.as_str()),
            "'{needle}' missing: {what}"
        );
    }
    if c.refusal == Refusal::Validation {
        assert!(
            stderr.starts_with("error: "),
            "a refused argument must stop everything before any work: {what}"
        );
    }
}

fn mkfifo(path: &Path) {
    qcnn_files::testing::make_fifo(path).unwrap();
}

/// A model folder of the embedded synthetic AlexNet (codebooks only, ≈ 13 MB).
fn model_dir(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    folder::save(&synthetic_model(1), &dir, PREFIX).unwrap();
    dir
}

/// Rewrites one f32 file of a model folder with `edit` applied to its values.
fn edit_floats(dir: &Path, kind: &str, layer: usize, edit: impl Fn(&mut [f32])) -> PathBuf {
    let path = dir.join(file_name(PREFIX, kind, layer, "bin"));
    let array = parse_bin_f32(&std::fs::read(&path).unwrap(), &path).unwrap();
    let mut data = array.data;
    edit(&mut data);
    // Written raw: the encoder would accept the values, the reader must refuse them.
    std::fs::write(&path, encode_bin_f32(&array.dims, &data)).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Items 2 and 8: special files where a file belongs, wrong kinds in a model folder.
#[test]
fn special_files_and_wrong_kinds_are_refused_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let fifo = root.join("photo.bmp");
    mkfifo(&fifo);
    let zero = root.join("zero.bin");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let folder_as_file = root.join("mean.bin");
    std::fs::create_dir(&folder_as_file).unwrap();

    // A model whose conv2 bias is a FIFO.
    let fifo_model = model_dir(root, "fifo_model");
    let bias = fifo_model.join(file_name(PREFIX, BIAS, 4, "bin"));
    std::fs::remove_file(&bias).unwrap();
    mkfifo(&bias);
    // A model whose fc6 codebook links to /dev/zero.
    let zero_model = model_dir(root, "zero_model");
    let ctrd = zero_model.join(file_name(PREFIX, CENTROIDS, 15, "bin"));
    std::fs::remove_file(&ctrd).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &ctrd).unwrap();
    // The authors' layout with a Bin.Files symlink loop, and one with a mean folder.
    let looped = root.join("looped");
    std::fs::create_dir_all(looped.join("AlexNet")).unwrap();
    let link = looped.join("AlexNet/Bin.Files");
    std::os::unix::fs::symlink(&link, &link).unwrap();
    let mean_dir = root.join("mean_dir");
    let bin = mean_dir.join("AlexNet/Bin.Files");
    folder::save(&synthetic_model(1), &bin, PREFIX).unwrap();
    std::fs::create_dir(mean_dir.join("AlexNet/imagenet_mean.single.bin")).unwrap();
    let image = root.join("image.bmp");
    write_bmp(&image);
    // A run folder whose meta.json is a FIFO, and an empty one.
    let fifo_run = root.join("fifo_run");
    std::fs::create_dir(&fifo_run).unwrap();
    mkfifo(&fifo_run.join("meta.json"));
    let empty_run = root.join("empty_run");
    std::fs::create_dir(&empty_run).unwrap();
    // An image folder with a FIFO image.
    let images = root.join("images");
    std::fs::create_dir(&images).unwrap();
    mkfifo(&images.join("a.png"));

    use Refusal::*;
    let cases = [
        case(
            &["classify", s(&fifo)],
            Validation,
            &["IMAGE", "photo.bmp: is a FIFO"],
        ),
        case(
            &["classify", s(&zero)],
            Validation,
            &["zero.bin: is a character device"],
        ),
        case(
            &["classify", "--mean", s(&folder_as_file)],
            Validation,
            &["--mean", "mean.bin: is a directory"],
        ),
        case(
            &["reproduce", "--data", s(&zero)],
            Validation,
            &["--data", "is a character device"],
        ),
        case(
            &["classify", "--model", s(&fifo_model)],
            Work,
            &["m.biasVec.05.bin: is a FIFO (named pipe), not a regular file"],
        ),
        case(
            &["classify", "--model", s(&zero_model)],
            Work,
            &["m.ctrdLst.16.bin: is a character device"],
        ),
        case(
            &["classify", "--model", s(&looped)],
            Validation,
            &["Bin.Files", "symbolic links"],
        ),
        case(
            &["classify", "--model", s(&mean_dir), s(&image)],
            Work,
            &["imagenet_mean.single.bin: is a directory, not a regular file"],
        ),
        case(&["report", s(&fifo_run)], Work, &["meta.json: is a FIFO"]),
        case(
            &[
                "reproduce",
                "--images-dir",
                s(&images),
                "--repeats",
                "1",
                "--images",
                "1",
            ],
            Work,
            &["a.png: is a FIFO"],
        ),
    ];
    for c in &cases {
        check(c, root);
    }
    // Item 8: the OS message is printed once.
    let (_, stderr) = run(&["report".into(), s(&empty_run).into()], root);
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
}

/// Item 3: NaN or infinity in a model file or the mean image is a load error naming the file
/// and the position; finite values that overflow make the run say so, naming the layer.
#[test]
fn non_finite_values_are_load_errors_and_overflow_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let nan_bias = model_dir(root, "nan_bias");
    edit_floats(&nan_bias, BIAS, 8, |v| v[17] = f32::NAN);
    let inf_codeword = model_dir(root, "inf_codeword");
    edit_floats(&inf_codeword, CENTROIDS, 18, |v| v[5] = f32::NEG_INFINITY);
    let overflow = model_dir(root, "overflow");
    edit_floats(&overflow, CENTROIDS, 0, |v| {
        v.iter_mut().for_each(|x| *x = 3e38)
    });
    let mean = root.join("mean.bin");
    let mut values = vec![100.0f32; 3 * 256 * 256];
    values[2 * 65536 + 5] = f32::INFINITY;
    write_bin_f32(&mean, &[3, 256, 256], &values).unwrap();
    let image = root.join("image.bmp");
    write_bmp(&image);

    use Refusal::*;
    let cases = [
        case(
            &["classify", "--model", s(&nan_bias)],
            Work,
            &["m.biasVec.09.bin: value NaN at flat position 17"],
        ),
        case(
            &["reproduce", "--model", s(&inf_codeword), "--no-memory"],
            Work,
            &["m.ctrdLst.19.bin: value -inf at flat position 5"],
        ),
        case(
            &["classify", "--mean", s(&mean), s(&image)],
            Work,
            &["mean.bin: value inf at flat position 131077 (index [2, 0, 5]"],
        ),
        case(
            &["classify", "--model", s(&overflow), "--mode", "qcnn"],
            Work,
            &["mode qcnn", "not finite (first at layer conv1"],
        ),
        case(
            &[
                "reproduce",
                "--model",
                s(&overflow),
                "--no-memory",
                "--repeats",
                "1",
                "--images",
                "2",
            ],
            Work,
            &[
                "mode dense: image 0 gives non-finite outputs (first at layer conv1",
                "nothing was measured",
            ],
        ),
    ];
    for c in &cases {
        check(c, root);
    }
}

/// Items 4, 5 and 6: sizes checked against the model and memory, values refused with their
/// allowed range, every argument checked before any work.
#[test]
fn bad_sizes_and_values_are_refused_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let out = root.join("q");
    let results = root.join("runs");
    let run_dir = root.join("run");
    copy_fixture_run(&run_dir);
    let repeats = run_dir.join("repeats.csv");
    let text = std::fs::read_to_string(&repeats).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut fields: Vec<String> = lines[1].split(',').map(String::from).collect();
    (fields[4], fields[5]) = ("0".into(), "0".into());
    lines[1] = fields.join(",");
    std::fs::write(&repeats, lines.join("\n") + "\n").unwrap();

    let (o, r) = (s(&out), s(&results));
    use Refusal::*;
    let cases = [
        // Item 4: sizes.
        case(
            &["quantize", "--out", o, "--conv", "100000000/128"],
            Validation,
            &["--conv 100000000/128", "conv1", "d must be in 1..=16"],
        ),
        case(
            &["quantize", "--out", o, "--conv", "18446744073709551615/128"],
            Validation,
            &["--conv", "d must be in 1..=16"],
        ),
        case(
            &["quantize", "--out", o, "--fc", "4/100000"],
            Validation,
            &["--fc 4/100000", "fc6", "K must be in 1..=256"],
        ),
        case(
            &[
                "sweep",
                "--layer",
                "conv3",
                "--d",
                "100000000",
                "--results",
                r,
            ],
            Validation,
            &["conv3", "d must be in 1..=256"],
        ),
        case(
            &[
                "sweep",
                "--layer",
                "conv3",
                "--d",
                "1,2,4,8,16,32",
                "--k",
                &(1..=200)
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                "--results",
                r,
            ],
            Validation,
            &["--d × --k", "1200 configurations, at most 1024"],
        ),
        case(
            &[
                "reproduce",
                "--peer-check-images",
                "4294967295",
                "--results",
                r,
            ],
            Validation,
            &["--peer-check-images 4294967295", "must be in 1..=100"],
        ),
        case(
            &["reproduce", "--images", "4294967295", "--results", r],
            Clap,
            &["--images", "not a whole number in 1..=100000"],
        ),
        case(
            &[
                "quantize",
                "--out",
                o,
                "--calib-count",
                "100000",
                "--holdout",
                "100000",
            ],
            Validation,
            &[
                "--calib-count + --holdout",
                "more than half of the",
                "at most",
            ],
        ),
        // Item 5: values that used to be changed silently.
        case(
            &[
                "quantize",
                "--out",
                o,
                "--calib-count",
                "18446744073709551615",
                "--holdout",
                "1",
            ],
            Clap,
            &["--calib-count", "not a whole number in 1..=100000"],
        ),
        case(
            &["quantize", "--out", o, "--ec-ridge", "NaN"],
            Validation,
            &["--ec-ridge", "NaN is outside the allowed range"],
        ),
        case(
            &["quantize", "--out", o, "--ec-ridge", "-1"],
            Validation,
            &["--ec-ridge", "-1 is outside the allowed range"],
        ),
        case(
            &["quantize", "--out", o, "--ec-ridge", "inf"],
            Validation,
            &["--ec-ridge", "inf is outside"],
        ),
        case(
            &["report", s(&run_dir), "--out", s(&root.join("report"))],
            Work,
            &[
                "repeats.csv, line 2",
                "column `total_ms`",
                "allowed range 1e-6..=1e9 ms",
            ],
        ),
        // Item 6: checks before the work.
        case(
            &["quantize", "--out", o, "--prefix", "../evil"],
            Validation,
            &["--prefix", "\"../evil\""],
        ),
        case(
            &["reproduce", "--modes", "dense,dense", "--results", r],
            Validation,
            &["--modes: 'dense' is given twice"],
        ),
        case(
            &["reproduce", "--modes", "dense,turbo", "--results", r],
            Validation,
            &["--modes: unknown mode 'turbo'"],
        ),
        case(
            &[
                "sweep",
                "--layer",
                "conv3",
                "--isas",
                "scalar,scalar",
                "--results",
                r,
            ],
            Validation,
            &["--isas: 'scalar' is given twice"],
        ),
        case(
            &["sweep", "--layer", "conv9", "--results", r],
            Validation,
            &["--layer conv9", "choose one of conv1"],
        ),
        case(
            &["reproduce", "--core", "99999", "--results", r],
            Validation,
            &["--core 99999"],
        ),
        case(
            &["reproduce", "--results", s(&repeats)],
            Validation,
            &["--results", "is a regular file, not a folder"],
        ),
        case(
            &["classify", "--mode", "turbo"],
            Validation,
            &["--mode: unknown mode 'turbo'"],
        ),
        case(
            &["--isa", "sse9", "info"],
            Validation,
            &["--isa: unknown ISA 'sse9'"],
        ),
        case(
            &["reproduce", "--repeats", "0", "--results", r],
            Clap,
            &["--repeats", "'0' is not a whole number in 1..=1000"],
        ),
        case(
            &["reproduce", "--mean", s(&repeats)],
            Clap,
            &["--images-dir"],
        ),
    ];
    for c in &cases {
        check(c, root);
    }
    assert!(
        !out.exists() && !results.exists(),
        "nothing written by refused runs"
    );
    // `qcnn compare` exits 2 for anything it cannot compare, a bad option first of all.
    let args = [
        "compare",
        s(&run_dir),
        s(&run_dir),
        "--resamples",
        "18446744073709551615",
    ];
    let (code, stderr) = run(&args.map(String::from), root);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: --resamples: 18446744073709551615 is outside 100..=1000000"),
        "{stderr}"
    );
}

/// A dense ONNX file of the tests' tiny AlexNet (small weights), with a NaN at flat position
/// `nan_at` of conv1's weights if given. Written by our exporter, which takes any value.
fn tiny_onnx(path: &Path, nan_at: Option<usize>) {
    let arch = qcnn_testdata::tiny_alexnet();
    let params = arch
        .param_layers()
        .into_iter()
        .map(|shape| {
            let mut dense: Vec<f32> = (0..shape.weight_count())
                .map(|i| (i % 7) as f32 * 0.01)
                .collect();
            if let (Some(at), 0) = (nan_at, shape.index) {
                dense[at] = f32::NAN;
            }
            qcnn_model::LayerParams {
                shape,
                bias: vec![0.1; shape.out_channels()],
                codebooks: None,
                dense: Some(dense),
            }
        })
        .collect();
    let model = qcnn_model::Model {
        arch,
        params,
        source: qcnn_model::ModelSource::Synthetic { seed: 0 },
    };
    qcnn_onnx::write(&model, path).unwrap();
}

/// Issue 13's classes applied to issue 14's inputs: dense model files (ONNX, Caffe) read as
/// bounded regular files with finite weights, `--network` known and used by every check that
/// depends on the layers, `theory` and `evaluate` validated before any work.
#[test]
fn the_networks_imports_theory_and_evaluate_get_the_same_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let results = root.join("runs");
    let r = s(&results);
    // Model files that are no model files.
    let fifo_onnx = root.join("fifo.onnx");
    mkfifo(&fifo_onnx);
    let zero_caffe = root.join("zero.caffemodel");
    std::os::unix::fs::symlink("/dev/zero", &zero_caffe).unwrap();
    let net_caffe = root.join("net.caffemodel");
    std::fs::write(&net_caffe, b"weights").unwrap();
    mkfifo(&root.join("net.prototxt"));
    let lonely = root.join("lonely");
    std::fs::create_dir(&lonely).unwrap();
    let lonely_caffe = lonely.join("weights.caffemodel");
    std::fs::write(&lonely_caffe, b"weights").unwrap();
    let huge_onnx = root.join("huge.onnx");
    std::fs::File::create(&huge_onnx)
        .unwrap()
        .set_len(5 << 30)
        .unwrap();
    let nan_onnx = root.join("nan.onnx");
    tiny_onnx(&nan_onnx, Some(3));
    let dense_onnx = root.join("dense.onnx");
    std::fs::write(&dense_onnx, b"never read").unwrap();
    // An evaluation set: a model folder, an image folder, labels.
    let model = model_dir(root, "model");
    let images = root.join("images");
    std::fs::create_dir(&images).unwrap();
    write_bmp(&images.join("a.bmp"));
    let labels = root.join("labels.txt");
    std::fs::write(&labels, "a.bmp 7\n").unwrap();
    let bad_class = root.join("bad_class.txt");
    std::fs::write(&bad_class, "a.bmp 1000\n").unwrap();
    let zero_labels = root.join("zero.txt");
    std::os::unix::fs::symlink("/dev/zero", &zero_labels).unwrap();
    let fifo_images = root.join("fifo.bin");
    mkfifo(&fifo_images);
    // The authors' data file at AlexNet's 227 × 227, without labels beside it.
    let data_dir = root.join("data");
    std::fs::create_dir(&data_dir).unwrap();
    let data = data_dir.join("dataMatTst.single.bin");
    write_bin_f32(&data, &[1, 3, 227, 227], &vec![0.0; 3 * 227 * 227]).unwrap();

    let (m, i, l) = (s(&model), s(&images), s(&labels));
    use Refusal::*;
    let cases = [
        // Special files, missing companions and sizes of dense model files.
        case(
            &["classify", "--model", s(&fifo_onnx)],
            Validation,
            &["--model", "fifo.onnx: is a FIFO (named pipe)"],
        ),
        case(
            &[
                "quantize",
                "--out",
                s(&root.join("q")),
                "--dense",
                s(&zero_caffe),
            ],
            Validation,
            &["--dense", "zero.caffemodel: is a character device"],
        ),
        case(
            &["reproduce", "--model", s(&net_caffe), "--modes", "dense"],
            Validation,
            &[
                "--model",
                "net.prototxt: is a FIFO (named pipe), not a regular file",
            ],
        ),
        case(
            &["classify", "--model", s(&lonely_caffe)],
            Validation,
            &["weights.caffemodel: no prototxt beside it"],
        ),
        case(
            &[
                "export-onnx",
                "--model",
                s(&huge_onnx),
                "--out",
                s(&root.join("x.onnx")),
            ],
            Validation,
            &["huge.onnx: is 5368709120 bytes; an ONNX model is at most 4294967296 bytes"],
        ),
        // Non-finite weights in an imported model: a load error naming file, node, tensor.
        case(
            &["classify", "--model", s(&nan_onnx)],
            Work,
            &["nan.onnx: node 'conv1' (Conv): tensor 'conv1_W': value NaN at flat position 3"],
        ),
        // --network: known, and the checks that depend on the layers use it.
        case(
            &["theory", "--network", "bogus"],
            Clap,
            &["unknown network 'bogus' (known: alexnet, caffenet, cnn-s, vgg16)"],
        ),
        case(
            &["generate-model", s(&root.join("g")), "--network", "resnet"],
            Clap,
            &["unknown network 'resnet'"],
        ),
        case(
            &["theory", "--conv", "100000000/128"],
            Validation,
            &["--conv 100000000/128", "conv1", "d must be in 1..=16"],
        ),
        case(
            &["theory", "--network", "vgg16", "--conv", "7/128"],
            Validation,
            &["--conv 7/128", "conv1_2", "d must divide"],
        ),
        case(
            &["theory", "--fc8", "1/300"],
            Validation,
            &["--fc8 1/300", "fc8", "K must be in 1..=256"],
        ),
        case(
            &[
                "quantize",
                "--network",
                "cnn-s",
                "--out",
                s(&root.join("q")),
                "--fc",
                "7/32",
            ],
            Validation,
            &["--fc 7/32", "fc6", "d must divide"],
        ),
        case(
            &[
                "sweep",
                "--network",
                "vgg16",
                "--layer",
                "conv3",
                "--results",
                r,
            ],
            Validation,
            &["--layer conv3: not a conv or fc layer of VGG-16", "conv3_1"],
        ),
        case(
            &[
                "reproduce",
                "--network",
                "vgg16",
                "--peer-check-images",
                "11",
                "--results",
                r,
            ],
            Validation,
            &["--peer-check-images 11: must be in 1..=10"],
        ),
        case(
            &[
                "reproduce",
                "--network",
                "cnn-s",
                "--data",
                s(&data),
                "--no-memory",
                "--repeats",
                "1",
                "--images",
                "1",
                "--results",
                r,
            ],
            Work,
            &["dataMatTst.single.bin", "expected (N, 3, 224, 224)"],
        ),
        // evaluate: modes, the set and its labels, counts.
        case(
            &[
                "evaluate",
                "--model",
                m,
                "--images",
                i,
                "--labels",
                l,
                "--modes",
                "qcnn,qcnn",
                "--results",
                r,
            ],
            Validation,
            &["--modes: 'qcnn' is given twice"],
        ),
        case(
            &[
                "evaluate",
                "--model",
                m,
                "--images",
                i,
                "--labels",
                l,
                "--modes",
                "dense,turbo",
                "--results",
                r,
            ],
            Validation,
            &["--modes: unknown mode 'turbo'"],
        ),
        case(
            &[
                "evaluate",
                "--model",
                s(&dense_onnx),
                "--images",
                i,
                "--labels",
                l,
                "--results",
                r,
            ],
            Validation,
            &["--modes: mode 'qcnn' needs codebooks"],
        ),
        case(
            &["evaluate", "--model", m, "--images", i, "--results", r],
            Validation,
            &["--labels: an image folder", "needs a ground-truth file"],
        ),
        case(
            &[
                "evaluate",
                "--model",
                m,
                "--images",
                s(&fifo_images),
                "--results",
                r,
            ],
            Validation,
            &["--images", "fifo.bin: is a FIFO"],
        ),
        case(
            &[
                "evaluate",
                "--model",
                m,
                "--images",
                i,
                "--labels",
                s(&zero_labels),
                "--results",
                r,
            ],
            Validation,
            &["--labels", "zero.txt: is a character device"],
        ),
        case(
            &[
                "evaluate",
                "--model",
                m,
                "--images",
                s(&data),
                "--results",
                r,
            ],
            Validation,
            &["--labels", "lablVecTst.uint16.bin: no such file"],
        ),
        case(
            &[
                "evaluate",
                "--model",
                m,
                "--images",
                i,
                "--labels",
                l,
                "--limit",
                "0",
                "--results",
                r,
            ],
            Clap,
            &["--limit", "'0' is not a whole number in 1..=10000000"],
        ),
        case(
            &[
                "evaluate",
                "--model",
                s(&fifo_onnx),
                "--images",
                i,
                "--labels",
                l,
                "--modes",
                "dense",
                "--results",
                r,
            ],
            Validation,
            &["--model", "fifo.onnx: is a FIFO"],
        ),
        case(
            &[
                "evaluate",
                "--model",
                m,
                "--images",
                i,
                "--labels",
                s(&bad_class),
                "--modes",
                "dense",
                "--results",
                r,
            ],
            Work,
            &["bad_class.txt:1: class 1000, but the network tells 1000 classes apart"],
        ),
    ];
    for c in &cases {
        check(c, root);
    }
    assert!(!results.exists(), "nothing recorded by refused runs");
}

/// Item 7: a PNG is classified like the BMP it was made from.
#[test]
fn png_and_jpeg_images_classify_like_their_bmp() {
    let tmp = tempfile::tempdir().unwrap();
    let bmp = tmp.path().join("image.bmp");
    write_bmp(&bmp);
    let img = image::open(&bmp).unwrap();
    let png = tmp.path().join("image.png");
    img.save(&png).unwrap();
    let jpeg = tmp.path().join("image.jpg");
    img.save(&jpeg).unwrap();
    let top5 = |path: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_qcnn"))
            .args(["classify", "--mode", "qcnn", s(path)])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .skip_while(|l| !l.starts_with("rank"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let from_bmp = top5(&bmp);
    assert_eq!(from_bmp.len(), 6, "{from_bmp:?}");
    assert_eq!(top5(&png), from_bmp, "a PNG is lossless: the same top-5");
    // JPEG is lossy: it classifies (how close it decodes is tested in qcnn-model).
    assert_eq!(top5(&jpeg).len(), 6);
}

/// A 64 × 48 24-bit BMP with smooth content.
fn write_bmp(path: &Path) {
    let (w, h) = (64u32, 48u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (3 * x + 20) as u8,
            (4 * y + 10) as u8,
            (x + 2 * y + 90) as u8,
        ])
    });
    img.save_with_format(path, image::ImageFormat::Bmp).unwrap();
}

/// A copy of the reports crate's complete fixture run.
fn copy_fixture_run(to: &Path) {
    let from =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/fixtures/20261127T100000Z-cmplt1");
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}
