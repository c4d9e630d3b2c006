//! The authors' file format and model folders: round trips, byte-identical re-encoding of the
//! authors' files, and one test per check a reader makes on a malformed file.

mod common;

use std::path::Path;

use common::{authors_alexnet, tiny_arch, tiny_model, PREFIX};
use qcnn_model::folder::{self, decode_files, encode_files, file_name, locate, ModelFolder};
use qcnn_model::format::*;
use qcnn_model::{ModelError, ModelSource};

fn p() -> &'static Path {
    Path::new("x.bin")
}

/// The error's message, which must name the file.
fn message<T: std::fmt::Debug>(r: Result<T, ModelError>, file: &str) -> String {
    let e = r.expect_err("expected an error");
    let msg = e.to_string();
    assert!(msg.contains(file), "error does not name {file}: {msg}");
    msg
}

fn assert_mentions(msg: &str, words: &[&str]) {
    for w in words {
        assert!(msg.contains(w), "error lacks {w:?}: {msg}");
    }
}

/// A header of raw int32 words followed by `payload` zero bytes.
fn raw(words: &[i32], payload: usize) -> Vec<u8> {
    let mut b: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    b.resize(b.len() + payload, 0);
    b
}

// ---------------------------------------------------------------- round trips

#[test]
fn bin_f32_round_trip() {
    for dims in [vec![1], vec![7], vec![2, 3], vec![2, 1, 3, 4], vec![1; 8]] {
        let n: usize = dims.iter().product();
        let data: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
        let bytes = encode_bin_f32(&dims, &data);
        assert_eq!(bytes.len(), 4 + 4 * dims.len() + 4 * n);
        let back = parse_bin_f32(&bytes, p()).unwrap();
        assert_eq!(back, BinArray { dims, data });
    }
}

#[test]
fn bin_f32_keeps_every_finite_bit_pattern_and_refuses_the_rest() {
    let data = [-0.0, f32::MIN_POSITIVE / 2.0, f32::MAX, f32::MIN, 1.0];
    let back = parse_bin_f32(&encode_bin_f32(&[5], &data), p()).unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&back.data), bits(&data));
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let data = [0.0, 1.0, 2.0, bad, 4.0, 5.0];
        let r = parse_bin_f32(&encode_bin_f32(&[2, 3], &data), p());
        let msg = message(r, "x.bin");
        assert_mentions(
            &msg,
            &["at flat position 3 (index [1, 0]", "not a finite number"],
        );
    }
}

#[test]
fn bin_u16_round_trip_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("labels.uint16.bin");
    let data: Vec<u16> = (0..1000).map(|i| (i * 37 % 1000) as u16).collect();
    std::fs::write(&path, encode_bin_u16(&[1, 1, 1, 1000], &data)).unwrap();
    let back = read_bin_u16(&path).unwrap();
    assert_eq!(back.dims, [1, 1, 1, 1000]);
    assert_eq!(back.data, data);
}

#[test]
fn bin_f32_write_read_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.bin");
    let data: Vec<f32> = (0..24).map(|i| i as f32).collect();
    write_bin_f32(&path, &[2, 3, 4], &data).unwrap();
    assert_eq!(read_bin_f32(&path).unwrap().data, data);
}

#[test]
fn cbn_round_trip_every_width_across_block_edges() {
    for bits in 1..=8u32 {
        let per_block = 32768 / bits as usize;
        for count in [
            1,
            2,
            7,
            per_block - 1,
            per_block,
            per_block + 1,
            2 * per_block + 3,
        ] {
            let data: Vec<u8> = (0..count)
                .map(|i| ((i * 2654435761usize) >> 7) as u8 & ((1u32 << bits) - 1) as u8)
                .collect();
            let bytes = encode_cbn(&[count], bits, &data);
            let blocks = count.div_ceil(per_block);
            assert_eq!(bytes.len(), 12 + 4096 * blocks, "bits {bits} count {count}");
            let back = parse_cbn(&bytes, p()).unwrap();
            assert_eq!(back.bits, bits);
            assert_eq!(back.dims, [count]);
            assert_eq!(back.data, data, "bits {bits} count {count}");
        }
    }
}

