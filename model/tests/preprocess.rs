//! Preprocessing against the authors' golden input, and every way a loader input can be bad.

use std::path::{Path, PathBuf};

use qcnn_model::format::{read_bin_f32, write_bin_f32};
use qcnn_model::preprocess::{
    load_image_bgr, preprocess, preprocess_pixels, MeanImage, CROP_SIDE, FULL_SIDE, MAX_IMAGE_SIDE,
};
use qcnn_model::ModelError;

/// Agreement with the authors' preprocessed input: max |a − b| / max |b| (docs/METHOD.md
/// expects about 1e-5 for a correct implementation; the resize repeats their arithmetic).
const GOLDEN_INPUT_TOLERANCE: f32 = 1e-5;

/// A flat image resized comes back flat only to a few ulp: the four products are rounded
/// before they are summed, the weight sum separately.
const FLAT_RESIZE_TOLERANCE: f32 = 1e-4;

const FIRST_BMP: &str = "qcnn-alexnet/Bmp.Files/ILSVRC2012_val_00000001.BMP";
const MEAN: &str = "qcnn-alexnet/AlexNet/imagenet_mean.single.bin";
const GOLDEN_INPUT: &str = "golden/ILSVRC2012_val_00000001/input.bin";

/// The shared data folder: $QCNN_SHARED, else ../../shared from this crate; None (after a
/// visible SKIPPED line) when absent.
fn shared(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("QCNN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    if dir.join(MEAN).is_file() {
        Some(dir)
    } else {
        eprintln!("SKIPPED {test}: shared data {} not found", dir.display());
        None
    }
}

fn zero_mean() -> MeanImage {
    MeanImage::from_data(
        &[3, FULL_SIDE, FULL_SIDE],
        vec![0.0; 3 * FULL_SIDE * FULL_SIDE],
    )
    .unwrap()
}

/// The error must be `Invalid`, name `path` and mention `needle`.
fn assert_invalid(err: ModelError, path: &Path, needle: &str) {
    let text = err.to_string();
    match &err {
        ModelError::Invalid { path: p, .. } => assert_eq!(p, path, "{text}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(text.contains(needle), "{text:?} lacks {needle:?}");
}

/// A minimal 24-bit bottom-up BMP (BITMAPINFOHEADER) with the given pixels, row-major RGB.
fn bmp_24(w: u32, h: u32, rgb: &[[u8; 3]]) -> Vec<u8> {
    let row = (3 * w as usize).div_ceil(4) * 4;
    let data_len = row * h as usize;
    let mut b = Vec::new();
    b.extend_from_slice(b"BM");
    b.extend_from_slice(&(54 + data_len as u32).to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&54u32.to_le_bytes());
    b.extend_from_slice(&40u32.to_le_bytes());
    b.extend_from_slice(&(w as i32).to_le_bytes());
    b.extend_from_slice(&(h as i32).to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&24u16.to_le_bytes());
    b.extend_from_slice(&[0; 4]); // BI_RGB
    b.extend_from_slice(&(data_len as u32).to_le_bytes());
    b.extend_from_slice(&[0; 16]);
    for y in (0..h as usize).rev() {
        let start = b.len();
        for x in 0..w as usize {
            let [r, g, bl] = rgb[y * w as usize + x];
            b.extend_from_slice(&[bl, g, r]);
        }
        b.resize(start + row, 0);
    }
    b
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn first_validation_image_matches_golden_input() {
    let Some(shared) = shared("first_validation_image_matches_golden_input") else {
        return;
    };
    let mean = MeanImage::load(&shared.join(MEAN)).unwrap();
    let ours = preprocess(&shared.join(FIRST_BMP), &mean).unwrap();
    let golden = read_bin_f32(&shared.join(GOLDEN_INPUT)).unwrap();
    assert_eq!(golden.dims, [3, CROP_SIDE, CROP_SIDE]);
    assert_eq!(ours.len(), golden.data.len());
    let max_ref = golden.data.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let max_diff = ours
        .iter()
        .zip(&golden.data)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    let identical = ours
        .iter()
        .zip(&golden.data)
        .filter(|(a, b)| a.to_bits() == b.to_bits())
        .count();
    let rel = max_diff / max_ref;
    eprintln!(
        "golden input: max |diff| {max_diff:e}, max |ref| {max_ref}, relative {rel:e}, \
         bit-identical {identical}/{}",
        ours.len()
    );
    assert!(rel <= GOLDEN_INPUT_TOLERANCE, "relative error {rel:e}");
}

#[test]
fn every_shared_bmp_preprocesses_to_network_input() {
    let Some(shared) = shared("every_shared_bmp_preprocesses_to_network_input") else {
        return;
    };
    let mean = MeanImage::load(&shared.join(MEAN)).unwrap();
    for i in 1..=10 {
        let path = shared.join(format!("qcnn-alexnet/Bmp.Files/ILSVRC2012_val_{i:08}.BMP"));
        let x = preprocess(&path, &mean).unwrap();
        assert_eq!(x.len(), 3 * CROP_SIDE * CROP_SIDE, "{}", path.display());
        assert!(x.iter().all(|v| v.is_finite() && v.abs() < 256.0));
    }
}

#[test]
fn bmp_channels_come_out_b_g_r_top_row_first() {
    let dir = tempfile::tempdir().unwrap();
    // 2 × 2: top row red, green; bottom row blue, white.
    let rgb = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]];
    let path = write(dir.path(), "tiny.bmp", &bmp_24(2, 2, &rgb));
    let (h, w, bgr) = load_image_bgr(&path).unwrap();
    assert_eq!((h, w), (2, 2));
    #[rustfmt::skip]
    let want = [
        0.0, 0.0, 255.0, 255.0, // B
        0.0, 255.0, 0.0, 255.0, // G
        255.0, 0.0, 0.0, 255.0, // R
    ];
    assert_eq!(bgr, want);
}

#[test]
fn constant_image_minus_mean_is_constant_minus_mean_crop() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (31, 17);
    let path = write(
        dir.path(),
        "flat.bmp",
        &bmp_24(w, h, &vec![[30, 20, 10]; 17 * 31]),
    );
    let n = FULL_SIDE * FULL_SIDE;
    let mean_data: Vec<f32> = (0..3 * n).map(|i| (i % 97) as f32).collect();
    let mean = MeanImage::from_data(&[3, FULL_SIDE, FULL_SIDE], mean_data.clone()).unwrap();
    let x = preprocess(&path, &mean).unwrap();
    for (c, base) in [10.0f32, 20.0, 30.0].into_iter().enumerate() {
        for y in 0..CROP_SIDE {
            for xx in 0..CROP_SIDE {
                let m = mean_data[(c * FULL_SIDE + y + 14) * FULL_SIDE + xx + 14];
                let got = x[(c * CROP_SIDE + y) * CROP_SIDE + xx];
                assert!(
                    (got - (base - m)).abs() <= FLAT_RESIZE_TOLERANCE,
                    "{got} vs {base} - {m}"
                );
            }
        }
    }
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.bmp");
    let err = load_image_bgr(&path).unwrap_err();
    assert!(
        matches!(&err, ModelError::Io { path: p, .. } if *p == path),
        "{err:?}"
    );
}

