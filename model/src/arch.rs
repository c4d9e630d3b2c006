//! The network as data: a layer list, shape inference and op counts (METHOD.md).
//!
//! Glossary (paper symbol → code name): C_s → `in_channels`, C_t → `out_channels`,
//! kh×kw → `kernel`, d → `QuantSpec::d`, K → `QuantSpec::k`, M → `QuantSpec::subspaces(..)`.

/// A feature-map shape in Caffe's (C, H, W) order. Vectors are (C, 1, 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Shape {
    pub const fn new(c: usize, h: usize, w: usize) -> Self {
        Shape { c, h, w }
    }
    pub const fn len(&self) -> usize {
        self.c * self.h * self.w
    }
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A convolution: `out_channels` kernels of `kernel` × `kernel`, Caffe semantics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    pub groups: usize,
}

/// Cross-channel local response normalisation, Caffe's formula:
/// y = x / (k + alpha/size · Σ x²)^beta over `size` neighbouring channels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrnSpec {
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub k: f32,
}

/// Max pooling with Caffe's ceil rounding of the output size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSpec {
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerKind {
    Conv(ConvSpec),
    Relu,
    Lrn(LrnSpec),
    MaxPool(PoolSpec),
    /// Fully connected to `out` neurons; the input is flattened in (C, H, W) order.
    Fc {
        out: usize,
    },
    /// Identity at test time; kept so layer numbers match Caffe's list and the file names.
    Dropout,
    Softmax,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub name: &'static str,
    pub kind: LayerKind,
}

impl Layer {
    /// Conv and fc layers carry weights (and codebooks in a quantized model).
    pub fn has_params(&self) -> bool {
        matches!(self.kind, LayerKind::Conv(_) | LayerKind::Fc { .. })
    }
}

/// Product-quantization settings of one conv or fc layer: `d` dims per subspace, `k` codewords.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantSpec {
    pub d: usize,
    pub k: usize,
}

impl QuantSpec {
    /// At most this many codewords: indices are stored as bytes.
    pub const MAX_K: usize = 256;
    /// A layer with fewer channels than d has one partial subspace (the authors' conv1: 3
    /// channels, d = 8; METHOD.md); up to this d, beyond which a codeword would be mostly
    /// unused padding (and a typo like d = 100000000 would allocate K·d floats).
    pub const MAX_PARTIAL_D: usize = 16;

    /// M = ceil(channels / d): the last subspace may be partial (conv1: 3 channels, d = 8).
    pub fn subspaces(&self, channels: usize) -> usize {
        channels.div_ceil(self.d)
    }

    /// The sizes any layer of `channels` split channels can take, checked before anything
    /// is allocated from them: 1 ≤ K ≤ [`Self::MAX_K`], 1 ≤ d ≤ max(channels,
    /// [`Self::MAX_PARTIAL_D`]). `Err` holds the problem, naming the allowed range.
    pub fn check_sizes(&self, channels: usize) -> Result<(), String> {
        if !(1..=Self::MAX_K).contains(&self.k) {
            return Err(format!(
                "K must be in 1..={} (codeword indices are bytes)",
                Self::MAX_K
            ));
        }
        let max_d = channels.max(Self::MAX_PARTIAL_D);
        if !(1..=max_d).contains(&self.d) {
            return Err(format!(
                "d must be in 1..={max_d} (the {channels} channels a subspace splits, or up to \
                 {} for one partial subspace)",
                Self::MAX_PARTIAL_D
            ));
        }
        Ok(())
    }
}

/// A whole network: input shape and the ordered layer list.
#[derive(Clone, Debug, PartialEq)]
pub struct Architecture {
    pub input: Shape,
    pub layers: Vec<Layer>,
}

/// Static description of one conv/fc layer with everything needed to size its files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamShape {
    /// Index of the layer in `Architecture::layers` (0-based; file numbers are this + 1).
    pub index: usize,
    pub input: Shape,
    pub output: Shape,
    pub kind: ParamKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    Conv(ConvSpec),
    Fc,
}

