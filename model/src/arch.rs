//! The networks as data: layer lists, shape inference and op counts (METHOD.md), and the
//! four ImageNet networks of the paper ([`NetworkKind`]) with their quantization settings.
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
    /// M = ceil(channels / d): the last subspace may be partial (conv1: 3 channels, d = 8).
    pub fn subspaces(&self, channels: usize) -> usize {
        channels.div_ceil(self.d)
    }
}

/// A whole network: input shape and the ordered layer list.
#[derive(Clone, Debug, PartialEq)]
pub struct Architecture {
    /// What the network is called in messages and provenance ("AlexNet", "VGG-16", ...).
    pub name: &'static str,
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

/// AlexNet's and CaffeNet's LRN (Caffe's bvlc_alexnet / bvlc_reference_caffenet).
const LRN: LrnSpec = LrnSpec {
    size: 5,
    alpha: 1e-4,
    beta: 0.75,
    k: 1.0,
};
/// CNN-S's LRN (Chatfield et al.'s VGG_CNN_S: alpha 5e-4, k 2).
const LRN_CNN_S: LrnSpec = LrnSpec {
    size: 5,
    alpha: 5e-4,
    beta: 0.75,
    k: 2.0,
};

/// Max pooling of `kernel` × `kernel`, stride `stride`, no padding.
const fn pool(kernel: usize, stride: usize) -> LayerKind {
    LayerKind::MaxPool(PoolSpec {
        kernel,
        stride,
        pad: 0,
    })
}

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

fn layer(name: &'static str, kind: LayerKind) -> Layer {
    Layer { name, kind }
}

/// fc6, fc7 (4096 each, ReLU, dropout) and fc8 (1000 classes) with the softmax: the
/// classifier every network of the paper ends with.
fn classifier() -> Vec<Layer> {
    use LayerKind::*;
    vec![
        layer("fc6", Fc { out: 4096 }),
        layer("relu6", Relu),
        layer("drop6", Dropout),
        layer("fc7", Fc { out: 4096 }),
        layer("relu7", Relu),
        layer("drop7", Dropout),
        layer("fc8", Fc { out: 1000 }),
        layer("prob", Softmax),
    ]
}

/// BVLC AlexNet, the 23-layer list of METHOD.md (input 3×227×227, B, G, R).
pub fn alexnet() -> Architecture {
    use LayerKind::*;
    let mut layers = vec![
        layer("conv1", conv(96, 11, 4, 0, 1)),
        layer("relu1", Relu),
        layer("norm1", Lrn(LRN)),
        layer("pool1", pool(3, 2)),
        layer("conv2", conv(256, 5, 1, 2, 2)),
        layer("relu2", Relu),
        layer("norm2", Lrn(LRN)),
        layer("pool2", pool(3, 2)),
    ];
    layers.extend(alexnet_conv3_to_pool5());
    layers.extend(classifier());
    Architecture {
        name: "AlexNet",
        input: Shape::new(3, 227, 227),
        layers,
    }
}

/// BVLC reference CaffeNet: AlexNet with pooling before LRN in the first two stages
/// (23 layers, input 3×227×227).
pub fn caffenet() -> Architecture {
    use LayerKind::*;
    let mut layers = vec![
        layer("conv1", conv(96, 11, 4, 0, 1)),
        layer("relu1", Relu),
        layer("pool1", pool(3, 2)),
        layer("norm1", Lrn(LRN)),
        layer("conv2", conv(256, 5, 1, 2, 2)),
        layer("relu2", Relu),
        layer("pool2", pool(3, 2)),
        layer("norm2", Lrn(LRN)),
    ];
    layers.extend(alexnet_conv3_to_pool5());
    layers.extend(classifier());
    Architecture {
        name: "CaffeNet",
        input: Shape::new(3, 227, 227),
        layers,
    }
}

/// conv3–conv5 and pool5, shared by AlexNet and CaffeNet.
fn alexnet_conv3_to_pool5() -> Vec<Layer> {
    use LayerKind::*;
    vec![
        layer("conv3", conv(384, 3, 1, 1, 1)),
        layer("relu3", Relu),
        layer("conv4", conv(384, 3, 1, 1, 2)),
        layer("relu4", Relu),
        layer("conv5", conv(256, 3, 1, 1, 2)),
        layer("relu5", Relu),
        layer("pool5", pool(3, 2)),
    ]
}

/// CNN-S of Chatfield et al. 2014 ("Return of the Devil in the Details", Caffe's VGG_CNN_S),
/// 22 layers, input 3×224×224: conv1 96 × 7×7 stride 2, LRN (k = 2), 3×3 pooling stride 3;
/// conv2 256 × 5×5 pad 1, 2×2 pooling; conv3–conv5 512 × 3×3 pad 1, 3×3 pooling stride 3
/// (6×6×512 = 18432 inputs to fc6). The same list as the authors' `ConfigLayer_VggCnnS`.
pub fn cnn_s() -> Architecture {
    use LayerKind::*;
    let mut layers = vec![
        layer("conv1", conv(96, 7, 2, 0, 1)),
        layer("relu1", Relu),
        layer("norm1", Lrn(LRN_CNN_S)),
        layer("pool1", pool(3, 3)),
        layer("conv2", conv(256, 5, 1, 1, 1)),
        layer("relu2", Relu),
        layer("pool2", pool(2, 2)),
        layer("conv3", conv(512, 3, 1, 1, 1)),
        layer("relu3", Relu),
        layer("conv4", conv(512, 3, 1, 1, 1)),
        layer("relu4", Relu),
        layer("conv5", conv(512, 3, 1, 1, 1)),
        layer("relu5", Relu),
        layer("pool5", pool(3, 3)),
    ];
    layers.extend(classifier());
    Architecture {
        name: "CNN-S",
        input: Shape::new(3, 224, 224),
        layers,
    }
}

/// VGG-16 (Simonyan and Zisserman, configuration D), 39 layers, input 3×224×224: 13 convs
/// of 3×3, stride 1, pad 1 in five stages of 64, 128, 256, 512, 512 channels, each stage
/// closed by 2×2 max pooling, stride 2; no LRN (7×7×512 = 25088 inputs to fc6).
pub fn vgg16() -> Architecture {
    use LayerKind::*;
    let mut layers = Vec::new();
    for c in VGG16_CONVS {
        layers.push(layer(c.conv, conv(c.channels, 3, 1, 1, 1)));
        layers.push(layer(c.relu, Relu));
        if let Some(pool_name) = c.closes_stage {
            layers.push(layer(pool_name, pool(2, 2)));
        }
    }
    layers.extend(classifier());
    Architecture {
        name: "VGG-16",
        input: Shape::new(3, 224, 224),
        layers,
    }
}

/// One 3×3 conv of VGG-16 with its ReLU, and the pooling layer that follows it when it
/// closes a stage.
struct VggConv {
    conv: &'static str,
    relu: &'static str,
    channels: usize,
    closes_stage: Option<&'static str>,
}

const fn vgg(
    conv: &'static str,
    relu: &'static str,
    channels: usize,
    closes_stage: Option<&'static str>,
) -> VggConv {
    VggConv {
        conv,
        relu,
        channels,
        closes_stage,
    }
}

const VGG16_CONVS: [VggConv; 13] = [
    vgg("conv1_1", "relu1_1", 64, None),
    vgg("conv1_2", "relu1_2", 64, Some("pool1")),
    vgg("conv2_1", "relu2_1", 128, None),
    vgg("conv2_2", "relu2_2", 128, Some("pool2")),
    vgg("conv3_1", "relu3_1", 256, None),
    vgg("conv3_2", "relu3_2", 256, None),
    vgg("conv3_3", "relu3_3", 256, Some("pool3")),
    vgg("conv4_1", "relu4_1", 512, None),
    vgg("conv4_2", "relu4_2", 512, None),
    vgg("conv4_3", "relu4_3", 512, Some("pool4")),
    vgg("conv5_1", "relu5_1", 512, None),
    vgg("conv5_2", "relu5_2", 512, None),
    vgg("conv5_3", "relu5_3", 512, Some("pool5")),
];

/// The four ImageNet networks of the paper (its speed-up, compression and accuracy table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetworkKind {
    AlexNet,
    CaffeNet,
    CnnS,
    Vgg16,
}

