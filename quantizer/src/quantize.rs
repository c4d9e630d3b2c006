//! Quantizing layers and whole models (METHOD.md "Training phase"): plain PQ (k-means per
//! subspace) and error correction, layer by layer, each layer fed the calibration maps of
//! the already-quantized layers below it while its target is the dense network's response.

use std::str::FromStr;
use std::time::Instant;

use qcnn_baselines::{DenseConv, DenseFc, DenseNetwork};
use qcnn_model::arch::{Architecture, ParamKind, ParamShape, QuantSpec};
use qcnn_model::weights::rebuild_dense;
use qcnn_model::{Codebooks, Layer, LayerParams, Model};
use qcnn_runner::{conv_shape, fc_shape, Pipeline, WeightedOp};
use qcnn_runner::{Network, NoObserver, Observer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::calib::Calibration;
use crate::ec::{error_correct, EcParams, EcProblem};
use crate::error::{QuantizeError, Result};
use crate::kmeans::{kmeans, KMeansParams};
use crate::spec::check_spec;
use crate::split::{relative_error, relative_error_all, Split};

/// The RNG stream of a layer's column sampling (k-means of subspace m uses stream m).
const SAMPLE_STREAM: u64 = u32::MAX as u64;

/// How codebooks and assignments are learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// Plain product quantization: k-means per subspace, nearest-codeword assignments.
    Pq,
    /// Plain PQ refined by the paper's error correction on calibration responses.
    Ec,
}

impl Method {
    /// The name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Method::Pq => "pq",
            Method::Ec => "ec",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pq" => Ok(Method::Pq),
            "ec" => Ok(Method::Ec),
            other => Err(format!("unknown method '{other}' (expected pq or ec)")),
        }
    }
}

/// Everything that decides the result besides the weights, specs and calibration inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    pub method: Method,
    /// Seeds every RNG (k-means++ per layer and subspace, column sampling per layer).
    pub seed: u64,
    pub kmeans: KMeansParams,
    pub ec: EcParams,
}

impl Settings {
    /// `method` and `seed` with the default k-means and error-correction parameters.
    pub fn new(method: Method, seed: u64) -> Self {
        Settings {
            method,
            seed,
            kmeans: KMeansParams::default(),
            ec: EcParams::default(),
        }
    }
}

/// What quantizing one layer achieved.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerReport {
    pub layer: String,
    pub spec: QuantSpec,
    pub method: Method,
    /// ‖W − Ŵ‖ / ‖W‖ of the final codebooks.
    pub weight_rel_error: f64,
    /// ‖Y − Ŷ‖ / ‖Y‖ over the calibration maps with the plain-PQ codebooks: Y the dense
    /// network's layer output (with bias), Ŷ the layer's output from Ŵ_pq on its inputs in
    /// the quantized network (the same inputs error correction gets).
    pub pq_response_rel_error: f64,
    /// The same with the error-corrected codebooks (method ec only).
    pub ec_response_rel_error: Option<f64>,
    /// Error correction's objective ‖Y* − Ŵ·X‖² on its columns: before, then after each sweep.
    pub ec_objective: Vec<f64>,
    /// (image, position) columns error correction used (0 for pq).
    pub ec_columns: usize,
    /// Mean k-means iterations per subspace.
    pub kmeans_iterations: f64,
    /// Wall time of quantizing this layer (k-means, error correction, response errors).
    pub seconds: f64,
}

impl LayerReport {
    /// The response error of the final codebooks.
    pub fn response_rel_error(&self) -> f64 {
        self.ec_response_rel_error
            .unwrap_or(self.pq_response_rel_error)
    }
}

/// Follows the work (the harness draws progress bars with it).
pub trait Progress {
    /// Layer `layer` starts; it will take `steps` steps (one per subspace and pass).
    fn start_layer(&mut self, _layer: &str, _spec: QuantSpec, _steps: u64) {}
    /// One step is done.
    fn advance(&mut self) {}
    fn finish_layer(&mut self, _report: &LayerReport) {}
}

/// Follows nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// The calibration maps entering one layer, Layout (C_s, H_s, W_s) each: `dense` in the dense
/// network, `quantized` in the network whose lower layers are already quantized.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerInputs {
    pub dense: Vec<Vec<f32>>,
    pub quantized: Vec<Vec<f32>>,
}

/// A quantized layer and its outputs on the calibration maps, Layout (C_t, H_t, W_t) each.
#[derive(Clone, Debug)]
pub struct LayerOutcome {
    pub codebooks: Codebooks,
    /// The plain-PQ codebooks (error correction's starting point; equal to `codebooks` for
    /// [`Method::Pq`]). k-means sees only the weights, so they are what `pq` would give.
    pub pq_codebooks: Codebooks,
    pub report: LayerReport,
    /// The dense layer on `inputs.dense`.
    pub dense_responses: Vec<Vec<f32>>,
    /// The quantized layer (final codebooks) on `inputs.quantized`.
    pub quantized_responses: Vec<Vec<f32>>,
}

