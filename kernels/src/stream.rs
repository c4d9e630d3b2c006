//! Buffers that a layer streams through once per image: the fc look-up indices (fc6: 5.9 to
//! 9.4 MB) and the dense fc weights (fc6: 151 MB). Sized from 2 MiB on, they are 2 MiB-aligned
//! and, on Linux, advised as transparent huge pages before their first write, so that a pass
//! over them walks a few page-table entries instead of one per 4 KiB (docs/KERNELS.md
//! "Streamed buffers and huge pages": in this VM the 4 KiB-page state had made fc6's i16
//! look-ups up to half again as slow, depending on what ran before in the machine).
//! Smaller buffers keep the cache-line alignment. The advice is a hint: where the kernel
//! refuses it (THP "never", other systems) the buffer works the same on ordinary pages.

use std::alloc::{self, Layout};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// The transparent huge page size of x86-64 and of AArch64 with 4 KiB pages.
const HUGE_PAGE: usize = 2 << 20;
/// The alignment of buffers below [`HUGE_PAGE`]: a cache line.
const LINE: usize = 64;

/// Element types whose all-zero bytes are a valid value (so a buffer can start zeroed).
/// Sealed: `zeroed` relies on it, so only this module says which types qualify.
pub trait Zeroable: sealed::Sealed + Copy + 'static {}
impl Zeroable for u8 {}
impl Zeroable for u32 {}
impl Zeroable for f32 {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u32 {}
    impl Sealed for f32 {}
}

/// A fixed-length, zero-initialised buffer of `T` (see the module doc).
pub struct StreamBuf<T: Zeroable> {
    ptr: NonNull<T>,
    len: usize,
}

// SAFETY: the buffer owns its elements like a `Vec<T>` (no shared interior), and T: Copy
// holds no references that could be sent or shared unsafely beyond what T's own Send/Sync
// allow.
unsafe impl<T: Zeroable + Send> Send for StreamBuf<T> {}
// SAFETY: as above; `&StreamBuf` only hands out `&[T]`.
unsafe impl<T: Zeroable + Sync> Sync for StreamBuf<T> {}

impl<T: Zeroable> StreamBuf<T> {
    /// `len` zeroed elements.
    ///
    /// # Panics
    /// If `len` elements overflow the address space, like `vec![0; len]`; aborts where the
    /// allocation fails.
    pub fn zeroed(len: usize) -> Self {
        // SAFETY: zero bytes are a valid T (`Zeroable`): every element is initialised.
        unsafe { Self::filled(len, |raw, bytes| raw.write_bytes(0, bytes)) }
    }

    /// A copy of `values`, written once (no zero pass first: the dense fc6 weights are
    /// 151 MB).
    pub fn from_slice(values: &[T]) -> Self {
        // SAFETY: `filled` hands over len·size_of::<T>() bytes, exactly `values`' bytes, so
        // the copy initialises every element; the regions are distinct allocations.
        unsafe {
            Self::filled(values.len(), |raw, bytes| {
                std::ptr::copy_nonoverlapping(values.as_ptr().cast::<u8>(), raw, bytes)
            })
        }
    }

    /// A new allocation for `len` elements, advised as huge pages where it is large, then
    /// written by `fill(start, bytes)` — after the advice, which is what lets the first-touch
    /// faults map huge pages.
    ///
    /// # Safety
    /// `fill` must initialise all `bytes` bytes from `start` with a valid `[T; len]`.
    unsafe fn filled(len: usize, fill: impl FnOnce(*mut u8, usize)) -> Self {
        let Some(layout) = Self::layout(len) else {
            return StreamBuf {
                ptr: NonNull::dangling(),
                len,
            };
        };
        // SAFETY: the layout has a non-zero size (`layout` returns None for 0 bytes).
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        if layout.align() == HUGE_PAGE {
            advise_huge_pages(raw, layout.size());
        }
        fill(raw, layout.size());
        StreamBuf {
            ptr: ptr.cast(),
            len,
        }
    }

