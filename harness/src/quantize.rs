//! `qcnn quantize`: the Q-CNN training phase on a dense model (plain PQ or the paper's error
//! correction), written in the authors' format, with a per-layer progress bar and summary.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use qcnn_model::arch::{ParamKind, ParamShape, QuantSettings, QuantSpec};
use qcnn_model::format::BinF32Reader;
use qcnn_model::{folder, Architecture, Model, NetworkKind};
use qcnn_quantizer::{
    check_spec, quantize_model, response_errors, Calibration, EcParams, KMeansParams, LayerReport,
    Method, Progress, QuantizedModel, Settings,
};

use crate::budget;
use crate::classify::mean_image_or_channel_means;
use crate::models::{self, LoadedModel};
use crate::validate::{self, InputKind, Validate};

/// The most calibration (and held-out) images (`--calib-count`, `--holdout`); memory is
/// checked too.
pub const MAX_CALIB_IMAGES: u32 = 100_000;
/// The most k-means iterations per subspace (`--kmeans-iterations`).
pub const MAX_KMEANS_ITERATIONS: usize = 10_000;
/// The most error-correction sweeps (`--ec-iterations`).
pub const MAX_EC_ITERATIONS: usize = 1000;
/// The most error-correction columns per layer (`--ec-columns`); memory is checked too.
pub const MAX_EC_COLUMNS: usize = 1 << 24;

/// The per-layer summary written beside the model files.
pub const REPORT_FILE: &str = "quantize-report.csv";

#[derive(clap::Args, Debug)]
pub struct QuantizeArgs {
    /// Model to quantize: a folder (the authors' repository root, an AlexNet or a Bin.Files
    /// folder: its dense files where present, else dense weights rebuilt from its
    /// codebooks), or a dense .onnx / .caffemodel (with its .prototxt beside it). Without
    /// it, the embedded synthetic network (--network).
    #[arg(long)]
    pub dense: Option<PathBuf>,
    #[command(flatten)]
    pub network: models::NetworkArg,
    /// Destination folder for the quantized model (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub specs: SpecArgs,
    #[command(flatten)]
    pub training: TrainingArgs,
    /// File-name prefix of the written model.
    #[arg(long, default_value = "qcnn_quantized_alexnet")]
    pub prefix: String,
}

/// `--conv`, `--fc`, `--fc8`: the (d, K) of each kind of layer, the network's paper setting
/// where not given (`quantize` and `theory`).
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct SpecArgs {
    /// d/K of every conv layer (dims per subspace / codewords per sub-codebook). Default:
    /// the network's paper setting (8/128 for all four).
    #[arg(long, value_parser = parse_spec_arg)]
    pub conv: Option<QuantSpec>,
    /// d/K of every fc layer but the last. Default: the paper setting (4/32).
    #[arg(long, value_parser = parse_spec_arg)]
    pub fc: Option<QuantSpec>,
    /// d/K of the last fc layer (fc8). Default: the paper setting (1/16).
    #[arg(long, visible_alias = "last-fc", value_parser = parse_spec_arg)]
    pub fc8: Option<QuantSpec>,
}

impl SpecArgs {
    /// The settings asked for, `network`'s paper settings where not given.
    pub fn settings(&self, network: NetworkKind) -> QuantSettings {
        let paper = network.default_quantization();
        QuantSettings {
            conv: self.conv.unwrap_or(paper.conv),
            fc: self.fc.unwrap_or(paper.fc),
            last_fc: self.fc8.unwrap_or(paper.last_fc),
        }
    }

    /// Every conv and fc layer of `arch` with its (d, K), each checked against the layer's
    /// shape before anything is allocated from it; an error names the option that set it.
    pub fn checked(
        &self,
        arch: &Architecture,
        network: NetworkKind,
    ) -> Result<Vec<(ParamShape, QuantSpec)>> {
        let layers: Vec<(ParamShape, QuantSpec)> = arch
            .param_layers()
            .into_iter()
            .zip(self.settings(network).specs(arch))
            .collect();
        for ((shape, spec), (arg, layer)) in layers.iter().zip(spec_args(arch)) {
            check_spec(layer, shape, *spec)
                .map_err(|e| anyhow!("{arg} {}/{}: {e}", spec.d, spec.k))?;
        }
        Ok(layers)
    }
}

