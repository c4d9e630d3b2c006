//! The Q-CNN forward pass: the dense network's layer list, with every conv and fc layer
//! computed from codebooks and assignments by table look-ups (METHOD.md).

use qcnn_kernels::lut::conv::{ConvLut, ConvScratch};
use qcnn_kernels::lut::fc::{FcI16Scratch, FcLut, FcLutI16, FcScratch};
use qcnn_kernels::lut::int8::{ConvI8Scratch, ConvLutI8};
use qcnn_kernels::{LutError, Phase, PqSpec, Target};
use qcnn_model::arch::ParamKind;
use qcnn_model::{Codebooks, LayerParams, Model};
use qcnn_runner::{conv_shape, fc_shape, Pipeline, WeightedOp};
use qcnn_runner::{Network, Observer};

/// How look-up tables hold their values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    /// Exact: f32 tables, the same function as the dense network up to summation order.
    F32,
    /// Approximate: conv tables quantized to integers (one scale per layer and image, plus
    /// offsets; `qcnn_kernels::lut::int8`); fc tables quantized to i16 (a scale per 16
    /// subspaces and image; `qcnn_kernels::lut::fc::int16`) where that pays
    /// (`FcLutI16::pays`: AVX2 and NEON, K ≤ 32), exact f32 fc tables elsewhere (AVX-512's
    /// f32 permutes are as fast). Each layer's kernel is recorded with the run.
    Int8,
}