impl NetworkKind {
    pub const ALL: [NetworkKind; 4] = [
        NetworkKind::AlexNet,
        NetworkKind::CaffeNet,
        NetworkKind::CnnS,
        NetworkKind::Vgg16,
    ];

    /// The CLI value: `alexnet`, `caffenet`, `cnn-s`, `vgg16`.
    pub fn name(self) -> &'static str {
        match self {
            NetworkKind::AlexNet => "alexnet",
            NetworkKind::CaffeNet => "caffenet",
            NetworkKind::CnnS => "cnn-s",
            NetworkKind::Vgg16 => "vgg16",
        }
    }

    /// The layer list.
    pub fn architecture(self) -> Architecture {
        match self {
            NetworkKind::AlexNet => alexnet(),
            NetworkKind::CaffeNet => caffenet(),
            NetworkKind::CnnS => cnn_s(),
            NetworkKind::Vgg16 => vgg16(),
        }
    }

    /// The quantization the paper's tables use for this network (see [`PAPER_SETTINGS`]).
    pub fn default_quantization(self) -> QuantSettings {
        PAPER_SETTINGS
    }
}

impl std::fmt::Display for NetworkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for NetworkKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let wanted = s.trim().to_ascii_lowercase();
        NetworkKind::ALL
            .into_iter()
            .find(|n| n.name() == wanted || n.name().replace('-', "") == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = NetworkKind::ALL.iter().map(|n| n.name()).collect();
                format!("unknown network '{s}' (known: {})", names.join(", "))
            })
    }
}

