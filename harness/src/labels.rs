//! `image_labels.txt`: `<file name> <class index>` per line, matched by file stem.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};

/// Class index by file stem (`ILSVRC2012_val_00000001`), so `.BMP` files match `.JPEG` names.
pub fn read_image_labels(path: &Path) -> Result<HashMap<String, usize>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading labels {}", path.display()))?;
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

pub fn stem(path: &Path) -> &str {
    path.file_stem().and_then(|s| s.to_str()).unwrap_or("")
}
