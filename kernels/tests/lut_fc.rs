//! FcLut (every ISA this CPU has) against the oracle `fc_reference`, on random problems and
//! on the edges: K in {2, 16, 32, 64, 128, 256}, d in {1, 2, 3, 4, 8}, a partial last
//! subspace, C_s < d, C_t around the tile (16) and block (128) widths.

mod common;

use proptest::prelude::*;
use qcnn_kernels::lut::fc::{fc_reference, FcLut, FcScratch};
use qcnn_kernels::{FcShape, Isa, LutError, Phase, PqSpec, Target};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// |y_t − y_ref,t| ≤ REL_TOL · (|bias_t| + Σ_m Σ_j |x_j · D_j|): the same f32 products,
/// summed in another order (and with FMAs in the table build).
const REL_TOL: f32 = 1e-5;

const KS: [usize; 6] = [2, 16, 32, 64, 128, 256];
/// Dims per subspace: small and partial ones, and one above the 8 the conv builders hold in
/// registers (the fc table rows are d FMAs each, at any d).
const DS: [usize; 7] = [1, 2, 3, 4, 5, 8, 12];

/// One fc layer and input: inputs, `reference()`, `run()` (STYLE.md 3).
#[derive(Clone, Debug)]
struct FcProblem {
    shape: FcShape,
    spec: PqSpec,
    /// (M, K, d).
    centroids: Vec<f32>,
    /// (C_t, M).
    assignments: Vec<u8>,
    /// (C_t).
    bias: Vec<f32>,
    /// (C_s).
    x: Vec<f32>,
}

impl FcProblem {
    /// Uniform values in [−1, 1], uniform indices in [0, K).
    fn random(c_in: usize, c_out: usize, d: usize, k: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (shape, spec) = (FcShape { c_in, c_out }, PqSpec { d, k });
        let m = spec.subspaces(c_in);
        let mut floats =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..=1.0)).collect() };
        let centroids = floats(m * k * d);
        let bias = floats(c_out);
        let x = floats(c_in);
        let assignments = (0..c_out * m)
            .map(|_| rng.random_range(0..k) as u8)
            .collect();
        FcProblem {
            shape,
            spec,
            centroids,
            assignments,
            bias,
            x,
        }
    }

    /// Small integers everywhere: every sum is exact in f32, whatever the order.
    fn integers(c_in: usize, c_out: usize, d: usize, k: usize, seed: u64) -> Self {
        let mut p = FcProblem::random(c_in, c_out, d, k, seed);
        for v in p.centroids.iter_mut().chain(&mut p.bias).chain(&mut p.x) {
            *v = (*v * 4.0).round();
        }
        p
    }

    /// The layer prepared for `isa` (its own index layout).
    fn lut(&self, isa: Isa) -> FcLut {
        FcLut::new(
            Target::for_isa(isa),
            self.shape,
            self.spec,
            &self.centroids,
            &self.assignments,
            &self.bias,
        )
        .expect("valid problem")
    }

    fn reference(&self) -> Vec<f32> {
        fc_reference(
            self.shape,
            self.spec,
            &self.centroids,
            &self.assignments,
            &self.bias,
            &self.x,
        )
    }

    /// |bias_t| + Σ_m Σ_j |x_j · D_j|: the size of the terms the tolerance is relative to.
    fn magnitudes(&self) -> Vec<f32> {
        let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<_>>();
        let bias = abs(&self.bias);
        fc_reference(
            self.shape,
            self.spec,
            &abs(&self.centroids),
            &self.assignments,
            &bias,
            &abs(&self.x),
        )
    }

    /// y pre-filled with NaN, so an output the kernel forgets shows.
    fn run(&self, lut: &FcLut) -> Vec<f32> {
        let mut y = vec![f32::NAN; self.shape.c_out];
        lut.forward(&self.x, &mut y, &mut FcScratch::default(), &mut |_| {});
        y
    }

    /// Every available ISA within REL_TOL of the reference.
    fn check(&self) -> Result<(), String> {
        let (want, size) = (self.reference(), self.magnitudes());
        for isa in Isa::available() {
            let lut = self.lut(isa);
            let got = self.run(&lut);
            for (t, ((g, w), s)) in got.iter().zip(&want).zip(&size).enumerate() {
                // Written so that a NaN fails.
                let close = (g - w).abs() <= REL_TOL * s.max(f32::MIN_POSITIVE);
                if !close {
                    return Err(format!(
                        "{}: {:?} {:?}: y[{t}] = {g}, reference {w} (scale {s})",
                        lut.kernel_name(),
                        self.shape,
                        self.spec
                    ));
                }
            }
        }
        Ok(())
    }
}