#[test]
fn cbn_packs_msb_first_and_zero_pads() {
    let one_bit = encode_cbn(&[3], 1, &[1, 0, 1]);
    assert_eq!(one_bit[12], 0b1010_0000);
    // 10101 00011 → 10101000 11000000
    let five = encode_cbn(&[1, 2], 5, &[0b10101, 0b00011]);
    assert_eq!(&five[16..18], &[0xA8, 0xC0]);
    assert!(five[18..].iter().all(|&b| b == 0));
    // A block of b = 5 holds 6553 values: the 6554th starts the next block at its byte 0.
    let mut data = vec![0u8; 6554];
    data[6553] = 0b11111;
    let two_blocks = encode_cbn(&[6554], 5, &data);
    assert_eq!(two_blocks[12 + 4096], 0b1111_1000);
}

#[test]
fn cbn_is_lenient_on_padding_bits_but_exact_on_length() {
    let data = [3u8, 1, 2];
    let mut bytes = encode_cbn(&[3], 2, &data);
    *bytes.last_mut().unwrap() = 0xFF;
    assert_eq!(parse_cbn(&bytes, p()).unwrap().data, data);
    bytes.push(0);
    let msg = message(parse_cbn(&bytes, Path::new("pad.cbn")), "pad.cbn");
    assert_mentions(&msg, &["length", "4109", "4108"]);
}

#[test]
fn cbn_write_read_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.cbn");
    let data: Vec<u8> = (0..300).map(|i| (i % 128) as u8).collect();
    write_cbn(&path, &[3, 10, 10], 7, &data).unwrap();
    let back = read_cbn(&path).unwrap();
    assert_eq!(
        (back.dims, back.bits, back.data),
        (vec![3, 10, 10], 7, data)
    );
}

#[test]
fn bin_reader_reads_one_slice_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("images.bin");
    let dims = [3, 2, 4, 5];
    let data: Vec<f32> = (0..120).map(|i| i as f32).collect();
    write_bin_f32(&path, &dims, &data).unwrap();
    let mut reader = BinF32Reader::open(&path).unwrap();
    assert_eq!(reader.dims(), dims);
    assert_eq!((reader.len(), reader.slice_len()), (3, 40));
    let mut out = vec![f32::NAN; 40];
    for i in [2, 0, 1] {
        reader.read_slice(i, &mut out).unwrap();
        assert_eq!(out, data[i * 40..(i + 1) * 40]);
    }
    let msg = message(reader.read_slice(3, &mut out), "images.bin");
    assert_mentions(&msg, &["slice 3", "has 3"]);
    let msg = message(reader.read_slice(0, &mut out[..39]), "images.bin");
    assert_mentions(&msg, &["39", "40"]);
}

#[test]
fn bin_reader_checks_the_header_against_the_file_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.bin");
    let mut bytes = encode_bin_f32(&[2, 3], &[0.0; 6]);
    bytes.pop();
    std::fs::write(&path, &bytes).unwrap();
    let msg = message(BinF32Reader::open(&path), "short.bin");
    assert_mentions(&msg, &["length", "35", "36"]);
    std::fs::write(&path, [1u8, 0]).unwrap();
    let msg = message(BinF32Reader::open(&path), "short.bin");
    assert_mentions(&msg, &["truncated"]);
    // A huge claimed image set in a tiny file is rejected before any allocation.
    std::fs::write(&path, raw(&[4, 50000, 3, 227, 227], 16)).unwrap();
    let msg = message(BinF32Reader::open(&path), "short.bin");
    assert_mentions(&msg, &["length", "[50000, 3, 227, 227]"]);
}

// ---------------------------------------------------------------- malformed headers

#[test]
fn truncated_files_are_rejected() {
    for bytes in [vec![], vec![1, 0, 0]] {
        let msg = message(parse_bin_f32(&bytes, Path::new("t.bin")), "t.bin");
        assert_mentions(&msg, &["truncated", "4-byte"]);
    }
    let msg = message(parse_bin_f32(&raw(&[3, 1], 0), Path::new("t.bin")), "t.bin");
    assert_mentions(&msg, &["truncated", "16-byte header"]);
    // A .cbn header also needs its b field.
    let msg = message(parse_cbn(&raw(&[1, 5], 0), Path::new("t.cbn")), "t.cbn");
    assert_mentions(&msg, &["truncated", "12-byte header"]);
    let mut cut = encode_bin_f32(&[4], &[1.0; 4]);
    cut.truncate(10);
    let msg = message(parse_bin_f32(&cut, Path::new("t.bin")), "t.bin");
    assert_mentions(&msg, &["length", "10 bytes", "24"]);
}

