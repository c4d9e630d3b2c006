//! Peak memory of each mode (and of an in-process peer such as tract), measured in isolation:
//! one child process per mode notes its peak RSS before loading anything (the program's own
//! share), loads the model, builds that network, drops the model, notes its peak again (the
//! load, transients included), resets the peak-RSS mark (/proc/self/clear_refs) and classifies
//! a few images; its VmHWM then is the mode's peak memory while classifying (weights, tables,
//! activations), with no trace of the other modes. The Python peers measure the same three
//! figures in their own worker process (baselines/peers/worker.py).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use qcnn_baselines::peers::{PeerLauncher, PeerOptions, PEERS};
use qcnn_kernels::Target;
use qcnn_results::ProcessMemory;
use qcnn_runner::Network;

use crate::models;
use crate::validate::{self, Validate};

/// Hidden subcommand that a child runs; prints `<figure> <bytes>` lines on stdout.
#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// One of our modes, or an in-process peer (tract).
    #[arg(long)]
    pub mode: String,
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub network: models::NetworkArg,
    #[arg(long)]
    pub seed: u64,
}

const PROBE_IMAGES: usize = 3;
/// Where the probe's figures come from, as `meta.json` records it.
pub const PROBE_PROCESS: &str = "child process (qcnn probe-memory)";

/// What one probe measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probed {
    /// The idle and load peaks, for `meta.json`.
    pub process: ProcessMemory,
    /// The peak while classifying, for `repeats.csv`.
    pub peak_rss_bytes: u64,
}

impl Validate for ProbeArgs {
    fn validate(&self) -> Result<()> {
        let model = self
            .model
            .as_deref()
            .map(|m| validate::model("--model", m))
            .transpose()?;
        if PEERS.contains(&self.mode.as_str()) {
            // An in-process peer (tract); `probe` refuses a peer that measures itself.
            return Ok(());
        }
        models::check_modes_for("--mode", std::slice::from_ref(&self.mode), model.as_ref())
    }
}

/// Runs in the child.
pub fn probe(args: &ProbeArgs, target: Target) -> Result<()> {
    let idle = peak_rss_bytes().context("reading VmHWM from /proc/self/status")?;
    let (mut network, input) = build(args, target)?;
    let load = peak_rss_bytes().context("reading VmHWM from /proc/self/status")?;
    reset_peak().context("resetting the peak-RSS mark (/proc/self/clear_refs)")?;
    for i in 0..PROBE_IMAGES {
        let image = qcnn_model::synthetic::synthetic_input(input, args.seed, i);
        network.forward(&image, &mut qcnn_runner::NoObserver);
    }
    let peak = peak_rss_bytes().context("reading VmHWM from /proc/self/status")?;
    println!("idle_peak_rss_bytes {idle}");
    println!("load_peak_rss_bytes {load}");
    println!("peak_rss_bytes {peak}");
    Ok(())
}

/// The network of `args.mode` and its input shape, with nothing else of the model left in
/// memory.
fn build(args: &ProbeArgs, target: Target) -> Result<(Box<dyn Network>, qcnn_model::Shape)> {
    let mut loaded = models::load(args.model.as_deref(), args.network, args.seed)?;
    let input = loaded.input();
    if PEERS.contains(&args.mode.as_str()) {
        let mut launcher = PeerLauncher::new(&loaded.model, PeerOptions::default());
        let mut peer = launcher
            .open(&args.mode)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if peer.memory().is_some() {
            bail!(
                "peer {} runs in its own worker process, which measures its memory",
                args.mode
            );
        }
        return Ok((Box::new(PeerNetwork(peer)), input));
    }
    if args.mode != "dense" {
        // A quantized network needs no dense weights: don't count a folder's optional ones.
        loaded
            .model
            .params
            .iter_mut()
            .filter(|p| p.codebooks.is_some())
            .for_each(|p| p.dense = None);
    }
    Ok((models::network(&args.mode, &loaded.model, target)?, input))
}

/// A peer seen as a plain network.
struct PeerNetwork(Box<dyn qcnn_baselines::peers::Peer>);

impl Network for PeerNetwork {
    fn mode(&self) -> String {
        self.0.mode()
    }
    fn kernels(&self) -> String {
        self.0.kernels()
    }
    fn forward(&mut self, input: &[f32], observer: &mut dyn qcnn_runner::Observer) -> &[f32] {
        self.0.as_network().forward(input, observer)
    }
}

/// Runs `qcnn probe-memory` for `mode` in a child process and returns what it measured.
pub fn measure_in_child(mode: &str, args: &super::ReproduceArgs, target: Target) -> Result<Probed> {
    let exe = std::env::current_exe().context("locating the qcnn executable")?;
    let mut cmd = Command::new(exe);
    cmd.args([
        "--isa",
        target.isa.name(),
        "--caches",
        &target.caches.to_string(),
        "probe-memory",
        "--mode",
        mode,
        "--seed",
        &args.seed.to_string(),
    ]);
    if let Some(model) = &args.model {
        cmd.arg("--model").arg(model);
    }
    if let Some(network) = args.network.network {
        cmd.args(["--network", network.name()]);
    }
    let out = cmd.output().context("starting the memory probe")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "memory probe for mode {mode} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let figure = |name: &str| {
        stdout
            .lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(' '))
                    .and_then(|n| n.trim().parse().ok())
            })
            .with_context(|| format!("memory probe for mode {mode} printed no {name}: {stdout}"))
    };
    Ok(Probed {
        process: ProcessMemory {
            process: PROBE_PROCESS.into(),
            idle_peak_rss_bytes: Some(figure("idle_peak_rss_bytes")?),
            load_peak_rss_bytes: Some(figure("load_peak_rss_bytes")?),
        },
        peak_rss_bytes: figure("peak_rss_bytes")?,
    })
}

/// Resets VmHWM to the current RSS (Linux ≥ 4.0).
fn reset_peak() -> std::io::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5")
}

/// VmHWM: the process's peak resident set size since start or the last reset.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
