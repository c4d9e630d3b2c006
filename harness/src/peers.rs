//! `qcnn reproduce --peers tract,onnxruntime,openvino,ncnn,ncnn-default`: the engines a reader
//! would use instead, as extra columns of the same run (same weights, images, pinned core, one
//! thread, repeats interleaved with our modes).
//!
//! The reproduce loop uses three things from here:
//! - [`PeerArgs`] (flattened into its arguments) and [`open`], which starts every requested
//!   peer after the process is pinned and checks it against the dense baseline on the run's
//!   first images: only peers that agree are timed; a missing one is listed as unavailable
//!   with the reason, one that failed to load as failed, a disagreeing one as wrong, and none
//!   of them fails the run;
//! - [`Contender`]: one column of the table, a mode or a peer, with the time to record for an
//!   image (the engine's own time for Python peers, the harness's clock otherwise) and the
//!   peer worker's own peak memory;
//! - [`Peers::record`]: every requested peer's status, version, settings and worker memory
//!   into `meta.json`.

use std::ffi::OsString;

use anyhow::{bail, Result};
use qcnn_baselines::peers::{
    check_agreement, Agreement, Cause, Peer, PeerInfo, PeerLauncher, PeerMemory, PeerOptions,
    Timing, PEERS,
};
use qcnn_baselines::DenseNetwork;
use qcnn_model::Model;
use qcnn_results::{Meta, ModeInfo, ProcessMemory};
use qcnn_runner::Network;

/// What `ModeInfo::isa` says for a peer: each engine picks its own instruction set.
pub const PEER_ISA: &str = "engine's choice";

#[derive(clap::Args, Debug, Clone)]
pub struct PeerArgs {
    /// Other engines to measure beside our modes, comma-separated (tract, onnxruntime,
    /// openvino, ncnn, ncnn-default, or all): the dense AlexNet exported for each, same
    /// images, same pinned core, one thread. A missing peer is reported, never fatal.
    #[arg(long, value_delimiter = ',')]
    pub peers: Vec<String>,
    /// Python interpreter for the onnxruntime, OpenVINO and ncnn workers.
    #[arg(long, env = "QCNN_PYTHON", default_value = "python3")]
    pub python: OsString,
    /// Images each peer must reproduce the dense baseline on (probabilities and logits within
    /// 1e-4 relative; 2e-2 for ncnn-default's fp16 storage) before it is timed: 1..=--images, the run's first images (default: 2,
    /// or --images if fewer).
    #[arg(long, value_parser = crate::validate::count::<u32>(1, u32::MAX.into()))]
    pub peer_check_images: Option<u32>,
}

/// Images a peer is checked on unless `--peer-check-images` says otherwise.
const DEFAULT_PEER_CHECK_IMAGES: u32 = 2;

impl PeerArgs {
    /// Checks the peer names and that `--peer-check-images` is at most the run's `images`
    /// (the check uses the run's first images), before anything starts.
    pub fn validate(&self, images: u32) -> Result<()> {
        self.names()?;
        if let Some(n) = self.peer_check_images.filter(|&n| n > images) {
            bail!(
                "--peer-check-images {n}: must be in 1..={images} (the run's --images: the check \
                 uses the run's first images)"
            );
        }
        Ok(())
    }

    /// How many of a run of `images` images the peers are checked on.
    pub fn check_images(&self, images: u32) -> usize {
        let n = self
            .peer_check_images
            .unwrap_or(DEFAULT_PEER_CHECK_IMAGES.min(images));
        n.min(images) as usize
    }

    /// The requested peer names, `all` expanded, duplicates dropped; unknown names are a
    /// command-line error.
    pub fn names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = Vec::new();
        for name in &self.peers {
            let expanded: Vec<&str> = match name.as_str() {
                "all" => PEERS.to_vec(),
                n if PEERS.contains(&n) => vec![n],
                n => bail!(
                    "--peers: unknown peer '{n}' (known: {}, all)",
                    PEERS.join(", ")
                ),
            };
            for n in expanded {
                if !names.iter().any(|have| have == n) {
                    names.push(n.to_string());
                }
            }
        }
        Ok(names)
    }
}

/// What became of a requested peer.
#[derive(Clone, Debug)]
pub enum PeerStatus {
    /// Agrees with the dense baseline: timed.
    Ready(Agreement),
    /// Not installed here (missing Python or package, build without tract).
    Unavailable(String),
    /// Installed but could not load our model (export, engine or worker error): not timed.
    Failed(String),
    /// Started but computes something else (or broke during the check): not timed.
    Wrong(Agreement),
}

