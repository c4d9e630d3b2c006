//! The embedded defaults: a synthetic, product-quantized network (any of the paper's four) and
//! synthetic input images, generated from a seed, so the benchmark runs without any file.
//!
//! The weights are random but scaled so that every layer stays alive: each codeword entry is
//! N(0, 2 / fan_in) (He initialisation; a rebuilt dense weight *is* a codeword entry, so the
//! dense weights get the same variance). With zero-mean weights and a ReLU after each conv/fc
//! layer the mean square of the activations stays about constant from layer to layer; LRN
//! (alpha/size = 2e-5) shrinks typical values (tens) by about 10 % and squashes only the
//! largest (hundreds, by up to 3–4×), max pooling only raises them, so no layer collapses to
//! zero or explodes (tests/synthetic.rs measured 23–68 % positive values after each ReLU).
//! Biases are small and positive, as in Caffe's AlexNet (0 … 1, against activations of tens).
//! The logits come out with a spread of about ±100, so the softmax is nearly one-hot.
//!
//! Randomness: ChaCha8 seeded with the seed; one stream per conv/fc layer (its index in the
//! layer list) and one per image (`IMAGE_STREAM_BASE + index`), so each piece can be
//! regenerated alone. Normal variates come from Box–Muller over f64 (`ln`, `cos`, `exp` of
//! the platform's libm: identical bytes on one platform, possibly not across platforms).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::arch::{NetworkKind, ParamShape, QuantSpec, Shape};
use crate::weights::{Codebooks, LayerParams};
use crate::{Model, ModelSource};

/// The seed of the default model and images (the paper's CVPR 2016 conference date).
pub const DEFAULT_SEED: u64 = 20160627;

/// Image `i` uses ChaCha8 stream `IMAGE_STREAM_BASE + i`; streams below it belong to layers.
const IMAGE_STREAM_BASE: u64 = 1 << 32;

/// Biases are uniform in this range.
const BIAS_RANGE: std::ops::Range<f32> = 0.0..1.0;

/// AlexNet's input: a synthetic image of [`synthetic_image`] is 3 × 227 × 227.
const ALEXNET_INPUT: Shape = Shape::new(3, 227, 227);
/// Mean of the ImageNet training images per channel, B, G, R: a synthetic image is drawn in
/// 0..=255 around these values and then has them subtracted, like a real preprocessed image.
const CHANNEL_MEAN_BGR: [f32; 3] = [104.0, 117.0, 123.0];
/// Number of smooth blobs per image (drawn uniformly from this range).
const BLOBS: std::ops::Range<usize> = 6..14;
/// Blob radius (standard deviation of the Gaussian, pixels).
const BLOB_SIGMA: std::ops::Range<f32> = 6.0..60.0;
/// Standard deviation of a blob's brightness and of its per-channel colour tint.
const BLOB_BRIGHTNESS_STD: f32 = 70.0;
const BLOB_TINT_STD: f32 = 25.0;
/// Background: a per-channel offset and a linear gradient across the image.
const BACKGROUND_STD: f32 = 25.0;
const GRADIENT_STD: f32 = 30.0;
/// Pixel noise (texture).
const NOISE_STD: f32 = 8.0;

/// The synthetic AlexNet: `alexnet()` quantized as `authors_quantization()` (conv d = 8,
/// K = 128; fc6–fc7 d = 4, K = 32; fc8 d = 1, K = 16), random codebooks, assignments and
/// biases, no dense weights (they are rebuilt from the codebooks on demand).
pub fn synthetic_model(seed: u64) -> Model {
    synthetic_network(NetworkKind::AlexNet, seed)
}

/// The synthetic `network`, quantized with its paper settings
/// ([`NetworkKind::default_quantization`]), as [`synthetic_model`] builds AlexNet.
pub fn synthetic_network(network: NetworkKind, seed: u64) -> Model {
    let arch = network.architecture();
    let specs = network.default_quantization().specs(&arch);
    let params = arch
        .param_layers()
        .into_iter()
        .zip(specs)
        .map(|(shape, spec)| synthetic_layer(seed, shape, spec))
        .collect();
    Model {
        arch,
        params,
        source: ModelSource::Synthetic { seed },
    }
}

/// Synthetic AlexNet input image `index`: layout (3, 227, 227); see [`synthetic_input`].
pub fn synthetic_image(seed: u64, index: usize) -> Vec<f32> {
    synthetic_input(ALEXNET_INPUT, seed, index)
}

