//! `qcnn reproduce`: the authors' speed test (AlexNet, one image per batch, 100 batches,
//! 5 repeats), dense vs quantized, interleaved, pinned, every timing recorded.

mod agreement;
mod clock;
pub mod inputs;
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
use qcnn_model::{Architecture, LayerKind, NetworkKind};
use qcnn_results::{
    ImageRow, LayerRow, Meta, ModeInfo, RepeatRecord, RepeatRow, RunWriter, Summary,
};
use qcnn_runner::{FiniteWatch, Network};

use crate::blas_core::BlasInfo;
use crate::classify::{mean_image_or_channel_means, top_k};
use crate::models::{self, LoadedModel};
use crate::peers::Contender;
use crate::validate::{self, Validate, MAX_IMAGES, MAX_REPEATS, MAX_WARMUP};
use clock::LayerClock;
use inputs::InputSet;

#[derive(clap::Args, Debug)]
pub struct ReproduceArgs {
    /// Model folder (the authors' repository root, an AlexNet or a Bin.Files folder), or a
    /// dense .onnx / .caffemodel (mode dense only). Without it, the embedded synthetic
    /// network (--network).
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
    #[arg(long, requires = "images_dir")]
    pub mean: Option<PathBuf>,
    /// Repeats (1..=1000); each runs every mode over --images single-image batches.
    #[arg(long, default_value_t = 5,
          value_parser = validate::count::<u32>(1, MAX_REPEATS.into()))]
    pub repeats: u32,
    /// Single-image batches per repeat and mode (1..=100000). Default per network, so that
    /// a default run (5 repeats, modes dense and qcnn) takes a few minutes on a recent core:
    /// alexnet and caffenet 100 (the authors' count), cnn-s 40, vgg16 10. The distinct images
    /// among them are held in memory (≈ 618 KB each), which must fit in half the available
    /// memory.
    #[arg(long, value_parser = validate::count::<u32>(1, MAX_IMAGES.into()))]
    pub images: Option<u32>,
    /// Untimed single-image batches per mode before the first repeat (0..=10000).
    #[arg(long, default_value_t = 10,
          value_parser = validate::count::<u32>(0, MAX_WARMUP.into()))]
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

impl Validate for ReproduceArgs {
    fn validate(&self) -> Result<()> {
        check_build(self.allow_debug)?;
        let model = self
            .model
            .as_deref()
            .map(|m| validate::model("--model", m))
            .transpose()?;
        if let Some(data) = &self.data {
            validate::input_file("--data", data)?;
        }
        if let Some(labels) = &self.labels {
            validate::input_file("--labels", labels)?;
        }
        if let Some(dir) = &self.images_dir {
            validate::input_dir("--images-dir", dir)?;
        }
        if let Some(mean) = &self.mean {
            validate::input_file("--mean", mean)?;
        }
        validate::not_empty("--modes", &self.modes)?;
        models::check_modes_for("--modes", &self.modes, model.as_ref())?;
        validate::no_duplicates("--modes", &self.modes)?;
        crate::pinning::choose(self.core)?;
        validate::output_dir("--results", &self.results)?;
        self.peers.validate(self.images())?;
        match models::architecture(model.as_ref(), self.network) {
            Some(arch) => self.check_for(&arch),
            // A dense model file without --network: checked once it is identified.
            None => Ok(()),
        }
    }
}

impl ReproduceArgs {
    /// --images, else the network's default.
    pub fn images(&self) -> u32 {
        self.images
            .unwrap_or_else(|| default_images(self.network.kind()))
    }

    /// The check that depends on the network: the distinct images held for the run (of its
    /// input size) fit in memory.
    fn check_for(&self, arch: &Architecture) -> Result<()> {
        let distinct = inputs::distinct_images(
            self.data.as_deref(),
            self.images_dir.as_deref(),
            self.images() as usize,
        )?;
        crate::budget::check(
            "--images",
            distinct as u64,
            crate::budget::input_bytes(arch.input),
            "distinct preprocessed images held in memory",
        )
    }
}