/// The option that sets each conv/fc layer's (d, K), with the layer's name, in
/// `param_layers()` order (the order of [`QuantSettings::specs`]).
fn spec_args(arch: &Architecture) -> Vec<(&'static str, &'static str)> {
    let layers = arch.param_layers();
    let last_fc = layers.iter().rposition(|p| p.kind == ParamKind::Fc);
    layers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let arg = match p.kind {
                ParamKind::Conv(_) => "--conv",
                ParamKind::Fc if Some(i) == last_fc => "--fc8",
                ParamKind::Fc => "--fc",
            };
            (arg, arch.layers[p.index].name)
        })
        .collect()
}

/// Options shared by `quantize` and `sweep`: method, calibration inputs, seeds, iterations.
#[derive(clap::Args, Debug)]
pub struct TrainingArgs {
    /// pq (k-means per subspace) or ec (pq refined by error correction on calibration
    /// responses).
    #[arg(long, default_value = "pq", value_parser = parse_method_arg)]
    pub method: Method,
    /// Calibration images: a folder of images (BMP, PNG, JPEG) or the authors'
    /// dataMatTst.single.bin. Default: synthetic images.
    #[arg(long)]
    pub calib: Option<PathBuf>,
    /// Calibration images used (the first ones of --calib; 1..=100000). With --holdout they
    /// are held in memory with their layer maps, which must fit in half the available memory.
    #[arg(long, default_value_t = 16,
          value_parser = validate::count::<u32>(1, MAX_CALIB_IMAGES.into()))]
    pub calib_count: u32,
    /// Further images, never used for fitting, on which response errors are measured too
    /// (error correction can fit a small calibration set much better than unseen images;
    /// 0..=100000).
    #[arg(long, default_value_t = 8,
          value_parser = validate::count::<u32>(0, MAX_CALIB_IMAGES.into()))]
    pub holdout: u32,
    /// Mean image for a BMP folder (default: the model folder's, else per-channel means).
    #[arg(long)]
    pub mean: Option<PathBuf>,
    /// Seed of k-means++ and of the column sampling of error correction.
    #[arg(long, default_value_t = qcnn_model::synthetic::DEFAULT_SEED)]
    pub seed: u64,
    /// Seed of the embedded synthetic model and of the synthetic calibration images.
    #[arg(long, default_value_t = qcnn_model::synthetic::DEFAULT_SEED)]
    pub synthetic_seed: u64,
    /// At most this many k-means iterations per subspace (1..=10000).
    #[arg(long, default_value_t = KMeansParams::default().max_iterations,
          value_parser = validate::count::<usize>(1, MAX_KMEANS_ITERATIONS as u64))]
    pub kmeans_iterations: usize,
    /// Error-correction sweeps (each: codebook then assignment update of every subspace;
    /// 1..=1000).
    #[arg(long, default_value_t = EcParams::default().iterations,
          value_parser = validate::count::<usize>(1, MAX_EC_ITERATIONS as u64))]
    pub ec_iterations: usize,
    /// At most this many (image, output position) columns per conv layer for error
    /// correction (1..=16777216; their matrices must fit in half the available memory);
    /// more are sampled uniformly.
    #[arg(long, default_value_t = EcParams::default().max_columns,
          value_parser = validate::count::<usize>(1, MAX_EC_COLUMNS as u64))]
    pub ec_columns: usize,
    /// Ridge of error correction's codebook update, relative to the mean diagonal of its
    /// normal equations (2.2e-16..=1e6): larger keeps codewords nearer their k-means values
    /// (less overfit of a small calibration set).
    #[arg(long, default_value_t = EcParams::default().ridge, allow_negative_numbers = true)]
    pub ec_ridge: f64,
}

impl TrainingArgs {
    /// Checks the training options that do not depend on the network, before anything is
    /// loaded: the mean image, the ridge, the image count (without overflow), the kind of
    /// the calibration source.
    pub fn validate(&self) -> Result<()> {
        if let Some(mean) = &self.mean {
            validate::input_file("--mean", mean)?;
        }
        EcParams::check_ridge(self.ec_ridge).map_err(|p| anyhow!("--ec-ridge: {p}"))?;
        self.image_count()?;
        if let Some(path) = &self.calib {
            validate::input_file_or_dir("--calib", path)?;
        }
        Ok(())
    }

