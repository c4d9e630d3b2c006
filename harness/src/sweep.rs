//! `qcnn sweep`: one layer quantized at every (d, K) of a grid. Per configuration: the layer's
//! theoretical speed-up (op counts) and compression, its measured time (dense BLAS vs each
//! look-up kernel, interleaved repeats, one pinned thread) and its response and weight
//! errors. Recorded as a run folder (raw timings as in `reproduce`: one mode per
//! (configuration, ISA) plus `dense`, an "image" being one pass through the layer) and
//! `sweep.csv`, one row per configuration, for the error vs speed-up trade-off.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use cpu_time::ProcessTime;
use indicatif::{ProgressBar, ProgressStyle};
use qcnn_baselines::{DenseConv, DenseFc};
use qcnn_kernels::dense::{CONV_KERNEL, FC_KERNEL};
use qcnn_kernels::lut::conv::{ConvLut, ConvScratch};
use qcnn_kernels::lut::fc::FcLut;
use qcnn_kernels::lut::fc::FcScratch;
use qcnn_kernels::{CacheSizes, Isa, Phase, PqSpec, Target};
use qcnn_model::arch::{ParamKind, ParamShape, QuantSpec};
use qcnn_model::format::bits_for;
use qcnn_model::{Architecture, Codebooks, LayerParams};
use qcnn_quantizer::{
    check_spec, dense_inputs, layer_response_error, quantize_layer, LayerInputs, LayerReport,
};
use qcnn_results::{
    write_sweep, ImageRow, LayerRow, Meta, ModeInfo, RepeatRecord, RepeatRow, RunWriter, Summary,
    SweepRow, SWEEP_FILE,
};
use qcnn_runner::NoObserver;
use qcnn_runner::{conv_shape, fc_shape, WeightedOp};

use crate::blas_core::BlasInfo;
use crate::models::{self, LoadedModel};
use crate::quantize::{LayerBars, TrainingArgs};
use crate::validate::{self, Validate, MAX_IMAGES, MAX_REPEATS, MAX_WARMUP};

/// The most (d, K) configurations one sweep may hold (each is quantized and timed).
pub const MAX_CONFIGURATIONS: usize = 1024;

#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// The conv or fc layer to study (e.g. conv3; VGG-16's are named conv3_1 etc.).
    #[arg(long)]
    pub layer: String,
    /// Dims per subspace to try, comma-separated, each once (1..=the layer's channels).
    #[arg(long, value_delimiter = ',', default_value = "2,4,8")]
    pub d: Vec<usize>,
    /// Codewords per sub-codebook to try, comma-separated, each once (1..=256); at most
    /// 1024 (d, K) configurations in all.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256")]
    pub k: Vec<usize>,
    /// Model folder (dense files, else dense weights rebuilt from its codebooks), or a dense
    /// .onnx / .caffemodel. Without it, the embedded synthetic network (--network).
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub network: models::NetworkArg,
    #[command(flatten)]
    pub training: TrainingArgs,
    /// Look-up kernel ISAs to time, comma-separated, each once, or `all` (every level this
    /// CPU runs).
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub isas: Vec<String>,
    /// Repeats (1..=1000); each times every mode in turn.
    #[arg(long, default_value_t = 5,
          value_parser = validate::count::<u32>(1, MAX_REPEATS.into()))]
    pub repeats: u32,
    /// Timed passes through the layer per repeat and mode (1..=100000).
    #[arg(long, default_value_t = 20,
          value_parser = validate::count::<u32>(1, MAX_IMAGES.into()))]
    pub runs: u32,
    /// Untimed passes per mode before the first repeat (0..=10000).
    #[arg(long, default_value_t = 3,
          value_parser = validate::count::<u32>(0, MAX_WARMUP.into()))]
    pub warmup: u32,
    /// CPU core to pin the process to (default: the last one).
    #[arg(long)]
    pub core: Option<usize>,
    /// Where run folders go.
    #[arg(long, default_value = "results/runs")]
    pub results: PathBuf,
    /// Measure a debug build anyway (its timings mean nothing).
    #[arg(long)]
    pub allow_debug: bool,
}

/// One (d, K) configuration, quantized.
struct Point {
    spec: QuantSpec,
    codebooks: Codebooks,
    report: LayerReport,
    /// Response error on held-out images: final codebooks, plain-PQ codebooks.
    holdout: Option<(f64, f64)>,
    theoretical_speedup: f64,
    compression: f64,
}

