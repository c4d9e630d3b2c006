//! The OpenBLAS runtime: thread count and the core type it chose when it loaded.
//!
//! Debian's OpenBLAS 0.3.21 does not know recent Xeons and falls back to "Prescott" SSE3
//! kernels (≈ 30 GFLOP/s instead of ≈ 140 with SkylakeX). The core type is read from
//! `OPENBLAS_CORETYPE` when the library loads, so fixing it needs a new process: the harness
//! does that; this module only reports.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int};

// Make sure the library is linked even when no cblas symbol is used yet.
extern crate openblas_src as _;

extern "C" {
    fn openblas_set_num_threads(num_threads: c_int);
    fn openblas_get_num_threads() -> c_int;
    fn openblas_get_corename() -> *const c_char;
    fn openblas_get_config() -> *const c_char;
}

/// One BLAS thread: every measurement in this project is single-threaded.
pub fn set_single_thread() {
    // SAFETY: plain FFI call with a valid argument; OpenBLAS is linked (openblas-src).
    unsafe { openblas_set_num_threads(1) }
}

pub fn num_threads() -> usize {
    // SAFETY: no arguments; returns an int.
    unsafe { openblas_get_num_threads() as usize }
}

/// The kernel family OpenBLAS selected at load time, e.g. "SkylakeX", "Haswell", "Prescott".
pub fn core_name() -> String {
    // SAFETY: OpenBLAS returns a pointer to a static NUL-terminated string.
    unsafe { c_string(openblas_get_corename()) }
}

/// OpenBLAS's build configuration string (version, threading, dynamic arch).
pub fn config() -> String {
    // SAFETY: as above.
    unsafe { c_string(openblas_get_config()) }
}

unsafe fn c_string(p: *const c_char) -> String {
    if p.is_null() {
        return String::from("unknown");
    }
    CStr::from_ptr(p).to_string_lossy().trim().to_string()
}

/// Core types OpenBLAS falls back to when it does not recognise a CPU: pre-AVX2 kernels.
pub fn is_generic_fallback(core: &str) -> bool {
    let c = core.to_ascii_lowercase();
    [
        "prescott",
        "katmai",
        "coppermine",
        "northwood",
        "core2",
        "penryn",
        "dunnington",
        "nehalem",
        "sandybridge",
        "atom",
        "generic",
        "barcelona",
        "opteron",
    ]
    .iter()
    .any(|g| c == *g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_a_core_and_runs_single_threaded() {
        set_single_thread();
        assert_eq!(num_threads(), 1);
        assert!(!core_name().is_empty());
        assert!(config().to_lowercase().contains("openblas"));
    }

    #[test]
    fn recognises_fallback_cores() {
        assert!(is_generic_fallback("Prescott"));
        assert!(!is_generic_fallback("SkylakeX"));
        assert!(!is_generic_fallback("Haswell"));
    }
}
