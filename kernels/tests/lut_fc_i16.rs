//! FcLutI16 (i16 tables, every ISA this CPU has): each level bit for bit against the scalar
//! twin, and the twin against the f32 oracle `fc_reference` within the quantization bound
//! (half a step of each group's scale per look-up). Random problems and the edges: every
//! K ≤ 32 (nibble indices for K ≤ 16, both plane halves or one for K > 16), d in
//! {1, 2, 3, 4, 8}, partial last subspaces and groups, several table chunks, C_t around the
//! index-vector widths (16, 32, 64 outputs, twice that with nibbles).

mod common;

use proptest::prelude::*;
use qcnn_kernels::lut::fc::int16::{GROUP, Q};
use qcnn_kernels::lut::fc::{fc_reference, FcI16Scratch, FcLutI16};
use qcnn_kernels::{CacheSizes, FcShape, Isa, LutError, Phase, PqSpec, Target};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The f32 part of the error (table products, sums in another order), relative to
/// |bias_t| + Σ_m |T[m][b_t^(m)]|.
const REL_TOL: f32 = 1e-5;

/// One fc layer and input.
#[derive(Clone, Debug)]
struct Problem {
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
    /// L1d of the target: small values cut the subspaces into several table chunks.
    l1d: usize,
}

impl Problem {
    /// Uniform values in [−1, 1], uniform indices in [0, K).
    fn random(c_in: usize, c_out: usize, d: usize, k: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (shape, spec) = (FcShape { c_in, c_out }, PqSpec { d, k });
        let m = spec.subspaces(c_in);
        let mut floats =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..=1.0)).collect() };
        let (centroids, bias, x) = (floats(m * k * d), floats(c_out), floats(c_in));
        let assignments = (0..c_out * m)
            .map(|_| rng.random_range(0..k) as u8)
            .collect();
        Problem {
            shape,
            spec,
            centroids,
            assignments,
            bias,
            x,
            l1d: CacheSizes::FALLBACK.l1d,
        }
    }

    fn target(&self, isa: Isa) -> Target {
        let caches = CacheSizes {
            l1d: self.l1d,
            ..CacheSizes::FALLBACK
        };
        Target::new(isa, caches)
    }

    fn lut(&self, isa: Isa) -> FcLutI16 {
        FcLutI16::new(
            self.target(isa),
            self.shape,
            self.spec,
            &self.centroids,
            &self.assignments,
            &self.bias,
        )
        .expect("valid problem")
    }

    /// y pre-filled with NaN, so an output the kernel forgets shows.
    fn run(&self, lut: &FcLutI16) -> Vec<f32> {
        let mut y = vec![f32::NAN; self.shape.c_out];
        lut.forward(&self.x, &mut y, &mut FcI16Scratch::default(), &mut |_| {});
        y
    }

    /// T[m][k] in f32, plainly.
    fn table(&self) -> Vec<Vec<f32>> {
        let (d, k) = (self.spec.d, self.spec.k);
        (0..self.spec.subspaces(self.shape.c_in))
            .map(|m| {
                (0..k)
                    .map(|code| {
                        (0..d.min(self.shape.c_in - m * d))
                            .map(|j| self.x[m * d + j] * self.centroids[(m * k + code) * d + j])
                            .sum()
                    })
                    .collect()
            })
            .collect()
    }

    /// Per output: Σ_m s_g(m) / 2 (the rounding of each looked-up entry, s_g = A_g / Q with
    /// A_g the largest |entry| of group g's rows) plus REL_TOL of the terms' size.
    fn bounds(&self) -> Vec<f32> {
        let table = self.table();
        // Entries the look-ups can read: all K, or the 16 of a nibble row.
        let scales: Vec<f32> = table
            .chunks(GROUP)
            .map(|rows| {
                let amax = rows.iter().flatten().fold(0.0f32, |a, v| a.max(v.abs()));
                amax / Q as f32
            })
            .collect();
        let m_count = table.len();
        (0..self.shape.c_out)
            .map(|t| {
                let (mut step, mut size) = (0.0f32, self.bias[t].abs());
                for (m, row) in table.iter().enumerate() {
                    step += 0.5 * scales[m / GROUP];
                    size += row[self.assignments[t * m_count + m] as usize].abs();
                }
                // The quantization bound holds up to f32 rounding of itself.
                step * (1.0 + 1e-3) + REL_TOL * size
            })
            .collect()
    }

    /// The scalar twin within the bounds of the reference; every level equal to the twin.
    fn check(&self) -> Result<(), String> {
        let want = fc_reference(
            self.shape,
            self.spec,
            &self.centroids,
            &self.assignments,
            &self.bias,
            &self.x,
        );
        let twin = self.run(&self.lut(Isa::Scalar));
        for (t, ((g, w), b)) in twin.iter().zip(&want).zip(self.bounds()).enumerate() {
            // Written so that a NaN fails.
            let close = (g - w).abs() <= b;
            if !close {
                return Err(format!(
                    "scalar twin: {:?} {:?}: y[{t}] = {g}, reference {w} (bound {b})",
                    self.shape, self.spec
                ));
            }
        }
        for isa in Isa::available() {
            let lut = self.lut(isa);
            let got = self.run(&lut);
            if got
                .iter()
                .map(|v| v.to_bits())
                .ne(twin.iter().map(|v| v.to_bits()))
            {
                let t = (0..twin.len()).find(|&t| got[t].to_bits() != twin[t].to_bits());
                return Err(format!(
                    "{}: {:?} {:?} {}: differs from the scalar twin at y[{t:?}]",
                    lut.kernel_name(),
                    self.shape,
                    self.spec,
                    lut.plan_summary()
                ));
            }
        }
        Ok(())
    }
}

