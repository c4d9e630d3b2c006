//! `qcnn reproduce`: the authors' speed test (AlexNet, one image per batch, 100 batches,
//! 5 repeats), dense vs quantized, interleaved, pinned, every timing recorded.

mod agreement;
mod clock;
mod inputs;
pub mod memory;
pub mod storage;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cpu_time::ProcessTime;
use indicatif::{ProgressBar, ProgressStyle};
use qcnn_kernels::{Isa, Target};

use crate::machine::Machine;
use qcnn_model::preprocess::MeanImage;
use qcnn_model::{LayerKind, Network, NetworkKind};
use qcnn_results::{
    ImageRow, LayerRow, Meta, ModeInfo, RepeatRecord, RepeatRow, RunWriter, Summary,
};

use crate::blas_core::BlasInfo;
use crate::classify::{mean_image_or_channel_means, top_k};
use crate::models::{self, LoadedModel};
use crate::peers::Contender;
use clock::LayerClock;
use inputs::InputSet;

#[derive(clap::Args, Debug)]
pub struct ReproduceArgs {
    /// Model folder (the authors' repository root, an AlexNet or a Bin.Files folder).
    /// Without it, the embedded synthetic network (--network).
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub network: models::NetworkArg,
    /// The authors' preprocessed test set, f32 (N, 3, H, W) of the network's input
    /// (ILSVRC12.227x227.IMG/dataMatTst.single.bin for AlexNet).
    #[arg(long, conflicts_with = "images_dir")]
    pub data: Option<PathBuf>,
    /// Labels of --data, uint16 (default: lablVecTst.uint16.bin beside it, if present).
    #[arg(long, requires = "data")]
    pub labels: Option<PathBuf>,
    /// A folder of BMP/PNG/JPEG images, preprocessed as the authors did (cycled if fewer
    /// than --images).
    #[arg(long)]
    pub images_dir: Option<PathBuf>,
    /// Mean image for --images-dir (default: the model folder's, else per-channel means).
    #[arg(long)]
    pub mean: Option<PathBuf>,
    /// Repeats; each runs every mode over --images single-image batches.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeats: u32,
    /// Single-image batches per repeat and mode. Default per network, so that a default
    /// run (5 repeats, modes dense and qcnn) takes a few minutes on a recent core: alexnet
    /// and caffenet 100 (the authors' count), cnn-s 40, vgg16 10.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub images: Option<u32>,
    /// Untimed single-image batches per mode before the first repeat.
    #[arg(long, default_value_t = 10)]
    pub warmup: u32,
    /// Modes to measure, comma-separated, interleaved in this order in every repeat.
    #[arg(long, value_delimiter = ',', default_value = "dense,qcnn")]
    pub modes: Vec<String>,
    /// CPU core to pin the process to (default: the last one).
    #[arg(long)]
    pub core: Option<usize>,
    /// Where run folders go.
    #[arg(long, default_value = "results/runs")]
    pub results: PathBuf,
    /// Skip the per-mode memory probes (child processes).
    #[arg(long)]
    pub no_memory: bool,
    /// Print the summary as one JSON object on stdout instead of the tables.
    #[arg(long)]
    pub json: bool,
    /// Measure a debug build anyway (its timings mean nothing).
    #[arg(long)]
    pub allow_debug: bool,
    /// Seed of the embedded synthetic model and images.
    #[arg(long, default_value_t = qcnn_model::synthetic::DEFAULT_SEED)]
    pub seed: u64,
    #[command(flatten)]
    pub peers: crate::peers::PeerArgs,
}

impl ReproduceArgs {
    /// --images, else the network's default.
    pub fn images(&self) -> u32 {
        self.images
            .unwrap_or_else(|| default_images(self.network.kind()))
    }
}

/// Single-image batches per repeat of a default run: AlexNet's 100 (the authors' count),
/// fewer for the larger networks (CNN-S ≈ 3.6×, VGG-16 ≈ 21× AlexNet's multiply-adds), so
/// that any default run takes a few minutes.
pub fn default_images(network: NetworkKind) -> u32 {
    match network {
        NetworkKind::AlexNet | NetworkKind::CaffeNet => 100,
        NetworkKind::CnnS => 40,
        NetworkKind::Vgg16 => 10,
    }
}

/// Everything a repeat needs, prepared before any timing.
struct Bench {
    inputs: InputSet,
    layer_names: Vec<&'static str>,
    /// Layers that are not identities (dropout is skipped in layer rows).
    timed_layers: Vec<usize>,
    images: usize,
}