impl ParamShape {
    /// C_t.
    pub fn out_channels(&self) -> usize {
        match self.kind {
            ParamKind::Conv(_) => self.output.c,
            ParamKind::Fc => self.output.len(),
        }
    }
    /// The channels one subspace split runs over: C_s / groups for conv, C_s for fc.
    pub fn split_channels(&self) -> usize {
        match self.kind {
            ParamKind::Conv(c) => self.input.c / c.groups,
            ParamKind::Fc => self.input.len(),
        }
    }
    /// kh·kw (1 for fc).
    pub fn taps(&self) -> usize {
        match self.kind {
            ParamKind::Conv(c) => c.kernel * c.kernel,
            ParamKind::Fc => 1,
        }
    }
    /// Number of dense weights.
    pub fn weight_count(&self) -> usize {
        self.out_channels() * self.split_channels() * self.taps()
    }
    /// Dense multiply-adds per image.
    pub fn dense_macs(&self) -> u64 {
        (self.weight_count() * self.output.h * self.output.w) as u64
    }
    /// Multiply-adds to build the look-up table per image: every input pixel, every subspace,
    /// every codeword, d dims (the partial last subspace counts its real dims only).
    pub fn table_macs(&self, q: QuantSpec) -> u64 {
        let pixels = match self.kind {
            ParamKind::Conv(_) => self.input.h * self.input.w,
            ParamKind::Fc => 1,
        };
        let groups = match self.kind {
            ParamKind::Conv(c) => c.groups,
            ParamKind::Fc => 1,
        };
        (pixels * groups * self.split_channels() * q.k) as u64
    }
    /// Look-up-adds per image.
    pub fn lookups(&self, q: QuantSpec) -> u64 {
        let m = q.subspaces(self.split_channels());
        (self.output.h * self.output.w * self.out_channels() * self.taps() * m) as u64
    }
}

impl Architecture {
    /// The output shape of every layer, in order.
    pub fn shapes(&self) -> Vec<Shape> {
        let mut shapes = Vec::with_capacity(self.layers.len());
        let mut s = self.input;
        for layer in &self.layers {
            s = output_shape(s, &layer.kind);
            shapes.push(s);
        }
        shapes
    }

    /// The input shape of layer `index`.
    pub fn input_of(&self, index: usize) -> Shape {
        if index == 0 {
            self.input
        } else {
            self.shapes()[index - 1]
        }
    }

    /// Every conv and fc layer with its input and output shapes.
    pub fn param_layers(&self) -> Vec<ParamShape> {
        let shapes = self.shapes();
        let mut input = self.input;
        let mut out = Vec::new();
        for (index, (layer, &output)) in self.layers.iter().zip(&shapes).enumerate() {
            let kind = match layer.kind {
                LayerKind::Conv(c) => Some(ParamKind::Conv(c)),
                LayerKind::Fc { .. } => Some(ParamKind::Fc),
                _ => None,
            };
            if let Some(kind) = kind {
                out.push(ParamShape {
                    index,
                    input,
                    output,
                    kind,
                });
            }
            input = output;
        }
        out
    }

    /// The index of the layer called `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.layers.iter().position(|l| l.name == name)
    }
}

/// Caffe's output-size rules.
pub fn output_shape(input: Shape, kind: &LayerKind) -> Shape {
    match *kind {
        LayerKind::Conv(c) => Shape::new(
            c.out_channels,
            (input.h + 2 * c.pad - c.kernel) / c.stride + 1,
            (input.w + 2 * c.pad - c.kernel) / c.stride + 1,
        ),
        LayerKind::MaxPool(p) => {
            Shape::new(input.c, pool_extent(input.h, p), pool_extent(input.w, p))
        }
        LayerKind::Fc { out } => Shape::new(out, 1, 1),
        LayerKind::Relu | LayerKind::Lrn(_) | LayerKind::Dropout | LayerKind::Softmax => input,
    }
}

/// ceil((H + 2p − k) / s) + 1, then Caffe's clip: the last window must start inside the
/// input plus the leading pad.
pub fn pool_extent(size: usize, p: PoolSpec) -> usize {
    let mut out = (size + 2 * p.pad - p.kernel).div_ceil(p.stride) + 1;
    if p.pad > 0 && (out - 1) * p.stride >= size + p.pad {
        out -= 1;
    }
    out
}

const LRN: LrnSpec = LrnSpec {
    size: 5,
    alpha: 1e-4,
    beta: 0.75,
    k: 1.0,
};
const POOL: PoolSpec = PoolSpec {
    kernel: 3,
    stride: 2,
    pad: 0,
};

/// A conv layer kind in one call: `out_channels` kernels of `kernel`×`kernel`.
pub const fn conv(
    out_channels: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    groups: usize,
) -> LayerKind {
    LayerKind::Conv(ConvSpec {
        out_channels,
        kernel,
        stride,
        pad,
        groups,
    })
}

