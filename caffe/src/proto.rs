//! The few `caffe.proto` messages a feed-forward CNN needs, written by hand with `prost`
//! derives (no protoc), field numbers as in BVLC Caffe's `src/caffe/proto/caffe.proto`
//! (proto2). Both the current `layer` (LayerParameter, type as a string) and the deprecated
//! `layers` (V1LayerParameter, type as an enum) lists are read: the published models of
//! the paper's era (VGG_CNN_S, VGG-16) use the V1 form. Fields we never read are left out;
//! the decoder skips them as unknown fields. Integers Caffe declares uint32 are read as
//! uint64 (the same varint on the wire).

/// `caffe.BlobShape`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlobShape {
    #[prost(int64, repeated, tag = "1")]
    pub dim: Vec<i64>,
}

/// `caffe.BlobProto`: a weight or bias array.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlobProto {
    #[prost(message, optional, tag = "7")]
    pub shape: Option<BlobShape>,
    #[prost(float, repeated, tag = "5")]
    pub data: Vec<f32>,
    #[prost(double, repeated, tag = "8")]
    pub double_data: Vec<f64>,
    /// Legacy 4-D dims (num, channels, height, width) when `shape` is absent.
    #[prost(int64, optional, tag = "1")]
    pub num: Option<i64>,
    #[prost(int64, optional, tag = "2")]
    pub channels: Option<i64>,
    #[prost(int64, optional, tag = "3")]
    pub height: Option<i64>,
    #[prost(int64, optional, tag = "4")]
    pub width: Option<i64>,
}

/// `caffe.NetParameter`: a whole net (a `.caffemodel` holds one with the blobs).
#[derive(Clone, PartialEq, prost::Message)]
pub struct NetParameter {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, repeated, tag = "3")]
    pub input: Vec<String>,
    #[prost(message, repeated, tag = "8")]
    pub input_shape: Vec<BlobShape>,
    #[prost(int64, repeated, tag = "4")]
    pub input_dim: Vec<i64>,
    #[prost(message, repeated, tag = "100")]
    pub layer: Vec<LayerParameter>,
    #[prost(message, repeated, tag = "2")]
    pub layers: Vec<V1LayerParameter>,
}

/// `caffe.LayerParameter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LayerParameter {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub r#type: Option<String>,
    #[prost(string, repeated, tag = "3")]
    pub bottom: Vec<String>,
    #[prost(string, repeated, tag = "4")]
    pub top: Vec<String>,
    #[prost(message, repeated, tag = "7")]
    pub blobs: Vec<BlobProto>,
    #[prost(message, optional, tag = "106")]
    pub convolution_param: Option<ConvolutionParameter>,
    #[prost(message, optional, tag = "117")]
    pub inner_product_param: Option<InnerProductParameter>,
    #[prost(message, optional, tag = "118")]
    pub lrn_param: Option<LrnParameter>,
    #[prost(message, optional, tag = "121")]
    pub pooling_param: Option<PoolingParameter>,
    #[prost(message, optional, tag = "125")]
    pub softmax_param: Option<SoftmaxParameter>,
    #[prost(message, optional, tag = "143")]
    pub input_param: Option<InputParameter>,
}

/// `caffe.V1LayerParameter` (the deprecated `layers` list).
#[derive(Clone, PartialEq, prost::Message)]
pub struct V1LayerParameter {
    #[prost(string, repeated, tag = "2")]
    pub bottom: Vec<String>,
    #[prost(string, repeated, tag = "3")]
    pub top: Vec<String>,
    #[prost(string, optional, tag = "4")]
    pub name: Option<String>,
    /// `V1LayerParameter.LayerType`, see [`v1_type_name`].
    #[prost(int32, optional, tag = "5")]
    pub r#type: Option<i32>,
    #[prost(message, repeated, tag = "6")]
    pub blobs: Vec<BlobProto>,
    #[prost(message, optional, tag = "10")]
    pub convolution_param: Option<ConvolutionParameter>,
    #[prost(message, optional, tag = "17")]
    pub inner_product_param: Option<InnerProductParameter>,
    #[prost(message, optional, tag = "18")]
    pub lrn_param: Option<LrnParameter>,
    #[prost(message, optional, tag = "19")]
    pub pooling_param: Option<PoolingParameter>,
    #[prost(message, optional, tag = "39")]
    pub softmax_param: Option<SoftmaxParameter>,
}

