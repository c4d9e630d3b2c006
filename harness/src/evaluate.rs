//! `qcnn evaluate`: top-1/top-5 accuracy of each mode over a labelled image set, each mode's
//! agreement with the dense network and the images it changed, recorded as a run that
//! `qcnn report` renders (`evaluation.csv`, `predictions.csv`, and the usual raw rows: one
//! "repeat" that classifies every image once per mode).
//!
//! Sets: a folder of images (the ILSVRC-12 validation layout, `ILSVRC2012_val_00000001.JPEG`
//! …, BMP/PNG/JPEG) with a labels file: `<file name> <class>` lines (Caffe's `val.txt`, the
//! authors' `image_labels.txt`), or one class per line where line n labels the image
//! numbered n (the devkit's ground-truth layout; `--one-based-labels` subtracts 1); or the
//! authors' preprocessed data file (`dataMatTst.single.bin`, 1000 images) with its uint16
//! labels (`lablVecTst.uint16.bin`, found beside it by default). Images are read and
//! preprocessed one at a time, so the set's size is bounded by disk only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::machine::Machine;
use anyhow::{bail, Context, Result};
use cpu_time::ProcessTime;
use indicatif::{ProgressBar, ProgressStyle};
use qcnn_model::format::BinF32Reader;
use qcnn_model::preprocess::{self, MeanImage};
use qcnn_model::Shape;
use qcnn_results::{
    write_evaluation, EvaluationRow, ImageRow, Meta, ModeInfo, PredictionRow, PredictionsWriter,
    RepeatRecord, RepeatRow, RunWriter,
};
use qcnn_runner::NoObserver;

use crate::blas_core::BlasInfo;
use crate::classify::{mean_image_or_channel_means, top_k};
use crate::labels::{read_data_labels, stem, MAX_IMAGE_LABELS_BYTES};
use crate::models::{self, LoadedModel};
use crate::reproduce::inputs::image_files;
use crate::validate::{self, InputKind, Validate};

/// Prediction rows are synced to disk every this many images.
const FLUSH_EVERY: usize = 50;

/// The most images one evaluation covers (`--limit`, and the set itself): ten times
/// ILSVRC-12's training set. Per image and mode a timing row stays in memory until the end.
pub const MAX_EVAL_IMAGES: u32 = 10_000_000;

/// The labels file beside the authors' data file, used when `--labels` is not given.
const DATA_LABELS_BESIDE: &str = "lablVecTst.uint16.bin";

#[derive(clap::Args, Debug)]
pub struct EvaluateArgs {
    /// The model: a folder in the authors' format (with codebooks for the quantized modes),
    /// or a dense .onnx / .caffemodel (then only mode dense; quantize it first for the
    /// others).
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub network: models::NetworkArg,
    /// A folder of images (BMP/PNG/JPEG, sorted by name), or the authors' preprocessed data
    /// file f32 (N, 3, H, W) (dataMatTst.single.bin).
    #[arg(long)]
    pub images: PathBuf,
    /// Ground truth: `<file name> <class>` lines, or one class per line (line n labels the
    /// image numbered n, as ILSVRC2012_validation_ground_truth.txt), or for a data file its
    /// uint16 labels (default: lablVecTst.uint16.bin beside it).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Labels in a one-class-per-line file count from 1 (the devkit's); subtract 1. (The
    /// devkit's class order is not Caffe's synset order: for a Caffe-trained model use
    /// Caffe's val.txt.)
    #[arg(long)]
    pub one_based_labels: bool,
    /// Modes to evaluate, comma-separated, each once; dense is always run (the agreement
    /// reference).
    #[arg(long, value_delimiter = ',', default_value = "dense,qcnn")]
    pub modes: Vec<String>,
    /// At most this many images (the first ones; 1..=10000000).
    #[arg(long, value_parser = validate::count::<usize>(1, MAX_EVAL_IMAGES.into()))]
    pub limit: Option<usize>,
    /// Mean image for an image folder (default: the model folder's, else per-channel means).
    #[arg(long)]
    pub mean: Option<PathBuf>,
    /// Where run folders go.
    #[arg(long, default_value = "results/runs")]
    pub results: PathBuf,
}

