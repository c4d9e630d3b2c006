//! The peers (tract in-process; onnxruntime, OpenVINO and ncnn in a Python worker) against
//! the dense baseline, on the synthetic default and on a small AlexNet-like network whose
//! pooling windows overhang (ceil mode), with groups, padding and a strong LRN. Plus what must
//! hold when a peer is missing, wrong or dies: unavailable with a reason and an install hint,
//! reported wrong, NaN and a fault, never a panic or a hang.
//!
//! A Python peer's test skips visibly ("SKIPPED: ...") only when Python or the engine's
//! package is not installed (`pip install -r ci/peer-requirements.txt`); any other reason a
//! peer cannot open (our export, the engine refusing the file, a crashing worker) fails it.
//! The interpreter is `$QCNN_PYTHON`, else `python3`. The tract test runs with
//! `--features tract`.

mod common;

use std::path::{Path, PathBuf};

use common::{random_params, tiny_alexnet, values, Recorder};
use qcnn_baselines::peers::{
    agreement_tolerance, check_agreement, required_here, Cause, Peer, PeerInfo, PeerLauncher,
    PeerMemory, PeerOptions, Timing, Unavailable, AGREEMENT_TOLERANCE, PEERS, REQUIRE_PEERS_ENV,
};
use qcnn_baselines::DenseNetwork;
use qcnn_model::synthetic::{synthetic_image, synthetic_model, DEFAULT_SEED};
use qcnn_model::{LayerParams, Model, ModelSource};
use qcnn_runner::{Network, Observer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Synthetic images compared per peer (each is a full AlexNet forward in both networks).
const SYNTHETIC_IMAGES: usize = 2;
/// The peers that run in a Python worker.
const PYTHON_PEERS: [&str; 4] = ["onnxruntime", "openvino", "ncnn", "ncnn-default"];

/// The tiny AlexNet of the pipeline tests with random dense weights, as a Model.
fn tiny_model(seed: u64) -> Model {
    let arch = tiny_alexnet();
    let params = arch
        .param_layers()
        .into_iter()
        .zip(random_params(&arch, seed))
        .map(|(shape, (w, b))| LayerParams {
            shape,
            bias: b,
            codebooks: None,
            dense: Some(w),
        })
        .collect();
    Model {
        arch,
        params,
        source: ModelSource::Synthetic { seed },
    }
}

fn tiny_images(model: &Model, seed: u64, count: usize) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let len = model.arch.input.len();
    (0..count)
        .map(|_| values(&mut rng, len).iter().map(|v| v * 4.0).collect())
        .collect()
}

/// Opens `name`, or prints why it is skipped when it is not installed here (unless
/// `QCNN_REQUIRE_PEERS` requires it); any other reason it cannot open fails the test.
fn open_or_skip(launcher: &mut PeerLauncher, name: &str) -> Option<Box<dyn Peer>> {
    match launcher.open(name) {
        Ok(peer) => Some(peer),
        Err(Unavailable {
            reason,
            cause: Cause::NotInstalled,
            ..
        }) if !required_here(name) => {
            eprintln!("SKIPPED: peer {name} not installed: {reason}");
            None
        }
        Err(e) => {
            panic!("peer {name} cannot run ({REQUIRE_PEERS_ENV} requires it, or it failed): {e}")
        }
    }
}

