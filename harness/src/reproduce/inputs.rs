//! The images a run measures: the authors' 1000-image file, a folder of images (BMP, PNG,
//! JPEG), or the synthetic default. The distinct images are held in memory for the whole
//! run (so that reading never happens inside the timing); [`distinct_images`] says how many
//! that is before any is read, for the memory check of the arguments.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use qcnn_model::format::{read_image_set_for, BinF32Reader};
use qcnn_model::preprocess::{self, MeanImage};
use qcnn_model::{synthetic, Shape};

use crate::labels::{read_data_labels, read_image_labels, stem};

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

/// How many distinct images a run of `count` batches holds: from the data file (its header
/// only is read), the image folder (listed), or `count` synthetic ones.
pub fn distinct_images(data: Option<&Path>, dir: Option<&Path>, count: usize) -> Result<usize> {
    if let Some(data) = data {
        return Ok(count.min(BinF32Reader::open(data)?.len()));
    }
    if let Some(dir) = dir {
        return Ok(count.min(image_files(dir)?.len()));
    }
    Ok(count)
}

/// The authors' `dataMatTst.single.bin` (f32 N×3×227×227; N×`input` for another network)
/// and `lablVecTst.uint16.bin` (uint16, N labels in its last dimension: dims (N) or (1, N)).
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
            let mut labels = read_data_labels(path, data, total)?;
            labels.truncate(n);
            Some(labels)
        }
    };
    Ok(InputSet {
        images,
        labels,
        source: format!("{} ({n} of {total} images)", data.display()),
    })
}

/// The images of `dir` (BMP, PNG, JPEG), sorted by name; none is an error.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let files = preprocess::image_files(dir)?;
    if files.is_empty() {
        bail!(
            "{}: no images in this folder (extensions {})",
            dir.display(),
            preprocess::IMAGE_EXTENSIONS.join(", ")
        );
    }
    Ok(files)
}

/// Every image in `dir` (BMP, PNG, JPEG), sorted by name, preprocessed as the authors did;
/// labels from `labels_file` (`<file name> <class>` lines) when every image is listed.
pub fn from_image_dir(
    dir: &Path,
    mean: &MeanImage,
    labels_file: Option<&Path>,
    count: usize,
    input: Shape,
) -> Result<InputSet> {
    let mut files = image_files(dir)?;
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
