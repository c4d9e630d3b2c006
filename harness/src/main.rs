//! `qcnn`: reproduce the Quantized-CNN speed-up table (Wu et al., CVPR 2016) on this machine.

mod blas_core;
mod budget;
mod classify;
mod compare;
mod dump;
mod evaluate;
mod export_onnx;
mod labels;
mod machine;
mod models;
mod peers;
mod pinning;
mod quantize;
mod reproduce;
mod sweep;
mod theory;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use qcnn_kernels::Isa;

use blas_core::CorePolicy;
use validate::Validate;

#[derive(Parser, Debug)]
#[command(
    name = "qcnn",
    version,
    about = "Dense BLAS AlexNet vs Quantized-CNN look-up kernels, measured honestly",
    long_about = "Reproduces the speed-up table of 'Quantized Convolutional Neural Networks for \
Mobile Devices' (Wu et al., CVPR 2016) on this machine: a dense AlexNet over OpenBLAS against \
Q-CNN look-up-table kernels, one thread, one image per batch. Without a model folder every \
command runs on an embedded, deterministic synthetic AlexNet with the authors' quantization."
)]
struct Cli {
    /// OpenBLAS kernel family: `best` (the strongest this CPU runs, overriding a weaker
    /// OPENBLAS_CORETYPE), `env` (keep what the environment chose), or a core name (SkylakeX).
    #[arg(long, global = true, default_value = "best", env = "QCNN_BLAS_CORE")]
    blas_core: CorePolicy,
    /// Instruction set of the look-up kernels and of the LRN and pooling every mode shares: auto
    /// (the best available), scalar, avx2, avx512 or neon. Forcing one this CPU lacks is an error.
    #[arg(long, global = true, default_value = "auto", env = "QCNN_ISA")]
    isa: String,
    /// Cache sizes the look-up plans are sized for: auto (read from the running core), or
    /// sizes over the detected ones, e.g. `l2=512K` or `l1d=32K,l2=512K,l3=32M`, to plan
    /// like another machine.
    #[arg(long, global = true, default_value = "auto", env = "QCNN_CACHES")]
    caches: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The authors' speed test on this machine: dense vs Q-CNN, interleaved repeats of
    /// single-image batches, one pinned thread; prints their table and records everything.
    Reproduce(reproduce::ReproduceArgs),
    /// Learn codebooks and assignments from a dense model (plain PQ or the paper's error
    /// correction) and write a model in the authors' format.
    Quantize(quantize::QuantizeArgs),
    /// Quantize one layer at several (d, K) and record error vs measured speed-up.
    Sweep(sweep::SweepArgs),
    /// Write the dense AlexNet as we run it as a standard ONNX file (optionally checked by
    /// loading it back in peers).
    ExportOnnx(export_onnx::ExportOnnxArgs),
    /// Render stored runs as report.md, charts (PNG, SVG) and index.html; never re-measures.
    /// With --compare BASE NEW, the comparison of the two comes first.
    Report(ReportArgs),
    /// Top-1/top-5 accuracy of each mode over a labelled image set, agreement with dense and
    /// the images each mode changed; recorded as a run that `qcnn report` renders.
    Evaluate(evaluate::EvaluateArgs),
    /// Compare two runs (or two folders of runs, pooled): per mode, speed-up and layer, the
    /// change of the median time with a bootstrap interval and a verdict. Exit status 0: no
    /// regression, 1: a regression beyond the threshold, 2: could not compare.
    Compare(compare::CompareArgs),
    /// Classify one image and print the top-5 classes (optionally dump every layer).
    Classify(classify::ClassifyArgs),
    /// Write an embedded synthetic network (--network, default AlexNet) to a folder in the
    /// authors' format.
    GenerateModel(GenerateModelArgs),
    /// The paper's analysis of a network: per layer and in total, dense multiply-adds vs
    /// table + look-up ops, theoretical speed-up, storage and compression (Markdown or JSON).
    Theory(theory::TheoryArgs),
    /// Print this machine's ISA levels and the OpenBLAS configuration in use.
    Info,
    /// (internal) Peak memory of one mode, measured by `reproduce` in a child process.
    #[command(hide = true)]
    ProbeMemory(reproduce::memory::ProbeArgs),
}

#[derive(clap::Args, Debug)]
struct ReportArgs {
    /// Run folders (results/runs/<run>) to include; several give a history chart.
    #[arg(required_unless_present = "compare")]
    runs: Vec<PathBuf>,
    /// Compare two runs (or folders of runs) as `qcnn compare` does: a section with the
    /// tables and a per-layer change chart per mode, then both sides' runs.
    #[arg(long, num_args = 2, value_names = ["BASE", "NEW"], conflicts_with = "runs")]
    compare: Option<Vec<PathBuf>>,
    #[command(flatten)]
    judge: compare::JudgeArgs,
    /// Where the report goes.
    #[arg(long, default_value = "report")]
    out: PathBuf,
}

impl Validate for ReportArgs {
    fn validate(&self) -> Result<()> {
        for run in &self.runs {
            validate::input_dir("run folder", run)?;
        }
        for side in self.compare.iter().flatten() {
            validate::input_dir("--compare", side)?;
        }
        self.judge.validate()?;
        validate::output_dir("--out", &self.out)
    }
}

