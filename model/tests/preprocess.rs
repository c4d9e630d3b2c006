//! Preprocessing against the authors' golden input, PNG and JPEG through the same steps, and
//! every way a loader input can be bad.

use std::path::{Path, PathBuf};

use qcnn_model::format::{read_bin_f32, write_bin_f32};
use qcnn_model::preprocess::{
    image_files, load_image_bgr, preprocess, preprocess_pixels, MeanImage, CROP_SIDE, FULL_SIDE,
    MAX_IMAGE_SIDE,
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
fn missing_file_is_a_file_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.bmp");
    let err = load_image_bgr(&path).unwrap_err();
    assert!(
        matches!(&err, ModelError::File(e) if e.path() == path),
        "{err:?}"
    );
    let text = err.to_string();
    assert_eq!(text.matches("No such file").count(), 1, "{text}");
}

#[test]
fn unknown_and_truncated_formats_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let text = write(dir.path(), "notes.bmp", b"just some text, no image");
    assert_invalid(
        load_image_bgr(&text).unwrap_err(),
        &text,
        "not a BMP, PNG or JPEG file",
    );
    let empty = write(dir.path(), "empty.bmp", b"");
    assert_invalid(load_image_bgr(&empty).unwrap_err(), &empty, "not a BMP");
    // A PNG signature and the start of its header, nothing more.
    let png = write(dir.path(), "cut.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    assert_invalid(load_image_bgr(&png).unwrap_err(), &png, "bad PNG");
    let jpeg = write(dir.path(), "cut.jpg", b"\xff\xd8\xff\xe0\0\x10JFIF");
    assert_invalid(load_image_bgr(&jpeg).unwrap_err(), &jpeg, "bad JPEG");
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
        "= [3, 256, 256]",
    );

    let flat = dir.path().join("mean_flat.bin");
    write_bin_f32(&flat, &[3 * 256 * 256], &vec![0.0; 3 * 256 * 256]).unwrap();
    assert_invalid(
        MeanImage::load(&flat).unwrap_err(),
        &flat,
        "= [3, 256, 256]",
    );

    assert!(MeanImage::from_data(&[3, 256, 256], vec![0.0; 5]).is_err());
    assert!(MeanImage::from_data(&[1, 3, 256, 256], vec![0.0; 3 * 256 * 256]).is_err());
}

#[test]
fn non_finite_mean_values_are_rejected_with_their_position() {
    let dir = tempfile::tempdir().unwrap();
    for (bad, name) in [
        (f32::NAN, "NaN"),
        (f32::INFINITY, "inf"),
        (f32::NEG_INFINITY, "-inf"),
    ] {
        let path = dir.path().join(format!("mean_{name}.bin"));
        let mut data = vec![100.0f32; 3 * 256 * 256];
        data[256 * 256 + 3] = bad;
        write_bin_f32(&path, &[3, 256, 256], &data).unwrap();
        assert_invalid(
            MeanImage::load(&path).unwrap_err(),
            &path,
            &format!("value {name} at flat position 65539 (index [1, 0, 3]"),
        );
    }
    let mut data = vec![0.0f32; 3 * 256 * 256];
    data[7] = f32::NAN;
    assert!(MeanImage::from_data(&[3, 256, 256], data).is_err());
}

#[test]
fn a_mean_image_that_is_a_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = MeanImage::load(dir.path()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("is a directory, not a regular file"),
        "{text}"
    );
}

/// A deterministic RGB image with every level of every channel somewhere.
fn pattern(w: u32, h: u32) -> Vec<[u8; 3]> {
    (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            [(x * 7 + y) as u8, (y * 5 + 3 * x) as u8, (x * y + 11) as u8]
        })
        .collect()
}

fn encode(img: &image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

fn rgb_image(w: u32, h: u32, rgb: &[[u8; 3]]) -> image::DynamicImage {
    let flat: Vec<u8> = rgb.iter().flatten().copied().collect();
    image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, flat).unwrap())
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn a_png_gives_the_bmp_input_bit_for_bit_whatever_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (61, 43);
    let rgb = pattern(w, h);
    let bmp = write(dir.path(), "a.bmp", &bmp_24(w, h, &rgb));
    let png_bytes = encode(&rgb_image(w, h, &rgb), image::ImageFormat::Png);
    let png = write(dir.path(), "a.png", &png_bytes);
    // Told by the signature, not the name.
    let misnamed = write(dir.path(), "b.bmp", &png_bytes);
    let mean = zero_mean();
    let want = preprocess(&bmp, &mean).unwrap();
    assert!(same_bits(&preprocess(&png, &mean).unwrap(), &want));
    assert!(same_bits(&preprocess(&misnamed, &mean).unwrap(), &want));
    let (ph, pw, bgr) = load_image_bgr(&png).unwrap();
    assert_eq!((ph, pw), (h as usize, w as usize));
    // Channel order B, G, R: pixel 0 is rgb[0] reversed.
    let plane = (w * h) as usize;
    let [r, g, b] = rgb[0];
    assert_eq!(
        [bgr[0], bgr[plane], bgr[2 * plane]],
        [f32::from(b), f32::from(g), f32::from(r)]
    );
}