    /// Checks against `arch` and this machine's memory, before any image is read, what the
    /// calibration images and error correction of the `quantized` layers would hold.
    pub fn check_memory(
        &self,
        arch: &Architecture,
        quantized: &[(ParamShape, QuantSpec)],
    ) -> Result<()> {
        let count = self.image_count()?;
        let available = match &self.calib {
            None => count,
            Some(path) => match validate::input_file_or_dir("--calib", path)? {
                InputKind::Dir => qcnn_model::preprocess::image_files(path)?.len(),
                InputKind::File => BinF32Reader::open(path)?.len(),
            },
        };
        let images = count.min(available);
        budget::check(
            "--calib-count + --holdout",
            images as u64,
            calib_bytes_per_image(arch),
            "calibration images (with one layer's input and output maps each)",
        )?;
        if self.method == Method::Ec {
            let calib = images.min(self.calib_count as usize);
            let worst = quantized
                .iter()
                .map(|(shape, spec)| {
                    qcnn_quantizer::ec::problem_bytes(shape, *spec, calib, self.ec_columns)
                })
                .max()
                .unwrap_or(0);
            budget::check(
                "--ec-columns",
                1,
                worst,
                "error-correction problem (the largest layer's columns)",
            )?;
        }
        Ok(())
    }

    /// --calib-count + --holdout, refused when the sum does not fit (it would wrap).
    fn image_count(&self) -> Result<usize> {
        (self.calib_count as usize)
            .checked_add(self.holdout as usize)
            .ok_or_else(|| {
                anyhow!(
                    "--calib-count {} + --holdout {}: the sum is too large",
                    self.calib_count,
                    self.holdout
                )
            })
    }
}

/// Memory one calibration image takes while quantizing: the image and, for the layer being
/// quantized, its input and output maps in both the dense and the quantized network.
fn calib_bytes_per_image(arch: &Architecture) -> u64 {
    let maps = arch
        .param_layers()
        .iter()
        .map(|p| p.input.len() + p.output.len())
        .max()
        .unwrap_or(0) as u64;
    budget::input_bytes(arch.input) + 2 * 4 * maps
}

impl TrainingArgs {
    pub fn settings(&self) -> Settings {
        Settings {
            method: self.method,
            seed: self.seed,
            kmeans: KMeansParams {
                max_iterations: self.kmeans_iterations,
                ..KMeansParams::default()
            },
            ec: EcParams {
                iterations: self.ec_iterations,
                max_columns: self.ec_columns,
                ridge: self.ec_ridge,
            },
        }
    }

    /// The calibration images and the held-out ones: --calib (a BMP folder or a data file),
    /// else synthetic ones. The first --calib-count images calibrate, up to --holdout of the
    /// following ones are held out.
    pub fn calibration(&self, loaded: &LoadedModel) -> Result<(Calibration, Option<Calibration>)> {
        let count = self.image_count()?;
        let input = loaded.input();
        let calib = match &self.calib {
            None => Calibration::synthetic_for(input, self.synthetic_seed, count)?,
            Some(path) => match validate::input_file_or_dir("--calib", path)? {
                InputKind::Dir => {
                    let mean = mean_image_or_channel_means(self.mean.as_deref(), loaded)?;
                    Calibration::from_image_dir_for(input, path, &mean, count)?
                }
                InputKind::File => Calibration::from_data_file_for(input, path, count)?,
            },
        };
        let held = calib
            .len()
            .saturating_sub(self.calib_count as usize)
            .min(self.holdout as usize);
        if held < self.holdout as usize {
            eprintln!(
                "note: {} images found; {} calibrate, {held} held out (asked: {} and {})",
                calib.len(),
                calib.len() - held,
                self.calib_count,
                self.holdout
            );
        }
        Ok(calib.split_holdout(held))
    }
}

pub fn parse_spec_arg(text: &str) -> Result<QuantSpec, String> {
    qcnn_quantizer::parse_spec(text)
}

pub fn parse_method_arg(text: &str) -> Result<Method, String> {
    text.parse()
}

/// Refuses an output folder that already holds a model of another prefix: the folder would
/// then hold two models, which no loader accepts.
fn check_out_dir(out: &Path, prefix: &str) -> Result<()> {
    if !qcnn_files::optional_dir(out)? {
        return Ok(());
    }
    let probe = ".biasVec.01.bin";
    for path in qcnn_files::list_dir(out)? {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(other) = name.strip_suffix(probe) {
            if other != prefix {
                bail!(
                    "--out {}: already holds the model '{other}'; a folder holds one model, so \
                     choose another folder (or --prefix {other} to replace it)",
                    out.display()
                );
            }
        }
    }
    Ok(())
}

