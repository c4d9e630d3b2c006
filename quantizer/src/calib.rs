//! Calibration inputs: the images whose layer responses error correction fits and on which
//! response errors are measured. A folder of BMPs (preprocessed as the authors do), the
//! authors' preprocessed data file, or deterministic synthetic images.

use std::path::{Path, PathBuf};

use qcnn_model::format::read_image_set_for;
use qcnn_model::preprocess::{self, MeanImage};
use qcnn_model::{synthetic, Shape};

use crate::error::{QuantizeError, Result};

/// AlexNet's input, (3, 227, 227).
const ALEXNET_INPUT: Shape = Shape::new(3, 227, 227);

/// Preprocessed network inputs, each Layout (C, H, W) of the network's input shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    images: Vec<Vec<f32>>,
    /// Where the images came from, for reports and provenance.
    source: String,
}

impl Calibration {
    /// Images already in memory; each must hold `input_len` floats and there must be at
    /// least one.
    pub fn new(images: Vec<Vec<f32>>, input_len: usize, source: impl Into<String>) -> Result<Self> {
        let source = source.into();
        if images.is_empty() {
            return Err(QuantizeError::calibration(
                source,
                "the calibration set is empty; give at least one image",
            ));
        }
        let calib = Calibration { images, source };
        calib.check_input_len(input_len)?;
        Ok(calib)
    }

    /// `count` synthetic AlexNet inputs (qcnn_model::synthetic, seeded).
    pub fn synthetic(seed: u64, count: usize) -> Result<Self> {
        Self::synthetic_for(ALEXNET_INPUT, seed, count)
    }

    /// `count` synthetic inputs of shape `input` (qcnn_model::synthetic, seeded).
    pub fn synthetic_for(input: Shape, seed: u64, count: usize) -> Result<Self> {
        let images = (0..count)
            .map(|i| synthetic::synthetic_input(input, seed, i))
            .collect();
        let source = format!("synthetic images (seed {seed}, {count})");
        Self::new(images, input.len(), source)
    }

    /// The first `count` BMP files of `dir` (sorted by name), preprocessed as the authors do
    /// (resize to 256², subtract `mean`, centre crop 227²).
    pub fn from_image_dir(dir: &Path, mean: &MeanImage, count: usize) -> Result<Self> {
        Self::from_image_dir_for(ALEXNET_INPUT, dir, mean, count)
    }

    /// As [`Calibration::from_image_dir`] for a network whose input is `input` (the centre
    /// crop is input.h × input.h).
    pub fn from_image_dir_for(
        input: Shape,
        dir: &Path,
        mean: &MeanImage,
        count: usize,
    ) -> Result<Self> {
        let name = dir.display().to_string();
        let entries = std::fs::read_dir(dir).map_err(|e| {
            QuantizeError::calibration(&name, format!("cannot list the folder: {e}"))
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e.eq_ignore_ascii_case("bmp"))
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(QuantizeError::calibration(
                name,
                "no .bmp images in this folder",
            ));
        }
        files.truncate(count);
        let images = files
            .iter()
            .map(|f| preprocess::preprocess_to(f, mean, input.h))
            .collect::<Result<Vec<_>, _>>()?;
        let source = format!("{name} ({} BMP images)", images.len());
        Self::new(images, input.len(), source)
    }

    /// The first `count` images of the authors' preprocessed data file, f32 (N, 3, 227, 227)
    /// (`dataMatTst.single.bin`), read one image at a time.
    pub fn from_data_file(path: &Path, count: usize) -> Result<Self> {
        Self::from_data_file_for(ALEXNET_INPUT, path, count)
    }

    /// As [`Calibration::from_data_file`] for a network whose input is `input`: the file
    /// must hold f32 (N, C, H, W) of that shape.
    pub fn from_data_file_for(input: Shape, path: &Path, count: usize) -> Result<Self> {
        let (images, total) = read_image_set_for(path, count, &[input.c, input.h, input.w])?;
        let source = format!("{} ({} of {total} images)", path.display(), images.len());
        Self::new(images, input.len(), source)
    }

    /// Splits off the last `holdout` images (at most all but one) as a held-out set, for
    /// measuring errors on images quantization never saw. Returns (calibration, held-out),
    /// the latter None when nothing could be split off.
    pub fn split_holdout(mut self, holdout: usize) -> (Calibration, Option<Calibration>) {
        let held = holdout.min(self.images.len() - 1);
        if held == 0 {
            return (self, None);
        }
        let rest = self.images.split_off(self.images.len() - held);
        let kept = self.images.len();
        let held_out = Calibration {
            images: rest,
            source: format!("{} (held out: the last {held})", self.source),
        };
        self.source = format!("{} (calibration: the first {kept})", self.source);
        (self, Some(held_out))
    }

    /// Checks that every image holds `input_len` floats (the network's input).
    pub fn check_input_len(&self, input_len: usize) -> Result<()> {
        match self.images.iter().position(|x| x.len() != input_len) {
            None => Ok(()),
            Some(i) => Err(QuantizeError::calibration(
                &self.source,
                format!(
                    "image {i} holds {} floats, the network input is {input_len}",
                    self.images[i].len()
                ),
            )),
        }
    }

    /// The inputs, Layout (C, H, W) each.
    pub fn images(&self) -> &[Vec<f32>] {
        &self.images
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Always false: a calibration set holds at least one image.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}