/// `caffe.ConvolutionParameter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConvolutionParameter {
    #[prost(uint64, optional, tag = "1")]
    pub num_output: Option<u64>,
    #[prost(bool, optional, tag = "2")]
    pub bias_term: Option<bool>,
    #[prost(uint64, repeated, tag = "3")]
    pub pad: Vec<u64>,
    #[prost(uint64, repeated, tag = "4")]
    pub kernel_size: Vec<u64>,
    #[prost(uint64, repeated, tag = "6")]
    pub stride: Vec<u64>,
    #[prost(uint64, repeated, tag = "18")]
    pub dilation: Vec<u64>,
    #[prost(uint64, optional, tag = "9")]
    pub pad_h: Option<u64>,
    #[prost(uint64, optional, tag = "10")]
    pub pad_w: Option<u64>,
    #[prost(uint64, optional, tag = "11")]
    pub kernel_h: Option<u64>,
    #[prost(uint64, optional, tag = "12")]
    pub kernel_w: Option<u64>,
    #[prost(uint64, optional, tag = "13")]
    pub stride_h: Option<u64>,
    #[prost(uint64, optional, tag = "14")]
    pub stride_w: Option<u64>,
    #[prost(uint64, optional, tag = "5")]
    pub group: Option<u64>,
}

/// `caffe.PoolingParameter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PoolingParameter {
    /// 0 MAX, 1 AVE, 2 STOCHASTIC.
    #[prost(int32, optional, tag = "1")]
    pub pool: Option<i32>,
    #[prost(uint64, repeated, tag = "4")]
    pub pad: Vec<u64>,
    #[prost(uint64, optional, tag = "9")]
    pub pad_h: Option<u64>,
    #[prost(uint64, optional, tag = "10")]
    pub pad_w: Option<u64>,
    #[prost(uint64, repeated, tag = "2")]
    pub kernel_size: Vec<u64>,
    #[prost(uint64, optional, tag = "5")]
    pub kernel_h: Option<u64>,
    #[prost(uint64, optional, tag = "6")]
    pub kernel_w: Option<u64>,
    #[prost(uint64, repeated, tag = "3")]
    pub stride: Vec<u64>,
    #[prost(uint64, optional, tag = "7")]
    pub stride_h: Option<u64>,
    #[prost(uint64, optional, tag = "8")]
    pub stride_w: Option<u64>,
    #[prost(bool, optional, tag = "12")]
    pub global_pooling: Option<bool>,
}

/// `caffe.LRNParameter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LrnParameter {
    #[prost(uint64, optional, tag = "1")]
    pub local_size: Option<u64>,
    #[prost(float, optional, tag = "2")]
    pub alpha: Option<f32>,
    #[prost(float, optional, tag = "3")]
    pub beta: Option<f32>,
    /// 0 ACROSS_CHANNELS, 1 WITHIN_CHANNEL.
    #[prost(int32, optional, tag = "4")]
    pub norm_region: Option<i32>,
    #[prost(float, optional, tag = "5")]
    pub k: Option<f32>,
}

/// `caffe.InnerProductParameter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InnerProductParameter {
    #[prost(uint64, optional, tag = "1")]
    pub num_output: Option<u64>,
    #[prost(bool, optional, tag = "2")]
    pub bias_term: Option<bool>,
    #[prost(int64, optional, tag = "5")]
    pub axis: Option<i64>,
    #[prost(bool, optional, tag = "6")]
    pub transpose: Option<bool>,
}

/// `caffe.SoftmaxParameter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SoftmaxParameter {
    #[prost(int64, optional, tag = "2")]
    pub axis: Option<i64>,
}

/// `caffe.InputParameter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InputParameter {
    #[prost(message, repeated, tag = "1")]
    pub shape: Vec<BlobShape>,
}

/// The current-style type name of a `V1LayerParameter.LayerType` value (the ones a
/// classification net uses; others are named by number).
pub fn v1_type_name(value: i32) -> String {
    let name = match value {
        1 => "Accuracy",
        4 => "Convolution",
        5 => "Data",
        6 => "Dropout",
        8 => "Flatten",
        12 => "ImageData",
        14 => "InnerProduct",
        15 => "LRN",
        17 => "Pooling",
        18 => "ReLU",
        20 => "Softmax",
        21 => "SoftmaxWithLoss",
        22 => "Split",
        29 => "MemoryData",
        _ => return format!("V1 layer type {value}"),
    };
    name.to_string()
}

/// The `V1LayerParameter.LayerType` value of a current-style type name (for writing V1
/// nets in tests).
pub fn v1_type_value(name: &str) -> Option<i32> {
    (0..64).find(|&v| v1_type_name(v) == name)
}