#[test]
fn header_dims_disagreeing_with_length_are_rejected() {
    let mut bytes = encode_bin_f32(&[2, 2], &[1.0; 4]);
    bytes.extend_from_slice(&[0; 4]);
    let msg = message(parse_bin_f32(&bytes, Path::new("long.bin")), "long.bin");
    assert_mentions(
        &msg,
        &["length", "file is 32 bytes", "[2, 2]", "exactly 28"],
    );
    let short_cbn = &encode_cbn(&[10], 3, &[1; 10])[..4000];
    let msg = message(parse_cbn(short_cbn, Path::new("s.cbn")), "s.cbn");
    assert_mentions(&msg, &["length", "4108"]);
}

#[test]
fn negative_and_zero_dims_are_rejected() {
    let msg = message(
        parse_bin_f32(&raw(&[2, 3, -5], 0), Path::new("neg.bin")),
        "neg.bin",
    );
    assert_mentions(&msg, &["dim 1 = -5", "≥ 1"]);
    let msg = message(
        parse_cbn(&raw(&[1, 0, 4], 0), Path::new("zero.cbn")),
        "zero.cbn",
    );
    assert_mentions(&msg, &["dim 0 = 0"]);
}

#[test]
fn absurd_dims_are_rejected_without_allocating() {
    // 2^31 elements (8 GiB of f32) claimed by a 16-byte file.
    let msg = message(
        parse_bin_f32(&raw(&[2, 65536, 32768], 4), Path::new("big.bin")),
        "big.bin",
    );
    assert_mentions(&msg, &["length", "[65536, 32768]", "8589934604"]);
    // (2^31 − 1)^8 elements overflow 64 bits.
    let huge = raw(&[8, i32::MAX, i32::MAX, i32::MAX, i32::MAX, 1, 1, 1, 1], 0);
    let msg = message(parse_bin_f32(&huge, Path::new("huge.bin")), "huge.bin");
    assert_mentions(&msg, &["64 bits"]);
    let msg = message(
        parse_cbn(&raw(&[1, i32::MAX, 1], 4096), Path::new("h.cbn")),
        "h.cbn",
    );
    assert_mentions(&msg, &["length"]);
}

#[test]
fn dimension_count_outside_1_to_8_is_rejected() {
    for n in [0, 9, -1] {
        let msg = message(
            parse_bin_f32(&raw(&[n, 1, 1], 0), Path::new("n.bin")),
            "n.bin",
        );
        assert_mentions(&msg, &[&format!("n = {n}"), "1..=8"]);
        let msg = message(parse_cbn(&raw(&[n, 1, 1], 0), Path::new("n.cbn")), "n.cbn");
        assert_mentions(&msg, &[&format!("n = {n}")]);
    }
    // n = 8 is allowed.
    assert!(parse_bin_f32(&encode_bin_f32(&[1; 8], &[2.0]), p()).is_ok());
}

#[test]
fn cbn_bits_outside_1_to_8_are_rejected() {
    for b in [0, 9, -3] {
        let msg = message(
            parse_cbn(&raw(&[1, 4, b], 4096), Path::new("b.cbn")),
            "b.cbn",
        );
        assert_mentions(&msg, &[&format!("b = {b}"), "1..=8"]);
    }
}

// ---------------------------------------------------------------- whole models

#[test]
fn model_round_trips_through_memory() {
    for (codebooks, dense) in [(true, false), (false, true), (true, true)] {
        let model = tiny_model(7, codebooks, dense);
        let files = encode_files(&model, PREFIX);
        let source = ModelSource::Synthetic { seed: 7 };
        let back = decode_files(&files, PREFIX, &tiny_arch(), source).unwrap();
        assert_eq!(back, model, "codebooks {codebooks} dense {dense}");
    }
}