/// The peer agrees with our dense network on the tiny model and on the synthetic AlexNet.
fn peer_matches_dense(name: &str) {
    let tiny = tiny_model(7);
    let mut launcher = PeerLauncher::new(&tiny, PeerOptions::default());
    let Some(mut peer) = open_or_skip(&mut launcher, name) else {
        return;
    };
    drop(launcher);
    check_info(peer.info(), name);
    let mut dense = DenseNetwork::new(&tiny);
    let images = tiny_images(&tiny, 11, 3);
    let refs: Vec<&[f32]> = images.iter().map(Vec::as_slice).collect();
    let agreement = check_agreement(peer.as_mut(), &mut dense, &refs);
    eprintln!("{name} on the tiny AlexNet: {}", agreement.describe());
    assert!(agreement.holds(), "{name} tiny: {}", agreement.describe());
    assert!(agreement.logits_error.is_some(), "logits compared");
    assert_eq!(agreement.tolerance, agreement_tolerance(name));
    drop(peer);

    let model = synthetic_model(DEFAULT_SEED);
    let mut launcher = PeerLauncher::new(&model, PeerOptions::default());
    let mut peer = launcher.open(name).expect("opened once already");
    drop(launcher);
    let mut dense = DenseNetwork::new(&model);
    let images: Vec<Vec<f32>> = (0..SYNTHETIC_IMAGES)
        .map(|i| synthetic_image(DEFAULT_SEED, i))
        .collect();
    let refs: Vec<&[f32]> = images.iter().map(Vec::as_slice).collect();
    let agreement = check_agreement(peer.as_mut(), &mut dense, &refs);
    eprintln!("{name} on the synthetic AlexNet: {}", agreement.describe());
    assert!(
        agreement.holds(),
        "{name} synthetic: {}",
        agreement.describe()
    );
    let probs = peer.forward(refs[0], &mut qcnn_runner::NoObserver).to_vec();
    assert_eq!(probs.len(), 1000);
    assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    match peer.info().timing {
        Timing::Engine => assert!(peer.engine_ms().is_some_and(|ms| ms > 0.0)),
        Timing::Harness => assert_eq!(peer.engine_ms(), None),
    }
    check_memory(name, peer.as_mut());
    assert_eq!(peer.fault(), None);
}

/// A worker's own figures: the interpreter alone, then with AlexNet's 244 MB of weights
/// loaded, then classifying with them resident. tract (in process) has none: the harness
/// probes it in a child process.
fn check_memory(name: &str, peer: &mut dyn Peer) {
    let Some(m) = peer.memory() else {
        assert_eq!(
            name, "tract",
            "only the in-process peer measures no memory of its own"
        );
        return;
    };
    eprintln!("{name} worker memory: {m:?}");
    let (idle, load, peak) = (
        m.idle_peak_rss_bytes.expect("Linux reports VmHWM"),
        m.load_peak_rss_bytes.expect("load peak"),
        m.peak_rss_bytes.expect("classifying peak"),
    );
    assert!(m.peak_reset, "{name}: /proc/self/clear_refs refused");
    assert!(
        idle > 1_000_000 && idle < 200_000_000,
        "{name}: idle interpreter {idle} B"
    );
    assert!(
        load > idle + 100_000_000,
        "{name}: AlexNet loaded, {load} B"
    );
    assert!(
        peak > 100_000_000,
        "{name}: weights resident while classifying, {peak} B"
    );
}

fn check_info(info: &PeerInfo, name: &str) {
    assert_eq!(info.name, name);
    assert!(!info.version.is_empty() && info.version != "unknown");
    assert!(info.settings.contains_key("timed"), "{:?}", info.settings);
    eprintln!("{name}: {} [{}]", info.label(), info.settings_line());
}

#[cfg(feature = "tract")]
#[test]
fn tract_matches_dense() {
    peer_matches_dense("tract");
}

#[cfg(not(feature = "tract"))]
#[test]
fn tract_is_unavailable_without_the_feature() {
    let model = tiny_model(1);
    let err = PeerLauncher::new(&model, PeerOptions::default())
        .open("tract")
        .err()
        .expect("no tract in this build");
    assert!(err.reason.contains("--features tract"), "{err}");
    eprintln!("SKIPPED: tract peer not found in this build (cargo test --features tract runs it)");
}

#[test]
fn onnxruntime_matches_dense() {
    peer_matches_dense("onnxruntime");
}

#[test]
fn openvino_matches_dense() {
    peer_matches_dense("openvino");
}

#[test]
fn ncnn_matches_dense() {
    peer_matches_dense("ncnn");
}

/// ncnn as it ships (fp16 storage where a layer has it): within its own, looser tolerance.
#[test]
fn ncnn_default_matches_dense_within_its_fp16_tolerance() {
    peer_matches_dense("ncnn-default");
}

