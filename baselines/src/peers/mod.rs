//! The engines a reader would use instead, run side by side with our modes on the same
//! weights and images: "faster than what I use today?".
//!
//! Every peer runs the dense AlexNet exactly as we run it, exported as ONNX by `qcnn-onnx` or
//! as an ncnn `.param`/`.bin` pair by `qcnn-ncnn` (stored dense weights, or rebuilt from the
//! codebooks), one image per batch, one thread, on the core the harness pinned itself to. A peer is a [`Network`] (its mode name is the peer
//! name, `forward` returns class probabilities), so the harness measures it like a mode, plus
//! what only peers have ([`Peer`]): a version and settings for the provenance, the engine's
//! own clock, the logits for the agreement check, and a fault once the engine broke.
//!
//! - `tract` ([`tract`], cargo feature `tract`): sonos/tract, pure Rust, in-process. Timed by
//!   the harness's clock around `forward`, like our modes (its input copy into a tract tensor,
//!   about 0.6 MB, is inside).
//! - `onnxruntime`, `openvino`, `ncnn` and `ncnn-default` ([`python`]): the Python packages,
//!   in a worker subprocess (`baselines/peers/worker.py`) spoken to over stdin/stdout. Timed
//!   by the worker: `time.perf_counter_ns()` around the engine's inference call alone, the
//!   input already bound, so the pipe is never timed; the harness records that time. The
//!   worker also measures its own peak memory ([`Peer::memory`]). `ncnn` runs with every
//!   reduced-precision option off (f32, like every other column); `ncnn-default` with ncnn's
//!   options as it ships (fp16 weight storage where a layer supports it), an approximate
//!   column checked against its own tolerance ([`agreement_tolerance`]).
//!
//! A peer that cannot start is [`Unavailable`] with the reason and whether it is simply not
//! installed here ([`Cause`]); neither fails a run. A peer is only worth timing if it computes
//! our network: [`check_agreement`] compares its probabilities *and* logits with the dense
//! baseline's on the same images.

pub mod python;
#[cfg(feature = "tract")]
pub mod tract;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use qcnn_kernels::dense::reference::max_relative_error;
use qcnn_model::{Layer, Model};
use qcnn_runner::{Network, Observer};

/// Every peer this code knows, in the order tables show them.
pub const PEERS: &[&str] = &["tract", "onnxruntime", "openvino", "ncnn", "ncnn-default"];

/// The peers that read the exported ONNX file (`qcnn export-onnx --check`).
pub const ONNX_PEERS: &[&str] = &["tract", "onnxruntime", "openvino"];

/// A peer agrees with the dense baseline when, on every checked image, both its class
/// probabilities and its logits are within this of ours: max |peer − ours| / max |ours|
/// (`max_relative_error`). f32 sums in another order stay near 1e-6 here.
pub const AGREEMENT_TOLERANCE: f32 = 1e-4;

/// Environment variable naming the peers that must be installed where it is set (comma-
/// separated, or `all`): their tests fail instead of skipping as "not installed". CI sets it
/// after installing them, so that a skip cannot hide a broken install.
pub const REQUIRE_PEERS_ENV: &str = "QCNN_REQUIRE_PEERS";

/// Whether [`REQUIRE_PEERS_ENV`] names `peer` (or says `all`).
pub fn required_here(peer: &str) -> bool {
    std::env::var(REQUIRE_PEERS_ENV)
        .is_ok_and(|v| v.split(',').map(str::trim).any(|n| n == peer || n == "all"))
}

/// The tolerance of `ncnn-default`, which stores weights in fp16 (a 2^-11 relative step) where
/// its layers support it (on x86: the fc layers): measured 1.0e-3 on the synthetic AlexNet's
/// logits, 5e-4 on the tiny test network; 2e-2 leaves room for CPUs that also compute in fp16.
pub const FP16_AGREEMENT_TOLERANCE: f32 = 2e-2;

