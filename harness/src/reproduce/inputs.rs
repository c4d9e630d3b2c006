//! The images a run measures: the authors' 1000-image file, a folder of BMPs, or the
//! synthetic default.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use qcnn_model::format::{read_bin_u16, read_image_set_for};
use qcnn_model::preprocess::{self, MeanImage};
use qcnn_model::{synthetic, Shape};

use crate::labels::{read_image_labels, stem};

/// Preprocessed images (the network's input shape each) and, when known, their labels.
pub struct InputSet {
    pub images: Vec<Vec<f32>>,
    pub labels: Option<Vec<usize>>,
    /// For the results' provenance.
    pub source: String,
}

impl InputSet {
    /// Image `i` of a run; a set smaller than the run is cycled through.
    pub fn image(&self, i: usize) -> &[f32] {
        &self.images[i % self.images.len()]
    }
    pub fn label(&self, i: usize) -> Option<usize> {
        self.labels.as_ref().map(|l| l[i % l.len()])
    }
}

/// The authors' `dataMatTst.single.bin` (f32 N×3×227×227; N×`input` for another network)
/// and `lablVecTst.uint16.bin`.
pub fn from_data_file(
    data: &Path,
    labels: Option<&Path>,
    count: usize,
    input: Shape,
) -> Result<InputSet> {
    let (images, total) = read_image_set_for(data, count, &[input.c, input.h, input.w])?;
    let n = images.len();
    let labels = match labels {
        None => None,
        Some(path) => {
            let l = read_bin_u16(path)?;
            if l.data.len() != total {
                bail!(
                    "{}: {} labels for {total} images in {}",
                    path.display(),
                    l.data.len(),
                    data.display()
                );
            }
            Some(l.data[..n].iter().map(|&x| x as usize).collect())
        }
    };
    Ok(InputSet {
        images,
        labels,
        source: format!("{} ({n} of {total} images)", data.display()),
    })
}

/// Every BMP (and PNG/JPEG) in `dir`, sorted by name, preprocessed as the authors did;
/// labels from `labels_file` (`<file name> <class>` lines) when every image is listed.
pub fn from_image_dir(
    dir: &Path,
    mean: &MeanImage,
    labels_file: Option<&Path>,
    count: usize,
    input: Shape,
) -> Result<InputSet> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading image folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let ext = p
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            matches!(ext.as_str(), "bmp" | "png" | "jpg" | "jpeg")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{}: no BMP/PNG/JPEG images in this folder", dir.display());
    }
    files.truncate(count);
    let images = files
        .iter()
        .map(|f| preprocess::preprocess_to(f, mean, input.h))
        .collect::<Result<Vec<_>, _>>()?;
    let labels = match labels_file {
        Some(path) => labels_for(&files, path)?,
        None => None,
    };
    Ok(InputSet {
        images,
        labels,
        source: format!("{} ({} images)", dir.display(), files.len()),
    })
}

/// `count` deterministic synthetic images of shape `input`.
pub fn synthetic(input: Shape, seed: u64, count: usize) -> InputSet {
    InputSet {
        images: (0..count)
            .map(|i| synthetic::synthetic_input(input, seed, i))
            .collect(),
        labels: None,
        source: format!("synthetic images (seed {seed}, {count} distinct)"),
    }
}

/// Labels of `files` by file stem, or None when some file is not listed.
fn labels_for(files: &[PathBuf], path: &Path) -> Result<Option<Vec<usize>>> {
    let by_stem = read_image_labels(path)?;
    Ok(files
        .iter()
        .map(|f| by_stem.get(stem(f)).copied())
        .collect())
}