#[test]
fn ncnn_forces_f32_and_ncnn_default_keeps_the_shipped_options() {
    let model = tiny_model(3);
    let mut launcher = PeerLauncher::new(&model, PeerOptions::default());
    let Some(f32_peer) = open_or_skip(&mut launcher, "ncnn") else {
        return;
    };
    let default_peer = open_or_skip(&mut launcher, "ncnn-default").expect("same package");
    let (forced, shipped) = (&f32_peer.info().settings, &default_peer.info().settings);
    for key in [
        "use_fp16_storage",
        "use_fp16_packed",
        "use_fp16_arithmetic",
        "use_bf16_storage",
    ] {
        assert_eq!(forced[key], "False", "ncnn: {key}");
    }
    assert_eq!(shipped["use_fp16_storage"], "True", "ncnn's default");
    assert_eq!(forced["use_vulkan_compute"], "False");
    assert!(forced["precision"].starts_with("f32"), "{forced:?}");
}

#[test]
fn python_peers_run_one_thread_on_the_inherited_affinity() {
    let model = tiny_model(3);
    let mut launcher = PeerLauncher::new(&model, PeerOptions::default());
    for (name, key) in [
        ("onnxruntime", "intra_op_num_threads"),
        ("openvino", "INFERENCE_NUM_THREADS"),
        ("ncnn", "num_threads"),
        ("ncnn-default", "num_threads"),
    ] {
        let Some(peer) = open_or_skip(&mut launcher, name) else {
            continue;
        };
        let info = peer.info();
        assert_eq!(info.settings[key], "1", "{name}");
        assert_eq!(info.timing, Timing::Engine);
        let ours = affinity_of_this_process();
        if let Some(ours) = ours {
            assert_eq!(info.settings["affinity"], ours, "{name}: inherited mask");
        }
    }
}

/// This process's allowed CPUs as "0,1" (Linux), to compare with what the worker reports.
fn affinity_of_this_process() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))?;
    let mut cpus = Vec::new();
    for part in line.split(':').nth(1)?.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().ok()?..=b.parse::<usize>().ok()?),
            None => cpus.push(part.parse::<usize>().ok()?),
        }
    }
    Some(
        cpus.iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(","),
    )
}

#[test]
fn unknown_peer_is_unavailable_with_the_known_ones() {
    let model = tiny_model(1);
    let err = PeerLauncher::new(&model, PeerOptions::default())
        .open("caffe")
        .err()
        .expect("unknown");
    assert_eq!(err.name, "caffe");
    assert_eq!(err.cause, Cause::Failed);
    assert!(err.reason.contains(&PEERS.join(", ")), "{err}");
}

#[test]
fn missing_python_is_unavailable_with_the_reason() {
    let model = tiny_model(1);
    let options = PeerOptions {
        python: "/nonexistent/python3".into(),
        ..PeerOptions::default()
    };
    let err = PeerLauncher::new(&model, options)
        .open("onnxruntime")
        .err()
        .expect("no such interpreter");
    assert!(err.reason.contains("/nonexistent/python3"), "{err}");
    assert!(err.reason.contains("QCNN_PYTHON"), "{err}");
    assert_eq!(err.cause, Cause::NotInstalled);
}

/// An executable shell script in `dir`, standing in for the Python interpreter.
fn fake_python(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The interpreter the Python peers run on here (`$QCNN_PYTHON`, else `python3`), if it runs.
fn python() -> Option<String> {
    let python = PeerOptions::default().python;
    let works = std::process::Command::new(&python)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        eprintln!("SKIPPED: Python interpreter {python:?} not found");
    }
    works.then(|| python.to_string_lossy().into_owned())
}

/// Options whose interpreter is the real one started with `PYTHONPATH=dir` first, so that
/// modules in `dir` shadow the installed ones; extra interpreter flags in `flags`.
fn shadowing_python(dir: &Path, python: &str, flags: &str) -> PeerOptions {
    let script = fake_python(
        dir,
        "python",
        &format!(
            "PYTHONPATH={} exec '{python}' {flags} \"$@\"",
            dir.display()
        ),
    );
    PeerOptions {
        python: script.into(),
        ..PeerOptions::default()
    }
}

