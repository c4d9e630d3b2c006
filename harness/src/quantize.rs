//! `qcnn quantize`: the Q-CNN training phase on a dense model (plain PQ or the paper's error
//! correction), written in the authors' format, with a per-layer progress bar and summary.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use qcnn_model::arch::{Architecture, QuantSpec};
use qcnn_model::{folder, Model};
use qcnn_quantizer::{
    check_spec, layer_specs, quantize_model, response_errors, Calibration, EcParams, KMeansParams,
    LayerReport, Method, Progress, QuantizedModel, Settings,
};

use crate::classify::mean_image_or_channel_means;
use crate::models::{self, LoadedModel};

/// The per-layer summary written beside the model files.
pub const REPORT_FILE: &str = "quantize-report.csv";

#[derive(clap::Args, Debug)]
pub struct QuantizeArgs {
    /// Model to quantize (the authors' repository root, an AlexNet or a Bin.Files folder):
    /// its dense files where present, else dense weights rebuilt from its codebooks. Without
    /// it, the embedded synthetic network (--network).
    #[arg(long)]
    pub dense: Option<PathBuf>,
    #[command(flatten)]
    pub network: models::NetworkArg,
    /// Destination folder for the quantized model (created if missing).
    #[arg(long)]
    pub out: PathBuf,
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
    #[command(flatten)]
    pub training: TrainingArgs,
    /// File-name prefix of the written model.
    #[arg(long, default_value = "qcnn_quantized_alexnet")]
    pub prefix: String,
}

/// Options shared by `quantize` and `sweep`: method, calibration inputs, seeds, iterations.
#[derive(clap::Args, Debug)]
pub struct TrainingArgs {
    /// pq (k-means per subspace) or ec (pq refined by error correction on calibration
    /// responses).
    #[arg(long, default_value = "pq", value_parser = parse_method_arg)]
    pub method: Method,
    /// Calibration images: a folder of BMPs or the authors' dataMatTst.single.bin.
    /// Default: synthetic images.
    #[arg(long)]
    pub calib: Option<PathBuf>,
    /// Calibration images used (the first ones of --calib).
    #[arg(long, default_value_t = 16)]
    pub calib_count: usize,
    /// Further images, never used for fitting, on which response errors are measured too
    /// (error correction can fit a small calibration set much better than unseen images).
    #[arg(long, default_value_t = 8)]
    pub holdout: usize,
    /// Mean image for a BMP folder (default: the model folder's, else per-channel means).
    #[arg(long)]
    pub mean: Option<PathBuf>,
    /// Seed of k-means++ and of the column sampling of error correction.
    #[arg(long, default_value_t = qcnn_model::synthetic::DEFAULT_SEED)]
    pub seed: u64,
    /// Seed of the embedded synthetic model and of the synthetic calibration images.
    #[arg(long, default_value_t = qcnn_model::synthetic::DEFAULT_SEED)]
    pub synthetic_seed: u64,
    /// At most this many k-means iterations per subspace.
    #[arg(long, default_value_t = KMeansParams::default().max_iterations)]
    pub kmeans_iterations: usize,
    /// Error-correction sweeps (each: codebook then assignment update of every subspace).
    #[arg(long, default_value_t = EcParams::default().iterations)]
    pub ec_iterations: usize,
    /// At most this many (image, output position) columns per conv layer for error
    /// correction; more are sampled uniformly.
    #[arg(long, default_value_t = EcParams::default().max_columns)]
    pub ec_columns: usize,
    /// Ridge of error correction's codebook update, relative to the mean diagonal of its
    /// normal equations: larger keeps codewords nearer their k-means values (less overfit of
    /// a small calibration set).
    #[arg(long, default_value_t = EcParams::default().ridge)]
    pub ec_ridge: f64,
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
        let count = self.calib_count + self.holdout;
        let input = loaded.input();
        let calib = match &self.calib {
            None => Calibration::synthetic_for(input, self.synthetic_seed, count)?,
            Some(path) if path.is_dir() => {
                let mean = mean_image_or_channel_means(self.mean.as_deref(), loaded)?;
                Calibration::from_image_dir_for(input, path, &mean, count)?
            }
            Some(path) if path.is_file() => Calibration::from_data_file_for(input, path, count)?,
            Some(path) => bail!("--calib {}: no such folder or file", path.display()),
        };
        let held = calib
            .len()
            .saturating_sub(self.calib_count)
            .min(self.holdout);
        if held < self.holdout {
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

/// Checks every layer's d/K against its shape before any work starts.
pub fn check_specs(arch: &Architecture, specs: &[QuantSpec]) -> Result<()> {
    for (p, &spec) in arch.param_layers().iter().zip(specs) {
        check_spec(arch.layers[p.index].name, p, spec)?;
    }
    Ok(())
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
    let Ok(entries) = std::fs::read_dir(out) else {
        return Ok(());
    };
    let probe = ".biasVec.01.bin";
    for entry in entries.flatten() {
        let name = entry.file_name();
        if let Some(other) = name.to_str().and_then(|n| n.strip_suffix(probe)) {
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

pub fn run(args: &QuantizeArgs) -> Result<()> {
    check_out_dir(&args.out, &args.prefix)?;
    let loaded = models::load(
        args.dense.as_deref(),
        args.network,
        args.training.synthetic_seed,
    )?;
    let arch = &loaded.model.arch;
    let paper = args.network.kind().default_quantization();
    let specs = layer_specs(
        arch,
        args.conv.unwrap_or(paper.conv),
        args.fc.unwrap_or(paper.fc),
        args.fc8.unwrap_or(paper.last_fc),
    );
    check_specs(arch, &specs)?;
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
    std::fs::write(&report_path, report_csv(&quantized.reports, held.as_ref()))
        .with_context(|| format!("writing {}", report_path.display()))?;
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