/// A labelled set, read one image at a time.
enum LabelledSet {
    Folder {
        files: Vec<PathBuf>,
        labels: Vec<usize>,
        mean: MeanImage,
        crop: usize,
    },
    DataFile {
        reader: BinF32Reader,
        labels: Vec<usize>,
    },
}

impl LabelledSet {
    fn len(&self) -> usize {
        match self {
            LabelledSet::Folder { files, .. } => files.len(),
            LabelledSet::DataFile { labels, .. } => labels.len(),
        }
    }

    /// Image `i`: its name, the network input, its label.
    fn get(&mut self, i: usize) -> Result<(String, Vec<f32>, usize)> {
        match self {
            LabelledSet::Folder {
                files,
                labels,
                mean,
                crop,
            } => {
                let path = &files[i];
                let input = preprocess::preprocess_to(path, mean, *crop)?;
                let name = path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                Ok((name, input, labels[i]))
            }
            LabelledSet::DataFile { reader, labels } => {
                let mut input = vec![0.0f32; reader.slice_len()];
                reader.read_slice(i, &mut input)?;
                let name = format!(
                    "{}#{i}",
                    reader
                        .path()
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                );
                Ok((name, input, labels[i]))
            }
        }
    }

    fn describe(&self, images: &Path, labels: &Path) -> String {
        format!(
            "{} ({} labelled images; labels {})",
            images.display(),
            self.len(),
            labels.display()
        )
    }
}

impl Validate for EvaluateArgs {
    fn validate(&self) -> Result<()> {
        let model = validate::model("--model", &self.model)?;
        validate::not_empty("--modes", &self.modes)?;
        models::check_modes_for("--modes", &self.modes, Some(&model))?;
        validate::no_duplicates("--modes", &self.modes)?;
        match validate::input_file_or_dir("--images", &self.images)? {
            InputKind::File => {
                let labels = self.data_labels();
                validate::input_file("--labels", &labels)?;
            }
            InputKind::Dir => match &self.labels {
                Some(labels) => validate::input_file("--labels", labels)?,
                None => bail!(
                    "--labels: an image folder ({}) needs a ground-truth file",
                    self.images.display()
                ),
            },
        }
        if let Some(mean) = &self.mean {
            validate::input_file("--mean", mean)?;
        }
        validate::output_dir("--results", &self.results)
    }
}

impl EvaluateArgs {
    /// The labels of a data file: --labels, else the authors' file beside it.
    fn data_labels(&self) -> PathBuf {
        self.labels
            .clone()
            .unwrap_or_else(|| self.images.with_file_name(DATA_LABELS_BESIDE))
    }
}