/// A layer implementation being timed.
enum Kernel {
    Dense(Box<dyn WeightedOp>),
    Conv(Box<ConvLut>, ConvScratch),
    Fc(Box<FcLut>, FcScratch),
}

/// One mode of the run: its name, kernel name and implementation.
struct Timed {
    mode: String,
    kernel_name: String,
    isa: String,
    kernel: Kernel,
    /// Is this a look-up mode (with table / lookup phases)?
    lut: bool,
}

/// Time spent in each phase of look-up passes.
#[derive(Default)]
struct PhaseTimes {
    table: Duration,
    lookup: Duration,
}

impl Timed {
    /// One pass through the layer; phase times are added to `phases`.
    fn run(&mut self, x: &[f32], y: &mut [f32], phases: &mut PhaseTimes) {
        let mut mark = Instant::now();
        let mut on_phase = |p: Phase| {
            let now = Instant::now();
            match p {
                Phase::Table => phases.table += now - mark,
                Phase::Lookup => phases.lookup += now - mark,
            }
            mark = now;
        };
        match &mut self.kernel {
            Kernel::Dense(op) => op.run(x, y, &mut NoObserver),
            Kernel::Conv(lut, scratch) => lut.forward(x, y, scratch, &mut on_phase),
            Kernel::Fc(lut, scratch) => lut.forward(x, y, scratch, &mut on_phase),
        }
    }
}

impl Validate for SweepArgs {
    fn validate(&self) -> Result<()> {
        if cfg!(debug_assertions) && !self.allow_debug {
            bail!("this is a debug build: its timings mean nothing. Build with --release (or pass --allow-debug)");
        }
        let model = self
            .model
            .as_deref()
            .map(|m| validate::model("--model", m))
            .transpose()?;
        self.check_lists()?;
        resolve_isas(&self.isas)?;
        crate::pinning::choose(self.core)?;
        validate::output_dir("--results", &self.results)?;
        self.training.validate()?;
        match models::architecture(model.as_ref(), self.network) {
            Some(arch) => self.check_for(&arch),
            // A dense model file without --network: checked once it is identified.
            None => Ok(()),
        }
    }
}

impl SweepArgs {
    /// --d and --k: each non-empty, without duplicates, at most [`MAX_CONFIGURATIONS`] pairs.
    fn check_lists(&self) -> Result<()> {
        validate::not_empty("--d", &self.d)?;
        validate::not_empty("--k", &self.k)?;
        validate::no_duplicates("--d", &self.d)?;
        validate::no_duplicates("--k", &self.k)?;
        let count = self.d.len().saturating_mul(self.k.len());
        if count > MAX_CONFIGURATIONS {
            bail!(
                "--d × --k: {} × {} = {count} configurations, at most {MAX_CONFIGURATIONS}",
                self.d.len(),
                self.k.len()
            );
        }
        Ok(())
    }

    /// The checks that depend on the network: the layer, every (d, K) against it, and what
    /// the configurations and the calibration would hold in memory.
    fn check_for(&self, arch: &Architecture) -> Result<()> {
        let shape = find_layer(arch, &self.layer)?;
        let specs = grid(self, &shape)?;
        let isas = resolve_isas(&self.isas)?;
        // The layer's inputs for every image, and per configuration its codebooks held by
        // the point and by each timed kernel.
        let bytes = specs
            .iter()
            .map(|&s| codebook_bytes(&shape, s) * (1 + isas.len() as u64))
            .sum::<u64>();
        crate::budget::check("--d × --k", 1, bytes, "sweep configurations' codebooks")?;
        self.training.check_memory(arch, &[(shape, specs[0])])
    }
}

/// Bytes of one configuration's codebooks: M·K·d f32 codewords and C_t·taps·M indices.
fn codebook_bytes(shape: &ParamShape, spec: QuantSpec) -> u64 {
    let m = spec.subspaces(shape.split_channels()) as u64;
    let codewords = m * spec.k as u64 * spec.d as u64 * 4;
    codewords + (shape.out_channels() * shape.taps()) as u64 * m
}

