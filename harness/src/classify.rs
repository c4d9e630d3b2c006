//! `qcnn classify`: one image through one network, top-5 classes, optional layer dump.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use qcnn_kernels::Target;
use qcnn_model::preprocess::{self, MeanImage};
use qcnn_model::synthetic;
use qcnn_runner::{FiniteWatch, Network};

use crate::dump::LayerDumper;
use crate::labels::{read_class_names, read_image_labels, stem};
use crate::models::{self, LoadedModel};
use crate::validate::{self, Validate};

#[derive(clap::Args, Debug)]
pub struct ClassifyArgs {
    /// The image: BMP (as the authors), PNG or JPEG, told by its content; preprocessed as
    /// the authors do (README "Images"). Without it, the embedded synthetic image.
    pub image: Option<PathBuf>,
    /// Model folder (the authors' repository root, an AlexNet folder or a Bin.Files folder),
    /// or a dense .onnx / .caffemodel (mode dense only). Without it, the embedded synthetic
    /// network (--network).
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub network: models::NetworkArg,
    /// Which network runs the image: dense, qcnn or qcnn-int8 (approximate).
    #[arg(long, default_value = "dense")]
    pub mode: String,
    /// Mean image (f32 (3, 256, 256), B, G, R). Default: the model folder's
    /// imagenet_mean.single.bin, else Caffe's per-channel ImageNet means.
    #[arg(long)]
    pub mean: Option<PathBuf>,
    /// Class names, one per line. Default: the model folder's Cls.Names/class_names.txt.
    #[arg(long)]
    pub class_names: Option<PathBuf>,
    /// Write every layer's output into this folder as the authors' .bin arrays.
    #[arg(long)]
    pub dump_layers: Option<PathBuf>,
    /// Seed of the embedded synthetic model and image.
    #[arg(long, default_value_t = synthetic::DEFAULT_SEED)]
    pub seed: u64,
}

/// Caffe's per-channel ImageNet means (B, G, R), used when no mean image is at hand.
const CHANNEL_MEANS_BGR: [f32; 3] = [104.0, 117.0, 123.0];

impl Validate for ClassifyArgs {
    fn validate(&self) -> Result<()> {
        if let Some(image) = &self.image {
            validate::input_file("IMAGE", image)?;
        }
        let model = self
            .model
            .as_deref()
            .map(|m| validate::model("--model", m))
            .transpose()?;
        models::check_modes_for("--mode", std::slice::from_ref(&self.mode), model.as_ref())?;
        if let Some(mean) = &self.mean {
            validate::input_file("--mean", mean)?;
        }
        if let Some(names) = &self.class_names {
            validate::input_file("--class-names", names)?;
        }
        if let Some(dir) = &self.dump_layers {
            validate::output_dir("--dump-layers", dir)?;
        }
        Ok(())
    }
}

pub fn run(args: &ClassifyArgs, target: Target) -> Result<()> {
    let loaded = models::load(args.model.as_deref(), args.network, args.seed)?;
    let input = match &args.image {
        Some(path) => preprocess::preprocess_to(
            path,
            &mean_image_or_channel_means(args.mean.as_deref(), &loaded)?,
            loaded.input().h,
        )?,
        None => models::synthetic_input(&loaded, args.seed, 0),
    };
    let mut network = models::network(&args.mode, &loaded.model, target)?;
    let probs = forward(
        network.as_mut(),
        &loaded,
        &input,
        args.dump_layers.as_deref(),
    )?;
    check_finite(network.as_mut(), &input, &probs)?;

    println!("model:  {}", models::describe(&loaded));
    println!("mode:   {} ({})", network.mode(), network.kernels());
    let names = class_names(args, &loaded)?;
    match &args.image {
        Some(path) => {
            println!("image:  {}", path.display());
            if let Some(label) = ground_truth(path, &loaded)? {
                println!(
                    "truth:  {label} {}",
                    names.get(label).map(String::as_str).unwrap_or("")
                );
            }
        }
        None => println!("image:  embedded synthetic image (seed {})", args.seed),
    }
    println!("{:>4}  {:>5}  {:>11}  name", "rank", "class", "probability");
    for (rank, (class, p)) in top_k(&probs, 5).into_iter().enumerate() {
        println!(
            "{:>4}  {:>5}  {:>11.6}  {}",
            rank + 1,
            class,
            p,
            names.get(class).map(String::as_str).unwrap_or("-")
        );
    }
    Ok(())
}