/// One requested peer, for the table, the notes and the log.
#[derive(Clone, Debug)]
pub struct PeerReport {
    pub name: String,
    /// Known once the peer started.
    pub info: Option<PeerInfo>,
    pub status: PeerStatus,
    /// The worker's own memory figures after the check (Python peers only).
    pub memory: Option<PeerMemory>,
}

impl PeerReport {
    /// "ready", "unavailable", "failed" or "wrong".
    pub fn state(&self) -> &'static str {
        match self.status {
            PeerStatus::Ready(_) => "ready",
            PeerStatus::Unavailable(_) => "unavailable",
            PeerStatus::Failed(_) => "failed",
            PeerStatus::Wrong(_) => "wrong",
        }
    }

    /// One line for the log: "onnxruntime 1.32.0: ready (max relative error ...)".
    pub fn describe(&self) -> String {
        let who = self
            .info
            .as_ref()
            .map_or_else(|| self.name.clone(), PeerInfo::label);
        match &self.status {
            PeerStatus::Ready(a) => format!("{who}: ready ({})", a.describe()),
            PeerStatus::Unavailable(reason) => format!("{who}: unavailable: {reason}"),
            PeerStatus::Failed(reason) => format!("{who}: FAILED to load, not timed: {reason}"),
            PeerStatus::Wrong(a) => format!("{who}: WRONG, not timed ({})", a.describe()),
        }
    }
}

/// The peers of a run: those to time, and a report for every one requested.
pub struct Peers {
    /// Peers that agree with the dense baseline, in the requested order.
    pub ready: Vec<Box<dyn Peer>>,
    /// One per requested peer, in the requested order.
    pub reports: Vec<PeerReport>,
}

/// Starts the requested peers on `model` and checks each against the dense baseline on
/// `images` (the run's first [`PeerArgs::check_images`]). Must run after the process is
/// pinned: the Python workers inherit the affinity. Errors only for unknown peer names.
pub fn open(args: &PeerArgs, model: &Model, images: &[&[f32]]) -> Result<Peers> {
    let names = args.names()?;
    let mut peers = Peers {
        ready: Vec::new(),
        reports: Vec::new(),
    };
    if names.is_empty() {
        return Ok(peers);
    }
    let options = PeerOptions {
        python: args.python.clone(),
        ..PeerOptions::default()
    };
    let mut dense = DenseNetwork::new(model);
    let mut launcher = PeerLauncher::new(model, options);
    for name in names {
        eprintln!("starting peer {name}");
        let mut peer = match launcher.open(&name) {
            Ok(peer) => peer,
            Err(e) => {
                let status = match e.cause {
                    Cause::NotInstalled => PeerStatus::Unavailable(e.reason),
                    Cause::Failed => PeerStatus::Failed(e.reason),
                };
                let report = PeerReport {
                    name,
                    info: None,
                    status,
                    memory: None,
                };
                eprintln!("peer {}", report.describe());
                peers.reports.push(report);
                continue;
            }
        };
        let agreement = check_agreement(peer.as_mut(), &mut dense, images);
        let info = Some(peer.info().clone());
        let memory = peer.memory();
        let status = match peer.fault() {
            None if agreement.holds() => PeerStatus::Ready(agreement),
            _ => PeerStatus::Wrong(agreement),
        };
        let report = PeerReport {
            name,
            info,
            status,
            memory,
        };
        eprintln!("peer {}", report.describe());
        if matches!(report.status, PeerStatus::Ready(_)) {
            peers.ready.push(peer);
        }
        peers.reports.push(report);
    }
    Ok(peers)
}

