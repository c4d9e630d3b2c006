//! onnxruntime, OpenVINO and ncnn through a Python worker process
//! (`baselines/peers/worker.py`).
//!
//! The worker inherits the harness's CPU affinity (the harness pins itself before starting
//! peers, and a child process keeps its parent's mask), forces one thread (and f32, but for
//! `ncnn-default`), times its own inference call and measures its own peak memory. Frames: a JSON line, then `bytes` raw little-endian f32 bytes when
//! the line says so (the protocol is documented at the top of worker.py). A reader thread
//! turns the worker's stdout into frames, so every wait has a timeout and a hung or dead
//! worker becomes a fault with the tail of its stderr, never a hung harness.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qcnn_onnx::Interface;
use qcnn_runner::{Network, Observer};
use serde_json::{json, Value};

use super::{Cause, Peer, PeerInfo, PeerMemory, PeerOptions, Timing, Unavailable};

/// The worker, embedded so that the harness needs no file beside its binary.
pub const WORKER_SCRIPT: &str = include_str!("../../peers/worker.py");

/// Bytes of the worker's stderr kept for error messages.
const STDERR_TAIL: usize = 4096;
/// How long a worker gets to exit after `quit` before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// One reply: the JSON header and its payload (empty without `bytes`).
struct Frame {
    header: Value,
    payload: Vec<u8>,
}

/// Why a request got no useful reply.
enum Failure {
    /// The worker answered `ok: false`; `missing` names a module that is not installed.
    Refused {
        error: String,
        missing: Option<String>,
    },
    /// The worker cannot be reached: it did not start, died, hung or spoke nonsense.
    Broken(String),
}

impl Failure {
    fn message(self) -> String {
        match self {
            Failure::Refused { error, .. } | Failure::Broken(error) => error,
        }
    }
}

/// The files a worker loads: an ONNX file, or ncnn's `.param` (`model`) and `.bin` (`weights`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFiles {
    pub model: PathBuf,
    pub weights: Option<PathBuf>,
}

/// A running worker process and the two threads draining its stdout and stderr.
struct Worker {
    child: Child,
    stdin: Option<BufWriter<ChildStdin>>,
    frames: Receiver<Result<Frame, String>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Worker {
    /// Starts the worker; an interpreter that does not exist is [`Cause::NotInstalled`].
    fn spawn(python: &std::ffi::OsStr, script: &Path) -> Result<Worker, (Cause, String)> {
        let mut child = Command::new(python)
            .arg("-u")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                let cause = match e.kind() {
                    std::io::ErrorKind::NotFound => Cause::NotInstalled,
                    _ => Cause::Failed,
                };
                let python = python.to_string_lossy();
                (cause, format!("cannot start the Python worker with '{python}': {e} (set QCNN_PYTHON to a Python 3 interpreter)"))
            })?;
        let stdin = child.stdin.take().map(BufWriter::new);
        let stdout = child.stdout.take().expect("stdout was piped");
        let stderr = child.stderr.take().expect("stderr was piped");
        let tail = Arc::new(Mutex::new(Vec::new()));
        let (sender, frames) = mpsc::channel();
        std::thread::spawn(move || read_frames(BufReader::new(stdout), sender));
        let sink = Arc::clone(&tail);
        std::thread::spawn(move || drain_stderr(stderr, sink));
        Ok(Worker {
            child,
            stdin,
            frames,
            stderr: tail,
        })
    }

    /// Sends a request (and its payload) and waits up to `timeout` for the reply.
    fn request(
        &mut self,
        header: &Value,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Frame, Failure> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(Failure::Broken("the worker's input is closed".into()));
        };
        let sent = serde_json::to_writer(&mut *stdin, header)
            .map_err(std::io::Error::other)
            .and_then(|()| stdin.write_all(b"\n"))
            .and_then(|()| stdin.write_all(payload))
            .and_then(|()| stdin.flush());
        if let Err(e) = sent {
            return Err(Failure::Broken(
                self.died(&format!("writing to the worker: {e}")),
            ));
        }
        let frame = match self.frames.recv_timeout(timeout) {
            Ok(Ok(frame)) => frame,
            Ok(Err(e)) => return Err(Failure::Broken(self.died(&e))),
            Err(RecvTimeoutError::Timeout) => {
                let what = format!("no answer within {} s", timeout.as_secs());
                return Err(Failure::Broken(self.died(&what)));
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Failure::Broken(self.died("the worker exited")))
            }
        };
        if frame.header["ok"] == Value::Bool(true) {
            return Ok(frame);
        }
        let error = frame.header["error"].as_str().unwrap_or("no error message");
        Err(Failure::Refused {
            error: error.trim().to_string(),
            missing: frame.header["missing"].as_str().map(str::to_string),
        })
    }

    /// `what` plus the end of the worker's stderr; the worker is killed (it is of no more use).
    fn died(&mut self, what: &str) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The stderr thread may still be copying the last lines.
        std::thread::sleep(Duration::from_millis(50));
        let tail = self.stderr.lock().map(|t| t.clone()).unwrap_or_default();
        let tail = String::from_utf8_lossy(&tail);
        let tail: Vec<&str> = tail.lines().rev().take(6).collect();
        if tail.is_empty() {
            what.to_string()
        } else {
            let lines: Vec<&str> = tail.into_iter().rev().collect();
            format!("{what}; worker stderr: {}", lines.join(" | "))
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"{\"op\": \"quit\"}\n");
            let _ = stdin.flush();
        }
        let deadline = Instant::now() + EXIT_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_frames(
    mut stdout: BufReader<std::process::ChildStdout>,
    sender: mpsc::Sender<Result<Frame, String>>,
) {
    loop {
        let frame = read_frame(&mut stdout);
        let stop = frame.is_err();
        if sender.send(frame).is_err() || stop {
            return;
        }
    }
}