/// Synthetic input image `index` for a network whose input is `input` (3 channels, B, G, R,
/// mean subtracted, values in about −123 … 151 like a real preprocessed image): smooth
/// coloured blobs on a gradient background plus pixel noise. The same seed and index give
/// the same scene at every size.
///
/// # Panics
/// If `input` does not have 3 channels (the images are colour images).
pub fn synthetic_input(input: Shape, seed: u64, index: usize) -> Vec<f32> {
    assert_eq!(input.c, 3, "synthetic images have 3 channels (B, G, R)");
    let canvas = Canvas {
        h: input.h,
        w: input.w,
    };
    let mut rng = stream(seed, IMAGE_STREAM_BASE + index as u64);
    let plane = canvas.h * canvas.w;
    let mut img = vec![0.0f32; 3 * plane];
    canvas.add_background(&mut rng, &mut img);
    let blobs = rng.random_range(BLOBS);
    for _ in 0..blobs {
        canvas.add_blob(&mut rng, &mut img);
    }
    for (c, channel) in img.chunks_exact_mut(plane).enumerate() {
        let mean = CHANNEL_MEAN_BGR[c];
        for v in channel {
            let raw = mean + *v + NOISE_STD * gaussian(&mut rng);
            *v = raw.clamp(0.0, 255.0) - mean;
        }
    }
    img
}

/// One conv or fc layer: codeword entries N(0, 2 / fan_in), fan_in = C_s/groups · kh · kw
/// (the real input dims of a weight row; conv1's partial subspace counts its 3 channels).
fn synthetic_layer(seed: u64, shape: ParamShape, spec: QuantSpec) -> LayerParams {
    assert!(spec.k <= 256, "codeword indices are stored as u8");
    let mut rng = stream(seed, shape.index as u64);
    let fan_in = shape.split_channels() * shape.taps();
    let std = (2.0 / fan_in as f64).sqrt() as f32;
    let m = spec.subspaces(shape.split_channels());
    // Layout (M, K, d).
    let centroids = (0..m * spec.k * spec.d)
        .map(|_| std * gaussian(&mut rng))
        .collect();
    // Layout conv (C_t, kh, kw, M), fc (C_t, M).
    let assignments = (0..shape.out_channels() * shape.taps() * m)
        .map(|_| rng.random_range(0..spec.k) as u8)
        .collect();
    // Layout (C_t).
    let bias = (0..shape.out_channels())
        .map(|_| rng.random_range(BIAS_RANGE))
        .collect();
    LayerParams {
        shape,
        bias,
        codebooks: Some(Codebooks {
            spec,
            subspaces: m,
            centroids,
            assignments,
        }),
        dense: None,
    }
}

fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// A standard normal variate (Box–Muller).
fn gaussian(rng: &mut impl Rng) -> f32 {
    // 1 − [0, 1) is in (0, 1]: ln never sees 0.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// The size of a synthetic image.
struct Canvas {
    h: usize,
    w: usize,
}

impl Canvas {
    /// Per-channel offset plus a linear gradient in a random direction, shared by the
    /// channels with a per-channel strength (lighting). Layout of `img`: (3, h, w).
    fn add_background(&self, rng: &mut impl Rng, img: &mut [f32]) {
        let angle = rng.random_range(0.0..std::f32::consts::TAU);
        let (dy, dx) = angle.sin_cos();
        let (cy, cx) = ((self.h - 1) as f32 / 2.0, (self.w - 1) as f32 / 2.0);
        for channel in img.chunks_exact_mut(self.h * self.w) {
            let offset = BACKGROUND_STD * gaussian(rng);
            let strength = GRADIENT_STD * gaussian(rng);
            for (p, v) in channel.iter_mut().enumerate() {
                // Position in about −1 … 1 along the gradient direction.
                let (y, x) = ((p / self.w) as f32, (p % self.w) as f32);
                let along = ((y - cy) * dy + (x - cx) * dx) / cy;
                *v += offset + strength * along;
            }
        }
    }

    /// A Gaussian blob of random centre, radius and colour.
    fn add_blob(&self, rng: &mut impl Rng, img: &mut [f32]) {
        let cy = rng.random_range(0.0..self.h as f32);
        let cx = rng.random_range(0.0..self.w as f32);
        let sigma = rng.random_range(BLOB_SIGMA);
        let brightness = BLOB_BRIGHTNESS_STD * gaussian(rng);
        let colour: [f32; 3] = std::array::from_fn(|_| brightness + BLOB_TINT_STD * gaussian(rng));
        let inv = 1.0 / (2.0 * sigma * sigma);
        let plane = self.h * self.w;
        for p in 0..plane {
            let (y, x) = ((p / self.w) as f32 - cy, (p % self.w) as f32 - cx);
            let shape = (-(y * y + x * x) * inv).exp();
            for (c, amp) in colour.iter().enumerate() {
                img[c * plane + p] += amp * shape;
            }
        }
    }
}
