//! Peak memory of each mode, measured in isolation: one child process per mode loads the
//! model, builds that network, drops the model, resets the peak-RSS mark
//! (/proc/self/clear_refs) and classifies a few images; its VmHWM is the mode's peak memory
//! while classifying (weights, tables, activations), with no trace of the other modes.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use qcnn_kernels::Target;

use crate::models;

/// Hidden subcommand that a child runs; prints `peak_rss_bytes <n>` on stdout.
#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
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

/// Runs in the child.
pub fn probe(args: &ProbeArgs, target: Target) -> Result<()> {
    let mut loaded = models::load(args.model.as_deref(), args.network, args.seed)?;
    if args.mode != "dense" {
        // A quantized network needs no dense weights: don't count a folder's optional ones.
        loaded
            .model
            .params
            .iter_mut()
            .filter(|p| p.codebooks.is_some())
            .for_each(|p| p.dense = None);
    }
    let mut network = models::network(&args.mode, &loaded.model, target)?;
    let input = loaded.input();
    drop(loaded);
    reset_peak().context("resetting the peak-RSS mark (/proc/self/clear_refs)")?;
    for i in 0..PROBE_IMAGES {
        let image = qcnn_model::synthetic::synthetic_input(input, args.seed, i);
        network.forward(&image, &mut qcnn_model::NoObserver);
    }
    let peak = peak_rss_bytes().context("reading VmHWM from /proc/self/status")?;
    println!("peak_rss_bytes {peak}");
    Ok(())
}

/// Runs `qcnn probe-memory` for `mode` in a child process and returns its peak RSS.
pub fn measure_in_child(mode: &str, args: &super::ReproduceArgs, target: Target) -> Result<u64> {
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
    stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("peak_rss_bytes ")
                .and_then(|n| n.trim().parse().ok())
        })
        .with_context(|| format!("memory probe for mode {mode} printed no figure: {stdout}"))
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
