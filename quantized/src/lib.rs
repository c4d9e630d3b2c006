//! The Q-CNN forward pass: the dense network's layer list, with every conv and fc layer
//! computed from codebooks and assignments by table look-ups (METHOD.md).

use qcnn_baselines::{conv_shape, fc_shape, Pipeline, WeightedOp};
use qcnn_kernels::lut::conv::{ConvLut, ConvScratch};
use qcnn_kernels::lut::fc::FcLut;
use qcnn_kernels::lut::int8::{ConvI8Scratch, ConvLutI8};
use qcnn_kernels::{Isa, LutError, Phase, PqSpec};
use qcnn_model::arch::ParamKind;
use qcnn_model::{Codebooks, LayerParams, Model, Network, Observer};

/// How look-up tables hold their values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    /// Exact: f32 tables, the same function as the dense network up to summation order.
    F32,
    /// Approximate: conv tables quantized to 8-bit integers (one scale per layer and image,
    /// plus offsets; `qcnn_kernels::lut::int8`). The fc layers keep exact f32 tables: on
    /// this project's measurements the int8 fc kernels were slower than the exact ones
    /// (their 5-bit packed indices stream less memory than byte indices).
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
    #[error("{mode} has no kernel for ISA {isa} on this CPU (int8 tables need AVX-512 with VBMI and VNNI, or the scalar level)")]
    Unsupported { mode: &'static str, isa: Isa },
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
    /// Prepares every layer's kernel (re-laid assignments, checked indices) for `isa`, which
    /// the caller has checked this CPU runs (`Isa::require`).
    pub fn new(model: &Model, isa: Isa, tables: TableKind) -> Result<Self, QuantizedError> {
        if tables == TableKind::Int8 && !ConvLutI8::supports(isa) {
            return Err(QuantizedError::Unsupported {
                mode: tables.mode(),
                isa,
            });
        }
        let ops = model
            .params
            .iter()
            .map(|params| layer_op(model, params, isa, tables))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(QuantizedNetwork {
            pipeline: Pipeline::with_isa(&model.arch, ops, isa),
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
    fn forward(&mut self, input: &[f32], observer: &mut dyn Observer) -> &[f32] {
        self.pipeline.forward(input, observer)
    }
}

fn layer_op(
    model: &Model,
    params: &LayerParams,
    isa: Isa,
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
            ConvLutI8::new(conv_shape(&params.shape), spec, ctrd, asmt, bias)
                .map_err(kernel_error)?,
            isa,
        ),
        ParamKind::Conv(_) => LutOp::boxed(
            ConvLut::new(conv_shape(&params.shape), spec, ctrd, asmt, bias)
                .map_err(kernel_error)?,
            isa,
        ),
        ParamKind::Fc => LutOp::boxed(
            FcLut::new(fc_shape(&params.shape), spec, ctrd, asmt, bias).map_err(kernel_error)?,
            isa,
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

/// What the network needs of a look-up kernel family: its name and one forward pass.
trait LutKernel: 'static {
    type Scratch: Default + 'static;
    fn name(isa: Isa) -> &'static str;
    fn run(
        &self,
        isa: Isa,
        x: &[f32],
        y: &mut [f32],
        scratch: &mut Self::Scratch,
        phase: &mut dyn FnMut(Phase),
    );
}

impl LutKernel for ConvLut {
    type Scratch = ConvScratch;
    fn name(isa: Isa) -> &'static str {
        ConvLut::kernel_name(isa)
    }
    fn run(
        &self,
        isa: Isa,
        x: &[f32],
        y: &mut [f32],
        scratch: &mut ConvScratch,
        phase: &mut dyn FnMut(Phase),
    ) {
        self.forward(isa, x, y, scratch, phase)
    }
}

impl LutKernel for ConvLutI8 {
    type Scratch = ConvI8Scratch;
    fn name(isa: Isa) -> &'static str {
        ConvLutI8::kernel_name(isa)
    }
    fn run(
        &self,
        isa: Isa,
        x: &[f32],
        y: &mut [f32],
        scratch: &mut ConvI8Scratch,
        phase: &mut dyn FnMut(Phase),
    ) {
        self.forward(isa, x, y, scratch, phase)
    }
}

impl LutKernel for FcLut {
    type Scratch = Vec<f32>;
    fn name(isa: Isa) -> &'static str {
        FcLut::kernel_name(isa)
    }
    fn run(
        &self,
        isa: Isa,
        x: &[f32],
        y: &mut [f32],
        scratch: &mut Vec<f32>,
        phase: &mut dyn FnMut(Phase),
    ) {
        self.forward(isa, x, y, scratch, phase)
    }
}

/// A look-up kernel as one of the pipeline's conv/fc ops, with its own scratch (tables).
struct LutOp<K: LutKernel> {
    lut: K,
    isa: Isa,
    scratch: K::Scratch,
}

impl<K: LutKernel> LutOp<K> {
    fn boxed(lut: K, isa: Isa) -> Box<dyn WeightedOp> {
        Box::new(LutOp {
            lut,
            isa,
            scratch: K::Scratch::default(),
        })
    }
}

impl<K: LutKernel> WeightedOp for LutOp<K> {
    fn kernel(&self) -> String {
        K::name(self.isa).to_string()
    }
    fn run(&mut self, input: &[f32], output: &mut [f32], observer: &mut dyn Observer) {
        self.lut
            .run(self.isa, input, output, &mut self.scratch, &mut |p| {
                observer.after_phase(p)
            });
    }
}