/// Runs a validated `reproduce` ([`Validate`] has checked `args`).
pub fn run(args: &ReproduceArgs, machine: &Machine, blas: &BlasInfo) -> Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("WARNING: DEBUG BUILD — these timings mean nothing");
    }
    let loaded = models::load(args.model.as_deref(), args.network, args.seed)?;
    if loaded.identified {
        args.check_for(&loaded.model.arch)?;
    }
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
    let mut peak_rss = memory_probes(args, target, &args.modes, &mut meta)?;
    let (mut networks, bench) = prepare(args, &loaded, inputs, target)?;
    for (info, net) in meta.modes.iter_mut().zip(&networks) {
        info.kernel = net.kernels();
    }
    record_plans(&mut meta, &networks);
    check_finite_outputs(&bench, &mut networks)?;
    record_agreement(&mut meta, &loaded, &bench, &mut networks, target)?;
    let check: Vec<&[f32]> = (0..args.peers.check_images(args.images()))
        .map(|i| bench.inputs.image(i))
        .collect();
    let peers = crate::peers::open(&args.peers, &loaded.model, &check)?;
    peers.record(&mut meta);
    // Python peers measure their memory in their own worker, asked after every repeat; a peer
    // that runs in this process (tract) is probed in a child process like our modes.
    peak_rss.extend(memory_probes(args, target, &peers.in_process(), &mut meta)?);
    let mut networks = peers.contenders(networks);
    let peak_rss: Vec<Option<u64>> = networks
        .iter()
        .map(|c| {
            peak_rss
                .iter()
                .find(|(m, _)| *m == c.mode())
                .and_then(|(_, b)| *b)
        })
        .collect();
    let mut writer = RunWriter::create(&args.results, meta)?;
    eprintln!("recording into {}", writer.dir().display());
    warm_up(&mut networks, &bench, args.warmup as usize);
    let progress = progress_bar(args.repeats as usize * networks.len() * bench.images);
    for repeat in 1..=args.repeats {
        let (record, non_finite) =
            measure_repeat(&mut networks, &bench, repeat, &peak_rss, &progress);
        writer
            .append_repeat(&record)
            .with_context(|| format!("recording repeat {repeat}"))?;
        if let Some((m, image)) = non_finite {
            let place = locate_non_finite(&mut networks[m], bench.inputs.image(image));
            bail!(
                "mode {}: image {image} of repeat {repeat} gave non-finite outputs (first at \
                 {place}); the repeats so far are recorded in {}",
                networks[m].mode(),
                writer.dir().display()
            );
        }
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
    if cfg!(debug_assertions) && !allow_debug {
        bail!("this is a debug build: its timings mean nothing. Build with --release (or pass --allow-debug)");
    }
    Ok(())
}

fn load_inputs(args: &ReproduceArgs, loaded: &LoadedModel) -> Result<InputSet> {
    let count = args.images() as usize;
    if let Some(data) = &args.data {
        let beside = data.with_file_name("lablVecTst.uint16.bin");
        let labels = match &args.labels {
            Some(labels) => Some(labels.clone()),
            None => qcnn_files::optional_file(&beside)?,
        };
        return inputs::from_data_file(data, labels.as_deref(), count, loaded.input());
    }
    if let Some(dir) = &args.images_dir {
        let mean: MeanImage = mean_image_or_channel_means(args.mean.as_deref(), loaded)?;
        let labels = match &loaded.folder {
            Some(folder) => folder.image_labels()?,
            None => None,
        };
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

/// Probes each of `modes` in a child process (unless `--no-memory`): its peak RSS while
/// classifying, by mode name, and its idle and load figures into `meta.modes`.
fn memory_probes(
    args: &ReproduceArgs,
    target: Target,
    modes: &[String],
    meta: &mut Meta,
) -> Result<Vec<(String, Option<u64>)>> {
    let mut peaks = Vec::new();
    for mode in modes {
        if args.no_memory {
            peaks.push((mode.clone(), None));
            continue;
        }
        let probed = memory::measure_in_child(mode, args, target)?;
        if let Some(info) = meta.modes.iter_mut().find(|m| &m.mode == mode) {
            info.memory = Some(probed.process);
        }
        peaks.push((mode.clone(), Some(probed.peak_rss_bytes)));
    }
    Ok(peaks)
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

/// Runs every mode on the images the agreement check uses and refuses a mode whose outputs
/// hold a NaN or an infinity, naming the first layer where one appeared, before anything is
/// timed or recorded.
fn check_finite_outputs(bench: &Bench, networks: &mut [Box<dyn Network>]) -> Result<()> {
    let n = agreement::IMAGES.min(bench.images);
    for net in networks.iter_mut() {
        for i in 0..n {
            let mut watch = FiniteWatch::default();
            net.forward(bench.inputs.image(i), &mut watch);
            if let Some(first) = watch.first {
                bail!(
                    "mode {}: image {i} gives non-finite outputs (first at {first}): the \
                     model's values overflow f32 on this input; nothing was measured",
                    net.mode()
                );
            }
        }
    }
    Ok(())
}

/// Where `net`'s forward pass over `input` first produced a non-finite value ("the output"
/// when a peer, which reports no layers, did).
fn locate_non_finite(net: &mut Contender, input: &[f32]) -> String {
    let mut watch = FiniteWatch::default();
    net.network().forward(input, &mut watch);
    watch
        .first
        .map_or("the output".to_string(), |f| f.to_string())
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
                .forward(bench.inputs.image(i), &mut qcnn_runner::NoObserver);
        }
    }
}

/// One repeat: every mode in turn over the same images (D Q D Q … across repeats). Also
/// returns the first (contender, image) whose probabilities were not all finite.
fn measure_repeat(
    networks: &mut [Contender],
    bench: &Bench,
    repeat: u32,
    peak_rss: &[Option<u64>],
    progress: &ProgressBar,
) -> (RepeatRecord, Option<(usize, usize)>) {
    let mut record = RepeatRecord::new(repeat);
    let mut non_finite = None;
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
            if non_finite.is_none() && !probs.iter().all(|p| p.is_finite()) {
                non_finite = Some((m, i));
            }
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
        // A Python peer's worker reports its own peak (asked now, outside any timing).
        if let Some(bytes) = net.own_peak_rss_bytes().or(peak_rss[m]) {
            row = row.with_peak_rss(bytes);
        }
        record.rows.push(row);
        if !net.is_peer() {
            record
                .layers
                .extend(layer_rows(bench, &clock, repeat, &mode));
        }
    }
    (record, non_finite)
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