    /// The allocation's layout, None for zero bytes.
    fn layout(len: usize) -> Option<Layout> {
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .expect("buffer size overflows usize");
        if bytes == 0 {
            return None;
        }
        let align = if bytes >= HUGE_PAGE { HUGE_PAGE } else { LINE };
        Some(
            Layout::from_size_align(bytes, align.max(std::mem::align_of::<T>()))
                .expect("buffer layout"),
        )
    }
}

/// Asks the kernel to back `[start, start + bytes)` with transparent huge pages. The result
/// is ignored: a refusal (THP disabled, an old kernel) leaves ordinary pages.
#[cfg(target_os = "linux")]
fn advise_huge_pages(start: *mut u8, bytes: usize) {
    // SAFETY: `start` is the page-aligned (2 MiB) start of an allocation of `bytes` bytes
    // that this process owns; MADV_HUGEPAGE changes how its pages are backed, never their
    // contents, and the kernel rounds the length up to whole pages of the same mapping.
    unsafe {
        libc::madvise(start.cast(), bytes, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_start: *mut u8, _bytes: usize) {}

impl<T: Zeroable> Drop for StreamBuf<T> {
    fn drop(&mut self) {
        if let Some(layout) = Self::layout(self.len) {
            // SAFETY: allocated in `zeroed` with this same layout (a function of len alone).
            unsafe { alloc::dealloc(self.ptr.as_ptr().cast(), layout) };
        }
    }
}

impl<T: Zeroable> Deref for StreamBuf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` holds `len` initialised elements (or is dangling with a zero-sized
        // allocation, which a slice of len 0 or of zero-sized T allows).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroable> DerefMut for StreamBuf<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroable> Clone for StreamBuf<T> {
    fn clone(&self) -> Self {
        Self::from_slice(self)
    }
}

impl<T: Zeroable + fmt::Debug> fmt::Debug for StreamBuf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamBuf")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_start_zeroed_hold_what_is_written_and_align_by_size() {
        for len in [0usize, 1, 1000, HUGE_PAGE / 4 + 3] {
            let mut buf = StreamBuf::<f32>::zeroed(len);
            assert_eq!(buf.len(), len);
            assert!(buf.iter().all(|&v| v == 0.0));
            for (i, v) in buf.iter_mut().enumerate() {
                *v = i as f32;
            }
            let copy = buf.clone();
            assert!(copy.iter().enumerate().all(|(i, &v)| v == i as f32));
            if len > 0 {
                let align = if len * 4 >= HUGE_PAGE {
                    HUGE_PAGE
                } else {
                    LINE
                };
                assert_eq!(buf.as_ptr() as usize % align, 0, "len {len}");
            }
        }
        let bytes = StreamBuf::from_slice(&[1u8, 2, 3]);
        assert_eq!(&bytes[..], &[1, 2, 3]);
    }

    /// Where the system offers transparent huge pages on request, a large buffer's mapping
    /// is eligible for them (its `smaps` entry); elsewhere the test says why it checked nothing.
    /// x86-64 only: the aarch64 tests run under qemu-user, which takes the advice as a no-op
    /// and shows the host's `smaps`.
    #[test]
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    fn large_buffers_are_advised_as_huge_pages() {
        let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled");
        let offered = mode
            .as_deref()
            .is_ok_and(|m| m.contains("[madvise]") || m.contains("[always]"));
        if !offered {
            eprintln!("transparent huge pages not offered here ({mode:?}): advice not checked");
            return;
        }
        let buf = StreamBuf::<u8>::zeroed(3 * HUGE_PAGE);
        let at = buf.as_ptr() as usize;
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("/proc/self/smaps");
        let mut eligible = None;
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((lo, hi)) = range.split_once('-') {
                    if let (Ok(lo), Ok(hi)) =
                        (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                    {
                        inside = (lo..hi).contains(&at);
                        continue;
                    }
                }
            }
            if inside {
                if let Some(v) = line.strip_prefix("THPeligible:") {
                    eligible = Some(v.trim() == "1");
                }
            }
        }
        assert_eq!(
            eligible,
            Some(true),
            "the buffer's mapping in /proc/self/smaps"
        );
    }
}
