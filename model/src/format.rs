//! The authors' binary files, byte for byte (FORMAT.md): `.bin` dense arrays and `.cbn`
//! bit-packed index arrays. All integers and floats are little-endian.
//!
//! Every reader goes through one header check, [`parse_header`], which validates n, the dims,
//! the element count (checked multiplication) and the exact file length before anything is
//! allocated from the header. Readers never panic on a bad file; they return
//! [`ModelError::Invalid`] naming the file and the check that failed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{ModelError, Result};

/// The most dimensions a header may declare.
pub const MAX_DIMS: usize = 8;
/// A `.cbn` payload is made of blocks of exactly this many bytes.
pub const CBN_BLOCK_BYTES: usize = 4096;
const CBN_BLOCK_BITS: usize = CBN_BLOCK_BYTES * 8;
/// The longest header: n, 8 dims, b.
const MAX_HEADER_BYTES: usize = 4 + 4 * MAX_DIMS + 4;

/// A dense n-dimensional array from a `.bin` file. Layout: `dims`, row-major, outermost first.
#[derive(Clone, Debug, PartialEq)]
pub struct BinArray<T> {
    pub dims: Vec<usize>,
    /// prod(dims) elements, row-major.
    pub data: Vec<T>,
}

/// A bit-packed array of small unsigned integers from a `.cbn` file, unpacked to bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CbnArray {
    pub dims: Vec<usize>,
    /// Bits per element in the file (1..=8).
    pub bits: u32,
    /// prod(dims) values, row-major, each < 2^bits.
    pub data: Vec<u8>,
}

/// The number of bits the authors store per index for K codewords: ceil(log2 K), at least 1.
pub fn bits_for(k: usize) -> u32 {
    if k <= 2 {
        1
    } else {
        usize::BITS - (k - 1).leading_zeros()
    }
}

/// Which of the two file kinds a header belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// `.bin`: the payload is prod(dims) elements of `elem_bytes` bytes each.
    Bin {
        elem_bytes: u64,
        elem_name: &'static str,
    },
    /// `.cbn`: a `b` field follows the dims; the payload is whole 4096-byte blocks.
    Cbn,
}

/// A validated header.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Header {
    dims: Vec<usize>,
    /// prod(dims), known to fit.
    count: usize,
    /// `.cbn` only: bits per element.
    bits: u32,
    /// Bytes before the payload.
    header_len: usize,
}

