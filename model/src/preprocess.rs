//! Image preprocessing, exactly as the authors' `BmpImgIO` does it for AlexNet
//! (resize type "Strict", mean type "Full"; docs/METHOD.md "Caffe conventions"):
//!
//! 1. decode the image into channels B, G, R (f32 pixel values 0..=255);
//! 2. bilinear resize to 256 × 256 with corner-aligned scale (H_src − 1) / (256 − 1);
//! 3. subtract the 256 × 256 mean image (B, G, R);
//! 4. crop the centre 227 × 227 at offset (256 − 227) / 2 = 14 (the 224 × 224 networks,
//!    CNN-S and VGG-16: the centre 224 × 224 at offset 16, as their Caffe deploy files do).
//!
//! The resize repeats the authors' arithmetic operation for operation (f32 products and sums in
//! their order, the weight complements in f64 as C++ promotes `1.0 - x`, their build has no FMA),
//! so the result matches theirs bit for bit: for `ILSVRC2012_val_00000001.BMP` all 154,587
//! values equal golden/ILSVRC2012_val_00000001/input.bin exactly (tests/preprocess.rs).
//!
//! The authors read BMP only; PNG and JPEG files go through the same steps 2–4 after the
//! `image` crate decodes them, with the format told by the file's signature (not its name).
//! Decoding rules for every format: grey images have their one channel copied to B, G and R;
//! an alpha channel is dropped (not blended); 16-bit PNG channels are scaled to 8 bits; EXIF
//! orientation is not applied (pixels are used as stored, row 0 on top). A PNG is lossless,
//! so a PNG of a BMP gives the BMP's input bit for bit; JPEG is lossy, and its decoder (the
//! `image` crate's, not libjpeg) may differ from other decoders by a level or two per pixel.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::codecs::bmp::BmpDecoder;
use image::codecs::jpeg::JpegDecoder;
use image::codecs::png::PngDecoder;
use image::{DynamicImage, ImageDecoder, ImageFormat, Limits};

use crate::error::{ModelError, Result};
use crate::format::{exact_dims, read_bin_f32_as};

/// Colour channels, in B, G, R order.
pub const CHANNELS: usize = 3;
/// Side of the resized ("full") image and of the mean image.
pub const FULL_SIDE: usize = 256;
/// Side of the network input.
pub const CROP_SIDE: usize = 227;
/// Offset of AlexNet's centre crop in both directions: (256 − 227) / 2 = 14 (224: 16).
pub const CROP_OFFSET: usize = (FULL_SIDE - CROP_SIDE) / 2;
/// Largest accepted image side; anything larger is a corrupt or hostile header.
pub const MAX_IMAGE_SIDE: usize = 1 << 14;
/// Largest accepted pixel count (2^25 ≈ 33.5 M pixels: 400 MB as f32 B, G, R planes).
pub const MAX_IMAGE_PIXELS: usize = 1 << 25;
/// Largest accepted image file: an uncompressed 32-bit BMP of [`MAX_IMAGE_PIXELS`] plus 1 MiB
/// of headers, palettes and metadata; a PNG or JPEG of an accepted size is smaller.
pub const MAX_IMAGE_FILE_BYTES: u64 = 4 * MAX_IMAGE_PIXELS as u64 + (1 << 20);
/// The most the decoder may allocate (the image crate's default): the decoded pixels of the
/// largest accepted image at 16 bits per channel with alpha fit.
const MAX_DECODE_BYTES: u64 = 512 << 20;
/// File extensions of the images a folder of images offers (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 4] = ["bmp", "png", "jpg", "jpeg"];

/// Stands in for a file name in errors about in-memory data.
const IN_MEMORY_MEAN: &str = "<in-memory mean image>";
const IN_MEMORY_PIXELS: &str = "<in-memory pixels>";

/// The ImageNet mean image. Layout (3, 256, 256): channel B, G, R, then row, then column.
#[derive(Clone, Debug, PartialEq)]
pub struct MeanImage {
    data: Vec<f32>,
}