pub fn run(args: &ReproduceArgs, machine: &Machine, blas: &BlasInfo) -> Result<()> {
    check_build(args.allow_debug)?;
    let loaded = models::load(args.model.as_deref(), args.network, args.seed)?;
    let inputs = load_inputs(args, &loaded)?;
    // Provenance first: once pinned, the process sees one core.
    let mut meta = plan(args, machine, blas, &loaded, &inputs)?;
    let core = crate::pinning::pin(args.core)?;
    meta.pinned_core = Some(core as u32);
    // The caches of the core that runs (they differ between the kinds of core of a
    // big.LITTLE CPU): recorded, and what the look-up plans are sized for.
    meta.system.read_caches_of(core);
    let machine = machine.for_cpu(core);
    let target = machine.target;
    meta.target = Some(target_info(&machine));
    let mut peak_rss = memory_probes(args, target)?;
    let (mut networks, bench) = prepare(args, &loaded, inputs, target)?;
    record_plans(&mut meta, &networks);
    record_agreement(&mut meta, &loaded, &bench, &mut networks, target)?;
    let check: Vec<&[f32]> = (0..args.peers.peer_check_images as usize)
        .map(|i| bench.inputs.image(i))
        .collect();
    let peers = crate::peers::open(&args.peers, &loaded.model, &check)?;
    peers.record(&mut meta);
    let mut networks = peers.contenders(networks);
    // The memory probes cover our modes only; peers run in their own engines.
    peak_rss.resize(networks.len(), None);
    let mut writer = RunWriter::create(&args.results, meta)?;
    eprintln!("recording into {}", writer.dir().display());
    warm_up(&mut networks, &bench, args.warmup as usize);
    let progress = progress_bar(args.repeats as usize * networks.len() * bench.images);
    for repeat in 1..=args.repeats {
        let record = measure_repeat(&mut networks, &bench, repeat, &peak_rss, &progress);
        writer
            .append_repeat(&record)
            .with_context(|| format!("recording repeat {repeat}"))?;
        if let Some((mode, why)) = networks
            .iter()
            .find_map(|c| c.fault().map(|f| (c.mode(), f)))
        {
            bail!("peer {mode} failed during repeat {repeat} ({why}); the repeats before it are recorded in {}", writer.dir().display());
        }
    }
    progress.finish_and_clear();
    let dir = writer.dir().to_path_buf();
    let summary = writer.finish()?;
    print_outcome(args, &dir, &summary)
}

fn check_build(allow_debug: bool) -> Result<()> {
    if cfg!(debug_assertions) {
        if !allow_debug {
            bail!("this is a debug build: its timings mean nothing. Build with --release (or pass --allow-debug)");
        }
        eprintln!("WARNING: DEBUG BUILD — these timings mean nothing");
    }
    Ok(())
}

fn load_inputs(args: &ReproduceArgs, loaded: &LoadedModel) -> Result<InputSet> {
    let count = args.images() as usize;
    if let Some(data) = &args.data {
        let beside = data.with_file_name("lablVecTst.uint16.bin");
        let labels = args
            .labels
            .clone()
            .or_else(|| beside.exists().then_some(beside));
        return inputs::from_data_file(data, labels.as_deref(), count, loaded.input());
    }
    if let Some(dir) = &args.images_dir {
        let mean: MeanImage = mean_image_or_channel_means(args.mean.as_deref(), loaded)?;
        let labels = loaded.folder.as_ref().and_then(|f| f.image_labels());
        return inputs::from_image_dir(dir, &mean, labels.as_deref(), count, loaded.input());
    }
    Ok(inputs::synthetic(loaded.input(), args.seed, count))
}