#[test]
fn model_file_names_and_bits_follow_the_authors() {
    let files = encode_files(&tiny_model(1, true, true), PREFIX);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "tiny.biasVec.01.bin",
            "tiny.ctrdLst.01.bin",
            "tiny.asmtLst.01.cbn",
            "tiny.convKnl.01.bin",
            "tiny.biasVec.03.bin",
            "tiny.ctrdLst.03.bin",
            "tiny.asmtLst.03.cbn",
            "tiny.fcntWei.03.bin",
            "tiny.biasVec.04.bin",
            "tiny.ctrdLst.04.bin",
            "tiny.asmtLst.04.cbn",
            "tiny.fcntWei.04.bin",
        ]
    );
    let bits = |name: &str| {
        let (_, b) = files.iter().find(|(n, _)| n == name).unwrap();
        parse_cbn(b, Path::new(name)).unwrap().bits
    };
    assert_eq!([bits(names[2]), bits(names[6]), bits(names[10])], [3, 4, 1]);
    assert_eq!(file_name("p", "biasVec", 21, "bin"), "p.biasVec.22.bin");
}

#[test]
fn model_round_trips_through_disk() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(3, true, false);
    folder::save(&model, dir.path(), PREFIX).unwrap();
    let found = locate(dir.path()).unwrap();
    assert_eq!(found.prefix, PREFIX);
    let back = folder::load_folder(&found, &tiny_arch()).unwrap();
    assert_eq!(back.params, model.params);
    assert_eq!(back.source, ModelSource::Folder(found.bin_dir.clone()));
    // Saving again over the same files is fine.
    folder::save(&model, dir.path(), PREFIX).unwrap();
}

#[test]
fn save_refuses_to_leave_stale_files_behind() {
    let dir = tempfile::tempdir().unwrap();
    folder::save(&tiny_model(3, true, true), dir.path(), PREFIX).unwrap();
    let r = folder::save(&tiny_model(3, true, false), dir.path(), PREFIX);
    let msg = message(r, "tiny.convKnl.01.bin");
    assert_mentions(&msg, &["stale"]);
    let r = folder::save(&tiny_model(3, true, false), dir.path(), "a/b");
    assert_mentions(&r.unwrap_err().to_string(), &["prefix"]);
}

#[test]
fn locate_accepts_the_three_layouts_and_rejects_ambiguity() {
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("AlexNet/Bin.Files");
    folder::save(&tiny_model(3, true, false), &bin, PREFIX).unwrap();
    let names = root.path().join("Cls.Names");
    std::fs::create_dir_all(&names).unwrap();
    std::fs::write(names.join("class_names.txt"), "a\n").unwrap();
    write_bin_f32(
        &root.path().join("AlexNet/imagenet_mean.single.bin"),
        &[1],
        &[0.0],
    )
    .unwrap();
    let want = locate(&bin).unwrap();
    let canon_root = root.path().canonicalize().unwrap();
    assert_eq!(want.root.as_deref(), Some(canon_root.as_path()));
    for path in [root.path().to_path_buf(), root.path().join("AlexNet")] {
        assert_eq!(locate(&path).unwrap(), want);
    }
    assert_eq!(
        want.class_names().unwrap(),
        Some(canon_root.join("Cls.Names/class_names.txt"))
    );
    assert_eq!(want.image_labels().unwrap(), None);
    assert_eq!(
        want.mean_image().unwrap(),
        Some(canon_root.join("AlexNet/imagenet_mean.single.bin"))
    );
    assert_eq!(
        want.file("asmtLst", 0, "cbn"),
        want.bin_dir.join("tiny.asmtLst.01.cbn")
    );

    folder::save(&tiny_model(3, true, false), &bin, "other").unwrap();
    let msg = message(locate(root.path()), "Bin.Files");
    assert_mentions(&msg, &["several", "other", "tiny"]);

    let empty = tempfile::tempdir().unwrap();
    let err = locate(empty.path()).unwrap_err();
    assert!(matches!(err, ModelError::Missing { .. }), "{err}");
    assert_mentions(&err.to_string(), &["biasVec.01.bin"]);
    let err = locate(&empty.path().join("nowhere")).unwrap_err();
    assert_mentions(&err.to_string(), &["nowhere"]);
}