/// A ChaCha8 stream of `seed` private to one layer and purpose.
fn layer_rng(seed: u64, layer_index: usize, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((layer_index as u64) << 32) | stream);
    rng
}

/// Plain PQ of one layer's dense `weights` (Caffe layout): k-means over the sub-vectors of
/// each subspace, assignment = nearest codeword. Codewords of a partial subspace are zero
/// beyond its real dims. `on_subspace` is called after each subspace.
pub fn pq_codebooks(
    shape: &ParamShape,
    weights: &[f32],
    spec: QuantSpec,
    params: &KMeansParams,
    seed: u64,
    on_subspace: &mut dyn FnMut(usize),
) -> Codebooks {
    let split = Split::new(shape, spec);
    assert_eq!(
        weights.len(),
        shape.weight_count(),
        "dense weights of the layer"
    );
    let mut cb = split.empty_codebooks();
    for m in 0..split.subspaces {
        let dm = split.dims(m);
        let points = split.gather(weights, m);
        let mut rng = layer_rng(seed, shape.index, m as u64);
        let result = kmeans(&points, dm, spec.k, params, &mut rng);
        for k in 0..spec.k {
            let start = (m * spec.k + k) * spec.d;
            cb.centroids[start..start + dm]
                .copy_from_slice(&result.centroids[k * dm..(k + 1) * dm]);
        }
        for t in 0..split.c_t {
            for tap in 0..split.taps {
                cb.assignments[split.assignment(t, tap, m)] = result.labels[t * split.taps + tap];
            }
        }
        on_subspace(result.iterations);
    }
    cb
}

/// The layer's output (with bias) for every map, computed by the dense BLAS kernels.
pub fn layer_outputs(
    shape: &ParamShape,
    weights: Vec<f32>,
    bias: &[f32],
    maps: &[Vec<f32>],
) -> Vec<Vec<f32>> {
    let mut op = dense_op(shape, weights, bias.to_vec());
    maps.iter()
        .map(|x| {
            let mut y = vec![0.0f32; shape.output.len()];
            op.run(x, &mut y, &mut NoObserver);
            y
        })
        .collect()
}

fn dense_op(shape: &ParamShape, weights: Vec<f32>, bias: Vec<f32>) -> Box<dyn WeightedOp> {
    match shape.kind {
        ParamKind::Conv(_) => Box::new(DenseConv::new(conv_shape(shape), weights, bias)),
        ParamKind::Fc => Box::new(DenseFc::new(fc_shape(shape), weights, bias)),
    }
}

/// Quantizes one layer `name` (its dense weights, stored or rebuilt from its codebooks) with
/// `spec`: plain PQ, then for [`Method::Ec`] error correction on `inputs`; measures weight
/// and response errors.
pub fn quantize_layer(
    name: &str,
    params: &LayerParams,
    spec: QuantSpec,
    settings: &Settings,
    inputs: &LayerInputs,
    progress: &mut dyn Progress,
) -> Result<LayerOutcome> {
    let shape = &params.shape;
    check_spec(name, shape, spec)?;
    check_inputs(name, shape, inputs)?;
    let start = Instant::now();
    let split = Split::new(shape, spec);
    let passes = match settings.method {
        Method::Pq => 1,
        Method::Ec => 1 + settings.ec.iterations,
    };
    progress.start_layer(name, spec, (split.subspaces * passes) as u64);
    let weights = params.dense_weights();
    let mut iterations = 0usize;
    let mut cb = pq_codebooks(
        shape,
        &weights,
        spec,
        &settings.kmeans,
        settings.seed,
        &mut |it| {
            iterations += it;
            progress.advance();
        },
    );
    let dense_responses = layer_outputs(shape, weights.to_vec(), &params.bias, &inputs.dense);
    let mut quantized_responses = layer_outputs(
        shape,
        rebuild_dense(shape, &cb),
        &params.bias,
        &inputs.quantized,
    );
    let pq_response_rel_error = relative_error_all(&quantized_responses, &dense_responses);
    let pq_codebooks = cb.clone();
    let (mut ec_response_rel_error, mut ec_objective, mut ec_columns) = (None, Vec::new(), 0);
    if settings.method == Method::Ec {
        let mut rng = layer_rng(settings.seed, shape.index, SAMPLE_STREAM);
        let problem = EcProblem::new(
            shape,
            spec,
            &inputs.quantized,
            &dense_responses,
            &params.bias,
            settings.ec.max_columns,
            &mut rng,
        )?;
        ec_columns = problem.columns();
        ec_objective = error_correct(&problem, &mut cb, &settings.ec, &mut || progress.advance());
        quantized_responses = layer_outputs(
            shape,
            rebuild_dense(shape, &cb),
            &params.bias,
            &inputs.quantized,
        );
        ec_response_rel_error = Some(relative_error_all(&quantized_responses, &dense_responses));
    }
    let report = LayerReport {
        layer: name.to_string(),
        spec,
        method: settings.method,
        weight_rel_error: relative_error(&rebuild_dense(shape, &cb), &weights),
        pq_response_rel_error,
        ec_response_rel_error,
        ec_objective,
        ec_columns,
        kmeans_iterations: iterations as f64 / split.subspaces as f64,
        seconds: start.elapsed().as_secs_f64(),
    };
    progress.finish_layer(&report);
    Ok(LayerOutcome {
        codebooks: cb,
        pq_codebooks,
        report,
        dense_responses,
        quantized_responses,
    })
}

