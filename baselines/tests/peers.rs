//! The peers (tract in-process, onnxruntime and OpenVINO in a Python worker) against the dense
//! baseline, on the synthetic default and on a small AlexNet-like network whose pooling
//! windows overhang (ceil mode), with groups, padding and a strong LRN. Plus what must hold
//! when a peer is missing, wrong or dies: unavailable with a reason, reported wrong, NaN and a
//! fault, never a panic or a hang.
//!
//! Python peers skip visibly ("SKIPPED: ...") when Python or the package is missing
//! (`pip install onnxruntime openvino`); the tract test runs with `--features tract`.

mod common;

use std::path::{Path, PathBuf};

use common::{random_params, tiny_alexnet, values, Recorder};
use qcnn_baselines::peers::{
    check_agreement, Peer, PeerInfo, PeerLauncher, PeerOptions, Timing, Unavailable,
    AGREEMENT_TOLERANCE,
};
use qcnn_baselines::DenseNetwork;
use qcnn_model::synthetic::{synthetic_image, synthetic_model, DEFAULT_SEED};
use qcnn_model::{LayerParams, Model, ModelSource, Network, Observer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Synthetic images compared per peer (each is a full AlexNet forward in both networks).
const SYNTHETIC_IMAGES: usize = 2;

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

/// Opens `name` on `model`, or prints why it is skipped.
fn open_or_skip(launcher: &mut PeerLauncher, name: &str) -> Option<Box<dyn Peer>> {
    match launcher.open(name) {
        Ok(peer) => Some(peer),
        Err(Unavailable { reason, .. }) => {
            eprintln!("SKIPPED: peer {name} not found/unavailable: {reason}");
            None
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
    let probs = peer.forward(refs[0], &mut qcnn_model::NoObserver).to_vec();
    assert_eq!(probs.len(), 1000);
    assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    match peer.info().timing {
        Timing::Engine => assert!(peer.engine_ms().is_some_and(|ms| ms > 0.0)),
        Timing::Harness => assert_eq!(peer.engine_ms(), None),
    }
    assert_eq!(peer.fault(), None);
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
fn python_peers_run_one_thread_on_the_inherited_affinity() {
    let model = tiny_model(3);
    let mut launcher = PeerLauncher::new(&model, PeerOptions::default());
    for (name, key) in [
        ("onnxruntime", "intra_op_num_threads"),
        ("openvino", "INFERENCE_NUM_THREADS"),
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
    assert!(err.reason.contains("tract, onnxruntime, openvino"), "{err}");
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
}

/// An executable shell script in `dir`, standing in for the Python interpreter.
fn fake_python(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn python3_present() -> bool {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn missing_package_is_unavailable_with_the_install_hint() {
    if !python3_present() {
        eprintln!("SKIPPED: python3 not found");
        return;
    }
    // A module that fails to import shadows the real package, as if it were not installed.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("openvino.py"),
        "raise ImportError(\"No module named 'openvino'\")\n",
    )
    .unwrap();
    let python = fake_python(
        dir.path(),
        "python",
        &format!("PYTHONPATH={} exec python3 \"$@\"", dir.path().display()),
    );
    let model = tiny_model(1);
    let options = PeerOptions {
        python: python.into(),
        ..PeerOptions::default()
    };
    let err = PeerLauncher::new(&model, options)
        .open("openvino")
        .err()
        .expect("the package import fails");
    assert!(err.reason.contains("No module named 'openvino'"), "{err}");
    assert!(err.reason.contains("pip install openvino"), "{err}");
}

/// A worker that answers the load, then dies: the peer returns NaN and a fault, no panic.
#[test]
fn worker_dying_mid_run_is_a_fault_not_a_panic() {
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
        .open("onnxruntime")
        .expect("the fake worker loads");
    assert_eq!(peer.info().version, "9.9");
    let input = vec![0.5; model.arch.input.len()];
    let out = peer.forward(&input, &mut qcnn_model::NoObserver).to_vec();
    assert!(out.iter().all(|v| v.is_nan()));
    let fault = peer.fault().expect("a fault").to_string();
    assert!(fault.starts_with("onnxruntime: "), "{fault}");
    assert!(
        fault.contains("worker going away"),
        "stderr tail in {fault}"
    );
    assert_eq!(peer.engine_ms(), None);
    // Later images do not talk to the dead worker and stay NaN.
    assert!(peer
        .forward(&input, &mut qcnn_model::NoObserver)
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
    peer.forward(&input, &mut qcnn_model::NoObserver);
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
    off.forward(refs[0], &mut qcnn_model::NoObserver);
    let a = check_agreement(&mut off, &mut dense, &refs);
    assert!(!a.holds(), "{}", a.describe());
    assert!(a.logits_error.unwrap() > AGREEMENT_TOLERANCE);
    assert_eq!(a.images, 2);
}