/// What Python raises for a package that is not installed.
fn not_installed_module(module: &str) -> String {
    format!("raise ModuleNotFoundError(\"No module named '{module}'\", name='{module}')\n")
}

/// The engine's package is missing: unavailable, not installed, naming it with the hint.
#[test]
fn missing_package_is_unavailable_with_the_install_hint() {
    let Some(python) = python() else {
        return;
    };
    let model = tiny_model(1);
    for (name, module) in [
        ("onnxruntime", "onnxruntime"),
        ("openvino", "openvino"),
        ("ncnn", "ncnn"),
        ("ncnn-default", "ncnn"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(format!("{module}.py")),
            not_installed_module(module),
        )
        .unwrap();
        let options = shadowing_python(dir.path(), &python, "");
        let err = PeerLauncher::new(&model, options)
            .open(name)
            .err()
            .expect("the package import fails");
        assert_eq!(err.cause, Cause::NotInstalled, "{err}");
        assert!(
            err.reason.contains(&format!("No module named '{module}'")),
            "{err}"
        );
        assert!(
            err.reason.contains(&format!("pip install {module}")),
            "{err}"
        );
    }
}

/// numpy missing while the engine imports (a stub stands in for it): the same class, whatever
/// this machine has installed.
#[test]
fn missing_numpy_is_unavailable_with_the_install_hint() {
    let Some(python) = python() else {
        return;
    };
    let model = tiny_model(1);
    for (name, module) in [
        ("onnxruntime", "onnxruntime"),
        ("openvino", "openvino"),
        ("ncnn", "ncnn"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(format!("{module}.py")), "").unwrap();
        std::fs::write(dir.path().join("numpy.py"), not_installed_module("numpy")).unwrap();
        let options = shadowing_python(dir.path(), &python, "");
        let err = PeerLauncher::new(&model, options)
            .open(name)
            .err()
            .expect("numpy is missing");
        assert_eq!(err.cause, Cause::NotInstalled, "{err}");
        assert!(err.reason.contains("No module named 'numpy'"), "{err}");
        assert!(err.reason.contains("pip install"), "{err}");
        assert!(err.reason.contains("numpy"), "{err}");
    }
}

/// A bare interpreter (no site-packages at all: `python -S`) has none of the Python peers: each
/// is unavailable as not installed, with its install hint, never a failure.
#[test]
fn bare_interpreter_has_every_python_peer_not_installed() {
    let Some(python) = python() else {
        return;
    };
    let model = tiny_model(1);
    let dir = tempfile::tempdir().unwrap();
    let options = shadowing_python(dir.path(), &python, "-S");
    let mut launcher = PeerLauncher::new(&model, options);
    for name in PYTHON_PEERS {
        let err = launcher.open(name).err().expect("nothing installed");
        assert_eq!(err.cause, Cause::NotInstalled, "{err}");
        assert!(err.reason.contains("pip install"), "{err}");
    }
}

/// An installed package that fails to import (a broken install) is a failure, not a skip.
#[test]
fn broken_package_is_a_failure_not_a_missing_one() {
    let Some(python) = python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ncnn.py"),
        "raise ImportError('libncnn.so: cannot open shared object file')\n",
    )
    .unwrap();
    let model = tiny_model(1);
    let err = PeerLauncher::new(&model, shadowing_python(dir.path(), &python, ""))
        .open("ncnn")
        .err()
        .expect("the import fails");
    assert_eq!(err.cause, Cause::Failed, "{err}");
    assert!(err.reason.contains("cannot open shared object"), "{err}");
}

/// A model our exporters cannot write fails the peer (it is our bug), never a skip.
#[test]
fn an_export_we_cannot_write_is_a_failure_not_a_missing_peer() {
    let mut model = tiny_model(1);
    for layer in &mut model.arch.layers {
        if let qcnn_model::LayerKind::Lrn(spec) = &mut layer.kind {
            spec.size = 4;
        }
    }
    let err = PeerLauncher::new(&model, PeerOptions::default())
        .open("ncnn")
        .err()
        .expect("an even LRN window has no ncnn form");
    assert_eq!(err.cause, Cause::Failed, "{err}");
    assert!(
        err.reason.contains("norm1") && err.reason.contains("even"),
        "{err}"
    );
}

