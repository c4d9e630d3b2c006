//! Quantizing layers and models: exact recovery, error correction beating plain PQ,
//! determinism, clear errors for bad settings, and a round trip through the authors' format.

mod common;

use common::{param, random_calibration, random_dense_model, tiny_alexnet, tiny_specs};
use qcnn_baselines::DenseNetwork;
use qcnn_kernels::Isa;
use qcnn_model::arch::{alexnet, authors_quantization, QuantSpec};
use qcnn_model::folder;
use qcnn_model::synthetic::synthetic_model;
use qcnn_quantized::{QuantizedNetwork, TableKind};
use qcnn_quantizer::{
    check_spec, pq_codebooks, quantize_layer, quantize_model, Calibration, EcParams, KMeansParams,
    LayerInputs, Method, NoProgress, QuantizeError, Settings,
};
use qcnn_runner::{Network, NoObserver};

/// Relative L2 error of weights that are exactly codebook[assignment] after re-quantizing
/// them with the same d and K (f32 means of identical values are exact).
const EXACT_TOLERANCE: f64 = 1e-6;
/// Relative L2 agreement of the look-up network with the dense network of the same
/// (quantized) model: the same function up to summation order.
const ROUND_TRIP_TOLERANCE: f64 = 1e-4;

fn settings(method: Method, seed: u64) -> Settings {
    Settings {
        ec: EcParams {
            iterations: 2,
            max_columns: 2048,
            ..EcParams::default()
        },
        ..Settings::new(method, seed)
    }
}

#[test]
fn exactly_representable_weights_are_recovered_in_every_alexnet_layer() {
    // The synthetic AlexNet's dense weights are codebook[assignment] with the authors' (d, K)
    // in every layer: conv1's partial subspace, grouped conv2/4/5, fc with d = 4 and d = 1.
    let model = synthetic_model(7);
    let specs = authors_quantization(&model.arch);
    for (p, spec) in model.params.iter().zip(specs) {
        let weights = p.dense_weights();
        let cb = pq_codebooks(
            &p.shape,
            &weights,
            spec,
            &KMeansParams::default(),
            1,
            &mut |_| {},
        );
        let rebuilt = qcnn_model::weights::rebuild_dense(&p.shape, &cb);
        let err = qcnn_quantizer::split::relative_error(&rebuilt, &weights);
        let name = model.arch.layers[p.shape.index].name;
        assert!(
            err <= EXACT_TOLERANCE,
            "{name}: relative weight error {err}"
        );
    }
}

#[test]
fn error_correction_beats_plain_pq_on_every_layer_of_a_small_model() {
    let arch = tiny_alexnet();
    let model = random_dense_model(&arch, 3);
    let calib = random_calibration(&arch, 4, 5);
    let q = quantize_model(
        &model,
        &tiny_specs(&arch),
        &calib,
        &settings(Method::Ec, 11),
        &mut NoProgress,
    )
    .unwrap();
    for r in &q.reports {
        let ec = r.ec_response_rel_error.unwrap();
        assert!(
            ec < r.pq_response_rel_error,
            "{}: ec {ec} vs pq {}",
            r.layer,
            r.pq_response_rel_error
        );
        assert!(
            r.ec_objective
                .windows(2)
                .all(|w| w[1] <= w[0] * (1.0 + 1e-6)),
            "{}: {:?}",
            r.layer,
            r.ec_objective
        );
    }
}