/// Runs a validated `sweep` ([`Validate`] has checked `args`).
pub fn run(args: &SweepArgs, blas: &BlasInfo, caches: CacheSizes) -> Result<()> {
    let loaded = models::load(
        args.model.as_deref(),
        args.network,
        args.training.synthetic_seed,
    )?;
    if loaded.identified {
        args.check_for(&loaded.model.arch)?;
    }
    let shape = find_layer(&loaded.model.arch, &args.layer)?;
    let params = loaded
        .model
        .params_of(shape.index)
        .context("the model has parameters for every conv and fc layer")?;
    let specs = grid(args, &shape)?;
    let isas = resolve_isas(&args.isas)?;
    let core = crate::pinning::pin(args.core)?;
    let (calib, holdout) = args.training.calibration(&loaded)?;
    eprintln!("model:       {}", models::describe(&loaded));
    eprintln!("calibration: {}", calib.source());
    let inputs = dense_inputs(&loaded.model, params.shape.index, &calib)?;
    let held = match &holdout {
        Some(h) => {
            eprintln!("held out:    {}", h.source());
            Some(dense_inputs(&loaded.model, params.shape.index, h)?)
        }
        None => None,
    };
    let points = specs
        .iter()
        .map(|&spec| quantize_point(args, params, spec, &inputs, held.as_ref()))
        .collect::<Result<Vec<_>>>()?;
    let mut modes = timed_modes(params, &points, &isas, caches)?;
    let meta = plan(args, blas, &loaded, calib.source(), &modes, core)?;
    let mut writer = RunWriter::create(&args.results, meta)?;
    eprintln!("recording into {}", writer.dir().display());
    let x = &inputs.dense[0];
    let mut y = vec![0.0f32; params.shape.output.len()];
    for m in &mut modes {
        for _ in 0..args.warmup {
            m.run(x, &mut y, &mut PhaseTimes::default());
        }
    }
    let bar = timing_bar((args.repeats as usize * modes.len()) as u64);
    for repeat in 1..=args.repeats {
        let record = measure_repeat(args, &mut modes, x, &mut y, repeat, &bar);
        writer
            .append_repeat(&record)
            .with_context(|| format!("recording repeat {repeat}"))?;
    }
    bar.finish_and_clear();
    let dir = writer.dir().to_path_buf();
    let summary = writer.finish()?;
    let rows = sweep_rows(&args.layer, &points, &summary, &isas);
    write_sweep(&dir, &rows)?;
    print!("{}", sweep_table(&points, &summary, &isas));
    println!("\nresults: {} ({SWEEP_FILE})", dir.display());
    Ok(())
}

/// The conv or fc layer `name` of `arch`.
fn find_layer(arch: &Architecture, name: &str) -> Result<ParamShape> {
    let layers = arch.param_layers();
    let found = layers.iter().find(|p| arch.layers[p.index].name == name);
    found.copied().ok_or_else(|| {
        let names: Vec<&str> = layers.iter().map(|p| arch.layers[p.index].name).collect();
        anyhow!(
            "--layer {name}: not a conv or fc layer of {} (choose one of {})",
            arch.name,
            names.join(", ")
        )
    })
}

/// Every (d, K) of the grid, checked together so that one error lists every bad pair.
fn grid(args: &SweepArgs, shape: &ParamShape) -> Result<Vec<QuantSpec>> {
    let specs: Vec<QuantSpec> = args
        .d
        .iter()
        .flat_map(|&d| args.k.iter().map(move |&k| QuantSpec { d, k }))
        .collect();
    let problems: Vec<String> = specs
        .iter()
        .filter_map(|&s| {
            check_spec(&args.layer, shape, s)
                .err()
                .map(|e| e.to_string())
        })
        .collect();
    if !problems.is_empty() {
        bail!(
            "{} of {} configurations cannot be used:\n  {}",
            problems.len(),
            specs.len(),
            problems.join("\n  ")
        );
    }
    Ok(specs)
}

fn resolve_isas(names: &[String]) -> Result<Vec<Isa>> {
    validate::not_empty("--isas", names)?;
    validate::no_duplicates("--isas", names)?;
    if names.iter().any(|n| n == "all") {
        if names.len() > 1 {
            bail!("--isas: 'all' already names every level; give it alone");
        }
        return Ok(Isa::available());
    }
    names
        .iter()
        .map(|name| {
            name.parse::<Isa>()
                .and_then(Isa::require)
                .map_err(|e| anyhow!("--isas: {e}"))
        })
        .collect()
}