/// A worker that refuses the load for any reason but a missing module: failed.
#[test]
fn worker_refusing_the_model_is_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let python = fake_python(
        dir.path(),
        "python",
        "read line; echo '{\"ok\": false, \"error\": \"RuntimeError: unsupported op\"}'; read line",
    );
    let model = tiny_model(1);
    let options = PeerOptions {
        python: python.into(),
        ..PeerOptions::default()
    };
    let err = PeerLauncher::new(&model, options)
        .open("ncnn")
        .err()
        .expect("refused");
    assert_eq!(err.cause, Cause::Failed, "{err}");
    assert!(err.reason.contains("unsupported op"), "{err}");
}

/// The worker's memory figures travel as the protocol says: idle and load from the load
/// reply, the classifying peak from each `memory` request.
#[test]
fn worker_memory_figures_reach_the_peer() {
    let dir = tempfile::tempdir().unwrap();
    let python = fake_python(
        dir.path(),
        "python",
        "read line; echo '{\"ok\": true, \"version\": \"1\", \"settings\": {}, \"memory\": \
         {\"idle_peak_rss_bytes\": 1000, \"load_peak_rss_bytes\": 5000, \"peak_reset\": true}}'; \
         read line; echo '{\"ok\": true, \"peak_rss_bytes\": 3000}'; read line",
    );
    let model = tiny_model(1);
    let options = PeerOptions {
        python: python.into(),
        ..PeerOptions::default()
    };
    let mut peer = PeerLauncher::new(&model, options)
        .open("ncnn")
        .expect("the fake worker loads");
    let want = PeerMemory {
        idle_peak_rss_bytes: Some(1000),
        load_peak_rss_bytes: Some(5000),
        peak_rss_bytes: Some(3000),
        peak_reset: true,
    };
    assert_eq!(peer.memory(), Some(want));
    // The worker has nothing more to say: asking again is a fault, not a hang or a panic.
    assert_eq!(peer.memory(), None);
    assert!(
        peer.fault().is_some_and(|f| f.contains("memory")),
        "{:?}",
        peer.fault()
    );
}

/// A worker that answers the load, then dies: the peer returns NaN and a fault, no panic.
#[test]
fn worker_dying_mid_run_is_a_fault_not_a_panic() {
    for name in PYTHON_PEERS {
        worker_dies_mid_run(name);
    }
}

fn worker_dies_mid_run(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let python = fake_python(
        dir.path(),
        "python",
        "read line; echo '{\"ok\": true, \"version\": \"9.9\", \"settings\": {\"timed\": \"x\"}}'; \
         echo 'worker going away' >&2; exit 3",
    );
    let model = tiny_model(1);
    let options = PeerOptions {
        python: python.into(),
        ..PeerOptions::default()
    };
    let mut peer = PeerLauncher::new(&model, options)
        .open(name)
        .expect("the fake worker loads");
    assert_eq!(peer.info().version, "9.9");
    let input = vec![0.5; model.arch.input.len()];
    let out = peer.forward(&input, &mut qcnn_runner::NoObserver).to_vec();
    assert!(out.iter().all(|v| v.is_nan()));
    let fault = peer.fault().expect("a fault").to_string();
    assert!(fault.starts_with(&format!("{name}: ")), "{fault}");
    assert!(
        fault.contains("worker going away"),
        "stderr tail in {fault}"
    );
    assert_eq!(peer.engine_ms(), None);
    assert_eq!(peer.memory(), None, "{name}: a dead worker has no figures");
    // Later images do not talk to the dead worker and stay NaN.
    assert!(peer
        .forward(&input, &mut qcnn_runner::NoObserver)
        .iter()
        .all(|v| v.is_nan()));
    let mut dense = DenseNetwork::new(&model);
    let agreement = check_agreement(peer.as_mut(), &mut dense, &[&input]);
    assert!(!agreement.holds());
    assert!(
        agreement.describe().starts_with("failed: "),
        "{}",
        agreement.describe()
    );
}