#[test]
fn error_correction_beats_plain_pq_on_the_synthetic_alexnet() {
    // Every layer of the embedded synthetic AlexNet, re-quantized with small K from its
    // rebuilt dense weights, two synthetic calibration images, the layers below quantized.
    let model = synthetic_model(qcnn_model::synthetic::DEFAULT_SEED);
    let specs = qcnn_quantizer::layer_specs(
        &model.arch,
        QuantSpec { d: 8, k: 16 },
        QuantSpec { d: 4, k: 8 },
        QuantSpec { d: 1, k: 4 },
    );
    let calib = Calibration::synthetic(1, 2).unwrap();
    let s = Settings {
        ec: EcParams {
            iterations: 1,
            max_columns: 1024,
            ..EcParams::default()
        },
        ..settings(Method::Ec, 3)
    };
    let q = quantize_model(&model, &specs, &calib, &s, &mut NoProgress).unwrap();
    for r in &q.reports {
        let ec = r.ec_response_rel_error.unwrap();
        eprintln!(
            "{}: weight {:.4} response pq {:.4} ec {ec:.4} ({:.2} s)",
            r.layer, r.weight_rel_error, r.pq_response_rel_error, r.seconds
        );
        assert!(
            ec < r.pq_response_rel_error,
            "{}: ec {ec} vs pq {}",
            r.layer,
            r.pq_response_rel_error
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_model() {
    let arch = tiny_alexnet();
    let model = random_dense_model(&arch, 3);
    let calib = random_calibration(&arch, 3, 5);
    let run = |method, seed| {
        quantize_model(
            &model,
            &tiny_specs(&arch),
            &calib,
            &settings(method, seed),
            &mut NoProgress,
        )
        .unwrap()
        .model
    };
    for method in [Method::Pq, Method::Ec] {
        assert_eq!(run(method, 9).params, run(method, 9).params, "{method}");
        assert_ne!(run(method, 9).params, run(method, 10).params, "{method}");
    }
}

#[test]
fn a_quantized_model_round_trips_through_the_authors_format_and_runs() {
    let arch = tiny_alexnet();
    let model = random_dense_model(&arch, 21);
    let calib = random_calibration(&arch, 3, 22);
    let q = quantize_model(
        &model,
        &tiny_specs(&arch),
        &calib,
        &settings(Method::Ec, 1),
        &mut NoProgress,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    folder::save(&q.model, dir.path(), "tiny_quantized").unwrap();
    let loaded = folder::load_folder(&folder::locate(dir.path()).unwrap(), &arch).unwrap();
    for (a, b) in loaded.params.iter().zip(&q.model.params) {
        assert_eq!(a.codebooks, b.codebooks);
        assert_eq!(a.bias, b.bias);
        assert!(a.dense.is_none());
    }
    let mut dense = DenseNetwork::new(&loaded);
    for isa in Isa::available() {
        let target = qcnn_kernels::Target::for_isa(isa);
        let mut lut = QuantizedNetwork::new(&loaded, target, TableKind::F32).unwrap();
        for image in calib.images() {
            let want = dense.forward(image, &mut NoObserver).to_vec();
            let got = lut.forward(image, &mut NoObserver).to_vec();
            let err = qcnn_quantizer::split::relative_error(&got, &want);
            assert!(
                err <= ROUND_TRIP_TOLERANCE,
                "{isa}: look-up vs dense relative error {err}"
            );
        }
    }
}

fn spec_error(layer: &str, d: usize, k: usize) -> String {
    let arch = alexnet();
    let p = param(&arch, layer);
    match check_spec(layer, &p, QuantSpec { d, k }) {
        Err(e @ QuantizeError::Spec { .. }) => e.to_string(),
        other => panic!("{layer} d = {d}, K = {k}: expected a spec error, got {other:?}"),
    }
}

#[test]
fn bad_settings_are_refused_with_clear_errors() {
    let msg = spec_error("conv3", 3, 64);
    assert!(
        msg.contains("conv3") && msg.contains("d must divide the C_s = 256"),
        "{msg}"
    );
    let msg = spec_error("conv4", 5, 64);
    assert!(msg.contains("C_s/groups = 192"), "{msg}");
    let msg = spec_error("fc7", 3, 16);
    assert!(msg.contains("d must divide the C_s = 4096 inputs"), "{msg}");
    let msg = spec_error("conv3", 8, 257);
    assert!(msg.contains("K = 257: K must be in 1..=256"), "{msg}");
    let msg = spec_error("conv3", 0, 16);
    assert!(msg.contains("d = 0, K = 16: d must be in 1..=256"), "{msg}");
    // Sizes that would allocate K·d floats (or overflow) are refused before anything else.
    for d in [100_000_000, usize::MAX] {
        let msg = spec_error("conv1", d, 128);
        assert!(msg.contains("must be in 1..=16"), "{msg}");
        let msg = spec_error("fc6", d, 32);
        assert!(msg.contains("must be in 1..=9216"), "{msg}");
    }
    let msg = spec_error("conv3", 8, usize::MAX);
    assert!(msg.contains("must be in 1..=256"), "{msg}");
    // conv1 has 3 channels: d = 8 is one partial subspace (the authors' setting), allowed.
    check_spec(
        "conv1",
        &param(&alexnet(), "conv1"),
        QuantSpec { d: 8, k: 128 },
    )
    .unwrap();
    // The tiny conv3 has 8 kernels of 1×1: 8 sub-vectors per subspace.
    let arch = tiny_alexnet();
    let err = check_spec("conv3", &param(&arch, "conv3"), QuantSpec { d: 4, k: 16 })
        .unwrap_err()
        .to_string();
    assert!(err.contains("K is larger than the 8 sub-vectors"), "{err}");
}

#[test]
fn quantize_model_checks_every_setting_before_working() {
    let arch = tiny_alexnet();
    let model = random_dense_model(&arch, 3);
    let calib = random_calibration(&arch, 1, 5);
    let mut specs = tiny_specs(&arch);
    specs[4] = QuantSpec { d: 3, k: 4 }; // fc5 has 32 inputs
    let err = quantize_model(
        &model,
        &specs,
        &calib,
        &settings(Method::Pq, 1),
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(err.to_string().contains("fc5"), "{err}");
    let err = quantize_model(
        &model,
        &specs[..3],
        &calib,
        &settings(Method::Pq, 1),
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("3 quantization settings given for 5"),
        "{err}"
    );
}

#[test]
fn an_empty_calibration_set_is_refused() {
    let err = Calibration::new(Vec::new(), 10, "nothing")
        .unwrap_err()
        .to_string();
    assert!(err.contains("the calibration set is empty"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let mean =
        qcnn_model::preprocess::MeanImage::from_data(&[3, 256, 256], vec![0.0; 3 * 256 * 256])
            .unwrap();
    let err = Calibration::from_image_dir(dir.path(), &mean, 10)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no images in this folder"), "{err}");
    let err = Calibration::synthetic(1, 0).unwrap_err().to_string();
    assert!(err.contains("empty"), "{err}");
    let arch = tiny_alexnet();
    let model = random_dense_model(&arch, 3);
    let empty = LayerInputs {
        dense: Vec::new(),
        quantized: Vec::new(),
    };
    let err = quantize_layer(
        "conv1",
        &model.params[0],
        QuantSpec { d: 4, k: 8 },
        &settings(Method::Ec, 1),
        &empty,
        &mut NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("empty"), "{err}");
}