fn assert_ok(p: &Problem) {
    if let Err(e) = p.check() {
        panic!("{e}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn every_isa_matches_the_twin_and_the_twin_the_reference(
        k in 1usize..=32,
        d in 1usize..=9,
        c_in in 1usize..400,
        c_out in 0usize..300,
        chunks in prop::sample::select(vec![1usize, 2, 3]),
        seed in any::<u64>(),
    ) {
        let mut p = Problem::random(c_in, c_out, d, k, seed);
        // A chunk of 16·n subspaces (64 bytes each, half of L1d): several chunks.
        p.l1d = if chunks == 1 { p.l1d } else { 2 * 64 * GROUP * (chunks - 1) };
        prop_assert!(p.check().is_ok(), "{}", p.check().unwrap_err());
    }
}

#[test]
fn outputs_around_the_index_vector_widths() {
    for c_out in [
        1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 257,
    ] {
        for k in [16, 17, 32] {
            assert_ok(&Problem::random(70, c_out, 4, k, c_out as u64));
        }
    }
}

#[test]
fn every_k_and_d_with_partial_groups_and_chunks() {
    for k in 1..=32 {
        for d in [1, 2, 3, 4, 8] {
            // M = 37 subspaces (the last of one dim when d > 1): 3 groups, the last of 5;
            // chunks of 32 subspaces (the second holds the partial group).
            let mut p = Problem::random(36 * d + 1, 45, d, k, (k * 10 + d) as u64);
            p.l1d = 2 * 64 * 2 * GROUP;
            assert_ok(&p);
        }
    }
}

#[test]
fn k_above_16_with_small_indices_uses_one_half() {
    // K = 32 but every index < 16: the look-ups read the planes' low halves only.
    let mut p = Problem::random(200, 100, 4, 32, 9);
    p.assignments.iter_mut().for_each(|b| *b %= 16);
    assert_ok(&p);
}

#[test]
fn alexnet_fc_shapes() {
    // fc6, fc7, fc8 of the authors' configuration (METHOD.md).
    for (c_in, c_out, d, k) in [
        (9216, 4096, 4, 32),
        (4096, 4096, 4, 32),
        (4096, 1000, 1, 16),
    ] {
        assert_ok(&Problem::random(c_in, c_out, d, k, 2016));
    }
}

#[test]
fn zero_input_gives_the_bias_and_no_input_too() {
    let mut p = Problem::random(50, 40, 4, 32, 1);
    p.x.fill(0.0);
    for isa in Isa::available() {
        assert_eq!(p.run(&p.lut(isa)), p.bias, "{isa}");
    }
    let p = Problem::random(0, 21, 4, 32, 0);
    for isa in Isa::available() {
        assert_eq!(p.run(&p.lut(isa)), p.bias, "{isa}");
    }
}

#[test]
fn a_non_finite_input_shows_in_the_outputs() {
    let mut p = Problem::random(64, 40, 4, 32, 2);
    p.x[5] = f32::INFINITY;
    for isa in Isa::available() {
        let y = p.run(&p.lut(isa));
        assert!(y.iter().all(|v| v.is_nan()), "{isa}: {y:?}");
    }
}

#[test]
fn the_error_is_that_of_the_quantization() {
    // The bound is not loose: on fc7's shape the largest error is a sizeable part of it,
    // and well above what f32 alone would make.
    let p = Problem::random(4096, 512, 4, 32, 7);
    let want = fc_reference(p.shape, p.spec, &p.centroids, &p.assignments, &p.bias, &p.x);
    let got = p.run(&p.lut(Isa::Scalar));
    let worst = got
        .iter()
        .zip(&want)
        .zip(p.bounds())
        .map(|((g, w), b)| (g - w).abs() / b)
        .fold(0.0f32, f32::max);
    assert!(
        (0.01..=1.0).contains(&worst),
        "largest error / bound = {worst}"
    );
}

#[test]
fn k_above_32_and_bad_indices_are_rejected() {
    let p = Problem::random(16, 10, 4, 64, 3);
    let t = Target::for_isa(Isa::Scalar);
    let err = FcLutI16::new(t, p.shape, p.spec, &p.centroids, &p.assignments, &p.bias);
    assert!(matches!(err, Err(LutError::Spec(m)) if m.contains("K ≤ 32")));
    let mut p = Problem::random(16, 10, 4, 32, 3);
    p.assignments[13] = 32;
    let err = FcLutI16::new(t, p.shape, p.spec, &p.centroids, &p.assignments, &p.bias);
    assert!(matches!(
        err,
        Err(LutError::IndexOutOfRange { position: 13, .. })
    ));
    let err = FcLutI16::new(
        t,
        p.shape,
        p.spec,
        &p.centroids[1..],
        &p.assignments,
        &p.bias,
    );
    assert!(matches!(err, Err(LutError::Length { .. })));
}

#[test]
fn phases_come_in_order_and_scratch_is_reused() {
    let p = Problem::random(300, 200, 4, 32, 5);
    for isa in Isa::available() {
        let lut = p.lut(isa);
        let mut scratch = FcI16Scratch::default();
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
fn kernel_names_carry_the_isa() {
    let names: Vec<_> = Isa::ALL.iter().map(|&i| FcLutI16::name(i)).collect();
    assert_eq!(
        names,
        [
            "fc-lut-i16-scalar",
            "fc-lut-i16-avx2",
            "fc-lut-i16-avx512",
            "fc-lut-i16-neon"
        ]
    );
}

/// Every level CI requires is among the levels this suite tests (common/mod.rs).
#[test]
fn required_isa_levels_are_tested() {
    common::tested_levels("fc-lut-i16", common::REQUIRE, Isa::available());
}