impl MeanImage {
    /// Reads `imagenet_mean.single.bin` (FORMAT.md `.bin`, f32, dims (3, 256, 256)): a
    /// regular file whose header says exactly these dims, every value finite.
    pub fn load(path: &Path) -> Result<Self> {
        let want = [CHANNELS, FULL_SIDE, FULL_SIDE];
        let array = read_bin_f32_as(path, &exact_dims(&want, "(B, G, R) × 256 × 256"))?;
        Self::checked(path, &array.dims, array.data)
    }

    /// A mean image from memory; `dims` must be (3, 256, 256) and `data` hold 3·256·256 values.
    pub fn from_data(dims: &[usize], data: Vec<f32>) -> Result<Self> {
        Self::checked(Path::new(IN_MEMORY_MEAN), dims, data)
    }

    /// The values, layout (3, 256, 256), B, G, R.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    fn checked(path: &Path, dims: &[usize], data: Vec<f32>) -> Result<Self> {
        let want = [CHANNELS, FULL_SIDE, FULL_SIDE];
        if dims != want {
            return Err(ModelError::invalid(
                path,
                format!("mean image has dims {dims:?}, expected {want:?} (B, G, R × 256 × 256)"),
            ));
        }
        if let Some(p) = data.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::invalid(
                path,
                format!(
                    "mean image value {} at flat position {p} is not finite",
                    data[p]
                ),
            ));
        }
        if data.len() != want.iter().product::<usize>() {
            return Err(ModelError::invalid(
                path,
                format!(
                    "mean image holds {} values, expected {}",
                    data.len(),
                    want.iter().product::<usize>()
                ),
            ));
        }
        Ok(MeanImage { data })
    }
}

/// Decodes a BMP, PNG or JPEG file (told by its signature). Returns (h, w, pixels) with
/// pixels in layout (3, h, w), channels B, G, R, values 0.0..=255.0, row 0 at the top. The
/// file must be a regular file of at most [`MAX_IMAGE_FILE_BYTES`], and its dimensions are
/// checked before the pixels are decoded.
pub fn load_image_bgr(path: &Path) -> Result<(usize, usize, Vec<f32>)> {
    let bytes = qcnn_files::read_regular(path, MAX_IMAGE_FILE_BYTES, "an image file")?;
    let bad = |format: &'static str| {
        move |e: image::ImageError| ModelError::invalid(path, format!("bad {format}: {e}"))
    };
    let cursor = Cursor::new(&bytes[..]);
    let rgb = match image::guess_format(&bytes) {
        Ok(ImageFormat::Bmp) => decode(BmpDecoder::new(cursor).map_err(bad("BMP"))?, path, "BMP"),
        Ok(ImageFormat::Png) => {
            let decoder = PngDecoder::with_limits(cursor, decode_limits()).map_err(bad("PNG"))?;
            decode(decoder, path, "PNG")
        }
        Ok(ImageFormat::Jpeg) => {
            decode(JpegDecoder::new(cursor).map_err(bad("JPEG"))?, path, "JPEG")
        }
        _ => Err(ModelError::invalid(
            path,
            "not a BMP, PNG or JPEG file (its first bytes match none of their signatures)",
        )),
    }?;
    let (h, w) = (rgb.height() as usize, rgb.width() as usize);
    let plane = h * w;
    let mut bgr = vec![0.0f32; CHANNELS * plane];
    for (p, px) in rgb.pixels().enumerate() {
        let [r, g, b] = px.0;
        bgr[p] = f32::from(b);
        bgr[plane + p] = f32::from(g);
        bgr[2 * plane + p] = f32::from(r);
    }
    Ok((h, w, bgr))
}

fn decode_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE as u32);
    limits.max_image_height = Some(MAX_IMAGE_SIDE as u32);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

/// Checks the dimensions a decoder read from the header, then decodes to 8-bit R, G, B
/// (grey copied to every channel, alpha dropped, 16 bits scaled to 8).
fn decode(mut decoder: impl ImageDecoder, path: &Path, format: &str) -> Result<image::RgbImage> {
    let (w, h) = decoder.dimensions();
    check_dims(path, h as usize, w as usize)?;
    let bad = |e: image::ImageError| ModelError::invalid(path, format!("bad {format}: {e}"));
    decoder.set_limits(decode_limits()).map_err(bad)?;
    Ok(DynamicImage::from_decoder(decoder)
        .map_err(bad)?
        .into_rgb8())
}

