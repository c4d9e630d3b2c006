//! The embedded synthetic model and images: deterministic, quantized as the authors did, and
//! alive through every layer (checked with a plain direct-loop forward pass written here).

use qcnn_model::arch::{authors_quantization, ConvSpec, LrnSpec, ParamKind, PoolSpec};
use qcnn_model::synthetic::{synthetic_image, synthetic_model, DEFAULT_SEED};
use qcnn_model::{LayerKind, Model, ModelSource, Shape};

/// Sample standard deviation of the codeword entries against sqrt(2 / fan_in), relative.
const CODEWORD_STD_TOLERANCE: f64 = 0.1;
/// Images: the side of the network input.
const SIDE: usize = 227;

fn image_bytes(x: &[f32]) -> Vec<u8> {
    x.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn same_seed_gives_identical_model_and_images() {
    let (a, b) = (synthetic_model(DEFAULT_SEED), synthetic_model(DEFAULT_SEED));
    assert_eq!(a, b);
    for i in [0, 1, 7] {
        let (x, y) = (
            synthetic_image(DEFAULT_SEED, i),
            synthetic_image(DEFAULT_SEED, i),
        );
        assert_eq!(image_bytes(&x), image_bytes(&y));
    }
}

#[test]
fn different_seeds_or_indices_differ() {
    let (a, b) = (
        synthetic_model(DEFAULT_SEED),
        synthetic_model(DEFAULT_SEED + 1),
    );
    assert_eq!(a.source, ModelSource::Synthetic { seed: DEFAULT_SEED });
    for (pa, pb) in a.params.iter().zip(&b.params) {
        let (ca, cb) = (
            pa.codebooks.as_ref().unwrap(),
            pb.codebooks.as_ref().unwrap(),
        );
        assert_ne!(ca.centroids, cb.centroids);
        assert_ne!(ca.assignments, cb.assignments);
        assert_ne!(pa.bias, pb.bias);
    }
    // Layers use separate streams: no two layers share their codeword values.
    assert_ne!(
        a.params[2].codebooks.as_ref().unwrap().centroids[..64],
        a.params[3].codebooks.as_ref().unwrap().centroids[..64]
    );
    let x0 = synthetic_image(DEFAULT_SEED, 0);
    assert_ne!(x0, synthetic_image(DEFAULT_SEED + 1, 0));
    assert_ne!(x0, synthetic_image(DEFAULT_SEED, 1));
}

#[test]
fn model_is_quantized_like_the_authors_alexnet() {
    let model = synthetic_model(DEFAULT_SEED);
    let specs = authors_quantization(&model.arch);
    let names: Vec<_> = model
        .params
        .iter()
        .map(|p| model.arch.layers[p.shape.index].name)
        .collect();
    assert_eq!(
        names,
        ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    );
    let want_dk = [
        (8, 128),
        (8, 128),
        (8, 128),
        (8, 128),
        (8, 128),
        (4, 32),
        (4, 32),
        (1, 16),
    ];
    for ((p, spec), (d, k)) in model.params.iter().zip(&specs).zip(want_dk) {
        let name = model.arch.layers[p.shape.index].name;
        let cb = p.codebooks.as_ref().expect("codebooks");
        assert_eq!((cb.spec.d, cb.spec.k), (d, k), "{name}");
        assert_eq!(cb.spec, *spec, "{name}");
        let m = p.shape.split_channels().div_ceil(d);
        assert_eq!(cb.subspaces, m, "{name}");
        assert_eq!(cb.centroids.len(), m * k * d, "{name}: layout (M, K, d)");
        let c_t = p.shape.out_channels();
        assert_eq!(cb.assignments.len(), c_t * p.shape.taps() * m, "{name}");
        assert!(cb.assignments.iter().all(|&b| (b as usize) < k), "{name}");
        // Every codeword is used somewhere (no dead half of the codebook).
        let mut used = vec![false; k];
        cb.assignments.iter().for_each(|&b| used[b as usize] = true);
        assert!(used.iter().all(|&u| u), "{name}");
        assert!(
            p.dense.is_none(),
            "{name}: dense weights are rebuilt, not stored"
        );
        assert_eq!(p.dense_weights().len(), p.shape.weight_count(), "{name}");
        assert_eq!(p.bias.len(), c_t, "{name}");
        assert!(p.bias.iter().all(|&b| (0.0..1.0).contains(&b)), "{name}");
    }
    let m = |name| {
        model
            .params
            .iter()
            .find(|p| model.arch.layers[p.shape.index].name == name)
    };
    // conv1: 3 input channels, d = 8: one partial subspace.
    assert_eq!(m("conv1").unwrap().codebooks.as_ref().unwrap().subspaces, 1);
    assert_eq!(
        m("fc6").unwrap().codebooks.as_ref().unwrap().subspaces,
        2304
    );
    assert_eq!(
        m("fc8").unwrap().codebooks.as_ref().unwrap().subspaces,
        4096
    );
}

#[test]
fn codewords_have_he_scale() {
    let model = synthetic_model(DEFAULT_SEED);
    for p in &model.params {
        let name = model.arch.layers[p.shape.index].name;
        let cb = p.codebooks.as_ref().unwrap();
        let n = cb.centroids.len() as f64;
        let mean = cb.centroids.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = cb
            .centroids
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let want = (2.0 / (p.shape.split_channels() * p.shape.taps()) as f64).sqrt();
        let rel = (var.sqrt() - want).abs() / want;
        assert!(
            rel < CODEWORD_STD_TOLERANCE,
            "{name}: std {} vs {want}",
            var.sqrt()
        );
    }
}

#[test]
fn images_have_imagenet_range_and_spatial_structure() {
    for i in 0..4 {
        let x = synthetic_image(DEFAULT_SEED, i);
        assert_eq!(x.len(), 3 * SIDE * SIDE);
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let (lo, hi) = x
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        // Horizontal neighbours of a natural image are strongly correlated; i.i.d. noise is not.
        let mut cov = 0.0;
        for c in 0..3 {
            for y in 0..SIDE {
                for xx in 0..SIDE - 1 {
                    let at = |j: usize| x[(c * SIDE + y) * SIDE + j] as f64 - mean;
                    cov += at(xx) * at(xx + 1);
                }
            }
        }
        let corr = cov / (3.0 * (SIDE * (SIDE - 1)) as f64) / var;
        eprintln!(
            "image {i}: mean {mean:.1}, std {:.1}, range [{lo:.1}, {hi:.1}], neighbour corr {corr:.3}",
            var.sqrt()
        );
        assert!(lo >= -123.0 && hi <= 152.0, "[{lo}, {hi}]");
        assert!(mean.abs() < 60.0 && (20.0..90.0).contains(&var.sqrt()));
        assert!(corr > 0.8, "neighbour correlation {corr}");
    }
}

#[test]
fn every_layer_stays_alive_for_synthetic_images() {
    for (seed, images) in [(DEFAULT_SEED, 0..3), (1, 0..1)] {
        let model = synthetic_model(seed);
        for i in images {
            let outputs = reference_forward(&model, &synthetic_image(seed, i));
            for ((layer, out), shape) in model
                .arch
                .layers
                .iter()
                .zip(&outputs)
                .zip(model.arch.shapes())
            {
                assert_eq!(out.len(), shape.len(), "{}", layer.name);
                assert!(
                    out.iter().all(|v| v.is_finite()),
                    "seed {seed} image {i} {}",
                    layer.name
                );
                let positive = out.iter().filter(|&&v| v > 0.0).count() as f64 / out.len() as f64;
                let max = out.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                eprintln!(
                    "seed {seed} image {i} {:6}: positive {positive:.3}, max |y| {max:.3e}",
                    layer.name
                );
                if matches!(layer.kind, LayerKind::Relu) {
                    assert!(
                        positive > 0.0,
                        "seed {seed} image {i}: {} all zero",
                        layer.name
                    );
                }
            }
            let logits = &outputs[model.arch.position("fc8").unwrap()];
            assert!(
                logits.iter().any(|&v| v != logits[0]),
                "fc8 logits all equal"
            );
        }
    }
}

/// A plain forward pass, one `Vec` per layer, straight from METHOD.md's formulas.
fn reference_forward(model: &Model, input: &[f32]) -> Vec<Vec<f32>> {
    let mut outputs: Vec<Vec<f32>> = Vec::new();
    let mut shape = model.arch.input;
    let mut x = input.to_vec();
    for (index, (layer, out_shape)) in model
        .arch
        .layers
        .iter()
        .zip(model.arch.shapes())
        .enumerate()
    {
        x = match layer.kind {
            LayerKind::Conv(spec) => {
                let p = model.params_of(index).unwrap();
                conv(&x, shape, out_shape, spec, &p.dense_weights(), &p.bias)
            }
            LayerKind::Fc { .. } => {
                let p = model.params_of(index).unwrap();
                assert!(matches!(p.shape.kind, ParamKind::Fc));
                fc(&x, &p.dense_weights(), &p.bias)
            }
            LayerKind::Relu => x.iter().map(|&v| v.max(0.0)).collect(),
            LayerKind::Lrn(spec) => lrn(&x, shape, spec),
            LayerKind::MaxPool(spec) => max_pool(&x, shape, out_shape, spec),
            LayerKind::Dropout => x,
            LayerKind::Softmax => softmax(&x),
        };
        outputs.push(x.clone());
        shape = out_shape;
    }
    outputs
}

/// y[t][q] = b[t] + Σ_c Σ_(i,j) W[t][c][i][j] · x[g·C_s/G + c][q·s − p + (i, j)].
fn conv(x: &[f32], input: Shape, output: Shape, s: ConvSpec, w: &[f32], bias: &[f32]) -> Vec<f32> {
    let (c_in_g, c_out_g) = (input.c / s.groups, output.c / s.groups);
    let k = s.kernel;
    let mut y = vec![0.0f32; output.len()];
    for t in 0..output.c {
        let g = t / c_out_g;
        let out = &mut y[t * output.h * output.w..(t + 1) * output.h * output.w];
        out.fill(bias[t]);
        for c in 0..c_in_g {
            let plane = &x[(g * c_in_g + c) * input.h * input.w..][..input.h * input.w];
            for i in 0..k {
                for j in 0..k {
                    let wv = w[((t * c_in_g + c) * k + i) * k + j];
                    for oy in 0..output.h {
                        let Some(iy) = (oy * s.stride + i)
                            .checked_sub(s.pad)
                            .filter(|&v| v < input.h)
                        else {
                            continue;
                        };
                        for ox in 0..output.w {
                            if let Some(ix) = (ox * s.stride + j)
                                .checked_sub(s.pad)
                                .filter(|&v| v < input.w)
                            {
                                out[oy * output.w + ox] += wv * plane[iy * input.w + ix];
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

fn fc(x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
    bias.iter()
        .enumerate()
        .map(|(t, b)| {
            b + w[t * x.len()..(t + 1) * x.len()]
                .iter()
                .zip(x)
                .map(|(a, b)| a * b)
                .sum::<f32>()
        })
        .collect()
}

/// y = x / (k + alpha/size · Σ x²)^beta over the `size` channels centred on c.
fn lrn(x: &[f32], s: Shape, spec: LrnSpec) -> Vec<f32> {
    let plane = s.h * s.w;
    let half = spec.size / 2;
    let mut y = vec![0.0f32; x.len()];
    for c in 0..s.c {
        let (lo, hi) = (c.saturating_sub(half), (c + half).min(s.c - 1));
        for p in 0..plane {
            let sq: f32 = (lo..=hi).map(|n| x[n * plane + p].powi(2)).sum();
            let scale = spec.k + spec.alpha / spec.size as f32 * sq;
            y[c * plane + p] = x[c * plane + p] / scale.powf(spec.beta);
        }
    }
    y
}

fn max_pool(x: &[f32], input: Shape, output: Shape, s: PoolSpec) -> Vec<f32> {
    assert_eq!(s.pad, 0);
    let mut y = vec![f32::MIN; output.len()];
    for c in 0..output.c {
        for oy in 0..output.h {
            for ox in 0..output.w {
                let out = &mut y[(c * output.h + oy) * output.w + ox];
                for iy in oy * s.stride..(oy * s.stride + s.kernel).min(input.h) {
                    for ix in ox * s.stride..(ox * s.stride + s.kernel).min(input.w) {
                        *out = out.max(x[(c * input.h + iy) * input.w + ix]);
                    }
                }
            }
        }
    }
    y
}

fn softmax(x: &[f32]) -> Vec<f32> {
    let max = x.iter().fold(f32::MIN, |m, &v| m.max(v));
    let e: Vec<f32> = x.iter().map(|&v| (v - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}