fn quantize_point(
    args: &SweepArgs,
    params: &LayerParams,
    spec: QuantSpec,
    inputs: &LayerInputs,
    held: Option<&LayerInputs>,
) -> Result<Point> {
    let settings = args.training.settings();
    let outcome = quantize_layer(
        &args.layer,
        params,
        spec,
        &settings,
        inputs,
        &mut LayerBars::default(),
    )?;
    if let Some(p) = outcome
        .codebooks
        .centroids
        .iter()
        .position(|v| !v.is_finite())
    {
        bail!(
            "{} d = {}, K = {}: quantizing gave the non-finite codeword value {} (flat position \
             {p}): the layer's weights or inputs overflow f32",
            args.layer,
            spec.d,
            spec.k,
            outcome.codebooks.centroids[p]
        );
    }
    let shape = &params.shape;
    let holdout = held.map(|h| {
        (
            layer_response_error(params, &outcome.codebooks, h),
            layer_response_error(params, &outcome.pq_codebooks, h),
        )
    });
    Ok(Point {
        spec,
        codebooks: outcome.codebooks,
        report: outcome.report,
        holdout,
        theoretical_speedup: theoretical_speedup(shape, spec),
        compression: compression(shape, spec),
    })
}

/// Dense multiply-adds over (table multiply-adds + look-ups) of the layer (METHOD.md).
pub fn theoretical_speedup(shape: &ParamShape, spec: QuantSpec) -> f64 {
    shape.dense_macs() as f64 / (shape.table_macs(spec) + shape.lookups(spec)) as f64
}

/// Bytes of f32 dense weights over bytes of f32 codebooks (M, K, d) plus the assignments
/// packed at bits_for(K) bits each (the `.cbn` payload without its 4096-byte block rounding);
/// biases, equal on both sides, are left out.
pub fn compression(shape: &ParamShape, spec: QuantSpec) -> f64 {
    let m = spec.subspaces(shape.split_channels());
    let dense = 4 * shape.weight_count();
    let codebooks = 4 * m * spec.k * spec.d;
    let indices = (bits_for(spec.k) as usize * shape.out_channels() * shape.taps() * m).div_ceil(8);
    dense as f64 / (codebooks + indices) as f64
}

/// `dense` first, then one mode per configuration and ISA, named `d<d>-k<K>-<isa>`.
fn timed_modes(
    params: &LayerParams,
    points: &[Point],
    isas: &[Isa],
    caches: CacheSizes,
) -> Result<Vec<Timed>> {
    let shape = &params.shape;
    let weights = params.dense_weights().into_owned();
    let bias = params.bias.clone();
    let (dense, dense_name): (Box<dyn WeightedOp>, &str) = match shape.kind {
        ParamKind::Conv(_) => (
            Box::new(DenseConv::new(conv_shape(shape), weights, bias)),
            CONV_KERNEL,
        ),
        ParamKind::Fc => (
            Box::new(DenseFc::new(fc_shape(shape), weights, bias)),
            FC_KERNEL,
        ),
    };
    let mut modes = vec![Timed {
        mode: "dense".into(),
        kernel_name: dense_name.into(),
        isa: "blas".into(),
        kernel: Kernel::Dense(dense),
        lut: false,
    }];
    for point in points {
        for &isa in isas {
            let spec = PqSpec {
                d: point.spec.d,
                k: point.spec.k,
            };
            let (cb, bias) = (&point.codebooks, &params.bias);
            let (centroids, assignments) = (&cb.centroids, &cb.assignments);
            let target = Target::new(isa, caches);
            let (kernel, name) = match shape.kind {
                ParamKind::Conv(_) => {
                    let s = conv_shape(shape);
                    let lut = ConvLut::new(target, s, spec, centroids, assignments, bias)?;
                    let name = lut.kernel_name();
                    (Kernel::Conv(Box::new(lut), ConvScratch::default()), name)
                }
                ParamKind::Fc => {
                    let s = fc_shape(shape);
                    let lut = FcLut::new(target, s, spec, centroids, assignments, bias)?;
                    let name = lut.kernel_name();
                    (Kernel::Fc(Box::new(lut), FcScratch::default()), name)
                }
            };
            modes.push(Timed {
                mode: mode_name(point.spec, isa),
                kernel_name: name,
                isa: isa.name().into(),
                kernel,
                lut: true,
            });
        }
    }
    Ok(modes)
}