/// The images of folder `dir` (extensions [`IMAGE_EXTENSIONS`], any case), sorted by name.
/// A listing error is an error; an entry that is not a regular image file is refused when it
/// is read.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let files = qcnn_files::list_dir(dir)?
        .into_iter()
        .filter(|p| {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(ext))
        })
        .collect();
    Ok(files)
}

/// The network input of an image file (BMP, PNG or JPEG): layout (3, 227, 227), B, G, R,
/// mean subtracted.
pub fn preprocess(path: &Path, mean: &MeanImage) -> Result<Vec<f32>> {
    preprocess_to(path, mean, CROP_SIDE)
}

/// The input of a network whose input is `crop` × `crop` (227 for AlexNet and CaffeNet, 224
/// for CNN-S and VGG-16): the same steps with a centre crop of that side.
pub fn preprocess_to(path: &Path, mean: &MeanImage, crop: usize) -> Result<Vec<f32>> {
    let (h, w, bgr) = load_image_bgr(path)?;
    preprocess_pixels_to(h, w, &bgr, mean, crop)
}

/// The network input of decoded pixels `bgr`, layout (3, h, w), B, G, R, values 0..=255:
/// resize to (3, 256, 256), subtract the mean, crop to (3, 227, 227).
pub fn preprocess_pixels(h: usize, w: usize, bgr: &[f32], mean: &MeanImage) -> Result<Vec<f32>> {
    preprocess_pixels_to(h, w, bgr, mean, CROP_SIDE)
}

/// As [`preprocess_pixels`] with a centre crop of `crop` × `crop` (at most 256).
pub fn preprocess_pixels_to(
    h: usize,
    w: usize,
    bgr: &[f32],
    mean: &MeanImage,
    crop: usize,
) -> Result<Vec<f32>> {
    let path = Path::new(IN_MEMORY_PIXELS);
    if !(1..=FULL_SIDE).contains(&crop) {
        return Err(ModelError::invalid(
            path,
            format!("centre crop {crop} × {crop}: must be 1..={FULL_SIDE} (the resized side)"),
        ));
    }
    check_dims(path, h, w)?;
    if bgr.len() != CHANNELS * h * w {
        return Err(ModelError::invalid(
            path,
            format!(
                "{} pixel values for a 3 × {h} × {w} image (expected {})",
                bgr.len(),
                CHANNELS * h * w
            ),
        ));
    }
    let mut full = resize_strict(h, w, bgr, FULL_SIDE, FULL_SIDE);
    for (x, m) in full.iter_mut().zip(mean.data()) {
        *x -= m;
    }
    Ok(crop_centre(&full, FULL_SIDE, FULL_SIDE, crop, crop))
}

fn check_dims(path: &Path, h: usize, w: usize) -> Result<()> {
    let side_ok = |s: usize| (1..=MAX_IMAGE_SIDE).contains(&s);
    if !side_ok(h) || !side_ok(w) || h * w > MAX_IMAGE_PIXELS {
        return Err(ModelError::invalid(
            path,
            format!(
                "absurd image dimensions {w} × {h} (width × height): each side must be in \
                 1..={MAX_IMAGE_SIDE} and the area at most {MAX_IMAGE_PIXELS} pixels"
            ),
        ));
    }
    Ok(())
}

/// One output coordinate of the corner-aligned resize: the two source indices and their
/// weights, computed as the authors do (f32 position, weights `1.0 - distance` in f64).
#[derive(Clone, Copy, Debug)]
struct Tap {
    lo: usize,
    hi: usize,
    w_lo: f32,
    w_hi: f32,
}

impl Tap {
    fn new(scale: f32, dst: usize, src_len: usize) -> Tap {
        let centre = scale * dst as f32;
        // `static_cast<int>` truncates; centre ≥ 0, so this is floor.
        let lo = centre as usize;
        let hi = (lo + 1).min(src_len - 1);
        // At the last source index hi == lo and the weights do not sum to 1: the authors
        // divide by the weight sum, and so do we.
        let w_lo = (1.0f64 - f64::from(centre - lo as f32)) as f32;
        let w_hi = (1.0f64 - f64::from(hi as f32 - centre)) as f32;
        Tap { lo, hi, w_lo, w_hi }
    }
}