fn check_inputs(name: &str, shape: &ParamShape, inputs: &LayerInputs) -> Result<()> {
    if inputs.dense.is_empty() || inputs.quantized.is_empty() {
        return Err(QuantizeError::calibration(
            name,
            "the calibration set is empty; give at least one image",
        ));
    }
    let len = shape.input.len();
    let all = inputs.dense.iter().chain(&inputs.quantized);
    if inputs.dense.len() != inputs.quantized.len() || all.clone().any(|x| x.len() != len) {
        return Err(QuantizeError::Invalid(format!(
            "{name}: calibration maps must be as many dense as quantized maps ({} and {} given), \
             each of {len} floats (C_s, H_s, W_s)",
            inputs.dense.len(),
            inputs.quantized.len()
        )));
    }
    Ok(())
}

/// A quantized model and what each layer achieved.
#[derive(Clone, Debug)]
pub struct QuantizedModel {
    /// Biases and codebooks only (no dense weights), ready for `folder::save`.
    pub model: Model,
    /// The same with the plain-PQ codebooks of every layer (= `model` for [`Method::Pq`]),
    /// to compare error correction against on other images ([`response_errors`]).
    pub pq_model: Model,
    pub reports: Vec<LayerReport>,
}

/// Quantizes every conv and fc layer of `model` with `specs` (one per
/// `model.arch.param_layers()`), in order, propagating the calibration images through the
/// dense network and through the network quantized so far (METHOD.md: each layer is fed the
/// outputs of the already-quantized layers below it). Every spec is checked before any work.
pub fn quantize_model(
    model: &Model,
    specs: &[QuantSpec],
    calib: &Calibration,
    settings: &Settings,
    progress: &mut dyn Progress,
) -> Result<QuantizedModel> {
    let arch = &model.arch;
    if specs.len() != model.params.len() {
        return Err(QuantizeError::Invalid(format!(
            "{} quantization settings given for {} conv/fc layers",
            specs.len(),
            model.params.len()
        )));
    }
    for (p, &spec) in model.params.iter().zip(specs) {
        check_spec(arch.layers[p.shape.index].name, &p.shape, spec)?;
    }
    calib.check_input_len(arch.input.len())?;
    let first = model
        .params
        .first()
        .map_or(arch.layers.len(), |p| p.shape.index);
    let start_maps = run_segment(arch, 0, first, calib.images().to_vec());
    let mut inputs = LayerInputs {
        dense: start_maps.clone(),
        quantized: start_maps,
    };
    let mut params = Vec::with_capacity(model.params.len());
    let mut pq_params = Vec::with_capacity(model.params.len());
    let mut reports = Vec::with_capacity(model.params.len());
    for (i, (p, &spec)) in model.params.iter().zip(specs).enumerate() {
        let name = arch.layers[p.shape.index].name;
        let outcome = quantize_layer(name, p, spec, settings, &inputs, progress)?;
        if let Some(next) = model.params.get(i + 1) {
            let (from, to) = (p.shape.index + 1, next.shape.index);
            inputs = LayerInputs {
                dense: run_segment(arch, from, to, outcome.dense_responses),
                quantized: run_segment(arch, from, to, outcome.quantized_responses),
            };
        }
        let quantized = |cb| LayerParams {
            shape: p.shape,
            bias: p.bias.clone(),
            codebooks: Some(cb),
            dense: None,
        };
        params.push(quantized(outcome.codebooks));
        pq_params.push(quantized(outcome.pq_codebooks));
        reports.push(outcome.report);
    }
    let with = |params| Model {
        arch: arch.clone(),
        params,
        source: model.source.clone(),
    };
    Ok(QuantizedModel {
        model: with(params),
        pq_model: with(pq_params),
        reports,
    })
}