#[test]
fn non_bmp_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    // A PNG signature: a real image, but not the BMP the authors' pipeline reads.
    let path = write(dir.path(), "image.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    assert_invalid(load_image_bgr(&path).unwrap_err(), &path, "not a BMP");
    let empty = write(dir.path(), "empty.bmp", b"");
    assert_invalid(load_image_bgr(&empty).unwrap_err(), &empty, "not a BMP");
}

#[test]
fn undecodable_bmp_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = bmp_24(4, 4, &[[1, 2, 3]; 16]);
    bytes[28] = 13; // 13 bits per pixel does not exist
    let path = write(dir.path(), "bad_depth.bmp", &bytes);
    assert_invalid(load_image_bgr(&path).unwrap_err(), &path, "bad BMP");
}

#[test]
fn truncated_bmp_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let full = bmp_24(16, 16, &[[9, 8, 7]; 256]);
    for keep in [2, 20, 54, 54 + 3 * 16 * 8, full.len() - 1] {
        let path = write(dir.path(), &format!("cut{keep}.bmp"), &full[..keep]);
        assert_invalid(load_image_bgr(&path).unwrap_err(), &path, "bad BMP");
    }
}

#[test]
fn absurd_image_dimensions_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = bmp_24(2, 2, &[[0, 0, 0]; 4]);
    let side = (MAX_IMAGE_SIDE + 1) as i32;
    bytes[18..22].copy_from_slice(&side.to_le_bytes());
    let path = write(dir.path(), "huge.bmp", &bytes);
    assert_invalid(
        load_image_bgr(&path).unwrap_err(),
        &path,
        "absurd image dimensions",
    );

    let mean = zero_mean();
    let err = preprocess_pixels(0, 5, &[], &mean).unwrap_err();
    assert!(err.to_string().contains("absurd image dimensions"), "{err}");
    let err = preprocess_pixels(2, 2, &[0.0; 11], &mean).unwrap_err();
    assert!(err.to_string().contains("expected 12"), "{err}");
}

#[test]
fn mean_image_of_wrong_size_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mean_227.bin");
    write_bin_f32(&path, &[3, 227, 227], &vec![0.0; 3 * 227 * 227]).unwrap();
    assert_invalid(
        MeanImage::load(&path).unwrap_err(),
        &path,
        "expected [3, 256, 256]",
    );

    let flat = dir.path().join("mean_flat.bin");
    write_bin_f32(&flat, &[3 * 256 * 256], &vec![0.0; 3 * 256 * 256]).unwrap();
    assert_invalid(
        MeanImage::load(&flat).unwrap_err(),
        &flat,
        "expected [3, 256, 256]",
    );

    assert!(MeanImage::from_data(&[3, 256, 256], vec![0.0; 5]).is_err());
    assert!(MeanImage::from_data(&[1, 3, 256, 256], vec![0.0; 3 * 256 * 256]).is_err());
}