/// d/K per layer type: every conv layer, every fc layer but the last, the last fc layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantSettings {
    pub conv: QuantSpec,
    pub fc: QuantSpec,
    pub last_fc: QuantSpec,
}

/// The authors' settings: conv d = 8, K = 128; fc6–fc7 d = 4, K = 32; fc8 d = 1, K = 16.
/// They are read off the authors' released AlexNet (the dims of its `ctrdLst` files; its
/// README's theoretical speed-up 4.15× follows from them, METHOD.md). The paper applies one
/// setting per layer type to all four networks, so these are every network's defaults.
pub const PAPER_SETTINGS: QuantSettings = QuantSettings {
    conv: QuantSpec { d: 8, k: 128 },
    fc: QuantSpec { d: 4, k: 32 },
    last_fc: QuantSpec { d: 1, k: 16 },
};

impl QuantSettings {
    /// One spec per conv/fc layer of `arch`, in `param_layers()` order.
    pub fn specs(&self, arch: &Architecture) -> Vec<QuantSpec> {
        let layers = arch.param_layers();
        let last_fc = layers.iter().rposition(|p| p.kind == ParamKind::Fc);
        layers
            .iter()
            .enumerate()
            .map(|(i, p)| match p.kind {
                ParamKind::Conv(_) => self.conv,
                ParamKind::Fc if Some(i) == last_fc => self.last_fc,
                ParamKind::Fc => self.fc,
            })
            .collect()
    }
}

/// The authors' quantization of `arch`: [`PAPER_SETTINGS`] per layer type.
pub fn authors_quantization(arch: &Architecture) -> Vec<QuantSpec> {
    PAPER_SETTINGS.specs(arch)
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
    fn the_four_networks_have_their_published_shapes() {
        let check = |a: Architecture, layers: usize, at: &[(&str, Shape)], fc6_in: usize| {
            assert_eq!(a.layers.len(), layers, "{}", a.name);
            let s = a.shapes();
            for (name, want) in at {
                assert_eq!(s[a.position(name).unwrap()], *want, "{} {name}", a.name);
            }
            let fc6 = a
                .param_layers()
                .into_iter()
                .find(|p| p.kind == ParamKind::Fc);
            assert_eq!(fc6.unwrap().input.len(), fc6_in, "{}", a.name);
            assert_eq!(*s.last().unwrap(), Shape::new(1000, 1, 1));
        };
        check(
            caffenet(),
            23,
            &[
                ("pool1", Shape::new(96, 27, 27)),
                ("norm1", Shape::new(96, 27, 27)),
                ("pool2", Shape::new(256, 13, 13)),
            ],
            9216,
        );
        // Chatfield et al. 2014, Table 1: CNN-S.
        check(
            cnn_s(),
            22,
            &[
                ("conv1", Shape::new(96, 109, 109)),
                ("pool1", Shape::new(96, 37, 37)),
                ("conv2", Shape::new(256, 35, 35)),
                ("pool2", Shape::new(256, 18, 18)),
                ("conv5", Shape::new(512, 18, 18)),
                ("pool5", Shape::new(512, 6, 6)),
            ],
            18432,
        );
        check(
            vgg16(),
            39,
            &[
                ("conv1_2", Shape::new(64, 224, 224)),
                ("pool1", Shape::new(64, 112, 112)),
                ("conv3_3", Shape::new(256, 56, 56)),
                ("conv5_3", Shape::new(512, 14, 14)),
                ("pool5", Shape::new(512, 7, 7)),
            ],
            25088,
        );
        assert_eq!(vgg16().param_layers().len(), 16);
        // CaffeNet differs from AlexNet only in the order of pooling and LRN.
        let (a, c) = (alexnet(), caffenet());
        assert_eq!(a.param_layers(), c.param_layers());
        assert_ne!(a.layers, c.layers);
    }

    #[test]
    fn network_names_round_trip() {
        for n in NetworkKind::ALL {
            assert_eq!(n.name().parse::<NetworkKind>(), Ok(n));
        }
        assert_eq!("VGG16".parse::<NetworkKind>(), Ok(NetworkKind::Vgg16));
        assert_eq!("cnns".parse::<NetworkKind>(), Ok(NetworkKind::CnnS));
        let err = "resnet".parse::<NetworkKind>().unwrap_err();
        assert!(err.contains("alexnet, caffenet, cnn-s, vgg16"), "{err}");
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