impl QuantizeArgs {
    /// The checks that depend on the network: every layer's d/K, and what calibration and
    /// error correction would hold in memory.
    fn check_for(&self, arch: &Architecture) -> Result<()> {
        let layers = self.specs.checked(arch, self.network.kind())?;
        self.training.check_memory(arch, &layers)
    }
}

impl Validate for QuantizeArgs {
    fn validate(&self) -> Result<()> {
        let dense = self
            .dense
            .as_deref()
            .map(|d| validate::model("--dense", d))
            .transpose()?;
        folder::check_prefix(&self.prefix).map_err(|p| anyhow!("--prefix: {p}"))?;
        validate::output_dir("--out", &self.out)?;
        check_out_dir(&self.out, &self.prefix)?;
        self.training.validate()?;
        match models::architecture(dense.as_ref(), self.network) {
            Some(arch) => self.check_for(&arch),
            // A dense model file without --network: checked once it is identified.
            None => Ok(()),
        }
    }
}

/// Runs a validated `quantize` ([`Validate`] has checked `args`).
pub fn run(args: &QuantizeArgs) -> Result<()> {
    let loaded = models::load(
        args.dense.as_deref(),
        args.network,
        args.training.synthetic_seed,
    )?;
    let arch = &loaded.model.arch;
    if loaded.identified {
        args.check_for(arch)?;
    }
    let specs = args.specs.settings(args.network.kind()).specs(arch);
    let (calib, holdout) = args.training.calibration(&loaded)?;
    let settings = args.training.settings();
    eprintln!("model:       {}", models::describe(&loaded));
    eprintln!("calibration: {}", calib.source());
    if let Some(h) = &holdout {
        eprintln!("held out:    {}", h.source());
    }
    eprintln!("method:      {} (seed {})", settings.method, settings.seed);
    let start = Instant::now();
    let quantized = quantize_model(
        &loaded.model,
        &specs,
        &calib,
        &settings,
        &mut LayerBars::default(),
    )?;
    let seconds = start.elapsed().as_secs_f64();
    let held = holdout
        .map(|h| held_out_errors(&loaded.model, &quantized, h.images()))
        .transpose()?;
    folder::save(&quantized.model, &args.out, &args.prefix)
        .with_context(|| format!("writing the quantized model into {}", args.out.display()))?;
    let report_path = args.out.join(REPORT_FILE);
    qcnn_files::replace(
        &report_path,
        report_csv(&quantized.reports, held.as_ref()).as_bytes(),
    )?;
    print!("{}", summary_table(&quantized.reports, held.as_ref()));
    println!(
        "total: {seconds:.1} s; wrote {} (prefix {}) and {}",
        args.out.display(),
        args.prefix,
        report_path.display()
    );
    Ok(())
}

/// Response errors of every layer on held-out images, each network fed by its own lower
/// layers: plain PQ, and (method ec) the error-corrected model.
pub struct HeldOut {
    pub pq: Vec<f64>,
    pub ec: Option<Vec<f64>>,
}

fn held_out_errors(
    dense: &Model,
    quantized: &QuantizedModel,
    images: &[Vec<f32>],
) -> Result<HeldOut> {
    let pq = response_errors(dense, &quantized.pq_model, images)?;
    let ec = match quantized.reports.first().map(|r| r.method) {
        Some(Method::Ec) => Some(response_errors(dense, &quantized.model, images)?),
        _ => None,
    };
    Ok(HeldOut { pq, ec })
}

/// One progress bar per layer (steps: subspaces × passes), left on screen with its results.
#[derive(Default)]
pub struct LayerBars {
    bar: Option<ProgressBar>,
}

impl Progress for LayerBars {
    fn start_layer(&mut self, layer: &str, spec: QuantSpec, steps: u64) {
        let bar = ProgressBar::new(steps);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>14} [{bar:30}] {pos}/{len} subspace steps {elapsed} {msg}",
            )
            .expect("a valid progress template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{layer} {}/{}", spec.d, spec.k));
        self.bar = Some(bar);
    }

    fn advance(&mut self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn finish_layer(&mut self, r: &LayerReport) {
        if let Some(bar) = self.bar.take() {
            bar.finish_with_message(format!(
                "weight err {:.4}, response err {:.4}",
                r.weight_rel_error,
                r.response_rel_error()
            ));
        }
    }
}