/// Per conv/fc layer of `dense`, the relative L2 error ‖Y − Ŷ‖ / ‖Y‖ over `images` of the
/// layer's output (with bias) in the network `quantized` against the dense network, each
/// network fed by its own lower layers (so errors accumulate, as at inference). Both models
/// must have the same architecture; codebooks are used as rebuilt dense weights.
/// Measured on images that quantization never saw, it tells whether error correction fitted
/// the calibration set only (overfitting) or the layer's function.
pub fn response_errors(dense: &Model, quantized: &Model, images: &[Vec<f32>]) -> Result<Vec<f64>> {
    if dense.arch != quantized.arch {
        return Err(QuantizeError::Invalid(
            "response_errors: the models have different architectures".into(),
        ));
    }
    let mut want = LayerOutputs::new(dense);
    let mut got = LayerOutputs::new(quantized);
    let mut dense_net = DenseNetwork::new(dense);
    let mut quant_net = DenseNetwork::new(quantized);
    for image in images {
        dense_net.forward(image, &mut want);
        quant_net.forward(image, &mut got);
    }
    Ok(want
        .maps
        .iter()
        .zip(&got.maps)
        .map(|(w, g)| relative_error_all(g, w))
        .collect())
}

/// ‖Y − Ŷ‖ / ‖Y‖ of one layer over calibration maps: Y its dense output (stored or rebuilt
/// weights of `params`) on `inputs.dense`, Ŷ its output with codebooks `cb` on
/// `inputs.quantized` (e.g. held-out images, for a one-layer study).
pub fn layer_response_error(params: &LayerParams, cb: &Codebooks, inputs: &LayerInputs) -> f64 {
    let shape = &params.shape;
    let want = layer_outputs(
        shape,
        params.dense_weights().into_owned(),
        &params.bias,
        &inputs.dense,
    );
    let got = layer_outputs(
        shape,
        rebuild_dense(shape, cb),
        &params.bias,
        &inputs.quantized,
    );
    relative_error_all(&got, &want)
}

/// Keeps every conv/fc layer's output of every image: maps[layer][image].
struct LayerOutputs {
    /// Layer index (in the architecture) of each conv/fc layer.
    indices: Vec<usize>,
    maps: Vec<Vec<Vec<f32>>>,
}

impl LayerOutputs {
    fn new(model: &Model) -> Self {
        let indices: Vec<usize> = model.params.iter().map(|p| p.shape.index).collect();
        LayerOutputs {
            maps: vec![Vec::new(); indices.len()],
            indices,
        }
    }
}

impl Observer for LayerOutputs {
    fn after_layer(&mut self, index: usize, _layer: &Layer, output: &[f32]) {
        if let Some(i) = self.indices.iter().position(|&x| x == index) {
            self.maps[i].push(output.to_vec());
        }
    }
}

/// The calibration maps entering layer `layer` (index in `model.arch.layers`, a conv or fc
/// layer) of the dense network; dense and quantized chains coincide (nothing below is
/// quantized). For one-layer studies (`qcnn sweep`).
pub fn dense_inputs(model: &Model, layer: usize, calib: &Calibration) -> Result<LayerInputs> {
    let arch = &model.arch;
    calib.check_input_len(arch.input.len())?;
    let mut maps = calib.images().to_vec();
    let mut from = 0;
    for p in model.params.iter().take_while(|p| p.shape.index < layer) {
        maps = run_segment(arch, from, p.shape.index, maps);
        maps = layer_outputs(&p.shape, p.dense_weights().into_owned(), &p.bias, &maps);
        from = p.shape.index + 1;
    }
    let maps = run_segment(arch, from, layer, maps);
    Ok(LayerInputs {
        dense: maps.clone(),
        quantized: maps,
    })
}

/// Runs the weight-free layers `from..to` of `arch` (ReLU, LRN, pooling, dropout, softmax)
/// on every map. Panics if a conv or fc layer is in the range (a bug of the caller).
fn run_segment(arch: &Architecture, from: usize, to: usize, maps: Vec<Vec<f32>>) -> Vec<Vec<f32>> {
    if from >= to {
        return maps;
    }
    let segment = Architecture {
        name: arch.name,
        input: arch.input_of(from),
        layers: arch.layers[from..to].to_vec(),
    };
    assert!(
        segment.param_layers().is_empty(),
        "run_segment over a conv/fc layer"
    );
    let mut pipeline = Pipeline::new(&segment, Vec::new());
    maps.iter()
        .map(|x| pipeline.forward(x, &mut NoObserver).to_vec())
        .collect()
}
