//! How far a mode's outputs are from the dense network's: the accuracy cost that goes next
//! to its speed (exact Q-CNN: summation order only; int8 tables: quantization error).

use qcnn_kernels::dense::reference::max_relative_error;
use qcnn_runner::{LayerRecorder, Network};

use crate::classify::top_k;

/// At most this many images are compared (each needs every layer's output recorded).
pub const IMAGES: usize = 10;

/// One line for `meta.json`'s notes: top-1/top-5 agreement and the worst relative error of
/// every conv/fc layer (max |a − b| / max |b|) over the images.
pub fn describe(dense: &mut dyn Network, other: &mut dyn Network, images: &[&[f32]]) -> String {
    let (mut top1, mut top5) = (0, 0);
    let mut worst: Vec<(&'static str, f32)> = Vec::new();
    for image in images {
        let (mut want, mut got) = (LayerRecorder::default(), LayerRecorder::default());
        let want_top = top_k(dense.forward(image, &mut want), 5);
        let got_top = top_k(other.forward(image, &mut got), 5);
        top1 += usize::from(want_top[0].0 == got_top[0].0);
        top5 += usize::from(got_top.iter().any(|&(c, _)| c == want_top[0].0));
        for ((_, name, a), (_, _, b)) in got.outputs.iter().zip(&want.outputs) {
            let err = max_relative_error(a, b);
            match worst.iter_mut().find(|(n, _)| n == name) {
                Some((_, w)) => *w = w.max(err),
                None => worst.push((name, err)),
            }
        }
    }
    let layers: Vec<String> = worst
        .iter()
        .filter(|(name, _)| name.starts_with("conv") || name.starts_with("fc") || *name == "prob")
        .map(|(name, err)| format!("{name} {err:.1e}"))
        .collect();
    format!(
        "vs dense on {} images: same top-1 {top1}/{n}, dense top-1 in its top-5 {top5}/{n}; \
         max relative error per layer: {}",
        images.len(),
        layers.join(", "),
        n = images.len()
    )
}
