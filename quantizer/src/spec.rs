//! Which (d, K) each layer gets, and the checks a setting must pass before any work starts.
//!
//! Glossary: d dims per subspace, K codewords per sub-codebook, M = ceil(channels / d)
//! subspaces, C_t output channels, kh·kw kernel taps (1 for fc).

use qcnn_model::arch::{Architecture, ParamKind, ParamShape, QuantSettings, QuantSpec};

use crate::error::{QuantizeError, Result};

/// At most this many codewords: indices are stored as bytes (FORMAT.md, `.cbn` b ≤ 8).
pub const MAX_CODEWORDS: usize = 256;

/// Parses `d/K`, e.g. `8/128`.
pub fn parse_spec(text: &str) -> Result<QuantSpec, String> {
    let (d, k) = text
        .split_once('/')
        .ok_or_else(|| format!("'{text}': expected d/K, e.g. 8/128"))?;
    let number = |s: &str, what: &str| {
        s.trim().parse::<usize>().map_err(|_| {
            format!("'{text}': {what} '{s}' is not a whole number (expected d/K, e.g. 8/128)")
        })
    };
    Ok(QuantSpec {
        d: number(d, "d")?,
        k: number(k, "K")?,
    })
}

/// One spec per conv/fc layer of `arch`, in `param_layers()` order: `conv` for conv layers,
/// `fc` for fc layers but the last one, `last_fc` for the last fc layer (AlexNet's fc8, which
/// the authors quantize with d = 1, K = 16).
pub fn layer_specs(
    arch: &Architecture,
    conv: QuantSpec,
    fc: QuantSpec,
    last_fc: QuantSpec,
) -> Vec<QuantSpec> {
    QuantSettings { conv, fc, last_fc }.specs(arch)
}

/// Checks that layer `layer` (shape `shape`) can be product-quantized with `spec`:
/// - d ≥ 1 and 1 ≤ K ≤ 256 (indices are bytes);
/// - d divides the channels a sub-vector runs over (C_s/groups for conv, C_s for fc), so
///   that every subspace has d real dims as in the paper; the one exception is a layer with
///   fewer channels than d (conv1: 3 channels, d = 8), which gets one partial subspace
///   (METHOD.md: "only the first C_s/groups dims of each codeword are used");
/// - K ≤ the number of sub-vectors k-means clusters per subspace (C_t·kh·kw).
pub fn check_spec(layer: &str, shape: &ParamShape, spec: QuantSpec) -> Result<()> {
    let fail = |problem: String| {
        Err(QuantizeError::Spec {
            layer: layer.to_string(),
            d: spec.d,
            k: spec.k,
            problem,
        })
    };
    if spec.d == 0 {
        return fail("d must be at least 1".into());
    }
    if spec.k == 0 || spec.k > MAX_CODEWORDS {
        return fail(format!(
            "K must be in 1..={MAX_CODEWORDS} (codeword indices are stored as bytes)"
        ));
    }
    let channels = shape.split_channels();
    let what = match shape.kind {
        ParamKind::Conv(c) if c.groups > 1 => {
            format!("C_s/groups = {channels} input channels per group")
        }
        ParamKind::Conv(_) => format!("C_s = {channels} input channels"),
        ParamKind::Fc => format!("C_s = {channels} inputs"),
    };
    if channels >= spec.d && !channels.is_multiple_of(spec.d) {
        return fail(format!(
            "d must divide the {what} (divisors up to 16: {:?})",
            divisors(channels, 16)
        ));
    }
    let points = shape.out_channels() * shape.taps();
    if spec.k > points {
        return fail(format!(
            "K is larger than the {points} sub-vectors per subspace (C_t·kh·kw = {}·{}) that \
             k-means clusters; use K ≤ {points}",
            shape.out_channels(),
            shape.taps()
        ));
    }
    Ok(())
}

/// Divisors of `n` up to `max`, for error messages.
fn divisors(n: usize, max: usize) -> Vec<usize> {
    (1..=max.min(n)).filter(|&d| n.is_multiple_of(d)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use qcnn_model::arch::{alexnet, authors_quantization};

    #[test]
    fn parses_d_slash_k() {
        assert_eq!(parse_spec("8/128"), Ok(QuantSpec { d: 8, k: 128 }));
        assert_eq!(parse_spec(" 4 / 32 "), Ok(QuantSpec { d: 4, k: 32 }));
        assert!(parse_spec("8x128").is_err());
        assert!(parse_spec("a/128").is_err());
        assert!(parse_spec("8/-1").is_err());
    }

    #[test]
    fn layer_specs_reproduce_the_authors_configuration() {
        let arch = alexnet();
        let specs = layer_specs(
            &arch,
            QuantSpec { d: 8, k: 128 },
            QuantSpec { d: 4, k: 32 },
            QuantSpec { d: 1, k: 16 },
        );
        assert_eq!(specs, authors_quantization(&arch));
    }

    #[test]
    fn the_authors_configuration_passes_every_check() {
        let arch = alexnet();
        for (p, spec) in arch.param_layers().iter().zip(authors_quantization(&arch)) {
            check_spec(arch.layers[p.index].name, p, spec).unwrap();
        }
    }
}