#[test]
fn grey_alpha_and_16_bit_pngs_follow_the_documented_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (9, 7);
    let grey: Vec<u8> = (0..w * h).map(|i| (i * 3) as u8).collect();
    let luma =
        image::DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, grey.clone()).unwrap());
    let path = write(
        dir.path(),
        "grey.png",
        &encode(&luma, image::ImageFormat::Png),
    );
    let (_, _, bgr) = load_image_bgr(&path).unwrap();
    let plane = (w * h) as usize;
    for (p, &v) in grey.iter().enumerate() {
        let v = f32::from(v);
        assert_eq!([bgr[p], bgr[plane + p], bgr[2 * plane + p]], [v, v, v]);
    }

    let rgba: Vec<u8> = (0..w * h)
        .flat_map(|i| [i as u8, 2 * i as u8, 3 * i as u8, 17])
        .collect();
    let img =
        image::DynamicImage::ImageRgba8(image::RgbaImage::from_raw(w, h, rgba.clone()).unwrap());
    let path = write(
        dir.path(),
        "alpha.png",
        &encode(&img, image::ImageFormat::Png),
    );
    let (_, _, bgr) = load_image_bgr(&path).unwrap();
    for p in 0..plane {
        let px = &rgba[4 * p..4 * p + 3];
        let want = [f32::from(px[2]), f32::from(px[1]), f32::from(px[0])];
        assert_eq!(
            [bgr[p], bgr[plane + p], bgr[2 * plane + p]],
            want,
            "alpha dropped"
        );
    }

    let deep: Vec<u16> = (0..w * h * 3).map(|i| (i as u16) * 257).collect();
    let img = image::DynamicImage::ImageRgb16(image::ImageBuffer::from_raw(w, h, deep).unwrap());
    let path = write(
        dir.path(),
        "deep.png",
        &encode(&img, image::ImageFormat::Png),
    );
    let (_, _, bgr) = load_image_bgr(&path).unwrap();
    for p in 0..plane {
        let want = [3 * p + 2, 3 * p + 1, 3 * p].map(|i| i as u8 as f32);
        assert_eq!(
            [bgr[p], bgr[plane + p], bgr[2 * plane + p]],
            want,
            "16 bits scaled to 8"
        );
    }
}

#[test]
fn a_jpeg_decodes_close_to_its_bmp() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (64, 48);
    // Smooth content: JPEG at quality 100 keeps it within a few levels.
    let rgb: Vec<[u8; 3]> = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            [(2 * x + 40) as u8, (3 * y + 20) as u8, (x + y + 60) as u8]
        })
        .collect();
    let bmp = write(dir.path(), "s.bmp", &bmp_24(w, h, &rgb));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 100)
        .encode_image(&rgb_image(w, h, &rgb))
        .unwrap();
    let jpg = write(dir.path(), "s.JPG", &jpeg);
    let (_, _, from_bmp) = load_image_bgr(&bmp).unwrap();
    let (jh, jw, from_jpeg) = load_image_bgr(&jpg).unwrap();
    assert_eq!((jh, jw), (h as usize, w as usize));
    let worst = from_bmp
        .iter()
        .zip(&from_jpeg)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 4.0, "JPEG differs from its BMP by {worst} levels");
    let mean = zero_mean();
    assert_eq!(
        preprocess(&jpg, &mean).unwrap().len(),
        3 * CROP_SIDE * CROP_SIDE
    );
}

#[test]
fn the_authors_bmp_as_png_matches_the_golden_input_bit_for_bit() {
    let Some(shared) = shared("the_authors_bmp_as_png_matches_the_golden_input_bit_for_bit") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let img = image::open(shared.join(FIRST_BMP)).unwrap();
    let png = write(
        dir.path(),
        "first.png",
        &encode(&img, image::ImageFormat::Png),
    );
    let mean = MeanImage::load(&shared.join(MEAN)).unwrap();
    let from_png = preprocess(&png, &mean).unwrap();
    let from_bmp = preprocess(&shared.join(FIRST_BMP), &mean).unwrap();
    assert!(same_bits(&from_png, &from_bmp));
}

#[test]
fn image_folders_list_bmp_png_and_jpeg_in_any_case_sorted() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["c.JPEG", "a.bmp", "b.Png", "d.jpg", "notes.txt", "e.gif"] {
        write(dir.path(), name, b"x");
    }
    let names: Vec<String> = image_files(dir.path())
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["a.bmp", "b.Png", "c.JPEG", "d.jpg"]);
    let err = image_files(&dir.path().join("none")).unwrap_err();
    assert!(err.to_string().contains("none: cannot list"), "{err}");
}