fn assert_ok(p: &FcProblem) {
    if let Err(e) = p.check() {
        panic!("{e}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn every_isa_matches_the_reference(
        k in prop::sample::select(KS.to_vec()),
        d in prop::sample::select(DS.to_vec()),
        c_in in 1usize..90,
        c_out in 0usize..300,
        seed in any::<u64>(),
    ) {
        let p = FcProblem::random(c_in, c_out, d, k, seed);
        prop_assert!(p.check().is_ok(), "{}", p.check().unwrap_err());
    }

    #[test]
    fn any_k_from_1_to_256_matches(
        k in 1usize..=256,
        d in 1usize..=9,
        c_in in 1usize..40,
        c_out in 1usize..40,
        seed in any::<u64>(),
    ) {
        let p = FcProblem::random(c_in, c_out, d, k, seed);
        prop_assert!(p.check().is_ok(), "{}", p.check().unwrap_err());
    }
}

#[test]
fn outputs_around_tile_and_block_widths() {
    // Tiles are 16 outputs, blocks 12 tiles (192 outputs); AVX2 runs 2 tiles at a time.
    for c_out in [
        1, 15, 16, 17, 31, 32, 33, 127, 128, 129, 191, 192, 193, 207, 383, 384, 385,
    ] {
        for k in KS {
            assert_ok(&FcProblem::random(37, c_out, 4, k, c_out as u64));
        }
    }
}

#[test]
fn every_k_and_d_with_a_partial_last_subspace() {
    for k in KS {
        for d in DS {
            // C_s = 7·d + 1: M = 8 subspaces, the last of one dim (when d > 1).
            assert_ok(&FcProblem::random(7 * d + 1, 33, d, k, (k * 10 + d) as u64));
            // Index words hold P = 4..8 subspaces; cross a word boundary by one.
            assert_ok(&FcProblem::random(9 * d, 20, d, k, 1));
        }
    }
}

#[test]
fn inputs_shorter_than_d() {
    for k in KS {
        for c_in in 1..8 {
            assert_ok(&FcProblem::random(c_in, 19, 8, k, c_in as u64));
        }
    }
}

#[test]
fn small_integer_data_is_exact_at_every_isa() {
    for k in KS {
        for d in DS {
            let p = FcProblem::integers(5 * d + 2, 131, d, k, 7);
            let want = p.reference();
            for isa in Isa::available() {
                let lut = p.lut(isa);
                assert_eq!(p.run(&lut), want, "{}, d = {d}, K = {k}", lut.kernel_name());
            }
        }
    }
}

#[test]
fn alexnet_fc_shapes() {
    // fc6, fc7, fc8 of the authors' configuration (METHOD.md).
    for (c_in, c_out, d, k) in [
        (9216, 4096, 4, 32),
        (4096, 4096, 4, 32),
        (4096, 1000, 1, 16),
    ] {
        assert_ok(&FcProblem::random(c_in, c_out, d, k, 2016));
    }
}

#[test]
fn empty_layers() {
    assert_ok(&FcProblem::random(5, 0, 4, 32, 0));
    // No inputs: y = bias.
    let p = FcProblem::random(0, 21, 4, 32, 0);
    assert_eq!(p.reference(), p.bias);
    assert_ok(&p);
}

#[test]
fn indices_at_or_above_k_are_rejected() {
    let mut p = FcProblem::random(16, 10, 4, 32, 3);
    p.assignments[13] = 32;
    let t = Target::for_isa(Isa::Scalar);
    let err = FcLut::new(t, p.shape, p.spec, &p.centroids, &p.assignments, &p.bias).unwrap_err();
    assert_eq!(
        err,
        LutError::IndexOutOfRange {
            position: 13,
            value: 32,
            k: 32
        }
    );
    p.assignments[13] = 31;
    for isa in Isa::available() {
        let t = Target::for_isa(isa);
        assert!(FcLut::new(t, p.shape, p.spec, &p.centroids, &p.assignments, &p.bias).is_ok());
    }
}

#[test]
fn wrong_lengths_and_specs_are_rejected() {
    let p = FcProblem::random(10, 6, 4, 16, 4);
    let t = Target::for_isa(Isa::Scalar);
    let new = |c: &[f32], a: &[u8], b: &[f32], spec: PqSpec| FcLut::new(t, p.shape, spec, c, a, b);
    let short = |v: &[f32]| v[..v.len() - 1].to_vec();
    assert!(matches!(
        new(&short(&p.centroids), &p.assignments, &p.bias, p.spec),
        Err(LutError::Length { .. })
    ));
    assert!(matches!(
        new(&p.centroids, &p.assignments[1..], &p.bias, p.spec),
        Err(LutError::Length { .. })
    ));
    assert!(matches!(
        new(&p.centroids, &p.assignments, &short(&p.bias), p.spec),
        Err(LutError::Length { .. })
    ));
    let bad = PqSpec { d: 0, k: 16 };
    assert!(matches!(
        new(&p.centroids, &p.assignments, &p.bias, bad),
        Err(LutError::Spec(_))
    ));
}

#[test]
fn phases_come_in_order_and_scratch_is_reused() {
    let p = FcProblem::random(300, 200, 4, 32, 5);
    for isa in Isa::available() {
        let lut = p.lut(isa);
        let mut scratch = FcScratch::default();
        let mut y = vec![0.0; 200];
        let mut seen = Vec::new();
        lut.forward(&p.x, &mut y, &mut scratch, &mut |ph| seen.push(ph));
        assert_eq!(seen, [Phase::Table, Phase::Lookup]);
        let before = format!("{scratch:?}").len();
        let first = y.clone();
        lut.forward(&p.x, &mut y, &mut scratch, &mut |_| {});
        assert_eq!(format!("{scratch:?}").len(), before, "{isa}: scratch grew");
        assert_eq!(y, first, "{isa}: a second pass gives the same outputs");
    }
}

#[test]
#[should_panic(expected = "x must hold C_s floats")]
fn wrong_input_length_panics() {
    let p = FcProblem::random(10, 6, 4, 16, 4);
    p.lut(Isa::Scalar).forward(
        &p.x[1..],
        &mut [0.0; 6],
        &mut FcScratch::default(),
        &mut |_| {},
    );
}

#[test]
fn kernel_names_carry_the_isa() {
    let names: Vec<_> = Isa::ALL.iter().map(|&i| FcLut::name(i)).collect();
    assert_eq!(
        names,
        [
            "fc-lut-f32-scalar",
            "fc-lut-f32-avx2",
            "fc-lut-f32-avx512",
            "fc-lut-f32-neon"
        ]
    );
    let p = FcProblem::random(10, 6, 4, 16, 4);
    for isa in Isa::available() {
        assert_eq!(p.lut(isa).kernel_name(), FcLut::name(isa));
    }
}

/// Every level CI requires (`QCNN_REQUIRE_ISA`, set by `.ci/run` from /proc/cpuinfo) is
/// among the levels this suite tests, `Isa::available()` (common/mod.rs).
#[test]
fn required_isa_levels_are_tested() {
    common::tested_levels("fc-lut-f32", common::REQUIRE, Isa::available());
}

/// The requirement check can fail: a required level the kernels do not detect.
#[test]
#[should_panic(expected = "requires avx512 but the kernels detect only scalar")]
fn a_required_level_the_kernels_lack_fails() {
    let var = "QCNN_REQUIRE_ISA_SELF_TEST";
    std::env::set_var(var, "scalar,avx512");
    common::tested_levels("self-test", var, vec![Isa::Scalar]);
}
