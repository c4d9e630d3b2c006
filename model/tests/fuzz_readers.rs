//! "Error or valid, never panic": random bytes, plausible headers and mutated valid files fed
//! to the `.bin` / `.cbn` parsers, the slice reader and the model decoder. A panic fails the
//! test; a success must satisfy the format's invariants (every f32 finite among them).
//! Non-finite values planted anywhere in a file, and special files (FIFO, `/dev/zero`,
//! folders, sparse files whose header claims gigabytes) in place of every file a reader
//! opens, must give an error naming the file (and the value's position), never a hang.

mod common;

use std::path::{Path, PathBuf};

use common::{tiny_arch, tiny_model, PREFIX};
use proptest::prelude::*;
use qcnn_model::folder::{decode_files, encode_files, load_folder, save, ModelFolder};
use qcnn_model::format::*;
use qcnn_model::preprocess::{load_image_bgr, MeanImage};
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
        assert!(
            a.data.iter().all(|v| v.is_finite()),
            "a non-finite value passed"
        );
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
                // The header is valid; the parser also refuses non-finite values, which the
                // reader finds slice by slice.
                let mut out = vec![0.0f32; reader.slice_len()];
                let slices: Vec<_> =
                    (0..reader.len()).map(|i| reader.read_slice(i, &mut out).map(|()| out.clone())).collect();
                match whole {
                    Ok(whole) => {
                        prop_assert_eq!(reader.dims(), whole.dims.as_slice());
                        for (i, slice) in slices.into_iter().enumerate() {
                            let slice = slice.unwrap();
                            let want = &whole.data[i * out.len()..(i + 1) * out.len()];
                            let same = slice.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits());
                            prop_assert!(same);
                        }
                    }
                    Err(e) => {
                        prop_assert!(e.to_string().contains("not a finite number"), "{}", e);
                        prop_assert!(slices.iter().any(|s| s.is_err()), "reader accepts a non-finite value");
                    }
                }
            }
        }
    }
}