impl Peers {
    /// Adds a `ModeInfo` per ready peer (after our modes, in the order they will run, with
    /// the worker's memory) and, for every requested peer, notes
    /// `peer.<name>.{status,version,settings,timing,check,reason,memory}`.
    pub fn record(&self, meta: &mut Meta) {
        for peer in &self.ready {
            let info = peer.info();
            let mut mode = ModeInfo::new(&info.name, &info.label(), PEER_ISA);
            let report = self.reports.iter().find(|r| r.name == info.name);
            mode.memory = report.and_then(|r| worker_memory(info, r.memory.as_ref()?));
            meta.modes.push(mode);
        }
        let requested: Vec<&str> = self.reports.iter().map(|r| r.name.as_str()).collect();
        meta.notes
            .insert("peers_requested".into(), requested.join(","));
        for report in &self.reports {
            let key = |field: &str| format!("peer.{}.{field}", report.name);
            meta.notes.insert(key("status"), report.state().into());
            match &report.status {
                PeerStatus::Ready(a) | PeerStatus::Wrong(a) => {
                    meta.notes.insert(key("check"), a.describe());
                }
                PeerStatus::Unavailable(reason) | PeerStatus::Failed(reason) => {
                    meta.notes.insert(key("reason"), reason.clone());
                }
            }
            if let Some(memory) = &report.memory {
                let how = if memory.peak_reset {
                    "measured in the worker: peak RSS before importing the engine, after loading, \
                     and while classifying (peak reset after the load)"
                } else {
                    "measured in the worker: the peak-RSS reset after loading was refused, so \
                     its peak while classifying includes the load"
                };
                meta.notes.insert(key("memory"), how.into());
            }
            if let Some(info) = &report.info {
                meta.notes.insert(key("version"), info.version.clone());
                meta.notes.insert(key("settings"), info.settings_line());
                meta.notes.insert(key("timing"), info.timing.name().into());
            }
        }
    }

    /// The ready peers that run in this process (tract): no worker measures their memory,
    /// so the harness probes them in a child process like its own modes.
    pub fn in_process(&self) -> Vec<String> {
        self.reports
            .iter()
            .filter(|r| matches!(r.status, PeerStatus::Ready(_)) && r.memory.is_none())
            .map(|r| r.name.clone())
            .collect()
    }

    /// Our modes' networks followed by the ready peers: the columns of every repeat.
    pub fn contenders(self, modes: Vec<Box<dyn Network>>) -> Vec<Contender> {
        let mut all: Vec<Contender> = modes.into_iter().map(Contender::Mode).collect();
        all.extend(self.ready.into_iter().map(Contender::Peer));
        all
    }
}

/// A Python peer's idle and load figures as `meta.json` records them, naming the worker.
fn worker_memory(info: &PeerInfo, memory: &PeerMemory) -> Option<ProcessMemory> {
    let python = info
        .settings
        .get("python")
        .map_or_else(String::new, |v| format!(" (Python {v})"));
    Some(ProcessMemory {
        process: format!("peer worker{python}"),
        idle_peak_rss_bytes: memory.idle_peak_rss_bytes,
        load_peak_rss_bytes: memory.load_peak_rss_bytes,
    })
}

/// One column of the table: one of our modes or a peer.
pub enum Contender {
    Mode(Box<dyn Network>),
    Peer(Box<dyn Peer>),
}

impl Contender {
    /// The network to call `forward` on.
    pub fn network(&mut self) -> &mut dyn Network {
        match self {
            Contender::Mode(net) => net.as_mut(),
            Contender::Peer(peer) => peer.as_network(),
        }
    }

    pub fn mode(&self) -> String {
        match self {
            Contender::Mode(net) => net.mode(),
            Contender::Peer(peer) => peer.mode(),
        }
    }

    pub fn kernels(&self) -> String {
        match self {
            Contender::Mode(net) => net.kernels(),
            Contender::Peer(peer) => peer.kernels(),
        }
    }

    pub fn is_peer(&self) -> bool {
        matches!(self, Contender::Peer(_))
    }

    /// The milliseconds to record for the forward pass that just ran, given the harness's
    /// clock around it (`wall_ms`): a Python peer's own inference time (the pipe to its
    /// worker excluded), else `wall_ms`.
    pub fn image_ms(&self, wall_ms: f64) -> f64 {
        match self {
            Contender::Peer(peer) if peer.info().timing == Timing::Engine => {
                peer.engine_ms().unwrap_or(f64::NAN)
            }
            _ => wall_ms,
        }
    }

    /// The peak RSS of the contender's own process while classifying, when it measures it
    /// itself (a Python peer's worker, asked now); `None` for modes and in-process peers,
    /// which the memory probes measure in a child process.
    pub fn own_peak_rss_bytes(&mut self) -> Option<u64> {
        match self {
            Contender::Peer(peer) => peer.memory()?.peak_rss_bytes,
            Contender::Mode(_) => None,
        }
    }

    /// Why a peer broke during the run (its outputs are NaN from then on); `None` for modes.
    pub fn fault(&self) -> Option<String> {
        match self {
            Contender::Peer(peer) => peer.fault().map(str::to_string),
            Contender::Mode(_) => None,
        }
    }
}
