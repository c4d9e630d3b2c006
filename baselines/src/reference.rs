//! A network layer computed by the kernels' plain twins (direct loops accumulating in f64):
//! the oracle the network tests compare every layer of a forward pass against.

use qcnn_kernels::dense::reference::{
    conv_reference, fc_reference, lrn_reference, max_pool_reference, relu_reference,
    softmax_reference,
};
use qcnn_model::{Architecture, LayerKind};

use qcnn_runner::{conv_shape, fc_shape, lrn_params, pool_shape};

/// Layer `index` of `arch` on `input` (the previous layer's output) by its twin. `params`
/// holds one (weights, bias) per conv/fc layer, in layer order, Caffe layout.
///
/// # Panics
/// If `params` does not match the architecture (a bug of the test calling it).
pub fn reference_layer(
    arch: &Architecture,
    params: &[(&[f32], &[f32])],
    index: usize,
    input: &[f32],
) -> Vec<f32> {
    let s = arch.input_of(index);
    let param = || {
        let layers = arch.param_layers();
        let k = layers
            .iter()
            .position(|p| p.index == index)
            .expect("a conv/fc layer");
        (layers[k], params[k])
    };
    match arch.layers[index].kind {
        LayerKind::Conv(_) => {
            let (p, (w, b)) = param();
            conv_reference(&conv_shape(&p), w, b, input)
        }
        LayerKind::Fc { .. } => {
            let (p, (w, b)) = param();
            fc_reference(&fc_shape(&p), w, b, input)
        }
        LayerKind::Relu => relu_reference(input),
        LayerKind::Lrn(spec) => lrn_reference(&lrn_params(spec), s.c, s.h * s.w, input),
        LayerKind::MaxPool(spec) => max_pool_reference(&pool_shape(s, spec), input),
        LayerKind::Dropout => input.to_vec(),
        LayerKind::Softmax => softmax_reference(input, s.c),
    }
}