/// The authors' "strict" scale: source and destination corners coincide.
fn strict_scale(src_len: usize, dst_len: usize) -> f32 {
    (src_len - 1) as f32 / (dst_len - 1) as f32
}

/// Bilinear resize of `src` (layout (3, h, w)) to layout (3, dst_h, dst_w), corner-aligned.
fn resize_strict(h: usize, w: usize, src: &[f32], dst_h: usize, dst_w: usize) -> Vec<f32> {
    let (scale_h, scale_w) = (strict_scale(h, dst_h), strict_scale(w, dst_w));
    let cols: Vec<Tap> = (0..dst_w).map(|x| Tap::new(scale_w, x, w)).collect();
    let mut dst = vec![0.0f32; CHANNELS * dst_h * dst_w];
    for y in 0..dst_h {
        let row = Tap::new(scale_h, y, h);
        for (x, col) in cols.iter().enumerate() {
            // The four weights, named by corner: (top|bottom) × (left|right).
            let w_tl = row.w_lo * col.w_lo;
            let w_tr = row.w_lo * col.w_hi;
            let w_bl = row.w_hi * col.w_lo;
            let w_br = row.w_hi * col.w_hi;
            let w_sum = w_tl + w_tr + w_bl + w_br;
            for c in 0..CHANNELS {
                let at = |i: usize, j: usize| src[(c * h + i) * w + j];
                let v_sum = at(row.lo, col.lo) * w_tl
                    + at(row.lo, col.hi) * w_tr
                    + at(row.hi, col.lo) * w_bl
                    + at(row.hi, col.hi) * w_br;
                dst[(c * dst_h + y) * dst_w + x] = v_sum / w_sum;
            }
        }
    }
    dst
}

/// The centre (3, crop_h, crop_w) window of `src` (layout (3, h, w)), offset ((h − crop_h) / 2,
/// (w − crop_w) / 2) rounded down.
fn crop_centre(src: &[f32], h: usize, w: usize, crop_h: usize, crop_w: usize) -> Vec<f32> {
    let (top, left) = ((h - crop_h) / 2, (w - crop_w) / 2);
    let mut dst = Vec::with_capacity(CHANNELS * crop_h * crop_w);
    for c in 0..CHANNELS {
        for y in 0..crop_h {
            let start = (c * h + top + y) * w + left;
            dst.extend_from_slice(&src[start..start + crop_w]);
        }
    }
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_to_same_size_is_identity() {
        let (h, w) = (5, 7);
        let src: Vec<f32> = (0..CHANNELS * h * w)
            .map(|i| (i * 37 % 256) as f32)
            .collect();
        assert_eq!(resize_strict(h, w, &src, h, w), src);
    }

    #[test]
    fn resize_keeps_corners_and_constant_images() {
        let (h, w) = (3, 4);
        let src: Vec<f32> = (0..CHANNELS * h * w).map(|i| i as f32).collect();
        let dst = resize_strict(h, w, &src, 9, 10);
        for c in 0..CHANNELS {
            let s = |i: usize, j: usize| src[(c * h + i) * w + j];
            let d = |i: usize, j: usize| dst[(c * 9 + i) * 10 + j];
            assert_eq!(d(0, 0), s(0, 0));
            assert_eq!(d(0, 9), s(0, 3));
            assert_eq!(d(8, 0), s(2, 0));
            assert_eq!(d(8, 9), s(2, 3));
        }
        let flat = vec![42.0f32; CHANNELS * h * w];
        assert!(resize_strict(h, w, &flat, 9, 10).iter().all(|&v| v == 42.0));
    }

    #[test]
    fn crop_offset_is_fourteen() {
        assert_eq!(CROP_OFFSET, 14);
        let src: Vec<f32> = (0..CHANNELS * 4 * 4).map(|i| i as f32).collect();
        // 4 × 4 → 2 × 2 at offset 1.
        assert_eq!(
            crop_centre(&src, 4, 4, 2, 2),
            [5.0, 6.0, 9.0, 10.0, 21.0, 22.0, 25.0, 26.0, 37.0, 38.0, 41.0, 42.0]
        );
    }
}