impl TableKind {
    /// The mode name used everywhere (CLI, results, reports).
    pub fn mode(self) -> &'static str {
        match self {
            TableKind::F32 => "qcnn",
            TableKind::Int8 => "qcnn-int8",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QuantizedError {
    #[error("layer {layer}: the model has no codebooks (a dense-only model: quantize it first)")]
    NoCodebooks { layer: &'static str },
    /// (`error` is shown in the message, not exposed as `source()`: a chain prints it once.)
    #[error("layer {layer}: {error}")]
    Kernel {
        layer: &'static str,
        error: LutError,
    },
}

/// AlexNet with look-up-table conv and fc layers.
pub struct QuantizedNetwork {
    pipeline: Pipeline,
    mode: String,
}

impl QuantizedNetwork {
    /// Prepares every layer's kernel (re-laid assignments, checked indices, plans sized for
    /// the target's caches) for `target`, whose ISA the caller has checked this CPU runs
    /// (`Isa::require`; an unavailable one is a kernel error here).
    pub fn new(model: &Model, target: Target, tables: TableKind) -> Result<Self, QuantizedError> {
        let ops = model
            .params
            .iter()
            .map(|params| layer_op(model, params, target, tables))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(QuantizedNetwork {
            pipeline: Pipeline::with_isa(&model.arch, ops, target.isa),
            mode: tables.mode().to_string(),
        })
    }
}

impl Network for QuantizedNetwork {
    fn mode(&self) -> String {
        self.mode.clone()
    }
    fn kernels(&self) -> String {
        self.pipeline.kernels()
    }
    fn plans(&self) -> Vec<(String, String, String)> {
        self.pipeline.plans()
    }
    fn forward(&mut self, input: &[f32], observer: &mut dyn Observer) -> &[f32] {
        self.pipeline.forward(input, observer)
    }
}

fn layer_op(
    model: &Model,
    params: &LayerParams,
    target: Target,
    tables: TableKind,
) -> Result<Box<dyn WeightedOp>, QuantizedError> {
    let layer = model.arch.layers[params.shape.index].name;
    let cb = params
        .codebooks
        .as_ref()
        .ok_or(QuantizedError::NoCodebooks { layer })?;
    let spec = pq_spec(cb);
    let kernel_error = |error| QuantizedError::Kernel { layer, error };
    let (ctrd, asmt, bias) = (&cb.centroids[..], &cb.assignments[..], &params.bias[..]);
    Ok(match params.shape.kind {
        ParamKind::Conv(_) if tables == TableKind::Int8 => LutOp::boxed(
            ConvLutI8::new(target, conv_shape(&params.shape), spec, ctrd, asmt, bias)
                .map_err(kernel_error)?,
        ),
        ParamKind::Conv(_) => LutOp::boxed(
            ConvLut::new(target, conv_shape(&params.shape), spec, ctrd, asmt, bias)
                .map_err(kernel_error)?,
        ),
        ParamKind::Fc if tables == TableKind::Int8 && FcLutI16::pays(target, spec) => LutOp::boxed(
            FcLutI16::new(target, fc_shape(&params.shape), spec, ctrd, asmt, bias)
                .map_err(kernel_error)?,
        ),
        ParamKind::Fc => LutOp::boxed(
            FcLut::new(target, fc_shape(&params.shape), spec, ctrd, asmt, bias)
                .map_err(kernel_error)?,
        ),
    })
}

/// The kernels' view of a layer's codebooks.
pub fn pq_spec(cb: &Codebooks) -> PqSpec {
    PqSpec {
        d: cb.spec.d,
        k: cb.spec.k,
    }
}

/// What the network needs of a prepared look-up layer: its kernel name, a plan summary and
/// one forward pass.
trait LutKernel: 'static {
    type Scratch: Default + 'static;
    fn name(&self) -> String;
    fn plan(&self) -> String;
    fn run(
        &self,
        x: &[f32],
        y: &mut [f32],
        scratch: &mut Self::Scratch,
        phase: &mut dyn FnMut(Phase),
    );
}

impl LutKernel for ConvLut {
    fn plan(&self) -> String {
        self.plan_summary()
    }
    type Scratch = ConvScratch;
    fn name(&self) -> String {
        self.kernel_name()
    }
    fn run(&self, x: &[f32], y: &mut [f32], s: &mut ConvScratch, p: &mut dyn FnMut(Phase)) {
        self.forward(x, y, s, p)
    }
}

impl LutKernel for ConvLutI8 {
    fn plan(&self) -> String {
        self.plan_summary()
    }
    type Scratch = ConvI8Scratch;
    fn name(&self) -> String {
        self.kernel_name()
    }
    fn run(&self, x: &[f32], y: &mut [f32], s: &mut ConvI8Scratch, p: &mut dyn FnMut(Phase)) {
        self.forward(x, y, s, p)
    }
}

impl LutKernel for FcLut {
    fn plan(&self) -> String {
        self.plan_summary()
    }
    type Scratch = FcScratch;
    fn name(&self) -> String {
        self.kernel_name()
    }
    fn run(&self, x: &[f32], y: &mut [f32], s: &mut FcScratch, p: &mut dyn FnMut(Phase)) {
        self.forward(x, y, s, p)
    }
}

impl LutKernel for FcLutI16 {
    fn plan(&self) -> String {
        self.plan_summary()
    }
    type Scratch = FcI16Scratch;
    fn name(&self) -> String {
        self.kernel_name()
    }
    fn run(&self, x: &[f32], y: &mut [f32], s: &mut FcI16Scratch, p: &mut dyn FnMut(Phase)) {
        self.forward(x, y, s, p)
    }
}

/// A look-up kernel as one of the pipeline's conv/fc ops, with its own scratch (tables).
struct LutOp<K: LutKernel> {
    lut: K,
    scratch: K::Scratch,
}

impl<K: LutKernel> LutOp<K> {
    fn boxed(lut: K) -> Box<dyn WeightedOp> {
        Box::new(LutOp {
            lut,
            scratch: K::Scratch::default(),
        })
    }
}

impl<K: LutKernel> WeightedOp for LutOp<K> {
    fn kernel(&self) -> String {
        self.lut.name()
    }
    fn plan(&self) -> String {
        self.lut.plan()
    }
    fn run(&mut self, input: &[f32], output: &mut [f32], observer: &mut dyn Observer) {
        self.lut.run(input, output, &mut self.scratch, &mut |p| {
            observer.after_phase(p)
        });
    }
}