/// A figure or "-" when absent.
fn cell(value: Option<f64>) -> String {
    value.map_or("-".to_string(), |v| format!("{v:.4}"))
}

/// Fixed-width table: one row per layer. Response errors on the calibration images
/// ("calib") and, when some were held out, on images quantization never saw ("held-out").
pub fn summary_table(reports: &[LayerReport], held: Option<&HeldOut>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<7} {:>7} {:<6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "layer",
        "d/K",
        "method",
        "weight err",
        "calib pq",
        "calib ec",
        "held pq",
        "held ec",
        "time (s)"
    );
    for (i, r) in reports.iter().enumerate() {
        let held_pq = held.map(|h| h.pq[i]);
        let held_ec = held.and_then(|h| h.ec.as_ref()).map(|e| e[i]);
        let _ = writeln!(
            out,
            "{:<7} {:>7} {:<6} {:>10.4} {:>10.4} {:>10} {:>10} {:>10} {:>9.2}",
            r.layer,
            format!("{}/{}", r.spec.d, r.spec.k),
            r.method.name(),
            r.weight_rel_error,
            r.pq_response_rel_error,
            cell(r.ec_response_rel_error),
            cell(held_pq),
            cell(held_ec),
            r.seconds
        );
    }
    let _ = writeln!(out, "(response errors: relative L2 of each conv/fc output against the dense network, the layers below quantized)");
    out
}

/// `quantize-report.csv`: layer, d, k, method, weight_rel_error, pq_response_rel_error,
/// ec_response_rel_error (calibration images; empty for pq), holdout_pq_response_rel_error,
/// holdout_ec_response_rel_error (held-out images; empty when none or pq), seconds,
/// kmeans_iterations (mean per subspace), ec_columns.
pub fn report_csv(reports: &[LayerReport], held: Option<&HeldOut>) -> String {
    let mut out = String::from(
        "layer,d,k,method,weight_rel_error,pq_response_rel_error,ec_response_rel_error,\
         holdout_pq_response_rel_error,holdout_ec_response_rel_error,seconds,kmeans_iterations,ec_columns\n",
    );
    let opt = |v: Option<f64>| v.map_or(String::new(), |e| e.to_string());
    for (i, r) in reports.iter().enumerate() {
        let held_pq = held.map(|h| h.pq[i]);
        let held_ec = held.and_then(|h| h.ec.as_ref()).map(|e| e[i]);
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            r.layer,
            r.spec.d,
            r.spec.k,
            r.method.name(),
            r.weight_rel_error,
            r.pq_response_rel_error,
            opt(r.ec_response_rel_error),
            opt(held_pq),
            opt(held_ec),
            r.seconds,
            r.kmeans_iterations,
            r.ec_columns
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(method: Method, ec: Option<f64>) -> LayerReport {
        LayerReport {
            layer: "conv1".into(),
            spec: QuantSpec { d: 8, k: 128 },
            method,
            weight_rel_error: 0.1,
            pq_response_rel_error: 0.2,
            ec_response_rel_error: ec,
            ec_objective: Vec::new(),
            ec_columns: 0,
            kmeans_iterations: 3.0,
            seconds: 1.5,
        }
    }

    #[test]
    fn every_report_row_has_every_column() {
        let reports = [report(Method::Pq, None), report(Method::Ec, Some(0.05))];
        let held = HeldOut {
            pq: vec![0.3, 0.3],
            ec: Some(vec![0.1, 0.1]),
        };
        for csv in [
            report_csv(&reports, None),
            report_csv(&reports, Some(&held)),
        ] {
            let columns: Vec<usize> = csv.lines().map(|l| l.split(',').count()).collect();
            assert!(columns.iter().all(|&c| c == 12), "{csv}");
        }
    }

    #[test]
    fn spec_and_method_arguments_parse() {
        assert_eq!(parse_spec_arg("4/32"), Ok(QuantSpec { d: 4, k: 32 }));
        assert_eq!(parse_method_arg("ec"), Ok(Method::Ec));
        assert!(parse_method_arg("kmeans").is_err());
    }
}