/// Runs a validated `evaluate` ([`Validate`] has checked `args`).
pub fn run(args: &EvaluateArgs, machine: &Machine, blas: &BlasInfo) -> Result<()> {
    let (target, isa) = (machine.target, machine.target.isa);
    let modes = modes(&args.modes);
    let loaded = models::load(Some(&args.model), args.network, 0)?;
    let (mut set, labels_path) = open_set(args, &loaded)?;
    if let Some(limit) = args.limit {
        truncate(&mut set, limit);
    }
    let n = set.len();
    if n == 0 {
        bail!("{}: no labelled images to evaluate", args.images.display());
    }
    if n > MAX_EVAL_IMAGES as usize {
        bail!(
            "{}: {n} images; one evaluation covers at most {MAX_EVAL_IMAGES} (use --limit)",
            args.images.display()
        );
    }
    let mut networks = modes
        .iter()
        .map(|m| models::network(m, &loaded.model, target))
        .collect::<Result<Vec<_>>>()?;
    let infos = networks
        .iter()
        .map(|net| {
            ModeInfo::new(
                &net.mode(),
                &net.kernels(),
                if net.mode() == "dense" {
                    "blas"
                } else {
                    isa.name()
                },
            )
        })
        .collect();
    let mut meta = Meta::new(1, n as u32, infos);
    meta.input = set.describe(&args.images, &labels_path);
    meta.model = qcnn_results::ModelInfo {
        source: models::describe(&loaded),
        files: Vec::new(),
    };
    meta.theoretical_speedup = Some(crate::reproduce::storage::theoretical_speedup(
        &loaded.model,
    ));
    meta.layer_ops = crate::reproduce::storage::layer_ops(&loaded.model);
    meta.blas = Some(qcnn_results::BlasInfo {
        library: "OpenBLAS".into(),
        version: blas.config.clone(),
        core_type: blas.core.clone(),
    });
    meta.notes.insert("command".into(), "evaluate".into());
    meta.notes.insert("lookup_isa".into(), isa.name().into());
    let mut writer = RunWriter::create(&args.results, meta)?;
    eprintln!("recording into {}", writer.dir().display());
    let mut predictions = PredictionsWriter::create(writer.dir())?;
    let mut tally = Tally::new(&modes);
    let mut record = RepeatRecord::new(1);
    let (cpu, wall) = (ProcessTime::now(), Instant::now());
    let bar = progress_bar(n as u64);
    for i in 0..n {
        let (name, input, label) = set
            .get(i)
            .with_context(|| format!("image {i} of {}", args.images.display()))?;
        let mut dense_top1 = None;
        for (m, net) in networks.iter_mut().enumerate() {
            let start = Instant::now();
            let probs = net.forward(&input, &mut NoObserver);
            let ms = start.elapsed().as_secs_f64() * 1e3;
            let top: Vec<usize> = top_k(probs, 5).into_iter().map(|(c, _)| c).collect();
            let reference = *dense_top1.get_or_insert(top[0]);
            tally.add(m, label, &top, reference, ms);
            record.images.push(ImageRow {
                repeat: 1,
                mode: modes[m].clone(),
                image: i as u32,
                ms,
            });
            predictions.push(prediction(i, &name, label, &modes[m], &top, ms));
        }
        if (i + 1) % FLUSH_EVERY == 0 {
            predictions.flush()?;
        }
        bar.inc(1);
    }
    predictions.flush()?;
    bar.finish_and_clear();
    // Interleaved per image: each mode's share of the process time is its share of the
    // forward passes' wall time.
    let (cpu_ms, wall_ms) = (
        cpu.elapsed().as_secs_f64() * 1e3,
        wall.elapsed().as_secs_f64() * 1e3,
    );
    let forward_ms: f64 = tally.modes.iter().map(|t| t.total_ms).sum();
    for (m, t) in tally.modes.iter().enumerate() {
        let share = t.total_ms / forward_ms.max(f64::MIN_POSITIVE);
        let row = RepeatRow::new(
            1,
            &modes[m],
            &networks[m].kernels(),
            n as u32,
            t.total_ms,
            cpu_ms * share,
            wall_ms * share,
        )
        .with_accuracy(t.top1 as u32, t.top5 as u32);
        record.rows.push(row);
    }
    writer.append_repeat(&record)?;
    let rows = tally.rows(&modes, n);
    write_evaluation(writer.dir(), &rows)?;
    let dir = writer.dir().to_path_buf();
    writer.finish()?;
    print!("{}", table(&rows));
    println!("\nresults: {}", dir.display());
    Ok(())
}

/// The modes asked for (validated: known, each once), dense first: it is the agreement
/// reference and always runs.
fn modes(asked: &[String]) -> Vec<String> {
    let others = asked.iter().filter(|m| *m != "dense").cloned();
    std::iter::once("dense".to_string()).chain(others).collect()
}

fn truncate(set: &mut LabelledSet, limit: usize) {
    match set {
        LabelledSet::Folder { files, labels, .. } => {
            files.truncate(limit);
            labels.truncate(limit);
        }
        LabelledSet::DataFile { labels, .. } => labels.truncate(limit),
    }
}