/// A non-finite f32 bit pattern: NaN (quiet, signalling, any payload) or ±∞.
fn non_finite() -> impl Strategy<Value = f32> {
    prop_oneof![
        Just(f32::INFINITY),
        Just(f32::NEG_INFINITY),
        (any::<bool>(), 1u32..(1 << 23)).prop_map(|(sign, payload)| {
            f32::from_bits(u32::from(sign) << 31 | 0xff << 23 | payload)
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// One value of a valid `.bin` replaced by NaN or ±∞: the parser names its position.
    #[test]
    fn non_finite_values_are_errors_naming_their_position(
        dims in prop::collection::vec(1usize..=5, 1..=4),
        at in any::<usize>(),
        bad in non_finite(),
    ) {
        let n: usize = dims.iter().product();
        let mut data: Vec<f32> = (0..n).map(|i| i as f32 - 3.5).collect();
        let at = at % n;
        data[at] = bad;
        let bytes = encode_bin_f32(&dims, &data);
        let err = parse_bin_f32(&bytes, p()).unwrap_err().to_string();
        prop_assert!(err.starts_with("fuzz.bin: "), "{}", err);
        let position = format!("at flat position {at} (index");
        prop_assert!(err.contains(&position), "{}", err);
    }

    /// A NaN or ±∞ planted in any f32 file of a valid tiny model (bias, codewords, dense
    /// weights): decoding fails naming that file.
    #[test]
    fn non_finite_model_values_are_load_errors_naming_the_file(
        seed in 0u64..4,
        which in any::<usize>(),
        at in any::<usize>(),
        bad in non_finite(),
    ) {
        let mut files = encode_files(&tiny_model(seed, true, true), PREFIX);
        let floats: Vec<usize> = (0..files.len()).filter(|&i| files[i].0.ends_with(".bin")).collect();
        let (name, bytes) = &mut files[floats[which % floats.len()]];
        let array = parse_bin_f32(bytes, Path::new(name.as_str())).unwrap();
        let mut data = array.data;
        let at = at % data.len();
        data[at] = bad;
        *bytes = encode_bin_f32(&array.dims, &data);
        let name = name.clone();
        let source = ModelSource::Synthetic { seed };
        let err = decode_files(&files, PREFIX, &tiny_arch(), source).unwrap_err().to_string();
        prop_assert!(err.starts_with(&format!("{name}: value ")), "{}", err);
        let position = format!("at flat position {at} ");
        prop_assert!(err.contains(&position), "{}", err);
    }
}

/// Runs `f` on its own thread; fails the test if it takes longer than five seconds.
fn within_deadline<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    qcnn_files::testing::within_deadline(what, 5, f)
}

/// What can stand where a file belongs.
#[derive(Clone, Copy, Debug)]
enum Special {
    Fifo,
    DevZero,
    Folder,
    /// A regular, sparse file whose valid header claims 2^30 floats (4 GiB).
    SparseHuge,
}

const SPECIALS: [Special; 4] = [
    Special::Fifo,
    Special::DevZero,
    Special::Folder,
    Special::SparseHuge,
];

/// Replaces `path` (if present) by `kind`; returns what the error must mention.
fn plant(path: &Path, kind: Special) -> &'static str {
    let _ = std::fs::remove_file(path);
    match kind {
        Special::Fifo => {
            qcnn_files::testing::make_fifo(path).unwrap();
            "is a FIFO (named pipe), not a regular file"
        }
        Special::DevZero => {
            std::os::unix::fs::symlink("/dev/zero", path).unwrap();
            "is a character device, not a regular file"
        }
        Special::Folder => {
            std::fs::create_dir(path).unwrap();
            "is a directory, not a regular file"
        }
        Special::SparseHuge => {
            let dims = [1usize << 30];
            let mut header = (dims.len() as i32).to_le_bytes().to_vec();
            header.extend_from_slice(&(dims[0] as i32).to_le_bytes());
            std::fs::write(path, &header).unwrap();
            let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            f.set_len(8 + 4 * (1u64 << 30)).unwrap();
            "dims [1073741824]"
        }
    }
}

fn assert_names(err: &str, path: &Path, needle: &str) {
    assert!(
        err.contains(&path.display().to_string()) && err.contains(needle),
        "{err} (expected {} and {needle:?})",
        path.display()
    );
}

#[test]
fn special_files_in_place_of_a_reader_input_are_errors_not_hangs() {
    let dir = tempfile::tempdir().unwrap();
    type Reader = fn(&Path) -> Result<(), String>;
    let readers: [(&str, Reader); 5] = [
        ("read_bin_f32", |p| {
            read_bin_f32(p).map(drop).map_err(|e| e.to_string())
        }),
        ("read_cbn", |p| {
            read_cbn(p).map(drop).map_err(|e| e.to_string())
        }),
        ("read_image_set", |p| {
            read_image_set(p, 1).map(drop).map_err(|e| e.to_string())
        }),
        ("MeanImage", |p| {
            MeanImage::load(p).map(drop).map_err(|e| e.to_string())
        }),
        ("image", |p| {
            load_image_bgr(p).map(drop).map_err(|e| e.to_string())
        }),
    ];
    for (i, kind) in SPECIALS.into_iter().enumerate() {
        for (j, (name, read)) in readers.iter().enumerate() {
            let path = dir.path().join(format!("f{i}-{j}.bin"));
            let needle = plant(&path, kind);
            let p = path.clone();
            let read = *read;
            let result = within_deadline(name, move || read(&p));
            let err = result.expect_err(&format!("{name} accepted {kind:?}"));
            // A sparse file is refused by its dims (too many for the role) or, for the image
            // reader, by its size; either way before reading 4 GiB.
            let needle = match (kind, *name) {
                (Special::SparseHuge, "image") => "an image file is at most",
                (Special::SparseHuge, "read_cbn") => "bits per element",
                _ => needle,
            };
            assert_names(&err, &path, needle);
        }
    }
}

/// A valid tiny model folder on disk, then each special file in place of each of its files.
#[test]
fn special_files_in_a_model_folder_are_load_errors_naming_them() {
    let model = tiny_model(3, true, true);
    for (i, kind) in SPECIALS.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        save(&model, dir.path(), PREFIX).unwrap();
        let folder = ModelFolder {
            bin_dir: dir.path().to_path_buf(),
            prefix: PREFIX.into(),
            root: None,
        };
        let names: Vec<PathBuf> = encode_files(&model, PREFIX)
            .into_iter()
            .map(|(n, _)| dir.path().join(n))
            .collect();
        let target = &names[i * 3 % names.len()];
        let needle = plant(target, kind);
        let f = folder.clone();
        let err = within_deadline("load_folder", move || {
            load_folder(&f, &tiny_arch()).map(drop)
        })
        .expect_err("a special file loaded");
        let err = err.to_string();
        let needle = match kind {
            Special::SparseHuge => "found, expected",
            _ => needle,
        };
        assert_names(&err, target, needle);
    }
}