fn read_frame(stdout: &mut impl BufRead) -> Result<Frame, String> {
    let mut line = String::new();
    match stdout.read_line(&mut line) {
        Ok(0) => return Err("the worker closed its output".into()),
        Ok(_) => {}
        Err(e) => return Err(format!("reading the worker's output: {e}")),
    }
    let header: Value = serde_json::from_str(&line).map_err(|e| {
        format!(
            "the worker sent a line that is not JSON ({e}): {:.200}",
            line.trim()
        )
    })?;
    let len = header["bytes"].as_u64().unwrap_or(0) as usize;
    let mut payload = vec![0u8; len];
    stdout
        .read_exact(&mut payload)
        .map_err(|e| format!("reading a {len}-byte payload from the worker: {e}"))?;
    Ok(Frame { header, payload })
}

fn drain_stderr(mut stderr: std::process::ChildStderr, tail: Arc<Mutex<Vec<u8>>>) {
    let mut chunk = [0u8; 4096];
    while let Ok(n) = stderr.read(&mut chunk) {
        if n == 0 {
            return;
        }
        let Ok(mut tail) = tail.lock() else { return };
        tail.extend_from_slice(&chunk[..n]);
        let excess = tail.len().saturating_sub(STDERR_TAIL);
        tail.drain(..excess);
    }
}

/// onnxruntime, OpenVINO or ncnn, in a worker process.
pub struct PythonPeer {
    info: PeerInfo,
    worker: Worker,
    interface: Interface,
    run_timeout: Duration,
    /// The worker's idle and load figures (from the load reply).
    memory: PeerMemory,
    /// The input as little-endian bytes, reused for every image. Layout (3, H, W).
    payload: Vec<u8>,
    /// The last forward's outputs: probabilities, then logits. Layout (C_out + C_out).
    outputs: Vec<f32>,
    engine_ms: Option<f64>,
    fault: Option<String>,
}

impl PythonPeer {
    /// Starts `python worker.py`, and loads `files` in `engine` ("onnxruntime", "openvino",
    /// "ncnn", "ncnn-default"). Errors say why the peer is unavailable (no Python, package
    /// missing, the engine refused the model, ...).
    pub fn open(
        engine: &str,
        worker_script: &Path,
        files: &ModelFiles,
        interface: Interface,
        options: &PeerOptions,
    ) -> Result<PythonPeer, Unavailable> {
        let unavailable = |cause, reason| Unavailable {
            name: engine.to_string(),
            reason,
            cause,
        };
        let mut worker = Worker::spawn(&options.python, worker_script)
            .map_err(|(cause, reason)| unavailable(cause, reason))?;
        let mut outputs = vec![interface.output.clone()];
        outputs.extend(interface.logits.clone());
        let load = json!({
            "op": "load",
            "engine": engine,
            "model": files.model.to_string_lossy(),
            "weights": files.weights.as_ref().map(|w| w.to_string_lossy()),
            "input": interface.input,
            "input_shape": interface.input_dims,
            "outputs": outputs,
        });
        let reply = match worker.request(&load, &[], options.load_timeout) {
            Ok(frame) => frame.header,
            Err(Failure::Refused {
                error,
                missing: Some(_),
            }) => return Err(unavailable(Cause::NotInstalled, error)),
            Err(failure) => return Err(unavailable(Cause::Failed, failure.message())),
        };
        let memory = &reply["memory"];
        let memory = PeerMemory {
            idle_peak_rss_bytes: memory["idle_peak_rss_bytes"].as_u64(),
            load_peak_rss_bytes: memory["load_peak_rss_bytes"].as_u64(),
            peak_rss_bytes: None,
            peak_reset: memory["peak_reset"].as_bool().unwrap_or(false),
        };
        let info = PeerInfo {
            name: engine.to_string(),
            version: reply["version"].as_str().unwrap_or("unknown").to_string(),
            settings: settings(&reply["settings"]),
            timing: Timing::Engine,
        };
        let logits_len = interface
            .logits
            .as_ref()
            .map_or(0, |_| interface.output_len());
        Ok(PythonPeer {
            info,
            worker,
            run_timeout: options.run_timeout,
            payload: Vec::with_capacity(interface.input_len() * 4),
            outputs: vec![f32::NAN; interface.output_len() + logits_len],
            interface,
            memory,
            engine_ms: None,
            fault: None,
        })
    }