fn open_set(args: &EvaluateArgs, loaded: &LoadedModel) -> Result<(LabelledSet, PathBuf)> {
    let input = loaded.input();
    let classes = class_count(loaded);
    if validate::input_file_or_dir("--images", &args.images)? == InputKind::File {
        let labels = args.data_labels();
        return Ok((data_file(&args.images, &labels, input, classes)?, labels));
    }
    let Some(labels) = args.labels.clone() else {
        bail!("--labels: an image folder needs a ground-truth file");
    };
    let files = image_files(&args.images)?;
    let by_file = folder_labels(&files, &labels, args.one_based_labels, classes)?;
    let mean = mean_image_or_channel_means(args.mean.as_deref(), loaded)?;
    if input.h != input.w {
        bail!(
            "{}: the network input {}×{} is not square",
            loaded.model.arch.name,
            input.h,
            input.w
        );
    }
    Ok((
        LabelledSet::Folder {
            files,
            labels: by_file,
            mean,
            crop: input.h,
        },
        labels,
    ))
}

/// The classes the network tells apart (its last layer's outputs): a label must be below.
fn class_count(loaded: &LoadedModel) -> usize {
    let arch = &loaded.model.arch;
    arch.param_layers().last().map_or(0, |p| p.out_channels())
}

/// What is wrong with label `class` when the network tells `classes` classes apart.
fn class_out_of_range(class: usize, classes: usize) -> Option<String> {
    (class >= classes).then(|| {
        format!(
            "class {class}, but the network tells {classes} classes apart (0..={})",
            classes.saturating_sub(1)
        )
    })
}

fn data_file(images: &Path, labels: &Path, input: Shape, classes: usize) -> Result<LabelledSet> {
    let reader = BinF32Reader::open(images)?;
    if reader.dims().len() != 4 || reader.dims()[1..] != [input.c, input.h, input.w] {
        bail!(
            "{}: dims {:?}, expected (N, {}, {}, {}) preprocessed images for this network",
            images.display(),
            reader.dims(),
            input.c,
            input.h,
            input.w
        );
    }
    let labels_of_images = read_data_labels(labels, images, reader.len())?;
    for (i, &class) in labels_of_images.iter().enumerate() {
        if let Some(problem) = class_out_of_range(class, classes) {
            bail!("{}: label {i}: {problem}", labels.display());
        }
    }
    Ok(LabelledSet::DataFile {
        reader,
        labels: labels_of_images,
    })
}

/// Every file's label from `path`: `<name> <class>` lines matched by file stem, or one class
/// per line matched by the number at the end of the file's stem (`…_00000042` → line 42).
fn folder_labels(
    files: &[PathBuf],
    path: &Path,
    one_based: bool,
    classes: usize,
) -> Result<Vec<usize>> {
    let text = qcnn_files::read_regular_text(path, MAX_IMAGE_LABELS_BYTES, "a labels file")
        .context("reading labels")?;
    let mut by_stem = HashMap::new();
    let mut by_line = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (key, value) = match parts.as_slice() {
            [] => continue,
            [value] => (None, *value),
            [file, value] => (Some(*file), *value),
            _ => bail!(
                "{}:{}: expected '<file> <class>' or '<class>', found '{line}'",
                path.display(),
                n + 1
            ),
        };
        let mut class: usize = value.parse().with_context(|| {
            format!(
                "{}:{}: '{value}' is not a class index",
                path.display(),
                n + 1
            )
        })?;
        if one_based && key.is_none() {
            class = class.checked_sub(1).with_context(|| {
                format!(
                    "{}:{}: class 0 in a file said to count from 1",
                    path.display(),
                    n + 1
                )
            })?;
        }
        if let Some(problem) = class_out_of_range(class, classes) {
            bail!("{}:{}: {problem}", path.display(), n + 1);
        }
        match key {
            Some(file) => {
                by_stem.insert(stem(Path::new(file)).to_string(), class);
            }
            None => by_line.push(class),
        }
    }
    if !by_stem.is_empty() && !by_line.is_empty() {
        bail!(
            "{}: mixes '<file> <class>' lines and bare classes",
            path.display()
        );
    }
    files
        .iter()
        .map(|f| {
            let s = stem(f);
            let label = if by_stem.is_empty() {
                image_number(s).and_then(|k| by_line.get(k.wrapping_sub(1)).copied())
            } else {
                by_stem.get(s).copied()
            };
            label.with_context(|| {
                format!("{}: no label for {} in {}", f.display(), s, path.display())
            })
        })
        .collect()
}

