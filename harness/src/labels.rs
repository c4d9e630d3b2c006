//! The authors' label files: `class_names.txt` (one class name per line, in index order),
//! `image_labels.txt` (`<file name> <class index>` per line, matched by file stem) and the
//! data file's `lablVecTst.uint16.bin`. All are read as regular files of bounded size.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use qcnn_model::format::{exact_dims, read_bin_u16_as};

/// The largest class-names file read: 1000 classes of up to 4 KiB each.
pub const MAX_CLASS_NAMES_BYTES: u64 = 1000 * 4096;
/// The largest image-labels file read: ILSVRC's 50,000 validation images take 1.7 MB.
pub const MAX_IMAGE_LABELS_BYTES: u64 = 64 << 20;

/// The class names, one per line.
pub fn read_class_names(path: &Path) -> Result<Vec<String>> {
    let text = qcnn_files::read_regular_text(path, MAX_CLASS_NAMES_BYTES, "a class-names file")
        .context("reading class names")?;
    Ok(text.lines().map(str::to_string).collect())
}

/// Class index by file stem (`ILSVRC2012_val_00000001`), so `.BMP` files match `.JPEG` names.
pub fn read_image_labels(path: &Path) -> Result<HashMap<String, usize>> {
    let text = qcnn_files::read_regular_text(path, MAX_IMAGE_LABELS_BYTES, "an image-labels file")
        .context("reading image labels")?;
    let mut labels = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let mut parts = line.split_whitespace();
        let (Some(file), Some(label)) = (parts.next(), parts.next()) else {
            continue;
        };
        let label = label.parse().with_context(|| {
            format!(
                "{}:{}: label '{label}' is not a class index",
                path.display(),
                n + 1
            )
        })?;
        labels.insert(stem(Path::new(file)).to_string(), label);
    }
    Ok(labels)
}

/// The labels of the authors' data file `data` holding `total` images
/// (`lablVecTst.uint16.bin`: uint16, the labels in its last dimension, dims (N) or (1, N)),
/// its dims checked on the header before the labels are read.
pub fn read_data_labels(path: &Path, data: &Path, total: usize) -> Result<Vec<usize>> {
    let (flat, row) = ([total], [1, total]);
    let (flat, row) = (exact_dims(&flat, "(N)"), exact_dims(&row, "(1, N)"));
    let labels = read_bin_u16_as(path, &|dims| {
        flat(dims).or_else(|_| row(dims)).map_err(|_| {
            format!(
                "dims {dims:?}: expected the {total} labels of {} as (N) or (1, N)",
                data.display()
            )
        })
    })?;
    Ok(labels.data.iter().map(|&x| usize::from(x)).collect())
}

pub fn stem(path: &Path) -> &str {
    path.file_stem().and_then(|s| s.to_str()).unwrap_or("")
}