fn forward(
    network: &mut dyn Network,
    loaded: &LoadedModel,
    input: &[f32],
    dump: Option<&Path>,
) -> Result<Vec<f32>> {
    let Some(dir) = dump else {
        return Ok(network
            .forward(input, &mut qcnn_runner::NoObserver)
            .to_vec());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let arch = &loaded.model.arch;
    let mut dumper = LayerDumper::new(dir, arch.shapes());
    dumper.write("input", arch.input, input);
    let probs = network.forward(input, &mut dumper).to_vec();
    if let Some(e) = dumper.error {
        return Err(e).context("writing layer outputs");
    }
    eprintln!(
        "wrote {} layer files into {}",
        dumper.written.len(),
        dir.display()
    );
    Ok(probs)
}

/// Refuses non-finite class probabilities: finite weights can still overflow f32 somewhere.
/// The image is run again with a [`FiniteWatch`] to name the first layer that went wrong.
pub fn check_finite(network: &mut dyn Network, input: &[f32], probs: &[f32]) -> Result<()> {
    if probs.iter().all(|p| p.is_finite()) {
        return Ok(());
    }
    let mut watch = FiniteWatch::default();
    network.forward(input, &mut watch);
    let place = watch
        .first
        .map_or("the output".to_string(), |f| f.to_string());
    bail!(
        "mode {}: the network's outputs are not finite (first at {place}): the model's values \
         overflow f32 on this input",
        network.mode()
    )
}

/// The mean image at `path`, else the model folder's, else Caffe's per-channel means.
pub fn mean_image_or_channel_means(path: Option<&Path>, loaded: &LoadedModel) -> Result<MeanImage> {
    let path = match path {
        Some(path) => Some(path.to_path_buf()),
        None => match &loaded.folder {
            Some(folder) => folder.mean_image()?,
            None => None,
        },
    };
    match path {
        Some(path) => Ok(MeanImage::load(&path)?),
        None => {
            eprintln!("note: no mean image given; subtracting Caffe's per-channel ImageNet means (B, G, R) {CHANNEL_MEANS_BGR:?}");
            let plane = 256 * 256;
            let data: Vec<f32> = CHANNEL_MEANS_BGR
                .iter()
                .flat_map(|&m| std::iter::repeat_n(m, plane))
                .collect();
            Ok(MeanImage::from_data(&[3, 256, 256], data)?)
        }
    }
}

fn class_names(args: &ClassifyArgs, loaded: &LoadedModel) -> Result<Vec<String>> {
    let path = match (&args.class_names, &loaded.folder) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(folder)) => folder.class_names()?,
        (None, None) => None,
    };
    match path {
        Some(path) => read_class_names(&path),
        None => Ok(Vec::new()),
    }
}

/// The label listed for this file name (by stem) in the folder's image_labels.txt.
fn ground_truth(image: &Path, loaded: &LoadedModel) -> Result<Option<usize>> {
    let labels = match &loaded.folder {
        Some(folder) => folder.image_labels()?,
        None => None,
    };
    match labels {
        Some(path) => Ok(read_image_labels(&path)?.get(stem(image)).copied()),
        None => Ok(None),
    }
}

/// The `k` largest entries as (index, value), largest first.
pub fn top_k(values: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut order: Vec<(usize, f32)> = values.iter().copied().enumerate().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    order.truncate(k);
    order
}

#[cfg(test)]
mod tests {
    use super::top_k;

    #[test]
    fn top_k_orders_by_value_then_index() {
        assert_eq!(
            top_k(&[0.1, 0.5, 0.2, 0.5], 3),
            vec![(1, 0.5), (3, 0.5), (2, 0.2)]
        );
        assert_eq!(top_k(&[1.0], 5), vec![(0, 1.0)]);
    }
}