/// The number at the end of a stem: `ILSVRC2012_val_00000042` → 42.
fn image_number(stem: &str) -> Option<usize> {
    let digits: String = stem
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.chars().rev().collect::<String>().parse().ok()
}

/// Counts per mode.
struct Tally {
    modes: Vec<ModeTally>,
}

#[derive(Default)]
struct ModeTally {
    top1: usize,
    top5: usize,
    same: usize,
    fixed: usize,
    broken: usize,
    total_ms: f64,
}

impl Tally {
    fn new(modes: &[String]) -> Self {
        Tally {
            modes: modes.iter().map(|_| ModeTally::default()).collect(),
        }
    }

    /// Mode `m` ranked `top` (best first) for an image labelled `label`; dense said `dense`.
    fn add(&mut self, m: usize, label: usize, top: &[usize], dense: usize, ms: f64) {
        let t = &mut self.modes[m];
        let right = top[0] == label;
        t.top1 += usize::from(right);
        t.top5 += usize::from(top.contains(&label));
        t.total_ms += ms;
        if top[0] == dense {
            t.same += 1;
        } else if right {
            t.fixed += 1;
        } else if dense == label {
            t.broken += 1;
        }
    }

    fn rows(&self, modes: &[String], n: usize) -> Vec<EvaluationRow> {
        self.modes
            .iter()
            .zip(modes)
            .map(|(t, mode)| EvaluationRow {
                mode: mode.clone(),
                images: n as u32,
                top1_correct: t.top1 as u32,
                top5_correct: t.top5 as u32,
                top1_accuracy: t.top1 as f64 / n as f64,
                top5_accuracy: t.top5 as f64 / n as f64,
                same_top1_as_dense: t.same as u32,
                changed_vs_dense: (n - t.same) as u32,
                fixed_vs_dense: t.fixed as u32,
                broken_vs_dense: t.broken as u32,
            })
            .collect()
    }
}

fn prediction(
    i: usize,
    name: &str,
    label: usize,
    mode: &str,
    top: &[usize],
    ms: f64,
) -> PredictionRow {
    let at = |k: usize| top.get(k).copied().unwrap_or(0) as u32;
    PredictionRow {
        image: i as u32,
        name: name.to_string(),
        label: label as u32,
        mode: mode.to_string(),
        top1: at(0),
        top2: at(1),
        top3: at(2),
        top4: at(3),
        top5: at(4),
        ms,
    }
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} evaluating [{bar:40}] {pos}/{len} images ({eta} left)",
        )
        .expect("a valid progress template")
        .progress_chars("=> "),
    );
    bar
}