/// Entries of a model folder of the wrong kind are errors naming them, never "absent".
#[test]
fn a_bin_files_loop_or_a_mean_folder_is_an_error_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let alexnet = root.path().join("AlexNet");
    std::fs::create_dir(&alexnet).unwrap();
    let bin = alexnet.join("Bin.Files");
    std::os::unix::fs::symlink(&bin, &bin).unwrap();
    for path in [root.path().to_path_buf(), alexnet.clone()] {
        let msg = locate(&path).unwrap_err().to_string();
        assert_mentions(&msg, &["Bin.Files", "symbolic links"]);
    }
    std::fs::remove_file(&bin).unwrap();
    std::fs::write(&bin, b"not a folder").unwrap();
    let msg = locate(root.path()).unwrap_err().to_string();
    assert_mentions(&msg, &["Bin.Files", "not a directory"]);

    std::fs::remove_file(&bin).unwrap();
    folder::save(&tiny_model(3, true, false), &bin, PREFIX).unwrap();
    std::fs::create_dir(alexnet.join("imagenet_mean.single.bin")).unwrap();
    std::fs::create_dir_all(root.path().join("Cls.Names/class_names.txt")).unwrap();
    let found = locate(root.path()).unwrap();
    let msg = found.mean_image().unwrap_err().to_string();
    assert_mentions(&msg, &["imagenet_mean.single.bin", "is a directory"]);
    let msg = found.class_names().unwrap_err().to_string();
    assert_mentions(&msg, &["class_names.txt", "is a directory"]);
}

#[test]
fn save_refuses_bad_prefixes_and_non_finite_values_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let model = tiny_model(3, true, false);
    for prefix in [
        "../evil",
        "a/b",
        "",
        ".hidden",
        "a\\b",
        "x y",
        &"p".repeat(101),
    ] {
        let msg = folder::save(&model, &out, prefix).unwrap_err().to_string();
        assert_mentions(&msg, &["prefix", "ASCII letters"]);
    }
    let mut bad = model.clone();
    bad.params[1].codebooks.as_mut().unwrap().centroids[4] = f32::NAN;
    let msg = folder::save(&bad, &out, PREFIX).unwrap_err().to_string();
    assert_mentions(&msg, &["tiny.ctrdLst.03.bin", "NaN at flat position 4"]);
    assert!(!out.exists(), "nothing written for a refused model");
}

/// The tiny model's files with `name` replaced by `bytes` (or removed when None).
fn with_file(name: &str, bytes: Option<Vec<u8>>) -> Vec<(String, Vec<u8>)> {
    let mut files = encode_files(&tiny_model(5, true, false), PREFIX);
    let at = files.iter().position(|(n, _)| n == name).expect(name);
    match bytes {
        Some(b) => files[at].1 = b,
        None => {
            files.remove(at);
        }
    }
    files
}

fn decode(files: &[(String, Vec<u8>)]) -> Result<qcnn_model::Model, ModelError> {
    decode_files(
        files,
        PREFIX,
        &tiny_arch(),
        ModelSource::Synthetic { seed: 5 },
    )
}

#[test]
fn index_not_below_k_is_rejected_with_its_position() {
    // conv1: K = 5 stored in 3 bits, so 5..=7 fit the file but not the codebook.
    let mut asmt = vec![0u8; 4 * 3 * 3 * 2];
    asmt[17] = 5;
    let bytes = encode_cbn(&[4, 3, 3, 2], 3, &asmt);
    let msg = message(
        decode(&with_file("tiny.asmtLst.01.cbn", Some(bytes))),
        "tiny.asmtLst.01.cbn",
    );
    assert_mentions(
        &msg,
        &["index 5", "position 17", "K = 5", "tiny.ctrdLst.01.bin"],
    );
}

#[test]
fn more_bits_than_needed_are_accepted() {
    let asmt = vec![4u8; 4 * 3 * 3 * 2];
    let bytes = encode_cbn(&[4, 3, 3, 2], 8, &asmt);
    let model = decode(&with_file("tiny.asmtLst.01.cbn", Some(bytes))).unwrap();
    assert_eq!(
        model.params[0].codebooks.as_ref().unwrap().assignments,
        asmt
    );
}