/// The run's provenance, written before anything is measured.
fn plan(
    args: &ReproduceArgs,
    machine: &Machine,
    blas: &BlasInfo,
    loaded: &LoadedModel,
    inputs: &InputSet,
) -> Result<Meta> {
    let isa = machine.target.isa;
    for mode in &args.modes {
        if !models::MODES.contains(&mode.as_str()) {
            bail!(
                "--modes: unknown mode '{mode}' (this build offers: {})",
                models::MODES.join(", ")
            );
        }
    }
    let modes = args
        .modes
        .iter()
        .map(|m| ModeInfo::new(m, "", if m == "dense" { "blas" } else { isa.name() }))
        .collect();
    let mut meta = Meta::new(args.repeats, args.images(), modes);
    meta.input = inputs.source.clone();
    meta.theoretical_speedup = Some(storage::theoretical_speedup(&loaded.model));
    meta.storage = Some(storage::storage(&loaded.model));
    meta.layer_ops = storage::layer_ops(&loaded.model);
    meta.model = model_info(loaded)?;
    meta.blas = Some(qcnn_results::BlasInfo {
        library: "OpenBLAS".into(),
        version: blas.config.clone(),
        core_type: blas.core.clone(),
    });
    meta.notes
        .insert("warmup_images".into(), args.warmup.to_string());
    meta.notes.insert(
        "blas_core_from_environment".into(),
        blas.env_core.clone().unwrap_or_else(|| "unset".into()),
    );
    meta.notes.insert(
        "blas_core_switched_by_qcnn".into(),
        blas.switched.to_string(),
    );
    meta.notes.insert("lookup_isa".into(), isa.name().into());
    meta.target = Some(target_info(machine));
    meta.notes.insert(
        "isa_levels_available".into(),
        Isa::available()
            .iter()
            .map(|i| i.name())
            .collect::<Vec<_>>()
            .join(","),
    );
    Ok(meta)
}

/// The caches the look-up plans were sized for, where they came from, and the CPU's SIMD
/// features beside the level in use.
fn target_info(machine: &Machine) -> qcnn_results::TargetInfo {
    let t = machine.target;
    qcnn_results::TargetInfo {
        isa: t.isa.name().into(),
        isa_features: t.isa.features().iter().map(|f| f.to_string()).collect(),
        cpu_features: qcnn_kernels::isa::cpu_features()
            .iter()
            .map(|f| f.to_string())
            .collect(),
        l1d_bytes: t.caches.l1d as u64,
        l2_bytes: t.caches.l2 as u64,
        l3_bytes: t.caches.l3 as u64,
        caches_from: machine.caches_from.to_string(),
    }
}

/// Every mode's kernels and per-layer plans, into the run's mode list.
fn record_plans(meta: &mut Meta, networks: &[Box<dyn Network>]) {
    for (info, net) in meta.modes.iter_mut().zip(networks) {
        info.kernel = net.kernels();
        info.plans = net
            .plans()
            .into_iter()
            .map(|(layer, kernel, plan)| qcnn_results::LayerPlan {
                layer,
                kernel,
                plan,
            })
            .collect();
    }
}

fn model_info(loaded: &LoadedModel) -> Result<qcnn_results::ModelInfo> {
    let source = models::describe(loaded);
    let Some(folder) = &loaded.folder else {
        return Ok(qcnn_results::ModelInfo {
            source,
            files: Vec::new(),
        });
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder.bin_dir)
        .with_context(|| format!("listing {}", folder.bin_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{}.", folder.prefix)))
        })
        .collect();
    files.sort();
    Ok(qcnn_results::ModelInfo::hashed(&source, &files)?)
}

fn memory_probes(args: &ReproduceArgs, target: Target) -> Result<Vec<Option<u64>>> {
    if args.no_memory {
        return Ok(vec![None; args.modes.len()]);
    }
    args.modes
        .iter()
        .map(|mode| memory::measure_in_child(mode, args, target).map(Some))
        .collect()
}

fn prepare(
    args: &ReproduceArgs,
    loaded: &LoadedModel,
    inputs: InputSet,
    target: Target,
) -> Result<(Vec<Box<dyn Network>>, Bench)> {
    let networks = args
        .modes
        .iter()
        .map(|m| models::network(m, &loaded.model, target))
        .collect::<Result<Vec<_>>>()?;
    let arch = &loaded.model.arch;
    let bench = Bench {
        inputs,
        layer_names: arch.layers.iter().map(|l| l.name).collect(),
        timed_layers: (0..arch.layers.len())
            .filter(|&i| arch.layers[i].kind != LayerKind::Dropout)
            .collect(),
        images: args.images() as usize,
    };
    Ok((networks, bench))
}

