//! The Q-CNN network computes the same function as the dense network with weights rebuilt
//! from the same codebooks, and what the authors' implementation computes, at every ISA.

use qcnn_baselines::DenseNetwork;
use qcnn_kernels::{blas, CacheSizes, Isa, Target};
use qcnn_model::format::read_bin_f32;
use qcnn_model::{folder, synthetic, Model};
use qcnn_quantized::{QuantizedNetwork, TableKind};
use qcnn_runner::{LayerRecorder, Network};
use qcnn_testdata::{max_relative_error, shared_or_skip};

/// Same function, different summation order: every layer within 1e-5 relative
/// (max |a − b| / max |b|), as docs/METHOD.md "Agreement with the authors' outputs" expects.
const LAYER_TOL: f32 = 1e-5;

const GOLDEN_IMAGE: &str = "golden/ILSVRC2012_val_00000001";
/// Every layer the authors dumped (conv and fc before ReLU).
const GOLDEN_LAYERS: [&str; 14] = [
    "conv1", "norm1", "pool1", "conv2", "norm2", "pool2", "conv3", "conv4", "conv5", "pool5",
    "fc6", "fc7", "fc8", "prob",
];

fn record(network: &mut dyn Network, input: &[f32]) -> LayerRecorder {
    let mut rec = LayerRecorder::default();
    network.forward(input, &mut rec);
    rec
}

/// Layers whose error exceeds the tolerance, with every layer's error printed.
fn disagreements(
    what: &str,
    got: &LayerRecorder,
    want: impl Fn(&str) -> Vec<f32>,
    layers: &[&str],
) -> Vec<String> {
    let mut bad = Vec::new();
    for &name in layers {
        let err = max_relative_error(got.get(name).expect("layer observed"), &want(name));
        eprintln!("{what} {name:>6}: relative error {err:.2e}");
        if err > LAYER_TOL {
            bad.push(format!("{name}: {err:e}"));
        }
    }
    bad
}

/// Caches small enough that every conv layer's plan bands or chunks its tables.
const SMALL_CACHES: CacheSizes = CacheSizes {
    l1d: 16 << 10,
    l2: 128 << 10,
    l3: 0,
};

/// The dense network, then the exact Q-CNN at every ISA this CPU has, planned for the
/// default caches and for [`SMALL_CACHES`].
fn networks(model: &Model) -> Vec<Box<dyn Network>> {
    let mut nets: Vec<Box<dyn Network>> = vec![Box::new(DenseNetwork::new(model))];
    for isa in Isa::available() {
        for target in [Target::for_isa(isa), Target::new(isa, SMALL_CACHES)] {
            nets.push(Box::new(
                QuantizedNetwork::new(model, target, TableKind::F32).expect("a valid model"),
            ));
        }
    }
    nets
}

#[test]
fn every_quantized_network_matches_the_authors_golden_outputs() {
    let (Some(model_dir), Some(golden)) = (
        shared_or_skip("golden", "qcnn-alexnet"),
        shared_or_skip("golden", GOLDEN_IMAGE),
    ) else {
        return;
    };
    blas::set_single_thread();
    let model = folder::load(&model_dir).expect("the authors' model loads");
    let input = read_bin_f32(&golden.join("input.bin")).expect("input.bin");
    let want = |name: &str| {
        read_bin_f32(&golden.join(format!("{name}.bin")))
            .expect("golden file")
            .data
    };
    let mut bad = Vec::new();
    // The dense network's own golden test lives with it (baselines/tests/golden.rs).
    for mut net in networks(&model).into_iter().skip(1) {
        let what = format!("{} [{}]", net.mode(), net.kernels());
        let rec = record(net.as_mut(), &input.data);
        bad.extend(
            disagreements(&what, &rec, want, &GOLDEN_LAYERS)
                .into_iter()
                .map(|b| format!("{what}: {b}")),
        );
    }
    assert!(bad.is_empty(), "layers above {LAYER_TOL:e}: {bad:#?}");
}

#[test]
fn quantized_equals_dense_on_the_synthetic_default_at_every_isa() {
    blas::set_single_thread();
    let model = synthetic::synthetic_model(synthetic::DEFAULT_SEED);
    let layers: Vec<&str> = model.arch.layers.iter().map(|l| l.name).collect();
    let mut nets = networks(&model);
    let mut bad = Vec::new();
    for image in 0..2 {
        let input = synthetic::synthetic_image(synthetic::DEFAULT_SEED, image);
        let dense = record(nets[0].as_mut(), &input);
        for net in &mut nets[1..] {
            let what = format!("image {image} {}", net.kernels());
            let rec = record(net.as_mut(), &input);
            let want = |name: &str| dense.get(name).expect("dense layer").to_vec();
            bad.extend(
                disagreements(&what, &rec, want, &layers)
                    .into_iter()
                    .map(|b| format!("{what}: {b}")),
            );
        }
    }
    assert!(bad.is_empty(), "layers above {LAYER_TOL:e}: {bad:#?}");
}

#[test]
fn a_dense_only_model_is_refused_with_the_layer_named() {
    let mut model = synthetic::synthetic_model(1);
    for p in &mut model.params {
        p.dense = Some(p.dense_weights().into_owned());
        p.codebooks = None;
    }
    let err = QuantizedNetwork::new(&model, Target::for_isa(Isa::Scalar), TableKind::F32)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("conv1"), "{err}");
}

/// The int8-table mode's accuracy cost on real images: fc6 and fc7 of the whole network
/// within 2% (max |a − b| / max |b|) of the exact path on the authors' 10 BMPs.
const INT8_FC_TOL: f32 = 0.02;

#[test]
fn int8_tables_keep_fc6_and_fc7_within_two_percent_on_the_ten_bmps() {
    let Some(root) = shared_or_skip("int8 on the BMPs", "qcnn-alexnet") else {
        return;
    };
    blas::set_single_thread();
    let model_folder = folder::locate(&root).expect("model folder");
    let model = folder::load_folder(&model_folder, &qcnn_model::alexnet())
        .expect("the authors' model loads");
    let mean = qcnn_model::preprocess::MeanImage::load(
        &model_folder.mean_image().unwrap().expect("mean image"),
    )
    .unwrap();
    // Every level's int8 kernels give the same bits (lut_int8.rs): the best one suffices.
    let target = Target::for_isa(Isa::detect());
    let mut exact = QuantizedNetwork::new(&model, target, TableKind::F32).unwrap();
    let mut int8 = QuantizedNetwork::new(&model, target, TableKind::Int8).unwrap();
    let mut bmps: Vec<_> = std::fs::read_dir(root.join("Bmp.Files"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    bmps.sort();
    assert_eq!(bmps.len(), 10);
    let mut worst = [0.0f32; 2];
    for bmp in &bmps {
        let input = qcnn_model::preprocess::preprocess(bmp, &mean).unwrap();
        let (want, got) = (record(&mut exact, &input), record(&mut int8, &input));
        for (w, layer) in worst.iter_mut().zip(["fc6", "fc7"]) {
            *w = w.max(max_relative_error(
                got.get(layer).unwrap(),
                want.get(layer).unwrap(),
            ));
        }
    }
    eprintln!(
        "int8 vs exact over 10 BMPs: fc6 {:.2e}, fc7 {:.2e}",
        worst[0], worst[1]
    );
    assert!(
        worst.iter().all(|&e| e <= INT8_FC_TOL),
        "fc6, fc7 errors {worst:?} above {INT8_FC_TOL}"
    );
}
