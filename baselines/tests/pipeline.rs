//! The Pipeline on small random architectures against a composition of reference twins.

mod common;

use common::{dense_ops, random_params, tiny_alexnet, values, Recorder};
use qcnn_kernels::dense::reference::{max_relative_error, relu_reference};
use qcnn_kernels::Isa;
use qcnn_model::{Architecture, Layer, LayerKind, Shape};
use qcnn_runner::NoObserver;
use qcnn_runner::Pipeline;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// One layer of the pipeline against its twin fed with the pipeline's own previous output:
/// only f32 vs f64 summation order differs.
const LAYER_TOL: f32 = 1e-5;
/// The whole pipeline against the twins' composition: errors compound over the layers.
const END_TO_END_TOL: f32 = 1e-4;

/// Layer `index` by its twin.
fn reference_layer(
    arch: &Architecture,
    params: &[(Vec<f32>, Vec<f32>)],
    index: usize,
    input: &[f32],
) -> Vec<f32> {
    let refs: Vec<(&[f32], &[f32])> = params.iter().map(|(w, b)| (&w[..], &b[..])).collect();
    qcnn_baselines::reference::reference_layer(arch, &refs, index, input)
}

/// (weights, bias) of every conv/fc layer.
type Params = Vec<(Vec<f32>, Vec<f32>)>;

/// A random network and input through the pipeline: (params, input, every layer's output,
/// the returned output).
fn run_pipeline(arch: &Architecture, seed: u64) -> (Params, Vec<f32>, Recorder, Vec<f32>) {
    let params = random_params(arch, seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xabc);
    let input = values(&mut rng, arch.input.len());
    let mut pipeline = Pipeline::new(arch, dense_ops(arch, &params));
    let mut rec = Recorder::default();
    let out = pipeline.forward(&input, &mut rec).to_vec();
    (params, input, rec, out)
}

#[test]
fn every_layer_matches_its_twin() {
    let arch = tiny_alexnet();
    let shapes = arch.shapes();
    for seed in 0..6 {
        let (params, input, rec, out) = run_pipeline(&arch, seed);
        assert_eq!(
            rec.outputs.len(),
            arch.layers.len(),
            "one observation per layer"
        );
        let mut prev = input.as_slice();
        for (index, (i, name, got)) in rec.outputs.iter().enumerate() {
            assert_eq!(*i, index);
            assert_eq!(*name, arch.layers[index].name);
            assert_eq!(got.len(), shapes[index].len(), "{name}: output length");
            let want = reference_layer(&arch, &params, index, prev);
            let err = max_relative_error(got, &want);
            assert!(
                err <= LAYER_TOL,
                "seed {seed}, {name}: relative error {err:e}"
            );
            prev = got;
        }
        assert_eq!(&out, prev, "forward returns the last layer's output");
    }
}

#[test]
fn whole_pipeline_matches_the_composition_of_twins() {
    let arch = tiny_alexnet();
    for seed in 0..6 {
        let (params, input, rec, out) = run_pipeline(&arch, seed);
        let mut x = input;
        for index in 0..arch.layers.len() {
            x = reference_layer(&arch, &params, index, &x);
            let (_, name, got) = &rec.outputs[index];
            let err = max_relative_error(got, &x);
            assert!(
                err <= END_TO_END_TOL,
                "seed {seed}, {name}: relative error {err:e}"
            );
        }
        assert!(max_relative_error(&out, &x) <= END_TO_END_TOL);
        assert!(
            (out.iter().sum::<f32>() - 1.0).abs() < 1e-5,
            "probabilities sum to 1"
        );
    }
}

#[test]
fn weighted_outputs_are_observed_before_relu() {
    let arch = tiny_alexnet();
    let (_, _, rec, _) = run_pipeline(&arch, 3);
    for name in ["conv1", "conv2", "fc4"] {
        let out = rec.get(name).unwrap();
        assert!(
            out.iter().any(|&v| v < 0.0),
            "{name} must be observed before its ReLU"
        );
    }
    assert!(rec.get("relu1").unwrap().iter().all(|&v| v >= 0.0));
    assert_eq!(
        rec.get("drop4"),
        rec.get("relu4"),
        "dropout is the identity"
    );
}

#[test]
fn repeated_forward_passes_agree_bit_for_bit() {
    // Reused buffers and scratch must not carry state from one image to the next.
    let arch = tiny_alexnet();
    let params = random_params(&arch, 9);
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let (a, b) = (
        values(&mut rng, arch.input.len()),
        values(&mut rng, arch.input.len()),
    );
    let mut pipeline = Pipeline::new(&arch, dense_ops(&arch, &params));
    let first = pipeline.forward(&a, &mut NoObserver).to_vec();
    pipeline.forward(&b, &mut NoObserver);
    assert_eq!(pipeline.forward(&a, &mut NoObserver), first.as_slice());
}

#[test]
fn layers_that_pass_the_input_through_are_handled() {
    // Dropout and ReLU straight on the caller's input: the input is never written.
    use LayerKind::*;
    let l = |name, kind| Layer { name, kind };
    let arch = Architecture {
        name: "test",
        input: Shape::new(2, 3, 1),
        layers: vec![l("drop0", Dropout), l("relu0", Relu), l("drop1", Dropout)],
    };
    let input = vec![-1.0, 2.0, -3.0, 4.0, 0.5, -0.5];
    let mut pipeline = Pipeline::new(&arch, Vec::new());
    let mut rec = Recorder::default();
    let out = pipeline.forward(&input, &mut rec).to_vec();
    assert_eq!(out, relu_reference(&input));
    assert_eq!(rec.get("drop0").unwrap(), input.as_slice());

    let only_dropout = Architecture {
        name: "test",
        input: Shape::new(6, 1, 1),
        layers: vec![l("drop0", Dropout)],
    };
    let mut pipeline = Pipeline::new(&only_dropout, Vec::new());
    assert_eq!(pipeline.forward(&input, &mut NoObserver), input.as_slice());
}

#[test]
fn kernels_lists_each_distinct_kernel_once_in_layer_order() {
    let arch = tiny_alexnet();
    let params = random_params(&arch, 1);
    let pipeline = Pipeline::with_isa(&arch, dense_ops(&arch, &params), Isa::Scalar);
    assert_eq!(
        pipeline.kernels(),
        "sgemm-openblas, sgemv-openblas, lrn-scalar, pool-scalar"
    );
}

#[test]
#[should_panic(expected = "one op per conv/fc layer")]
fn a_missing_op_is_refused() {
    let arch = tiny_alexnet();
    let params = random_params(&arch, 1);
    let mut ops = dense_ops(&arch, &params);
    ops.pop();
    Pipeline::new(&arch, ops);
}
