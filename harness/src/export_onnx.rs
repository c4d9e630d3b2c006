//! `qcnn export-onnx`: the dense AlexNet as we run it (stored dense weights, or rebuilt from
//! the codebooks) as a standard ONNX file, optionally checked by loading it back in peers.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use qcnn_baselines::peers::{check_agreement, PeerLauncher, PeerOptions, PEERS};
use qcnn_baselines::DenseNetwork;
use qcnn_model::synthetic;

use crate::models;

/// Synthetic images a `--check` compares on.
const CHECK_IMAGES: usize = 3;

#[derive(clap::Args, Debug)]
pub struct ExportOnnxArgs {
    /// Model folder (the authors' repository root, an AlexNet or a Bin.Files folder).
    /// Without it, the embedded synthetic network (--network).
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub network: models::NetworkArg,
    /// The ONNX file to write (about 244 MB for AlexNet, 553 MB for VGG-16).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the embedded synthetic model.
    #[arg(long, default_value_t = synthetic::DEFAULT_SEED)]
    pub seed: u64,
    /// Load the written file back in these peers (comma-separated: tract, onnxruntime,
    /// openvino) and compare their outputs with the dense baseline on synthetic images.
    /// Fails if a peer disagrees or is unavailable.
    #[arg(long, value_delimiter = ',')]
    pub check: Vec<String>,
    /// Python interpreter for the onnxruntime and OpenVINO checks.
    #[arg(long, env = "QCNN_PYTHON", default_value = "python3")]
    pub python: PathBuf,
}

pub fn run(args: &ExportOnnxArgs) -> Result<()> {
    for name in &args.check {
        if !PEERS.contains(&name.as_str()) {
            bail!(
                "--check: unknown peer '{name}' (known: {})",
                PEERS.join(", ")
            );
        }
    }
    let loaded = models::load(args.model.as_deref(), args.network, args.seed)?;
    let model = &loaded.model;
    let interface = qcnn_onnx::interface(&model.arch).context("mapping the model to ONNX")?;
    let bytes = qcnn_onnx::write(model, &args.out)
        .with_context(|| format!("exporting {} to ONNX", models::describe(&loaded)))?;
    let logits = interface
        .logits
        .as_deref()
        .map(|l| format!(", {l} (logits)"))
        .unwrap_or_default();
    println!(
        "wrote {} ({:.1} MB, ONNX opset {}): {}; input {} {:?}, outputs {} {:?}{logits}",
        args.out.display(),
        bytes as f64 / 1e6,
        qcnn_onnx::OPSET,
        models::describe(&loaded),
        interface.input,
        interface.input_dims,
        interface.output,
        interface.output_dims,
    );
    if args.check.is_empty() {
        return Ok(());
    }
    let images: Vec<Vec<f32>> = (0..CHECK_IMAGES)
        .map(|i| models::synthetic_input(&loaded, args.seed, i))
        .collect();
    let refs: Vec<&[f32]> = images.iter().map(Vec::as_slice).collect();
    let mut dense = DenseNetwork::new(model);
    let options = PeerOptions {
        python: args.python.clone().into_os_string(),
        ..PeerOptions::default()
    };
    let mut launcher = PeerLauncher::with_onnx_file(model, options, &args.out);
    let mut failed = Vec::new();
    for name in &args.check {
        let mut peer = match launcher.open(name) {
            Ok(peer) => peer,
            Err(e) => {
                println!("check {name}: UNAVAILABLE: {}", e.reason);
                failed.push(name.clone());
                continue;
            }
        };
        let agreement = check_agreement(peer.as_mut(), &mut dense, &refs);
        let verdict = if agreement.holds() { "agrees" } else { "WRONG" };
        println!(
            "check {}: {verdict}: {}",
            peer.info().label(),
            agreement.describe()
        );
        if !agreement.holds() {
            failed.push(name.clone());
        }
    }
    if !failed.is_empty() {
        bail!(
            "the ONNX file did not pass the check in: {}",
            failed.join(", ")
        );
    }
    Ok(())
}
