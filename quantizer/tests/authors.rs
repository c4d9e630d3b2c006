//! The authors' AlexNet (shared data): its conv layers, rebuilt dense from their codebooks,
//! re-quantized with fewer codewords: error correction must beat plain PQ on real images.

mod common;

use qcnn_model::arch::QuantSpec;
use qcnn_model::folder;
use qcnn_model::preprocess::MeanImage;
use qcnn_quantizer::{
    dense_inputs, quantize_layer, Calibration, EcParams, Method, NoProgress, Settings,
};

/// Real images for calibration (the first two of Bmp.Files, preprocessed as the authors do).
const CALIBRATION_IMAGES: usize = 2;

#[test]
fn error_correction_beats_plain_pq_on_the_authors_conv_layers() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let root = shared.join("qcnn-alexnet");
    let model = folder::load(&root).unwrap();
    let mean = MeanImage::load(&root.join("AlexNet/imagenet_mean.single.bin")).unwrap();
    let calib =
        Calibration::from_image_dir(&root.join("Bmp.Files"), &mean, CALIBRATION_IMAGES).unwrap();
    let settings = Settings {
        ec: EcParams {
            iterations: 2,
            max_columns: 2048,
            ..EcParams::default()
        },
        ..Settings::new(Method::Ec, 1)
    };
    // The authors use K = 128; 32 codewords leave real error for error correction to fix.
    let spec = QuantSpec { d: 8, k: 32 };
    for name in ["conv1", "conv2", "conv3", "conv4", "conv5"] {
        let index = model.arch.position(name).unwrap();
        let params = model.params_of(index).unwrap();
        let inputs = dense_inputs(&model, index, &calib).unwrap();
        let out = quantize_layer(name, params, spec, &settings, &inputs, &mut NoProgress).unwrap();
        let r = &out.report;
        let ec = r.ec_response_rel_error.unwrap();
        eprintln!(
            "{name}: weight {:.4}, response pq {:.4} → ec {ec:.4} ({:.2} s)",
            r.weight_rel_error, r.pq_response_rel_error, r.seconds
        );
        assert!(
            ec < r.pq_response_rel_error,
            "{name}: ec {ec} vs pq {}",
            r.pq_response_rel_error
        );
    }
}
