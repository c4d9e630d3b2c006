//! Error correction's fast steps (BLAS, incremental residuals) against their plain twins
//! (explicit sums, explicit design matrix) on random small layers: groups, stride, padding,
//! 1×1 and 3×3 kernels, partial subspaces, fc layers, sampled columns.

mod common;

use common::values;
use proptest::prelude::*;
use qcnn_model::arch::{ConvSpec, QuantSpec};
use qcnn_model::{Architecture, Codebooks, Layer, LayerKind, Shape};
use qcnn_quantizer::ec::{assignment_step, codebook_step, error_correct, reference};
use qcnn_quantizer::split::Split;
use qcnn_quantizer::{EcParams, EcProblem};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Objective of the fast path (f32 BLAS) vs the f64 twin, relative.
const OBJECTIVE_TOLERANCE: f64 = 1e-4;
/// Codewords from the fast vs the plain normal equations, relative to the largest |codeword|
/// (both solve the same f64 system; the fast one builds it from f32 Gram matrices).
const CODEWORD_TOLERANCE: f32 = 2e-3;
/// The ridge of the twin comparisons: large enough that f32 rounding of H cannot be amplified.
const TEST_RIDGE: f64 = 1e-2;
/// A sweep may not raise the objective by more than this fraction (rounding).
const MONOTONE_SLACK: f64 = 1e-5;
/// Objectives below this fraction of the starting one are f32 rounding noise: the residual
/// Y* − Ŵ·X is formed in f32, so after a near-exact fit its norm is known only to about
/// 1e-3 of the starting residual's (the square of that, relative to the start's square).
const ROUNDING_FLOOR: f64 = 1e-6;

/// A random small layer and its error-correction data.
#[derive(Clone, Debug)]
struct Case {
    arch: Architecture,
    spec: QuantSpec,
    images: usize,
    max_columns: usize,
    seed: u64,
}

fn conv_case() -> impl Strategy<Value = Case> {
    (
        1usize..3,
        1usize..7,
        1usize..4,
        1usize..4,
        1usize..3,
        0usize..2,
        1usize..7,
        1usize..7,
        1usize..5,
        1usize..7,
    )
        .prop_flat_map(|(groups, cin_g, cout_g, kernel, stride, pad, h, w, d, k)| {
            let h = h.max(kernel.saturating_sub(2 * pad));
            let w = w.max(kernel.saturating_sub(2 * pad));
            let arch = Architecture {
                name: "conv",
                input: Shape::new(groups * cin_g, h, w),
                layers: vec![Layer {
                    name: "conv",
                    kind: LayerKind::Conv(ConvSpec {
                        out_channels: groups * cout_g,
                        kernel,
                        stride,
                        pad,
                        groups,
                    }),
                }],
            };
            (
                Just(arch),
                Just(QuantSpec { d, k }),
                1usize..4,
                1usize..60,
                any::<u64>(),
            )
        })
        .prop_map(|(arch, spec, images, max_columns, seed)| Case {
            arch,
            spec,
            images,
            max_columns,
            seed,
        })
}

fn fc_case() -> impl Strategy<Value = Case> {
    (
        1usize..4,
        1usize..3,
        1usize..3,
        1usize..8,
        1usize..5,
        1usize..7,
        1usize..6,
        any::<u64>(),
    )
        .prop_map(|(c, h, w, out, d, k, images, seed)| Case {
            arch: Architecture {
                name: "test",
                input: Shape::new(c, h, w),
                layers: vec![Layer {
                    name: "fc",
                    kind: LayerKind::Fc { out },
                }],
            },
            spec: QuantSpec { d, k },
            images,
            max_columns: 64,
            seed,
        })
}