    fn run(&mut self, input: &[f32]) -> Result<f64, String> {
        if input.len() != self.interface.input_len() {
            return Err(format!(
                "input of {} values, the model takes {}",
                input.len(),
                self.interface.input_len()
            ));
        }
        self.payload.clear();
        self.payload
            .extend(input.iter().flat_map(|v| v.to_le_bytes()));
        let header = json!({"op": "run", "bytes": self.payload.len()});
        let frame = self
            .worker
            .request(&header, &self.payload, self.run_timeout)
            .map_err(Failure::message)?;
        if frame.payload.len() != self.outputs.len() * 4 {
            return Err(format!(
                "the worker returned {} bytes, expected {}",
                frame.payload.len(),
                self.outputs.len() * 4
            ));
        }
        for (out, bytes) in self.outputs.iter_mut().zip(frame.payload.chunks_exact(4)) {
            *out = f32::from_le_bytes(bytes.try_into().expect("chunks of 4"));
        }
        let ns = frame.header["ns"]
            .as_u64()
            .ok_or("the worker's reply has no time")?;
        Ok(ns as f64 / 1e6)
    }
}

/// The worker's settings object as text pairs.
fn settings(value: &Value) -> BTreeMap<String, String> {
    let Some(map) = value.as_object() else {
        return BTreeMap::new();
    };
    map.iter()
        .map(|(k, v)| {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            (k.clone(), v)
        })
        .collect()
}

impl Network for PythonPeer {
    fn mode(&self) -> String {
        self.info.name.clone()
    }

    fn kernels(&self) -> String {
        self.info.label()
    }

    /// Sends the image to the worker and returns its probabilities; NaN after a fault.
    fn forward(&mut self, input: &[f32], _observer: &mut dyn Observer) -> &[f32] {
        self.engine_ms = None;
        if self.fault.is_none() {
            match self.run(input) {
                Ok(ms) => self.engine_ms = Some(ms),
                Err(e) => self.fault = Some(format!("{}: {e}", self.info.name)),
            }
        }
        if self.fault.is_some() {
            self.outputs.fill(f32::NAN);
        }
        &self.outputs[..self.interface.output_len()]
    }
}

impl Peer for PythonPeer {
    fn info(&self) -> &PeerInfo {
        &self.info
    }

    fn engine_ms(&self) -> Option<f64> {
        self.engine_ms
    }

    fn logits(&self) -> Option<(&str, &[f32])> {
        let name = self.interface.logits.as_deref()?;
        Some((name, &self.outputs[self.interface.output_len()..]))
    }

    fn fault(&self) -> Option<&str> {
        self.fault.as_deref()
    }

    fn as_network(&mut self) -> &mut dyn Network {
        self
    }

    /// Asks the worker for its peak since the load; a worker that cannot answer is a fault.
    fn memory(&mut self) -> Option<PeerMemory> {
        if self.fault.is_some() {
            return None;
        }
        let request = json!({"op": "memory"});
        match self.worker.request(&request, &[], self.run_timeout) {
            Ok(frame) => Some(PeerMemory {
                peak_rss_bytes: frame.header["peak_rss_bytes"].as_u64(),
                ..self.memory
            }),
            Err(failure) => {
                let why = failure.message();
                self.fault = Some(format!("{}: asking for its memory: {why}", self.info.name));
                None
            }
        }
    }
}