/// The tolerance `name` is checked against: [`AGREEMENT_TOLERANCE`] for every f32 peer.
pub fn agreement_tolerance(name: &str) -> f32 {
    match name {
        "ncnn-default" => FP16_AGREEMENT_TOLERANCE,
        _ => AGREEMENT_TOLERANCE,
    }
}

/// Who or what a peer is, for tables and the results' provenance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The mode name: "tract", "onnxruntime", "openvino".
    pub name: String,
    /// The engine's own version string.
    pub version: String,
    /// Settings that decide the comparison (threads, precision, affinity, what is timed).
    pub settings: BTreeMap<String, String>,
    pub timing: Timing,
}

impl PeerInfo {
    /// "onnxruntime 1.32.0".
    pub fn label(&self) -> String {
        format!("{} {}", self.name, self.version)
    }

    /// "key=value;key=value", in key order.
    pub fn settings_line(&self) -> String {
        let pairs: Vec<String> = self
            .settings
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.join(";")
    }
}

/// Whose clock measures a peer's forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// The harness's clock around `Network::forward`, as for our modes.
    Harness,
    /// The engine's own clock around its inference call ([`Peer::engine_ms`]); the transfer
    /// to and from the worker process is outside it.
    Engine,
}

impl Timing {
    pub fn name(self) -> &'static str {
        match self {
            Timing::Harness => "harness clock around forward()",
            Timing::Engine => "engine's own clock around its inference call",
        }
    }
}

/// A peer engine running our dense network.
pub trait Peer: Network {
    fn info(&self) -> &PeerInfo;
    /// With [`Timing::Engine`]: the last forward pass's inference time in milliseconds as the
    /// engine measured it; `None` with [`Timing::Harness`] or after a fault.
    fn engine_ms(&self) -> Option<f64>;
    /// The last forward pass's softmax input (the logits, Layout (C_out)) and the name of the
    /// layer that produced it (`fc8`), when the network ends in a softmax.
    fn logits(&self) -> Option<(&str, &[f32])>;
    /// Why the engine stopped working (the worker died, the engine raised). Once set, every
    /// forward pass returns NaN probabilities without calling the engine.
    fn fault(&self) -> Option<&str>;
    /// This peer as a plain network (`self`), for loops over modes and peers alike.
    fn as_network(&mut self) -> &mut dyn Network;
    /// The memory of the process the peer runs in, measured there (a worker's own figures);
    /// `None` for an in-process peer (the harness measures it in a child process, like its
    /// own modes) or once the peer broke.
    fn memory(&mut self) -> Option<PeerMemory>;
}

/// A peer process's peak resident set size (VmHWM) at three moments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerMemory {
    /// Before the engine was imported: the interpreter's own share.
    pub idle_peak_rss_bytes: Option<u64>,
    /// Once the model was loaded (loading transients included).
    pub load_peak_rss_bytes: Option<u64>,
    /// Since the load: the peak while classifying, the model resident (as the harness
    /// measures its own modes). Includes the load when `peak_reset` is false.
    pub peak_rss_bytes: Option<u64>,
    /// Whether the peak was reset after the load (Linux `/proc/self/clear_refs`).
    pub peak_reset: bool,
}

/// A peer that cannot run here, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable {
    pub name: String,
    pub reason: String,
    pub cause: Cause,
}

/// Whether an unavailable peer is simply absent or broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Not installed here: no Python interpreter, the engine's package (or one of its Python
    /// dependencies) missing, a build without `tract`. Expected on a bare machine; the reason
    /// says how to install it.
    NotInstalled,
    /// Installed, but it could not run our model: an export we cannot write, an engine that
    /// refuses the file, a worker that crashed or hung, an unknown name. A bug on one side.
    Failed,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} unavailable: {}", self.name, self.reason)
    }
}