fn plan(
    args: &SweepArgs,
    blas: &BlasInfo,
    loaded: &LoadedModel,
    calib: &str,
    modes: &[Timed],
    core: usize,
) -> Result<Meta> {
    let infos = modes
        .iter()
        .map(|m| ModeInfo::new(&m.mode, &m.kernel_name, &m.isa))
        .collect();
    let mut meta = Meta::new(args.repeats, args.runs, infos);
    meta.pinned_core = Some(core as u32);
    meta.input = format!(
        "{calib}; timed: calibration image 0's input to {}",
        args.layer
    );
    meta.model = model_info(loaded)?;
    meta.blas = Some(qcnn_results::BlasInfo {
        library: "OpenBLAS".into(),
        version: blas.config.clone(),
        core_type: blas.core.clone(),
    });
    let t = &args.training;
    let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    for (key, value) in [
        ("sweep_layer", args.layer.clone()),
        ("sweep_d", join(&args.d)),
        ("sweep_k", join(&args.k)),
        ("method", t.method.name().to_string()),
        ("quantizer_seed", t.seed.to_string()),
        ("kmeans_iterations", t.kmeans_iterations.to_string()),
        ("ec_iterations", t.ec_iterations.to_string()),
        ("ec_columns", t.ec_columns.to_string()),
        ("warmup_runs", args.warmup.to_string()),
        (
            "image_means",
            "one pass of one image through the swept layer only".to_string(),
        ),
        (
            "blas_core_from_environment",
            blas.env_core.clone().unwrap_or_else(|| "unset".into()),
        ),
    ] {
        meta.notes.insert(key.into(), value);
    }
    Ok(meta)
}

fn model_info(loaded: &LoadedModel) -> Result<qcnn_results::ModelInfo> {
    let source = models::describe(loaded);
    let Some(folder) = &loaded.folder else {
        return Ok(qcnn_results::ModelInfo {
            source,
            files: Vec::new(),
        });
    };
    let prefix = format!("{}.", folder.prefix);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder.bin_dir)
        .with_context(|| format!("listing {}", folder.bin_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect();
    files.sort();
    Ok(qcnn_results::ModelInfo::hashed(&source, &files)?)
}

fn timing_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} timing [{bar:40}] {pos}/{len} (repeat × mode) ({eta} left)",
        )
        .expect("a valid progress template")
        .progress_chars("=> "),
    );
    bar
}

/// One repeat: every mode in turn, `runs` timed passes each.
fn measure_repeat(
    args: &SweepArgs,
    modes: &mut [Timed],
    x: &[f32],
    y: &mut [f32],
    repeat: u32,
    bar: &ProgressBar,
) -> RepeatRecord {
    let mut record = RepeatRecord::new(repeat);
    let runs = args.runs;
    for m in modes.iter_mut() {
        let mut phases = PhaseTimes::default();
        let mut total_ms = 0.0;
        let (cpu, wall) = (ProcessTime::now(), Instant::now());
        for image in 0..runs {
            let start = Instant::now();
            m.run(x, y, &mut phases);
            let ms = start.elapsed().as_secs_f64() * 1e3;
            total_ms += ms;
            record.images.push(ImageRow {
                repeat,
                mode: m.mode.clone(),
                image,
                ms,
            });
        }
        let (cpu_ms, wall_ms) = (
            cpu.elapsed().as_secs_f64() * 1e3,
            wall.elapsed().as_secs_f64() * 1e3,
        );
        record.rows.push(RepeatRow::new(
            repeat,
            &m.mode,
            &m.kernel_name,
            runs,
            total_ms,
            cpu_ms,
            wall_ms,
        ));
        let row = |phase, ms: f64| LayerRow {
            repeat,
            mode: m.mode.clone(),
            layer: args.layer.clone(),
            phase,
            ms_per_image: ms / f64::from(runs),
        };
        record.layers.push(row(qcnn_results::Phase::All, total_ms));
        if m.lut {
            record.layers.push(row(
                qcnn_results::Phase::Table,
                phases.table.as_secs_f64() * 1e3,
            ));
            record.layers.push(row(
                qcnn_results::Phase::Lookup,
                phases.lookup.as_secs_f64() * 1e3,
            ));
        }
        bar.inc(1);
    }
    record
}

