//! "Error or valid, never panic": random bytes, plausible headers and mutated valid files fed
//! to the `.bin` / `.cbn` parsers, the slice reader and the model decoder. A panic fails the
//! test; a success must satisfy the format's invariants.

mod common;

use std::path::Path;

use common::{tiny_arch, tiny_model, PREFIX};
use proptest::prelude::*;
use qcnn_model::folder::{decode_files, encode_files};
use qcnn_model::format::*;
use qcnn_model::ModelSource;

fn p() -> &'static Path {
    Path::new("fuzz.bin")
}

/// What a successful parse promises.
fn check_bin<T>(a: &BinArray<T>) {
    assert!((1..=8).contains(&a.dims.len()));
    assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
}

fn check_cbn(a: &CbnArray) {
    assert!((1..=8).contains(&a.bits));
    assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
    assert!(a.data.iter().all(|&v| u32::from(v) >> a.bits == 0));
}

fn parse_all(bytes: &[u8]) {
    if let Ok(a) = parse_bin_f32(bytes, p()) {
        check_bin(&a);
    }
    if let Ok(a) = parse_bin_u16(bytes, p()) {
        check_bin(&a);
    }
    if let Ok(a) = parse_cbn(bytes, p()) {
        check_cbn(&a);
    }
}

/// A header of small, sometimes invalid values (n, dims, b) and a payload near its size, so
/// that the length check is reached and sometimes passed.
fn plausible_file() -> impl Strategy<Value = Vec<u8>> {
    let dim = prop_oneof![8 => 1i32..=6, 1 => -2i32..=40];
    let dims = prop::collection::vec(dim, 0..=9);
    // Mostly the true dimension count, sometimes any.
    let n = prop_oneof![4 => Just(None), 1 => (-1i32..=10).prop_map(Some)];
    let slack = prop_oneof![2 => Just(0i64), 1 => -8i64..=8];
    (n, dims, -1i32..=10, any::<bool>(), slack, any::<u8>()).prop_map(
        |(n, dims, b, cbn, slack, fill)| {
            let n = n.unwrap_or(dims.len() as i32);
            let mut out = n.to_le_bytes().to_vec();
            for d in &dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            let count = dims
                .iter()
                .fold(1i64, |acc, &d| acc.saturating_mul(i64::from(d.max(0))));
            let payload = if cbn {
                out.extend_from_slice(&b.to_le_bytes());
                let per_block = 32768 / i64::from(b.clamp(1, 8));
                4096i64.saturating_mul(count / per_block + i64::from(count % per_block != 0))
            } else {
                4i64.saturating_mul(count)
            };
            let len = payload.saturating_add(slack).clamp(0, 1 << 20) as usize;
            out.resize(out.len() + len, fill);
            out
        },
    )
}

/// A valid `.bin` or `.cbn` file of random small dims.
fn valid_file() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(1usize..=6, 1..=4),
        1u32..=8,
        any::<bool>(),
    )
        .prop_map(|(dims, bits, cbn)| {
            let n: usize = dims.iter().product();
            if cbn {
                let data: Vec<u8> = (0..n)
                    .map(|i| (i as u8) & ((1u32 << bits) - 1) as u8)
                    .collect();
                encode_cbn(&dims, bits, &data)
            } else {
                let data: Vec<f32> = (0..n).map(|i| i as f32).collect();
                encode_bin_f32(&dims, &data)
            }
        })
}

#[derive(Clone, Debug)]
enum Mutation {
    /// XOR the byte at (position mod length) with a non-zero mask.
    Flip(usize, u8),
    /// Overwrite an int32 header word (index mod 10) with a value.
    Word(usize, i32),
    Truncate(usize),
    Extend(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, x)| Mutation::Flip(at, x)),
        (0usize..10, any::<i32>()).prop_map(|(at, v)| Mutation::Word(at, v)),
        (0usize..10, -3i32..=12).prop_map(|(at, v)| Mutation::Word(at, v)),
        any::<usize>().prop_map(Mutation::Truncate),
        prop::collection::vec(any::<u8>(), 1..64).prop_map(Mutation::Extend),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::Flip(at, x) => {
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] ^= x;
            }
        }
        Mutation::Word(at, v) => {
            let i = 4 * at;
            if i + 4 <= bytes.len() {
                bytes[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
        Mutation::Truncate(at) => {
            let len = bytes.len();
            bytes.truncate(at % (len + 1));
        }
        Mutation::Extend(tail) => bytes.extend_from_slice(tail),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        parse_all(&bytes);
    }

    #[test]
    fn plausible_headers_never_panic(bytes in plausible_file()) {
        parse_all(&bytes);
    }

    #[test]
    fn mutated_valid_files_never_panic(
        file in valid_file(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut bytes = file;
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        parse_all(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// One file of a valid tiny model mutated (or dropped): the decoder errs or returns a
    /// model whose assignments are all below K.
    #[test]
    fn mutated_model_files_never_panic(
        seed in 0u64..4,
        which in any::<usize>(),
        mutations in prop::collection::vec(mutation(), 0..3),
        drop_it in prop::bool::weighted(0.1),
    ) {
        let mut files = encode_files(&tiny_model(seed, true, seed % 2 == 0), PREFIX);
        let at = which % files.len();
        if drop_it {
            files.remove(at);
        } else {
            for m in &mutations {
                mutate(&mut files[at].1, m);
            }
        }
        let source = ModelSource::Synthetic { seed };
        if let Ok(model) = decode_files(&files, PREFIX, &tiny_arch(), source) {
            for params in &model.params {
                prop_assert_eq!(params.bias.len(), params.shape.out_channels());
                prop_assert!(params.codebooks.is_some() || params.dense.is_some());
                if let Some(cb) = &params.codebooks {
                    prop_assert!(cb.assignments.iter().all(|&b| usize::from(b) < cb.spec.k));
                    prop_assert_eq!(cb.centroids.len(), cb.subspaces * cb.spec.k * cb.spec.d);
                }
                if let Some(w) = &params.dense {
                    prop_assert_eq!(w.len(), params.shape.weight_count());
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The slice reader on mutated files: open errs, or every slice reads or errs cleanly.
    #[test]
    fn slice_reader_on_mutated_files_never_panics(
        file in valid_file(),
        mutations in prop::collection::vec(mutation(), 0..3),
    ) {
        let mut bytes = file;
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images.bin");
        std::fs::write(&path, &bytes).unwrap();
        let whole = parse_bin_f32(&bytes, &path);
        match BinF32Reader::open(&path) {
            Err(_) => prop_assert!(whole.is_err(), "reader rejects what the parser accepts"),
            Ok(mut reader) => {
                let whole = whole.expect("the parser rejects what the reader accepts");
                prop_assert_eq!(reader.dims(), whole.dims.as_slice());
                let mut out = vec![0.0f32; reader.slice_len()];
                for i in 0..reader.len() {
                    reader.read_slice(i, &mut out).unwrap();
                    let want = &whole.data[i * out.len()..(i + 1) * out.len()];
                    let same = out.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits());
                    prop_assert!(same);
                }
            }
        }
    }
}