#[test]
fn wrong_output_channels_are_rejected() {
    let bias = encode_bin_f32(&[5], &[0.0; 5]);
    let msg = message(
        decode(&with_file("tiny.biasVec.03.bin", Some(bias))),
        "tiny.biasVec.03.bin",
    );
    assert_mentions(&msg, &["[5] found", "(C_t) = [3]", "fc3"]);
    let asmt = encode_cbn(&[5, 3, 3, 2], 3, &[0; 90]);
    let msg = message(
        decode(&with_file("tiny.asmtLst.01.cbn", Some(asmt))),
        "tiny.asmtLst.01.cbn",
    );
    assert_mentions(
        &msg,
        &["[5, 3, 3, 2] found", "(C_t, kh, kw, M) = [4, 3, 3, 2]"],
    );
}

#[test]
fn wrong_subspace_count_is_rejected() {
    // fc3: split 100, d = 3 → M = 34; a file with M = 33.
    let ctrd = encode_bin_f32(&[33, 16, 3], &vec![0.0; 33 * 16 * 3]);
    let msg = message(
        decode(&with_file("tiny.ctrdLst.03.bin", Some(ctrd))),
        "tiny.ctrdLst.03.bin",
    );
    assert_mentions(&msg, &["M = ceil(100 / 3) = 34", "found M = 33"]);
    // Codebooks fine but assignments with the wrong M.
    let asmt = encode_cbn(&[3, 33], 4, &[0; 99]);
    let msg = message(
        decode(&with_file("tiny.asmtLst.03.cbn", Some(asmt))),
        "tiny.asmtLst.03.cbn",
    );
    assert_mentions(&msg, &["[3, 33] found", "(C_t, M) = [3, 34]"]);
}

#[test]
fn wrong_subspace_dims_are_rejected() {
    // conv1: split 3, d = 2 → M = 2. d = 1 needs M = 3.
    let ctrd = encode_bin_f32(&[2, 5, 1], &[0.0; 10]);
    let msg = message(
        decode(&with_file("tiny.ctrdLst.01.bin", Some(ctrd))),
        "tiny.ctrdLst.01.bin",
    );
    assert_mentions(&msg, &["d = 1", "M = ceil(3 / 1) = 3", "found M = 2"]);
    let flat = encode_bin_f32(&[20], &[0.0; 20]);
    let msg = message(
        decode(&with_file("tiny.ctrdLst.01.bin", Some(flat))),
        "tiny.ctrdLst.01.bin",
    );
    assert_mentions(&msg, &["expected 3 dims (M, K, d)"]);
}

#[test]
fn too_many_codewords_are_rejected() {
    let ctrd = encode_bin_f32(&[1, 257, 8], &vec![0.0; 257 * 8]);
    let msg = message(
        decode(&with_file("tiny.ctrdLst.04.bin", Some(ctrd))),
        "tiny.ctrdLst.04.bin",
    );
    assert_mentions(&msg, &["[1, 257, 8]", "K must be in 1..=256"]);
}

#[test]
fn wrong_dense_dims_are_rejected() {
    let mut files = encode_files(&tiny_model(5, true, false), PREFIX);
    files.push((
        "tiny.convKnl.01.bin".into(),
        encode_bin_f32(&[4, 6, 3, 3], &[0.0; 216]),
    ));
    let msg = message(decode(&files), "tiny.convKnl.01.bin");
    assert_mentions(&msg, &["(C_t, C_s/groups, kh, kw) = [4, 3, 3, 3]"]);
}

#[test]
fn missing_files_are_named() {
    let err = decode(&with_file("tiny.biasVec.04.bin", None)).unwrap_err();
    assert!(matches!(err, ModelError::Missing { .. }), "{err}");
    assert_mentions(
        &err.to_string(),
        &["missing file tiny.biasVec.04.bin", "bias", "fc4"],
    );
    let err = decode(&with_file("tiny.asmtLst.03.cbn", None)).unwrap_err();
    assert_mentions(
        &err.to_string(),
        &["missing file tiny.asmtLst.03.cbn", "come together"],
    );
    let err = decode(&with_file("tiny.ctrdLst.03.bin", None)).unwrap_err();
    assert_mentions(&err.to_string(), &["missing file tiny.ctrdLst.03.bin"]);
}

#[test]
fn missing_codebooks_and_dense_weights_are_rejected() {
    let mut files = with_file("tiny.ctrdLst.03.bin", None);
    files.retain(|(n, _)| n != "tiny.asmtLst.03.cbn");
    let err = decode(&files).unwrap_err();
    assert!(matches!(err, ModelError::Missing { .. }), "{err}");
    assert_mentions(
        &err.to_string(),
        &[
            "tiny.ctrdLst.03.bin",
            "neither codebooks",
            "tiny.fcntWei.03.bin",
        ],
    );
}