/// The mode name of configuration `spec` on `isa`.
fn mode_name(spec: QuantSpec, isa: Isa) -> String {
    format!("d{}-k{}-{}", spec.d, spec.k, isa.name())
}

/// Median ms per pass of `mode` over the repeats, if it was measured.
fn median_ms(summary: &Summary, mode: &str) -> Option<f64> {
    summary.analysis.modes.get(mode).map(|m| m.median_ms)
}

/// `sweep.csv`'s rows, one per configuration (schema: [`SweepRow`]); ISAs not timed stay
/// empty.
fn sweep_rows(layer: &str, points: &[Point], summary: &Summary, isas: &[Isa]) -> Vec<SweepRow> {
    let lut_ms = |p: &Point, isa: Isa| {
        isas.contains(&isa)
            .then(|| median_ms(summary, &mode_name(p.spec, isa)))
            .flatten()
    };
    points
        .iter()
        .map(|p| {
            let r = &p.report;
            SweepRow {
                layer: layer.to_string(),
                d: p.spec.d as u32,
                k: p.spec.k as u32,
                method: r.method.name().to_string(),
                theoretical_speedup: p.theoretical_speedup,
                compression: p.compression,
                dense_ms: median_ms(summary, "dense"),
                lut_ms_scalar: lut_ms(p, Isa::Scalar),
                lut_ms_avx2: lut_ms(p, Isa::Avx2),
                lut_ms_avx512: lut_ms(p, Isa::Avx512),
                response_rel_error: r.response_rel_error(),
                weight_rel_error: r.weight_rel_error,
                pq_response_rel_error: r.pq_response_rel_error,
                holdout_response_rel_error: p.holdout.map(|h| h.0),
                holdout_pq_response_rel_error: p.holdout.map(|h| h.1),
                quantize_s: r.seconds,
            }
        })
        .collect()
}

/// The terminal table: one row per configuration.
fn sweep_table(points: &[Point], summary: &Summary, isas: &[Isa]) -> String {
    let dense = median_ms(summary, "dense").unwrap_or(f64::NAN);
    let mut out = String::new();
    let _ = write!(
        out,
        "{:>3} {:>4} {:>8} {:>8} {:>9}",
        "d", "K", "theor.x", "compr.x", "dense ms"
    );
    for isa in isas {
        let _ = write!(out, " {:>10} {:>7}", format!("{} ms", isa.name()), "x");
    }
    let _ = writeln!(
        out,
        " {:>10} {:>10} {:>10}",
        "resp err", "held err", "weight err"
    );
    for p in points {
        let _ = write!(
            out,
            "{:>3} {:>4} {:>8.2} {:>8.1} {:>9.3}",
            p.spec.d, p.spec.k, p.theoretical_speedup, p.compression, dense
        );
        for &isa in isas {
            let ms = median_ms(summary, &mode_name(p.spec, isa)).unwrap_or(f64::NAN);
            let _ = write!(out, " {:>10.3} {:>7.2}", ms, dense / ms);
        }
        let held = p
            .holdout
            .map_or("-".to_string(), |(e, _)| format!("{e:.4}"));
        let _ = writeln!(
            out,
            " {:>10.4} {:>10} {:>10.4}",
            p.report.response_rel_error(),
            held,
            p.report.weight_rel_error
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv3_figures_match_method_md() {
        let arch = qcnn_model::alexnet();
        let conv3 = arch.param_layers()[2];
        let spec = QuantSpec { d: 8, k: 128 };
        // METHOD.md: conv3's ratio 6.17 for the authors' configuration.
        assert!((theoretical_speedup(&conv3, spec) - 6.17).abs() < 0.01);
        // 4·384·256·9 dense bytes over 4·32·128·8 codebook bytes + 7 bits × 384·9·32 indices.
        assert!((compression(&conv3, spec) - 3_538_944.0 / 227_840.0).abs() < 1e-9);
    }

    #[test]
    fn mode_names_carry_the_configuration_and_isa() {
        assert_eq!(
            mode_name(QuantSpec { d: 4, k: 64 }, Isa::Avx2),
            "d4-k64-avx2"
        );
    }
}