/// The problem and random codebooks for a case.
fn build(case: &Case) -> (EcProblem, Codebooks) {
    let shape = case.arch.param_layers()[0];
    let mut rng = ChaCha8Rng::seed_from_u64(case.seed);
    let inputs: Vec<Vec<f32>> = (0..case.images)
        .map(|_| values(&mut rng, shape.input.len(), 1.0))
        .collect();
    let responses: Vec<Vec<f32>> = (0..case.images)
        .map(|_| values(&mut rng, shape.output.len(), 2.0))
        .collect();
    let bias = values(&mut rng, shape.out_channels(), 0.5);
    let problem = EcProblem::new(
        &shape,
        case.spec,
        &inputs,
        &responses,
        &bias,
        case.max_columns,
        &mut rng,
    )
    .unwrap();
    let split = Split::new(&shape, case.spec);
    let mut cb = split.empty_codebooks();
    cb.centroids = values(&mut rng, cb.centroids.len(), 1.0);
    for b in &mut cb.assignments {
        *b = rng.random_range(0..case.spec.k) as u8;
    }
    (problem, cb)
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-12)
}

fn check_twins(case: &Case) -> Result<(), TestCaseError> {
    let (problem, cb) = build(case);
    let (fast, slow) = (problem.objective(&cb), reference::objective(&problem, &cb));
    prop_assert!(
        close(fast, slow, OBJECTIVE_TOLERANCE),
        "objective {fast} vs {slow}"
    );
    for m in 0..problem.split().subspaces {
        let (mut fast, mut slow) = (cb.clone(), cb.clone());
        codebook_step(&problem, &mut fast, m, TEST_RIDGE);
        reference::codebook_step(&problem, &mut slow, m, TEST_RIDGE);
        let scale = slow.centroids.iter().fold(1e-6f32, |s, v| s.max(v.abs()));
        for (i, (x, y)) in fast.centroids.iter().zip(&slow.centroids).enumerate() {
            prop_assert!(
                (x - y).abs() <= CODEWORD_TOLERANCE * scale,
                "subspace {m}, centroid float {i}: {x} vs {y}"
            );
        }
        let (mut fast, mut slow) = (cb.clone(), cb.clone());
        assignment_step(&problem, &mut fast, m);
        reference::assignment_step(&problem, &mut slow, m);
        prop_assert_eq!(&fast.assignments, &slow.assignments, "subspace {}", m);
    }
    Ok(())
}

fn check_descent(case: &Case) -> Result<(), TestCaseError> {
    let (problem, mut cb) = build(case);
    let params = EcParams {
        iterations: 3,
        ..EcParams::default()
    };
    let trace = error_correct(&problem, &mut cb, &params, &mut || {});
    for pair in trace.windows(2) {
        prop_assert!(
            pair[1] <= pair[0] * (1.0 + MONOTONE_SLACK) + ROUNDING_FLOOR * trace[0],
            "objective rose: {trace:?}"
        );
    }
    let last = *trace.last().unwrap();
    let slow = reference::objective(&problem, &cb);
    // An exact fit leaves only f32 rounding: compare against the starting objective too.
    let floor = ROUNDING_FLOOR * trace[0];
    prop_assert!(
        (last - slow).abs() <= OBJECTIVE_TOLERANCE * last.max(slow) + floor,
        "final objective {last} vs twin {slow}; trace {trace:?}"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn conv_steps_match_their_twins(case in conv_case()) {
        check_twins(&case)?;
    }

    #[test]
    fn fc_steps_match_their_twins(case in fc_case()) {
        check_twins(&case)?;
    }

    #[test]
    fn conv_error_correction_never_raises_the_objective(case in conv_case()) {
        check_descent(&case)?;
    }

    #[test]
    fn fc_error_correction_never_raises_the_objective(case in fc_case()) {
        check_descent(&case)?;
    }
}

/// The columns of a layer with more (image, position) pairs than `max_columns` are sampled.
#[test]
fn columns_are_sampled_beyond_the_limit() {
    let case = Case {
        arch: Architecture {
            name: "test",
            input: Shape::new(4, 8, 8),
            layers: vec![Layer {
                name: "conv",
                kind: LayerKind::Conv(ConvSpec {
                    out_channels: 4,
                    kernel: 3,
                    stride: 1,
                    pad: 1,
                    groups: 1,
                }),
            }],
        },
        spec: QuantSpec { d: 2, k: 4 },
        images: 3,
        max_columns: 50,
        seed: 7,
    };
    let (problem, _) = build(&case);
    assert_eq!(problem.columns(), 50);
    let all = Case {
        max_columns: 1000,
        ..case
    };
    assert_eq!(build(&all).0.columns(), 3 * 64);
}