#[derive(clap::Args, Debug)]
struct GenerateModelArgs {
    /// Destination folder (created if missing).
    dir: PathBuf,
    #[arg(long, default_value_t = qcnn_model::synthetic::DEFAULT_SEED)]
    seed: u64,
    #[command(flatten)]
    network: models::NetworkArg,
}

impl Validate for GenerateModelArgs {
    fn validate(&self) -> Result<()> {
        validate::output_dir("DIR", &self.dir)
    }
}

impl Validate for Command {
    /// One validated-arguments step per command; see [`validate`].
    fn validate(&self) -> Result<()> {
        match self {
            Command::Reproduce(args) => args.validate(),
            Command::Quantize(args) => args.validate(),
            Command::Sweep(args) => args.validate(),
            Command::ExportOnnx(args) => args.validate(),
            Command::Report(args) => args.validate(),
            Command::Compare(args) => args.validate(),
            Command::Classify(args) => args.validate(),
            Command::Evaluate(args) => args.validate(),
            Command::Theory(args) => args.validate(),
            Command::GenerateModel(args) => args.validate(),
            Command::Info => Ok(()),
            Command::ProbeMemory(args) => args.validate(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Compare(args) = &cli.command {
        // Its own exit statuses (regressed or not; 2 for any error, bad arguments first),
        // and no BLAS: stored files only.
        return compare::main(args);
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<()> {
    // Every argument first: nothing is loaded, restarted, measured or written before this.
    let machine = machine::resolve(&cli.isa, &cli.caches, machine::current_cpu())?;
    let target = machine.target;
    cli.command.validate()?;
    if let Command::Report(args) = &cli.command {
        // Pure rendering of stored files: no BLAS, no measurement.
        return report(args);
    }
    if let Command::Theory(args) = &cli.command {
        // Op counts only: no BLAS, no measurement.
        return theory::run(args);
    }
    let blas = blas_core::ensure(&cli.blas_core)?;
    qcnn_kernels::blas::self_check().map_err(anyhow::Error::msg)?;
    match &cli.command {
        Command::Reproduce(args) => reproduce::run(args, &machine, &blas),
        Command::ProbeMemory(args) => reproduce::memory::probe(args, target),
        Command::Classify(args) => classify::run(args, target),
        Command::Evaluate(args) => evaluate::run(args, &machine, &blas),
        Command::Quantize(args) => quantize::run(args),
        Command::ExportOnnx(args) => export_onnx::run(args),
        Command::Sweep(args) => sweep::run(args, &blas, target.caches),
        Command::Report(_) | Command::Compare(_) | Command::Theory(_) => {
            unreachable!("handled before BLAS")
        }
        Command::GenerateModel(GenerateModelArgs { dir, seed, network }) => {
            let model = qcnn_model::synthetic::synthetic_network(network.kind(), *seed);
            qcnn_model::folder::save(&model, dir, &models::synthetic_prefix(network.kind()))
                .with_context(|| format!("writing the synthetic model into {}", dir.display()))?;
            println!(
                "wrote the synthetic {} (seed {seed}) into {}",
                model.arch.name,
                dir.display()
            );
            Ok(())
        }
        Command::Info => {
            print_info(&machine, &blas);
            Ok(())
        }
    }
}

/// `qcnn info`: the machine, the look-up ISA and OpenBLAS, as a run would record them.
fn print_info(machine: &machine::Machine, blas: &blas_core::BlasInfo) {
    let target = machine.target;
    let system = qcnn_results::collect_system();
    let or_unknown = |s: &str| {
        if s.is_empty() {
            "unknown".to_string()
        } else {
            s.to_string()
        }
    };
    println!(
        "cpu: {} (vendor {}, {} logical cores)",
        or_unknown(&system.cpu_model),
        or_unknown(&system.cpu_vendor),
        system.logical_cores
    );
    println!("arch: {}", system.arch);
    if let Some(note) = &system.emulation {
        println!("emulation: {note}");
    }
    println!("caches: {}", system.caches_summary());
    println!(
        "isa levels: {}",
        Isa::available()
            .iter()
            .map(|i| i.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "look-up isa: {} (uses {})",
        target.isa,
        target.isa.features().join(", ")
    );
    println!(
        "cpu features the levels could use: {}",
        qcnn_kernels::isa::cpu_features().join(", ")
    );
    println!(
        "look-up plans sized for: {} ({})",
        target.caches, machine.caches_from
    );
    println!(
        "openblas core: {} (environment: {})",
        blas.core,
        blas.env_core.as_deref().unwrap_or("unset")
    );
    println!(
        "openblas core policy (--blas-core best): {}",
        blas_core::BEST_POLICY
    );
    println!("openblas config: {}", blas.config);
    println!("openblas threads: {}", blas.threads);
}

fn report(args: &ReportArgs) -> Result<()> {
    let ReportArgs {
        runs,
        compare,
        judge,
        out,
    } = args;
    let files = match compare.as_deref() {
        Some([base, new]) => qcnn_reports::render_compare(
            base,
            new,
            out,
            &judge.options(),
            judge.allow_different,
            &Default::default(),
        )?,
        _ => qcnn_reports::render(runs, out)?,
    };
    println!(
        "wrote {} and {} ({} charts)",
        files.markdown.display(),
        files.html.display(),
        files.charts.len()
    );
    Ok(())
}