#[test]
fn malformed_files_in_a_folder_are_named_by_path() {
    let dir = tempfile::tempdir().unwrap();
    folder::save(&tiny_model(3, true, false), dir.path(), PREFIX).unwrap();
    let bad = dir.path().join("tiny.ctrdLst.04.bin");
    std::fs::write(&bad, raw(&[3, 100, 2, 1], 8)).unwrap();
    let found = locate(dir.path()).unwrap();
    let msg = message(
        folder::load_folder(&found, &tiny_arch()),
        "tiny.ctrdLst.04.bin",
    );
    assert_mentions(&msg, &[&found.bin_dir.display().to_string(), "length"]);
}

// ---------------------------------------------------------------- the authors' files

/// Every .bin and .cbn of the authors' folder (and the mean and labels) re-encodes to the same
/// bytes.
#[test]
fn authors_files_re_encode_byte_for_byte() {
    let Some(root) = authors_alexnet("authors_files_re_encode_byte_for_byte") else {
        return;
    };
    let mut paths: Vec<_> = std::fs::read_dir(root.join("AlexNet/Bin.Files"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths.push(root.join("AlexNet/imagenet_mean.single.bin"));
    let (mut bins, mut cbns) = (0, 0);
    for path in &paths {
        let bytes = std::fs::read(path).unwrap();
        let again = match path.extension().and_then(|e| e.to_str()) {
            Some("cbn") => {
                cbns += 1;
                let a = read_cbn(path).unwrap();
                encode_cbn(&a.dims, a.bits, &a.data)
            }
            _ => {
                bins += 1;
                let a = read_bin_f32(path).unwrap();
                encode_bin_f32(&a.dims, &a.data)
            }
        };
        assert!(again == bytes, "{} re-encodes differently", path.display());
    }
    assert_eq!((bins, cbns), (17, 8));
    let labels_path = root.join("ILSVRC12.227x227.IMG/lablVecTst.uint16.bin");
    let labels = read_bin_u16(&labels_path).unwrap();
    assert_eq!(labels.dims, [1, 1, 1, 1000]);
    assert!(labels.data.iter().all(|&l| l < 1000));
    assert!(encode_bin_u16(&labels.dims, &labels.data) == std::fs::read(&labels_path).unwrap());
}

#[test]
fn authors_model_loads_with_their_quantization() {
    let Some(root) = authors_alexnet("authors_model_loads_with_their_quantization") else {
        return;
    };
    let model = folder::load(&root).unwrap();
    let got: Vec<(&str, usize, usize)> = model
        .params
        .iter()
        .map(|p| {
            let cb = p.codebooks.as_ref().unwrap();
            assert!(p.dense.is_none());
            (model.arch.layers[p.shape.index].name, cb.spec.d, cb.spec.k)
        })
        .collect();
    assert_eq!(
        got,
        [
            ("conv1", 8, 128),
            ("conv2", 8, 128),
            ("conv3", 8, 128),
            ("conv4", 8, 128),
            ("conv5", 8, 128),
            ("fc6", 4, 32),
            ("fc7", 4, 32),
            ("fc8", 1, 16),
        ]
    );
    let f = locate(&root).unwrap();
    assert_eq!(f.prefix, "bvlc_alexnet_aCaF");
    assert_eq!(model.source, ModelSource::Folder(f.bin_dir.clone()));
    for path in [
        f.mean_image(),
        f.class_names(),
        f.image_labels(),
        f.test_labels(),
    ] {
        assert!(path.unwrap().is_some_and(|p| p.is_file()));
    }
    // The same files come back from the in-memory encoder, byte for byte.
    for (name, bytes) in encode_files(&model, &f.prefix) {
        let disk = std::fs::read(f.bin_dir.join(&name)).unwrap();
        assert!(disk == bytes, "{name} differs from the authors' file");
    }
    let same = [root.join("AlexNet"), root.join("AlexNet/Bin.Files")];
    for path in same {
        let other: ModelFolder = locate(&path).unwrap();
        assert_eq!(
            (other.bin_dir, other.prefix),
            (f.bin_dir.clone(), f.prefix.clone())
        );
    }
}
