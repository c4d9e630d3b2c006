//! The dense AlexNet against the authors' layer outputs for one image (../../shared/golden).

mod common;

use common::{shared_dir, Recorder};
use qcnn_baselines::DenseNetwork;
use qcnn_kernels::blas;
use qcnn_kernels::dense::reference::max_relative_error;
use qcnn_model::folder;
use qcnn_model::format::read_bin_f32;
use qcnn_runner::Network;

/// docs/METHOD.md "Agreement with the authors' outputs": about 1e-5 relative
/// (max |a − b| / max |b| per layer); summation order explains the rest.
const GOLDEN_TOL: f32 = 1e-5;

const IMAGE: &str = "ILSVRC2012_val_00000001";
const LAYERS: [&str; 14] = [
    "conv1", "norm1", "pool1", "conv2", "norm2", "pool2", "conv3", "conv4", "conv5", "pool5",
    "fc6", "fc7", "fc8", "prob",
];

#[test]
fn dense_alexnet_matches_the_authors_layer_outputs() {
    let Some(shared) = shared_dir() else {
        eprintln!("SKIPPED: shared data (../../shared or $QCNN_SHARED) not found");
        return;
    };
    let golden = shared.join("golden").join(IMAGE);
    let model = folder::load(&shared.join("qcnn-alexnet")).expect("load the authors' model");
    let input = read_bin_f32(&golden.join("input.bin")).expect("read input.bin");
    assert_eq!(input.dims, [3, 227, 227]);

    blas::set_single_thread();
    let mut net = DenseNetwork::new(&model);
    let mut rec = Recorder::default();
    let prob = net.forward(&input.data, &mut rec).to_vec();

    let mut failures = Vec::new();
    for name in LAYERS {
        let want = read_bin_f32(&golden.join(format!("{name}.bin"))).expect("golden file");
        let got = rec.get(name).expect("every golden layer is observed");
        assert_eq!(got.len(), want.data.len(), "{name}: length");
        let err = max_relative_error(got, &want.data);
        eprintln!("{name:>6}: relative error {err:.2e}");
        if err > GOLDEN_TOL {
            failures.push(format!("{name}: {err:e}"));
        }
    }
    assert_eq!(
        prob,
        rec.get("prob").unwrap(),
        "forward returns the probabilities"
    );
    assert!(
        failures.is_empty(),
        "layers above {GOLDEN_TOL:e}: {failures:?}"
    );
}
