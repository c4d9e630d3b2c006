//! The Q-CNN forward pass: the dense network's layer list, with every conv and fc layer
//! computed from codebooks and assignments by table look-ups (METHOD.md).

use qcnn_baselines::{Pipeline, WeightedOp};
use qcnn_kernels::lut::conv::{ConvLut, ConvScratch};
use qcnn_kernels::lut::fc::FcLut;
use qcnn_kernels::{ConvShape, FcShape, Isa, LutError, PqSpec};
use qcnn_model::arch::{ParamKind, ParamShape};
use qcnn_model::{Codebooks, LayerParams, Model, Network, Observer};

/// How look-up tables hold their values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    /// Exact: f32 tables, the same function as the dense network up to summation order.
    F32,
}

#[derive(Debug, thiserror::Error)]
pub enum QuantizedError {
    #[error("layer {layer}: the model has no codebooks (a dense-only model: quantize it first)")]
    NoCodebooks { layer: &'static str },
    #[error("layer {layer}: {source}")]
    Kernel {
        layer: &'static str,
        #[source]
        source: LutError,
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
        let ops = model
            .params
            .iter()
            .map(|params| layer_op(model, params, isa))
            .collect::<Result<Vec<_>, _>>()?;
        let mode = match tables {
            TableKind::F32 => "qcnn".to_string(),
        };
        Ok(QuantizedNetwork {
            pipeline: Pipeline::new(&model.arch, ops),
            mode,
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
) -> Result<Box<dyn WeightedOp>, QuantizedError> {
    let layer = model.arch.layers[params.shape.index].name;
    let cb = params
        .codebooks
        .as_ref()
        .ok_or(QuantizedError::NoCodebooks { layer })?;
    let spec = PqSpec {
        d: cb.spec.d,
        k: cb.spec.k,
    };
    let kernel_error = |source| QuantizedError::Kernel { layer, source };
    Ok(match params.shape.kind {
        ParamKind::Conv(_) => {
            let lut = ConvLut::new(
                conv_shape(&params.shape),
                spec,
                &cb.centroids,
                &cb.assignments,
                &params.bias,
            )
            .map_err(kernel_error)?;
            Box::new(ConvLutOp {
                lut,
                isa,
                scratch: ConvScratch::default(),
            })
        }
        ParamKind::Fc => {
            let lut = FcLut::new(
                fc_shape(&params.shape),
                spec,
                &cb.centroids,
                &cb.assignments,
                &params.bias,
            )
            .map_err(kernel_error)?;
            Box::new(FcLutOp {
                lut,
                isa,
                scratch: Vec::new(),
            })
        }
    })
}

/// The kernels' view of a conv layer.
pub fn conv_shape(p: &ParamShape) -> ConvShape {
    let ParamKind::Conv(c) = p.kind else {
        panic!("conv_shape of an fc layer")
    };
    ConvShape {
        c_in: p.input.c,
        h_in: p.input.h,
        w_in: p.input.w,
        c_out: c.out_channels,
        kernel: c.kernel,
        stride: c.stride,
        pad: c.pad,
        groups: c.groups,
    }
}

/// The kernels' view of an fc layer (input flattened in C, H, W order).
pub fn fc_shape(p: &ParamShape) -> FcShape {
    FcShape {
        c_in: p.input.len(),
        c_out: p.output.len(),
    }
}

/// The kernels' view of a layer's codebooks.
pub fn pq_spec(cb: &Codebooks) -> PqSpec {
    PqSpec {
        d: cb.spec.d,
        k: cb.spec.k,
    }
}

struct ConvLutOp {
    lut: ConvLut,
    isa: Isa,
    scratch: ConvScratch,
}

impl WeightedOp for ConvLutOp {
    fn kernel(&self) -> String {
        ConvLut::kernel_name(self.isa).to_string()
    }
    fn run(&mut self, input: &[f32], output: &mut [f32], observer: &mut dyn Observer) {
        self.lut
            .forward(self.isa, input, output, &mut self.scratch, &mut |p| {
                observer.after_phase(p)
            });
    }
}

struct FcLutOp {
    lut: FcLut,
    isa: Isa,
    scratch: Vec<f32>,
}

impl WeightedOp for FcLutOp {
    fn kernel(&self) -> String {
        FcLut::kernel_name(self.isa).to_string()
    }
    fn run(&mut self, input: &[f32], output: &mut [f32], observer: &mut dyn Observer) {
        self.lut
            .forward(self.isa, input, output, &mut self.scratch, &mut |p| {
                observer.after_phase(p)
            });
    }
}