/// Each quantized mode's accuracy cost against the dense network, into the notes.
fn record_agreement(
    meta: &mut Meta,
    loaded: &LoadedModel,
    bench: &Bench,
    networks: &mut [Box<dyn Network>],
    target: Target,
) -> Result<()> {
    let n = agreement::IMAGES.min(bench.images);
    let images: Vec<&[f32]> = (0..n).map(|i| bench.inputs.image(i)).collect();
    // The run's own dense network when it measures one (its weights are 244 MB); else a new one.
    let (mut own, others): (Vec<_>, Vec<_>) =
        networks.iter_mut().partition(|n| n.mode() == "dense");
    let mut built;
    let dense: &mut dyn Network = match own.pop() {
        Some(net) => net.as_mut(),
        None => {
            built = models::network("dense", &loaded.model, target)?;
            built.as_mut()
        }
    };
    for net in others {
        let line = agreement::describe(dense, net.as_mut(), &images);
        meta.notes.insert(format!("agreement.{}", net.mode()), line);
    }
    Ok(())
}

fn warm_up(networks: &mut [Contender], bench: &Bench, images: usize) {
    for net in networks {
        for i in 0..images {
            net.network()
                .forward(bench.inputs.image(i), &mut qcnn_model::NoObserver);
        }
    }
}

/// One repeat: every mode in turn over the same images (D Q D Q … across repeats).
fn measure_repeat(
    networks: &mut [Contender],
    bench: &Bench,
    repeat: u32,
    peak_rss: &[Option<u64>],
    progress: &ProgressBar,
) -> RepeatRecord {
    let mut record = RepeatRecord::new(repeat);
    let n = bench.images;
    for (m, net) in networks.iter_mut().enumerate() {
        let mode = net.mode();
        let mut clock = LayerClock::new(bench.layer_names.len());
        let (mut top1, mut top5, mut total_ms) = (0u32, 0u32, 0.0f64);
        let cpu_start = ProcessTime::now();
        let wall_start = Instant::now();
        for i in 0..n {
            let input = bench.inputs.image(i);
            clock.start_image();
            let start = Instant::now();
            let probs = net.network().forward(input, &mut clock);
            let wall_ms = start.elapsed().as_secs_f64() * 1e3;
            if let Some(label) = bench.inputs.label(i) {
                let top = top_k(probs, 5);
                top1 += u32::from(top[0].0 == label);
                top5 += u32::from(top.iter().any(|&(c, _)| c == label));
            }
            // A Python peer reports its engine's own time (the pipe excluded).
            let ms = net.image_ms(wall_ms);
            total_ms += ms;
            record.images.push(ImageRow {
                repeat,
                mode: mode.clone(),
                image: i as u32,
                ms,
            });
            progress.inc(1);
        }
        let wall_ms = wall_start.elapsed().as_secs_f64() * 1e3;
        let cpu_ms = cpu_start.elapsed().as_secs_f64() * 1e3;
        let mut row = RepeatRow::new(
            repeat,
            &mode,
            &net.kernels(),
            n as u32,
            total_ms,
            cpu_ms,
            wall_ms,
        );
        if bench.inputs.labels.is_some() {
            row = row.with_accuracy(top1, top5);
        }
        if let Some(bytes) = peak_rss[m] {
            row = row.with_peak_rss(bytes);
        }
        record.rows.push(row);
        if !net.is_peer() {
            record
                .layers
                .extend(layer_rows(bench, &clock, repeat, &mode));
        }
    }
    record
}

fn layer_rows(bench: &Bench, clock: &LayerClock, repeat: u32, mode: &str) -> Vec<LayerRow> {
    let per_image = |d: std::time::Duration| d.as_secs_f64() * 1e3 / bench.images as f64;
    let mut rows = Vec::new();
    for &i in &bench.timed_layers {
        let row = |phase, d| LayerRow {
            repeat,
            mode: mode.to_string(),
            layer: bench.layer_names[i].to_string(),
            phase,
            ms_per_image: per_image(d),
        };
        rows.push(row(qcnn_results::Phase::All, clock.layer[i]));
        if !clock.table[i].is_zero() || !clock.lookup[i].is_zero() {
            rows.push(row(qcnn_results::Phase::Table, clock.table[i]));
            rows.push(row(qcnn_results::Phase::Lookup, clock.lookup[i]));
        }
    }
    rows
}

fn progress_bar(total: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} measuring [{bar:40}] {pos}/{len} images ({eta} left)",
        )
        .expect("a valid progress template")
        .progress_chars("=> "),
    );
    bar
}

fn print_outcome(args: &ReproduceArgs, dir: &Path, summary: &Summary) -> Result<()> {
    if args.json {
        println!("{}", serde_json::to_string(summary)?);
        return Ok(());
    }
    let run = qcnn_results::read_run(dir)?;
    print!("{}", qcnn_reports::run_markdown(&run, &Default::default()));
    println!("\nresults: {}", dir.display());
    Ok(())
}