/// How peers are started.
#[derive(Clone, Debug)]
pub struct PeerOptions {
    /// The Python interpreter of the worker (`$QCNN_PYTHON`, else `python3` from `PATH`).
    pub python: OsString,
    /// Longest wait for a worker to load and compile the model.
    pub load_timeout: Duration,
    /// Longest wait for one forward pass in a worker.
    pub run_timeout: Duration,
}

impl Default for PeerOptions {
    fn default() -> Self {
        PeerOptions {
            python: std::env::var_os("QCNN_PYTHON").unwrap_or_else(|| "python3".into()),
            load_timeout: Duration::from_secs(600),
            run_timeout: Duration::from_secs(120),
        }
    }
}

/// Starts peers on one model. The files the Python workers read (the ONNX model, ncnn's pair)
/// are written once each, when a peer first needs them, into a private scratch folder removed
/// when the launcher is dropped (the engines hold the model in memory once loaded, so the
/// launcher may go as soon as every peer is open).
pub struct PeerLauncher<'m> {
    model: &'m Model,
    options: PeerOptions,
    /// An ONNX file of `model` written earlier (`qcnn export-onnx`), read instead of a fresh
    /// export.
    onnx_file: Option<PathBuf>,
    scratch: Option<Scratch>,
}

impl<'m> PeerLauncher<'m> {
    pub fn new(model: &'m Model, options: PeerOptions) -> Self {
        PeerLauncher {
            model,
            options,
            onnx_file: None,
            scratch: None,
        }
    }

    /// Peers load `onnx_file` (the export of `model`, e.g. to check a written file) instead
    /// of a fresh export.
    pub fn with_onnx_file(model: &'m Model, options: PeerOptions, onnx_file: &Path) -> Self {
        PeerLauncher {
            onnx_file: Some(onnx_file.to_path_buf()),
            ..Self::new(model, options)
        }
    }

    /// Starts peer `name` (one of [`PEERS`]) and loads the model into it.
    pub fn open(&mut self, name: &str) -> Result<Box<dyn Peer>, Unavailable> {
        let failed = |reason: String| Unavailable {
            name: name.to_string(),
            reason,
            cause: Cause::Failed,
        };
        match name {
            "tract" => {
                let interface = self.onnx_interface().map_err(failed)?;
                let bytes = self.onnx_bytes().map_err(failed)?;
                open_tract(&bytes, interface)
            }
            "onnxruntime" | "openvino" => {
                let interface = self.onnx_interface().map_err(failed)?;
                let (model, onnx_file) = (self.model, self.onnx_file.clone());
                let scratch = self.scratch().map_err(failed)?;
                let model = match onnx_file {
                    Some(file) => file,
                    None => scratch.onnx_model(model).map_err(failed)?,
                };
                let files = python::ModelFiles {
                    model,
                    weights: None,
                };
                let worker = scratch.worker.clone();
                let peer =
                    python::PythonPeer::open(name, &worker, &files, interface, &self.options)?;
                Ok(Box::new(peer))
            }
            "ncnn" | "ncnn-default" => {
                let model = self.model;
                let scratch = self.scratch().map_err(failed)?;
                let (files, blobs) = scratch.ncnn_model(model).map_err(failed)?;
                let interface = ncnn_interface(&blobs);
                let worker = scratch.worker.clone();
                let peer =
                    python::PythonPeer::open(name, &worker, &files, interface, &self.options)?;
                Ok(Box::new(peer))
            }
            other => Err(failed(format!(
                "unknown peer '{other}' (known: {})",
                PEERS.join(", ")
            ))),
        }
    }

    fn onnx_interface(&self) -> Result<qcnn_onnx::Interface, String> {
        qcnn_onnx::interface(&self.model.arch)
            .map_err(|e| format!("cannot express the model in ONNX: {e}"))
    }

