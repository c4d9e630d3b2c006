//! Test support shared by every crate's tests (a dev-dependency only): where the authors'
//! files are, a tiny AlexNet, and the relative error the tolerances are stated in.
//!
//! The authors' model and golden outputs are never committed; tests read them from
//! `shared/` beside the checkout (`$QCNN_SHARED` overrides) and skip visibly without them.

use std::path::PathBuf;

pub use qcnn_kernels::dense::reference::max_relative_error;

use qcnn_model::arch::{conv, LrnSpec, PoolSpec};
use qcnn_model::{Architecture, Layer, LayerKind, Shape};

/// `$QCNN_SHARED`, else `shared/` beside the workspace, if it exists.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("QCNN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    dir.is_dir().then_some(dir)
}

/// `shared_dir()/relative` if it exists; otherwise prints a visible SKIPPED line for `test`.
pub fn shared_or_skip(test: &str, relative: &str) -> Option<PathBuf> {
    let path = shared_dir()
        .map(|d| d.join(relative))
        .filter(|p| p.exists());
    if path.is_none() {
        eprintln!("SKIPPED: {test}: shared data '{relative}' not found (set QCNN_SHARED)");
    }
    path
}

/// A small AlexNet for tests: every layer kind, conv1 on 3 channels (a partial subspace for
/// d = 4), grouped conv2 and conv3 with padding and a 1×1 kernel, two LRNs (β = 0.75 and a
/// general β), an overhanging pool window, dropout, two fc layers and a softmax.
/// Shapes: 3×19×17 → conv1 16×9×8 → pool1 16×4×4 → conv2 16×6×6 → pool2 16×3×3 →
/// conv3 8×3×3 → fc4 32 → fc5 10.
pub fn tiny_alexnet() -> Architecture {
    use LayerKind::*;
    let l = |name, kind| Layer { name, kind };
    let lrn = LrnSpec {
        size: 3,
        alpha: 0.3,
        beta: 0.75,
        k: 1.0,
    };
    let pool = PoolSpec {
        kernel: 3,
        stride: 2,
        pad: 0,
    };
    Architecture {
        name: "tiny AlexNet",
        input: Shape::new(3, 19, 17),
        layers: vec![
            l("conv1", conv(16, 5, 2, 1, 1)),
            l("relu1", Relu),
            l("norm1", Lrn(lrn)),
            l("pool1", MaxPool(pool)),
            l("conv2", conv(16, 3, 1, 2, 2)),
            l("relu2", Relu),
            l("norm2", Lrn(LrnSpec { beta: 0.6, ..lrn })),
            l("pool2", MaxPool(pool)),
            l("conv3", conv(8, 1, 1, 0, 2)),
            l("relu3", Relu),
            l("fc4", Fc { out: 32 }),
            l("relu4", Relu),
            l("drop4", Dropout),
            l("fc5", Fc { out: 10 }),
            l("prob", Softmax),
        ],
    }
}
