//! `qcnn classify`: one image through one network, top-5 classes, optional layer dump.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use qcnn_kernels::Target;
use qcnn_model::preprocess::{self, MeanImage};
use qcnn_model::{synthetic, Network};

use crate::dump::LayerDumper;
use crate::labels::{read_image_labels, stem};
use crate::models::{self, LoadedModel};

#[derive(clap::Args, Debug)]
pub struct ClassifyArgs {
    /// The image (BMP; PNG and JPEG work too). Without it, the embedded synthetic image.
    pub image: Option<PathBuf>,
    /// Model folder: the authors' repository root, an AlexNet folder or a Bin.Files folder.
    /// Without it, the embedded synthetic network (--network).
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
        return Ok(network.forward(input, &mut qcnn_model::NoObserver).to_vec());
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

/// The mean image at `path`, else the model folder's, else Caffe's per-channel means.
pub fn mean_image_or_channel_means(path: Option<&Path>, loaded: &LoadedModel) -> Result<MeanImage> {
    let path = path
        .map(Path::to_path_buf)
        .or_else(|| loaded.folder.as_ref().and_then(|f| f.mean_image()));
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
    let path = args
        .class_names
        .clone()
        .or_else(|| loaded.folder.as_ref().and_then(|f| f.class_names()));
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading class names {}", path.display()))?;
            Ok(text.lines().map(str::to_string).collect())
        }
        None => Ok(Vec::new()),
    }
}

/// The label listed for this file name (by stem) in the folder's image_labels.txt.
fn ground_truth(image: &Path, loaded: &LoadedModel) -> Result<Option<usize>> {
    match loaded.folder.as_ref().and_then(|f| f.image_labels()) {
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