/// A worker whose reply is short: a fault naming the sizes.
#[test]
fn short_reply_is_a_fault() {
    let dir = tempfile::tempdir().unwrap();
    let python = fake_python(
        dir.path(),
        "python",
        "read line; echo '{\"ok\": true, \"version\": \"1\", \"settings\": {}}'; \
         read line; echo '{\"ok\": true, \"ns\": 5, \"bytes\": 4}'; printf 'abcd'; read line",
    );
    let model = tiny_model(1);
    let options = PeerOptions {
        python: python.into(),
        ..PeerOptions::default()
    };
    let mut peer = PeerLauncher::new(&model, options)
        .open("openvino")
        .expect("the fake worker loads");
    let input = vec![0.5; model.arch.input.len()];
    peer.forward(&input, &mut qcnn_runner::NoObserver);
    let fault = peer.fault().expect("a fault");
    // Probabilities and logits, f32 each.
    let expected = 2 * model.arch.shapes().last().unwrap().len() * 4;
    assert!(
        fault.contains(&format!("returned 4 bytes, expected {expected}")),
        "{fault}"
    );
}

/// A stand-in engine: our dense network with every logit shifted by `logit_shift` times the
/// largest (a shift the softmax cancels), to show what the check catches.
struct Skewed {
    dense: DenseNetwork,
    info: PeerInfo,
    logit_shift: f32,
    logits: Vec<f32>,
    probs: Vec<f32>,
}

impl Skewed {
    fn new(model: &Model, logit_shift: f32) -> Skewed {
        Skewed {
            dense: DenseNetwork::new(model),
            info: PeerInfo {
                name: "skewed".into(),
                version: "0".into(),
                settings: Default::default(),
                timing: Timing::Harness,
            },
            logit_shift,
            logits: Vec::new(),
            probs: Vec::new(),
        }
    }
}

impl Network for Skewed {
    fn mode(&self) -> String {
        "skewed".into()
    }
    fn kernels(&self) -> String {
        String::new()
    }
    fn forward(&mut self, input: &[f32], _observer: &mut dyn Observer) -> &[f32] {
        let mut rec = Recorder::default();
        self.dense.forward(input, &mut rec);
        let logits = rec.get("fc5").expect("fc5 recorded");
        let top = logits.iter().cloned().fold(f32::MIN, f32::max);
        self.logits = logits
            .iter()
            .map(|v| v + self.logit_shift * top.abs())
            .collect();
        let exp: Vec<f32> = self.logits.iter().map(|v| (v - top).exp()).collect();
        let sum: f32 = exp.iter().sum();
        self.probs = exp.iter().map(|e| e / sum).collect();
        &self.probs
    }
}

impl Peer for Skewed {
    fn info(&self) -> &PeerInfo {
        &self.info
    }
    fn engine_ms(&self) -> Option<f64> {
        None
    }
    fn logits(&self) -> Option<(&str, &[f32])> {
        Some(("fc5", &self.logits))
    }
    fn fault(&self) -> Option<&str> {
        None
    }

    fn as_network(&mut self) -> &mut dyn Network {
        self
    }
    fn memory(&mut self) -> Option<PeerMemory> {
        None
    }
}

#[test]
fn a_peer_off_in_the_logits_is_wrong_even_when_probabilities_agree() {
    let model = tiny_model(5);
    let images = tiny_images(&model, 2, 2);
    let refs: Vec<&[f32]> = images.iter().map(Vec::as_slice).collect();
    let mut dense = DenseNetwork::new(&model);
    // Within tolerance: agrees.
    let mut close = Skewed::new(&model, AGREEMENT_TOLERANCE / 10.0);
    let a = check_agreement(&mut close, &mut dense, &refs);
    assert!(a.holds(), "{}", a.describe());
    // A uniform shift of every logit leaves the softmax unchanged: only the logits tell.
    let mut off = Skewed::new(&model, 1e-2);
    off.forward(refs[0], &mut qcnn_runner::NoObserver);
    let a = check_agreement(&mut off, &mut dense, &refs);
    assert!(!a.holds(), "{}", a.describe());
    assert!(a.logits_error.unwrap() > AGREEMENT_TOLERANCE);
    assert_eq!(a.images, 2);
}