/// The terminal table: one row per mode.
fn table(rows: &[EvaluationRow]) -> String {
    let mut out = String::from(
        "| mode | images | top-1 | top-5 | same top-1 as dense | changed | fixed | broken |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {:.2}% | {:.2}% | {} | {} | {} | {} |\n",
            r.mode,
            r.images,
            100.0 * r.top1_accuracy,
            100.0 * r.top5_accuracy,
            r.same_top1_as_dense,
            r.changed_vs_dense,
            r.fixed_vs_dense,
            r.broken_vs_dense
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_label_layouts_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = [1, 3]
            .iter()
            .map(|n| dir.path().join(format!("ILSVRC2012_val_{n:08}.JPEG")))
            .collect();
        let by_name = dir.path().join("val.txt");
        std::fs::write(
            &by_name,
            "ILSVRC2012_val_00000001.JPEG 65\nILSVRC2012_val_00000003.JPEG 230\n",
        )
        .unwrap();
        assert_eq!(
            folder_labels(&files, &by_name, false, 1000).unwrap(),
            [65, 230]
        );
        // One class per line, line n for image n; the devkit counts from 1.
        let by_line = dir.path().join("ground_truth.txt");
        std::fs::write(&by_line, "490\n361\n171\n").unwrap();
        assert_eq!(
            folder_labels(&files, &by_line, false, 1000).unwrap(),
            [490, 171]
        );
        assert_eq!(
            folder_labels(&files, &by_line, true, 1000).unwrap(),
            [489, 170]
        );
        let short = dir.path().join("short.txt");
        std::fs::write(&short, "490\n").unwrap();
        let err = folder_labels(&files, &short, false, 1000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no label for ILSVRC2012_val_00000003"),
            "{err}"
        );
        std::fs::write(&short, "a.JPEG x\n").unwrap();
        let err = folder_labels(&files, &short, false, 1000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("short.txt:1: 'x' is not a class index"),
            "{err}"
        );
        // A class the network does not have is an error naming the line, not a silent miss.
        std::fs::write(
            &short,
            "ILSVRC2012_val_00000001.JPEG 65\nILSVRC2012_val_00000003.JPEG 1000\n",
        )
        .unwrap();
        let err = folder_labels(&files, &short, false, 1000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("short.txt:2: class 1000, but the network tells 1000 classes apart"),
            "{err}"
        );
        // The labels file is read as a regular file: a FIFO is refused at once.
        let fifo = dir.path().join("fifo.txt");
        qcnn_files::testing::make_fifo(&fifo).unwrap();
        let err = qcnn_files::testing::within_deadline("a FIFO as labels", 10, move || {
            format!(
                "{:#}",
                folder_labels(&files, &fifo, false, 1000).unwrap_err()
            )
        });
        assert!(
            err.contains("is a FIFO (named pipe), not a regular file"),
            "{err}"
        );
    }

    #[test]
    fn dense_comes_first_and_runs_once() {
        let asked = |m: &[&str]| modes(&m.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(asked(&["qcnn"]), ["dense", "qcnn"]);
        assert_eq!(asked(&["qcnn-int8", "dense"]), ["dense", "qcnn-int8"]);
    }

    #[test]
    fn image_numbers_and_tally() {
        assert_eq!(image_number("ILSVRC2012_val_00000042"), Some(42));
        assert_eq!(image_number("cat"), None);
        let modes = vec!["dense".to_string(), "qcnn".to_string()];
        let mut t = Tally::new(&modes);
        // Image labelled 3: dense right, qcnn wrong (broken); image labelled 5: dense wrong,
        // qcnn right (fixed); image labelled 1: both say 2 (same, both wrong).
        for (label, d, q) in [
            (3, [3, 1, 2, 4, 5], [1, 3, 2, 4, 5]),
            (5, [2, 5, 1, 3, 4], [5, 2, 1, 3, 4]),
            (1, [2, 0, 3, 4, 5], [2, 1, 3, 4, 5]),
        ] {
            t.add(0, label, &d, d[0], 1.0);
            t.add(1, label, &q, d[0], 1.0);
        }
        let rows = t.rows(&modes, 3);
        assert_eq!(
            (
                rows[0].top1_correct,
                rows[0].top5_correct,
                rows[0].same_top1_as_dense
            ),
            (1, 2, 3)
        );
        let q = &rows[1];
        assert_eq!(
            (q.top1_correct, q.top5_correct, q.same_top1_as_dense),
            (1, 3, 1)
        );
        assert_eq!(
            (q.changed_vs_dense, q.fixed_vs_dense, q.broken_vs_dense),
            (2, 1, 1)
        );
        for r in &rows {
            r.check().unwrap();
        }
    }
}