    fn onnx_bytes(&self) -> Result<Vec<u8>, String> {
        match &self.onnx_file {
            Some(path) => {
                std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
            }
            None => qcnn_onnx::to_bytes(self.model).map_err(|e| format!("exporting ONNX: {e}")),
        }
    }

    fn scratch(&mut self) -> Result<&mut Scratch, String> {
        if self.scratch.is_none() {
            self.scratch = Some(Scratch::create()?);
        }
        Ok(self.scratch.as_mut().expect("created above"))
    }
}

#[cfg(feature = "tract")]
fn open_tract(onnx: &[u8], interface: qcnn_onnx::Interface) -> Result<Box<dyn Peer>, Unavailable> {
    match tract::TractPeer::open(onnx, interface) {
        Ok(peer) => Ok(Box::new(peer)),
        Err(reason) => Err(Unavailable {
            name: "tract".into(),
            reason,
            cause: Cause::Failed,
        }),
    }
}

#[cfg(not(feature = "tract"))]
fn open_tract(
    _onnx: &[u8],
    _interface: qcnn_onnx::Interface,
) -> Result<Box<dyn Peer>, Unavailable> {
    Err(Unavailable {
        name: "tract".into(),
        reason: "this build has no tract peer (build with `--features tract`)".into(),
        cause: Cause::NotInstalled,
    })
}

/// What the worker reads ncnn's blobs as, in the same terms as the ONNX graph's tensors.
fn ncnn_interface(blobs: &qcnn_ncnn::Blobs) -> qcnn_onnx::Interface {
    let (i, o) = (blobs.input_shape, blobs.output_shape);
    let output_dims = vec![1, o.c, o.h, o.w];
    qcnn_onnx::Interface {
        input: blobs.input.clone(),
        input_dims: vec![1, i.c, i.h, i.w],
        output: blobs.output.clone(),
        logits: blobs.logits.clone(),
        logits_dims: if blobs.logits.is_some() {
            output_dims.clone()
        } else {
            Vec::new()
        },
        output_dims,
    }
}

/// The worker script and the model files the workers read (each written on first use), in a
/// private temporary folder.
struct Scratch {
    dir: PathBuf,
    worker: PathBuf,
    /// The ONNX file, once written.
    onnx: Option<PathBuf>,
    /// The ncnn files and their blobs, once written.
    ncnn: Option<(python::ModelFiles, qcnn_ncnn::Blobs)>,
}

