//! The dense network: Caffe's conv (im2col + `sgemm`) and fc (`sgemv`) over OpenBLAS.

use qcnn_kernels::dense::{conv, fc, ConvScratch, CONV_KERNEL, FC_KERNEL};
use qcnn_kernels::stream::StreamBuf;
use qcnn_kernels::{ConvShape, FcShape, Isa};
use qcnn_model::arch::ParamKind;
use qcnn_model::{LayerParams, Model};
use qcnn_runner::{Network, Observer};

use qcnn_runner::{conv_shape, fc_shape, Pipeline, WeightedOp};

/// A dense conv layer with its weights and im2col scratch, prepared once.
pub struct DenseConv {
    shape: ConvShape,
    /// Layout (C_t, C_s/groups, kh, kw).
    weights: StreamBuf<f32>,
    /// Layout (C_t).
    bias: Vec<f32>,
    scratch: ConvScratch,
}

impl DenseConv {
    /// Panics if a length disagrees with `shape` (the model loader has checked them).
    pub fn new(shape: ConvShape, weights: Vec<f32>, bias: Vec<f32>) -> Self {
        assert!(shape.is_valid(), "invalid conv shape {shape:?}");
        let taps = shape.c_in_group() * shape.kernel * shape.kernel;
        assert_eq!(weights.len(), shape.c_out * taps, "conv weights length");
        assert_eq!(bias.len(), shape.c_out, "conv bias length");
        DenseConv {
            scratch: ConvScratch::for_shape(&shape),
            shape,
            weights: StreamBuf::from_slice(&weights),
            bias,
        }
    }
}

impl WeightedOp for DenseConv {
    fn kernel(&self) -> String {
        CONV_KERNEL.to_string()
    }
    fn run(&mut self, input: &[f32], output: &mut [f32], _observer: &mut dyn Observer) {
        let (s, w, b) = (&self.shape, &self.weights, &self.bias);
        conv(s, w, b, input, output, &mut self.scratch);
    }
}

/// A dense fc layer, prepared once.
pub struct DenseFc {
    shape: FcShape,
    /// Layout (C_t, C_s).
    weights: StreamBuf<f32>,
    /// Layout (C_t).
    bias: Vec<f32>,
}

impl DenseFc {
    /// Panics if a length disagrees with `shape` (the model loader has checked them).
    pub fn new(shape: FcShape, weights: Vec<f32>, bias: Vec<f32>) -> Self {
        assert_eq!(weights.len(), shape.c_out * shape.c_in, "fc weights length");
        assert_eq!(bias.len(), shape.c_out, "fc bias length");
        DenseFc {
            shape,
            weights: StreamBuf::from_slice(&weights),
            bias,
        }
    }
}

impl WeightedOp for DenseFc {
    fn kernel(&self) -> String {
        FC_KERNEL.to_string()
    }
    fn run(&mut self, input: &[f32], output: &mut [f32], _observer: &mut dyn Observer) {
        fc(&self.shape, &self.weights, &self.bias, input, output);
    }
}

/// The dense AlexNet (or any [`qcnn_model::Architecture`]) over BLAS.
pub struct DenseNetwork {
    pipeline: Pipeline,
}

impl DenseNetwork {
    /// Dense weights come from `LayerParams::dense_weights()`: the stored ones, or rebuilt
    /// from the codebooks (codebook[assignment]) once, here, never per image.
    /// The non-weighted vectorised ops (LRN) run at the best ISA this CPU has.
    pub fn new(model: &Model) -> Self {
        Self::with_isa(model, Isa::detect())
    }

    /// As [`DenseNetwork::new`], with LRN at `isa` (checked by the caller: `Isa::require`).
    pub fn with_isa(model: &Model, isa: Isa) -> Self {
        let ops = model.params.iter().map(dense_op).collect();
        DenseNetwork {
            pipeline: Pipeline::with_isa(&model.arch, ops, isa),
        }
    }
}

fn dense_op(params: &LayerParams) -> Box<dyn WeightedOp> {
    let weights = params.dense_weights().into_owned();
    let bias = params.bias.clone();
    match params.shape.kind {
        ParamKind::Conv(_) => Box::new(DenseConv::new(conv_shape(&params.shape), weights, bias)),
        ParamKind::Fc => Box::new(DenseFc::new(fc_shape(&params.shape), weights, bias)),
    }
}

impl Network for DenseNetwork {
    fn mode(&self) -> String {
        "dense".to_string()
    }
    fn kernels(&self) -> String {
        self.pipeline.kernels()
    }
    fn forward(&mut self, input: &[f32], observer: &mut dyn Observer) -> &[f32] {
        self.pipeline.forward(input, observer)
    }
}