/// BVLC AlexNet, the 23-layer list of METHOD.md (input 3×227×227, B, G, R).
pub fn alexnet() -> Architecture {
    use LayerKind::*;
    let l = |name, kind| Layer { name, kind };
    Architecture {
        input: Shape::new(3, 227, 227),
        layers: vec![
            l("conv1", conv(96, 11, 4, 0, 1)),
            l("relu1", Relu),
            l("norm1", Lrn(LRN)),
            l("pool1", MaxPool(POOL)),
            l("conv2", conv(256, 5, 1, 2, 2)),
            l("relu2", Relu),
            l("norm2", Lrn(LRN)),
            l("pool2", MaxPool(POOL)),
            l("conv3", conv(384, 3, 1, 1, 1)),
            l("relu3", Relu),
            l("conv4", conv(384, 3, 1, 1, 2)),
            l("relu4", Relu),
            l("conv5", conv(256, 3, 1, 1, 2)),
            l("relu5", Relu),
            l("pool5", MaxPool(POOL)),
            l("fc6", Fc { out: 4096 }),
            l("relu6", Relu),
            l("drop6", Dropout),
            l("fc7", Fc { out: 4096 }),
            l("relu7", Relu),
            l("drop7", Dropout),
            l("fc8", Fc { out: 1000 }),
            l("prob", Softmax),
        ],
    }
}

/// The authors' quantization of AlexNet: conv d=8/K=128, fc6–fc7 d=4/K=32, fc8 d=1/K=16.
pub fn authors_quantization(arch: &Architecture) -> Vec<QuantSpec> {
    arch.param_layers()
        .iter()
        .map(|p| match (p.kind, arch.layers[p.index].name) {
            (ParamKind::Conv(_), _) => QuantSpec { d: 8, k: 128 },
            (ParamKind::Fc, "fc8") => QuantSpec { d: 1, k: 16 },
            (ParamKind::Fc, _) => QuantSpec { d: 4, k: 32 },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alexnet_shapes_match_method_md() {
        let a = alexnet();
        let s = a.shapes();
        let at = |n: &str| s[a.position(n).unwrap()];
        assert_eq!(at("conv1"), Shape::new(96, 55, 55));
        assert_eq!(at("pool1"), Shape::new(96, 27, 27));
        assert_eq!(at("conv2"), Shape::new(256, 27, 27));
        assert_eq!(at("pool2"), Shape::new(256, 13, 13));
        assert_eq!(at("conv5"), Shape::new(256, 13, 13));
        assert_eq!(at("pool5"), Shape::new(256, 6, 6));
        assert_eq!(at("fc8"), Shape::new(1000, 1, 1));
        assert_eq!(a.layers.len(), 23);
    }

    #[test]
    fn op_counts_match_method_md_table() {
        let a = alexnet();
        let q = authors_quantization(&a);
        let mut dense = 0u64;
        let mut quant = 0u64;
        // (dense, LUT, look-ups) in millions, from METHOD.md.
        let table = [
            (105.42, 19.79, 35.14),
            (223.95, 8.96, 27.99),
            (149.52, 5.54, 18.69),
            (112.14, 8.31, 14.02),
            (74.76, 8.31, 9.35),
            (37.75, 0.29, 9.44),
            (16.78, 0.13, 4.19),
            (4.10, 0.07, 4.10),
        ];
        for ((p, q), want) in a.param_layers().iter().zip(&q).zip(table) {
            let m = |x: u64| x as f64 / 1e6;
            assert!((m(p.dense_macs()) - want.0).abs() < 0.01, "{:?}", p);
            assert!((m(p.table_macs(*q)) - want.1).abs() < 0.01, "{:?}", p);
            assert!((m(p.lookups(*q)) - want.2).abs() < 0.01, "{:?}", p);
            dense += p.dense_macs();
            quant += p.table_macs(*q) + p.lookups(*q);
        }
        let speedup = dense as f64 / quant as f64;
        assert!((speedup - 4.156).abs() < 0.001, "{speedup}");
    }

    #[test]
    fn pool_uses_ceil_rounding() {
        let p = PoolSpec {
            kernel: 3,
            stride: 2,
            pad: 0,
        };
        assert_eq!(pool_extent(55, p), 27);
        assert_eq!(pool_extent(13, p), 6);
        // An overhanging window: (6 - 3) / 2 = 1.5 → ceil 2 → 3 outputs.
        assert_eq!(pool_extent(6, p), 3);
    }
}