fn read_i32(bytes: &[u8], at: usize) -> i32 {
    i32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Checks a header against the whole file's length. `prefix` holds the file's first bytes:
/// the whole file, or at least `MAX_HEADER_BYTES` of it (fewer only if the file is shorter).
fn parse_header(prefix: &[u8], file_len: u64, layout: Layout, path: &Path) -> Result<Header> {
    let bad = |problem: String| ModelError::invalid(path, problem);
    let available = prefix.len().min(file_len as usize);
    if available < 4 {
        return Err(bad(format!(
            "truncated: file is {file_len} bytes, shorter than the 4-byte dimension count"
        )));
    }
    let n = read_i32(prefix, 0);
    if !(1..=MAX_DIMS as i32).contains(&n) {
        return Err(bad(format!(
            "header: number of dimensions n = {n}, must be in 1..={MAX_DIMS}"
        )));
    }
    let n = n as usize;
    let extra = if layout == Layout::Cbn { 4 } else { 0 };
    let header_len = 4 + 4 * n + extra;
    if available < header_len {
        return Err(bad(format!(
            "truncated: file is {file_len} bytes, shorter than its {header_len}-byte header (n = {n})"
        )));
    }
    let mut dims = Vec::with_capacity(n);
    let mut count: u64 = 1;
    for i in 0..n {
        let dim = read_i32(prefix, 4 + 4 * i);
        if dim < 1 {
            return Err(bad(format!("header: dim {i} = {dim}, must be ≥ 1")));
        }
        dims.push(dim as usize);
        count = count.checked_mul(dim as u64).ok_or_else(|| {
            bad(format!(
                "header: dims {:?}… have more elements than fit in 64 bits",
                dims
            ))
        })?;
    }
    let (bits, payload) = match layout {
        Layout::Bin { elem_bytes, .. } => (0, count.checked_mul(elem_bytes)),
        Layout::Cbn => {
            let b = read_i32(prefix, 4 + 4 * n);
            if !(1..=8).contains(&b) {
                return Err(bad(format!(
                    "header: bits per element b = {b}, must be in 1..=8"
                )));
            }
            let per_block = (CBN_BLOCK_BITS / b as usize) as u64;
            let blocks = count.div_ceil(per_block);
            (b as u32, blocks.checked_mul(CBN_BLOCK_BYTES as u64))
        }
    };
    let expected = payload.and_then(|p| p.checked_add(header_len as u64));
    let Some(expected) = expected else {
        return Err(bad(format!(
            "header: dims {dims:?} need more bytes than fit in 64 bits"
        )));
    };
    if expected != file_len {
        let rule = match layout {
            Layout::Bin {
                elem_bytes,
                elem_name,
            } => format!("4 + 4·{n} + {elem_bytes}·{count} ({elem_name})"),
            Layout::Cbn => format!("4 + 4·{n} + 4 + 4096·ceil({count} / floor(32768 / {bits}))"),
        };
        return Err(bad(format!(
            "length: file is {file_len} bytes but header dims {dims:?} need exactly {expected} = {rule}"
        )));
    }
    // The length matched a real file (or buffer), so the count fits in memory terms.
    let count = usize::try_from(count)
        .map_err(|_| bad(format!("header: {count} elements do not fit in memory")))?;
    Ok(Header {
        dims,
        count,
        bits,
        header_len,
    })
}

/// An element type of a `.bin` file.
trait Element: Sized + Copy {
    const BYTES: usize;
    const NAME: &'static str;
    fn from_le(bytes: &[u8]) -> Self;
    fn to_le(self, out: &mut Vec<u8>);
}

impl Element for f32 {
    const BYTES: usize = 4;
    const NAME: &'static str = "f32";
    fn from_le(b: &[u8]) -> Self {
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
    fn to_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl Element for u16 {
    const BYTES: usize = 2;
    const NAME: &'static str = "u16";
    fn from_le(b: &[u8]) -> Self {
        u16::from_le_bytes([b[0], b[1]])
    }
    fn to_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

fn bin_layout<T: Element>() -> Layout {
    Layout::Bin {
        elem_bytes: T::BYTES as u64,
        elem_name: T::NAME,
    }
}

fn parse_bin<T: Element>(bytes: &[u8], path: &Path) -> Result<BinArray<T>> {
    let header = parse_header(bytes, bytes.len() as u64, bin_layout::<T>(), path)?;
    let data = bytes[header.header_len..]
        .chunks_exact(T::BYTES)
        .map(T::from_le)
        .collect();
    Ok(BinArray {
        dims: header.dims,
        data,
    })
}

fn encode_bin<T: Element>(dims: &[usize], data: &[T]) -> Vec<u8> {
    let header = encode_header(dims, data.len());
    let mut out = Vec::with_capacity(header.len() + data.len() * T::BYTES);
    out.extend_from_slice(&header);
    for &x in data {
        x.to_le(&mut out);
    }
    out
}

/// n and the dims as int32.
///
/// # Panics
/// If the dims are not a valid header (n in 1..=8, each in 1..=i32::MAX) or their product
/// is not `count`: the in-memory array is then inconsistent, a bug of the caller.
fn encode_header(dims: &[usize], count: usize) -> Vec<u8> {
    assert!(
        (1..=MAX_DIMS).contains(&dims.len()),
        "a header has 1..={MAX_DIMS} dims, got {dims:?}"
    );
    let product = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    assert_eq!(
        product,
        Some(count),
        "dims {dims:?} do not match {count} elements"
    );
    let mut out = Vec::with_capacity(4 + 4 * dims.len());
    out.extend_from_slice(&(dims.len() as i32).to_le_bytes());
    for &d in dims {
        let d = i32::try_from(d)
            .ok()
            .filter(|&d| d >= 1)
            .unwrap_or_else(|| panic!("dim {d} is not in 1..=i32::MAX"));
        out.extend_from_slice(&d.to_le_bytes());
    }
    out
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| ModelError::io(path, e))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| ModelError::io(path, e))
}

/// Parses a `.bin` file of f32 held in memory; `path` only names the errors.
pub fn parse_bin_f32(bytes: &[u8], path: &Path) -> Result<BinArray<f32>> {
    parse_bin(bytes, path)
}

/// Parses a `.bin` file of u16 held in memory (the labels file); `path` only names errors.
pub fn parse_bin_u16(bytes: &[u8], path: &Path) -> Result<BinArray<u16>> {
    parse_bin(bytes, path)
}

/// Reads a `.bin` file of f32 (biases, codebooks, dense weights, the mean image).
pub fn read_bin_f32(path: &Path) -> Result<BinArray<f32>> {
    parse_bin_f32(&read_file(path)?, path)
}

/// Reads a `.bin` file of u16 (`lablVecTst.uint16.bin`: the labels in its last dimension).
pub fn read_bin_u16(path: &Path) -> Result<BinArray<u16>> {
    parse_bin_u16(&read_file(path)?, path)
}

/// The bytes of a `.bin` file of f32.
///
/// # Panics
/// If `dims` is not 1..=8 dims in 1..=i32::MAX whose product is `data.len()`.
pub fn encode_bin_f32(dims: &[usize], data: &[f32]) -> Vec<u8> {
    encode_bin(dims, data)
}

/// The bytes of a `.bin` file of u16. Panics as [`encode_bin_f32`].
pub fn encode_bin_u16(dims: &[usize], data: &[u16]) -> Vec<u8> {
    encode_bin(dims, data)
}

/// Writes a `.bin` file of f32. Panics as [`encode_bin_f32`].
pub fn write_bin_f32(path: &Path, dims: &[usize], data: &[f32]) -> Result<()> {
    write_file(path, &encode_bin_f32(dims, data))
}

/// Parses a `.cbn` file held in memory; `path` only names the errors. Padding bits are not
/// checked (lenient), the length is (exact).
pub fn parse_cbn(bytes: &[u8], path: &Path) -> Result<CbnArray> {
    let header = parse_header(bytes, bytes.len() as u64, Layout::Cbn, path)?;
    let per_block = CBN_BLOCK_BITS / header.bits as usize;
    let mut data = Vec::with_capacity(header.count);
    for block in bytes[header.header_len..].chunks_exact(CBN_BLOCK_BYTES) {
        let n = per_block.min(header.count - data.len());
        unpack_block(block, header.bits, n, &mut data);
    }
    Ok(CbnArray {
        dims: header.dims,
        bits: header.bits,
        data,
    })
}

/// Reads a `.cbn` file.
pub fn read_cbn(path: &Path) -> Result<CbnArray> {
    parse_cbn(&read_file(path)?, path)
}

/// The bytes of a `.cbn` file: `bits` per value, MSB-first, in 4096-byte zero-padded blocks.
///
/// # Panics
/// If `bits` is not in 1..=8, a value does not fit in `bits`, or the dims are invalid as in
/// [`encode_bin_f32`].
pub fn encode_cbn(dims: &[usize], bits: u32, data: &[u8]) -> Vec<u8> {
    assert!(
        (1..=8).contains(&bits),
        "bits per element {bits} not in 1..=8"
    );
    if let Some(&v) = data.iter().find(|&&v| u32::from(v) >> bits != 0) {
        panic!("value {v} does not fit in {bits} bits");
    }
    let mut out = encode_header(dims, data.len());
    out.extend_from_slice(&(bits as i32).to_le_bytes());
    let per_block = CBN_BLOCK_BITS / bits as usize;
    out.reserve(data.len().div_ceil(per_block) * CBN_BLOCK_BYTES);
    for chunk in data.chunks(per_block) {
        pack_block(chunk, bits, &mut out);
    }
    out
}

/// Writes a `.cbn` file. Panics as [`encode_cbn`].
pub fn write_cbn(path: &Path, dims: &[usize], bits: u32, data: &[u8]) -> Result<()> {
    write_file(path, &encode_cbn(dims, bits, data))
}

/// Appends the first `n` values of one block (MSB-first, `bits` each) to `out`.
/// The caller guarantees `n ≤ floor(32768 / bits)`, so every read stays inside `block`.
fn unpack_block(block: &[u8], bits: u32, n: usize, out: &mut Vec<u8>) {
    let mut bytes = block.iter();
    // The next `held` bits of the stream are the low bits of `acc` (held ≤ 15).
    let (mut acc, mut held) = (0u32, 0u32);
    for _ in 0..n {
        if held < bits {
            let byte = bytes
                .next()
                .expect("n ≤ values per block (checked by the caller)");
            acc = (acc << 8) | u32::from(*byte);
            held += 8;
        }
        held -= bits;
        out.push((acc >> held) as u8 & ((1u32 << bits) - 1) as u8);
        acc &= (1u32 << held) - 1;
    }
}

/// Appends one 4096-byte block holding `values` (`bits` each, MSB-first, zero tail).
fn pack_block(values: &[u8], bits: u32, out: &mut Vec<u8>) {
    let start = out.len();
    let (mut acc, mut held) = (0u32, 0u32);
    for &v in values {
        acc = (acc << bits) | u32::from(v);
        held += bits;
        if held >= 8 {
            held -= 8;
            out.push((acc >> held) as u8);
            acc &= (1u32 << held) - 1;
        }
    }
    if held > 0 {
        out.push((acc << (8 - held)) as u8);
    }
    out.resize(start + CBN_BLOCK_BYTES, 0);
}

/// Reads a large `.bin` file of f32 one outer slice at a time (the authors' image set,
/// `dataMatTst.single.bin`, f32 (N, 3, 227, 227), ≈ 600 MB) without loading it whole.
/// The header is validated against the file length at [`BinF32Reader::open`].
#[derive(Debug)]
pub struct BinF32Reader {
    file: File,
    path: PathBuf,
    dims: Vec<usize>,
    header_len: usize,
    /// prod(dims[1..]): the elements of one outer slice.
    slice_len: usize,
    /// Reused byte buffer of one slice.
    buffer: Vec<u8>,
}

impl BinF32Reader {
    /// Opens `path` and checks its header against the file's length.
    pub fn open(path: &Path) -> Result<Self> {
        let io = |e| ModelError::io(path, e);
        let mut file = File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let mut prefix = Vec::with_capacity(MAX_HEADER_BYTES);
        (&mut file)
            .take(MAX_HEADER_BYTES as u64)
            .read_to_end(&mut prefix)
            .map_err(io)?;
        let header = parse_header(&prefix, file_len, bin_layout::<f32>(), path)?;
        let slice_len = header.count / header.dims[0];
        Ok(BinF32Reader {
            file,
            path: path.to_path_buf(),
            dims: header.dims,
            header_len: header.header_len,
            slice_len,
            buffer: Vec::new(),
        })
    }

    /// The dims of the whole array, outermost first (N, ...).
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The number of outer slices, dims[0] (N images).
    pub fn len(&self) -> usize {
        self.dims[0]
    }

    /// Always false: a valid file has at least one slice.
    pub fn is_empty(&self) -> bool {
        self.dims[0] == 0
    }

    /// Elements of one outer slice, prod(dims[1..]).
    pub fn slice_len(&self) -> usize {
        self.slice_len
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads outer slice `i` (image i, layout dims[1..] row-major) into `out`, whose length
    /// must be [`Self::slice_len`].
    pub fn read_slice(&mut self, i: usize, out: &mut [f32]) -> Result<()> {
        if i >= self.len() {
            return Err(ModelError::invalid(
                &self.path,
                format!("slice {i} requested, the file has {}", self.len()),
            ));
        }
        if out.len() != self.slice_len {
            return Err(ModelError::invalid(
                &self.path,
                format!(
                    "output buffer holds {} floats, one slice is {}",
                    out.len(),
                    self.slice_len
                ),
            ));
        }
        let bytes = self.slice_len * 4;
        let offset = self.header_len as u64 + (i as u64) * bytes as u64;
        self.buffer.resize(bytes, 0);
        let io = |e| ModelError::io(&self.path, e);
        self.file.seek(SeekFrom::Start(offset)).map_err(io)?;
        self.file.read_exact(&mut self.buffer).map_err(io)?;
        for (o, b) in out.iter_mut().zip(self.buffer.chunks_exact(4)) {
            *o = <f32 as Element>::from_le(b);
        }
        Ok(())
    }
}

/// The first `count` images of the authors' preprocessed image set (`dataMatTst.single.bin`,
/// f32 (N, 3, 227, 227)), read one at a time, and N.
pub fn read_image_set(path: &Path, count: usize) -> Result<(Vec<Vec<f32>>, usize)> {
    read_image_set_for(path, count, &[3, 227, 227])
}

/// As [`read_image_set`] for a network whose input is `input` (C, H, W): the file must hold
/// f32 (N, C, H, W).
pub fn read_image_set_for(
    path: &Path,
    count: usize,
    input: &[usize; 3],
) -> Result<(Vec<Vec<f32>>, usize)> {
    let mut reader = BinF32Reader::open(path)?;
    if reader.dims().len() != 4 || reader.dims()[1..] != input[..] {
        return Err(ModelError::invalid(
            path,
            format!(
                "dims {:?}, expected (N, {}, {}, {}) preprocessed images for this network",
                reader.dims(),
                input[0],
                input[1],
                input[2]
            ),
        ));
    }
    let n = count.min(reader.len());
    let mut images = Vec::with_capacity(n);
    for i in 0..n {
        let mut image = vec![0.0f32; reader.slice_len()];
        reader.read_slice(i, &mut image)?;
        images.push(image);
    }
    Ok((images, reader.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_for_matches_the_authors_choices() {
        assert_eq!(bits_for(128), 7);
        assert_eq!(bits_for(32), 5);
        assert_eq!(bits_for(16), 4);
        assert_eq!(bits_for(256), 8);
        assert_eq!(bits_for(129), 8);
        assert_eq!(bits_for(2), 1);
        assert_eq!(bits_for(1), 1);
        assert_eq!(bits_for(3), 2);
    }

    #[test]
    fn fc7_example_length_from_format_md() {
        let data = vec![0u8; 4096 * 1024];
        assert_eq!(encode_cbn(&[4096, 1024], 5, &data).len(), 2_625_552);
    }
}