impl Scratch {
    fn create() -> Result<Scratch, String> {
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("qcnn-peers-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("creating scratch folder {}: {e}", dir.display()))?;
        let scratch = Scratch {
            worker: dir.join("worker.py"),
            dir,
            onnx: None,
            ncnn: None,
        };
        write_file(&scratch.worker, python::WORKER_SCRIPT.as_bytes())?;
        Ok(scratch)
    }

    /// The ONNX file of `model` (written on the first call).
    fn onnx_model(&mut self, model: &Model) -> Result<PathBuf, String> {
        if self.onnx.is_none() {
            let path = self.dir.join("alexnet.onnx");
            qcnn_onnx::write(model, &path).map_err(|e| format!("writing the ONNX model: {e}"))?;
            self.onnx = Some(path);
        }
        Ok(self.onnx.clone().expect("written above"))
    }

    /// The ncnn `.param` and `.bin` files of `model` (written on the first call).
    fn ncnn_model(
        &mut self,
        model: &Model,
    ) -> Result<(python::ModelFiles, qcnn_ncnn::Blobs), String> {
        if self.ncnn.is_none() {
            let files = python::ModelFiles {
                model: self.dir.join("alexnet.param"),
                weights: Some(self.dir.join("alexnet.bin")),
            };
            let bin = files.weights.as_deref().expect("set above");
            let blobs = qcnn_ncnn::write(model, &files.model, bin)
                .map_err(|e| format!("cannot write the model for ncnn: {e}"))?;
            self.ncnn = Some((files, blobs));
        }
        Ok(self.ncnn.clone().expect("written above"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Best effort: a leftover temporary folder is harmless and must not fail a run.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// How far a peer's outputs are from the dense baseline's on a few images.
#[derive(Clone, Debug, PartialEq)]
pub struct Agreement {
    /// Images compared.
    pub images: usize,
    /// The largest error that still agrees ([`agreement_tolerance`] of the peer).
    pub tolerance: f32,
    /// Worst `max_relative_error` of the class probabilities over the images.
    pub prob_error: f32,
    /// Worst `max_relative_error` of the logits, when both sides expose them.
    pub logits_error: Option<f32>,
    /// The image with the worst error (probabilities or logits).
    pub worst_image: usize,
    /// Set when the peer broke during the check (then nothing else counts).
    pub fault: Option<String>,
}

impl Agreement {
    /// Both errors within the tolerance and no fault.
    pub fn holds(&self) -> bool {
        self.fault.is_none()
            && self.prob_error <= self.tolerance
            && self.logits_error.unwrap_or(0.0) <= self.tolerance
    }

    /// One line for tables and notes.
    pub fn describe(&self) -> String {
        if let Some(fault) = &self.fault {
            return format!("failed: {fault}");
        }
        let logits = match self.logits_error {
            Some(e) => format!("{e:.1e}"),
            None => "n/a".into(),
        };
        format!(
            "max relative error over {} images: probabilities {:.1e}, logits {logits} \
             (tolerance {:.0e}, worst image {})",
            self.images, self.prob_error, self.tolerance, self.worst_image
        )
    }
}

/// Runs `reference` (the dense baseline) and `peer` on every image and compares the class
/// probabilities and, where the peer returns them, the logits (the reference's output of the
/// same layer, caught by an observer), against the peer's [`agreement_tolerance`].
pub fn check_agreement(
    peer: &mut dyn Peer,
    reference: &mut dyn Network,
    images: &[&[f32]],
) -> Agreement {
    let mut agreement = Agreement {
        images: images.len(),
        tolerance: agreement_tolerance(&peer.info().name),
        prob_error: 0.0,
        logits_error: None,
        worst_image: 0,
        fault: None,
    };
    let mut worst = 0.0f32;
    for (i, image) in images.iter().enumerate() {
        let probs = peer.forward(image, &mut qcnn_runner::NoObserver).to_vec();
        if let Some(fault) = peer.fault() {
            agreement.fault = Some(fault.to_string());
            return agreement;
        }
        let layer = peer.logits().map(|(name, _)| name.to_string());
        let mut catch = Catch {
            layer: layer.clone().unwrap_or_default(),
            output: None,
        };
        let want = reference.forward(image, &mut catch).to_vec();
        let prob_error = relative_error(&probs, &want);
        agreement.prob_error = agreement.prob_error.max(prob_error);
        let mut image_worst = prob_error;
        if let (Some((_, got)), Some(want)) = (peer.logits(), &catch.output) {
            let e = relative_error(got, want);
            agreement.logits_error = Some(agreement.logits_error.unwrap_or(0.0).max(e));
            image_worst = image_worst.max(e);
        }
        if image_worst > worst || i == 0 {
            worst = image_worst;
            agreement.worst_image = i;
        }
    }
    agreement
}

/// `max_relative_error`, or infinity when the lengths differ (a peer returning the wrong
/// shape disagrees; it must not panic the harness).
fn relative_error(got: &[f32], want: &[f32]) -> f32 {
    if got.len() != want.len() {
        return f32::INFINITY;
    }
    max_relative_error(got, want)
}

/// Keeps a copy of one layer's output.
struct Catch {
    layer: String,
    output: Option<Vec<f32>>,
}

impl Observer for Catch {
    fn after_layer(&mut self, _index: usize, layer: &Layer, output: &[f32]) {
        if layer.name == self.layer {
            self.output = Some(output.to_vec());
        }
    }
}
