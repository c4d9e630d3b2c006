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

/// Core types OpenBLAS falls back to when it does not recognise a CPU: pre-AVX2 kernels on
/// x86, the generic `armv8` kernels on aarch64.
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
        "armv8",
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
        assert!(is_generic_fallback("armv8"));
        assert!(!is_generic_fallback("neoversen1"));
    }
}

/// Checks that sgemm and sgemv under the loaded core compute what plain loops compute, on
/// odd sizes that exercise the kernels' edge handling. Some OpenBLAS builds compute wrong
/// results under some core types on some CPUs; a benchmark must not time a wrong baseline.
pub fn self_check() -> Result<(), String> {
    let (m, n, k) = (37usize, 29usize, 53usize);
    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7919 % 101) as f32 - 50.0) / 25.0)
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|i| ((i * 104729 % 97) as f32 - 48.0) / 24.0)
        .collect();
    let mut c = vec![f32::NAN; m * n];
    // SAFETY: the slices have exactly the lengths the dimensions and leading sizes imply.
    unsafe {
        cblas::sgemm(
            cblas::Layout::RowMajor,
            cblas::Transpose::None,
            cblas::Transpose::None,
            m as i32,
            n as i32,
            k as i32,
            1.0,
            &a,
            k as i32,
            &b,
            n as i32,
            0.0,
            &mut c,
            n as i32,
        );
    }
    let mut y = vec![f32::NAN; m];
    let x = &b[..k];
    // SAFETY: a is m×k row-major, x has k elements, y has m.
    unsafe {
        cblas::sgemv(
            cblas::Layout::RowMajor,
            cblas::Transpose::None,
            m as i32,
            k as i32,
            1.0,
            &a,
            k as i32,
            x,
            1,
            0.0,
            &mut y,
            1,
        )
    };
    let mut worst = 0.0f32;
    for i in 0..m {
        let dot = |col: &dyn Fn(usize) -> f32| (0..k).map(|p| a[i * k + p] * col(p)).sum::<f32>();
        for j in 0..n {
            let want = dot(&|p| b[p * n + j]);
            worst = worst.max((c[i * n + j] - want).abs() / want.abs().max(1.0));
        }
        let want = dot(&|p| x[p]);
        worst = worst.max((y[i] - want).abs() / want.abs().max(1.0));
    }
    if worst.is_finite() && worst < 1e-4 {
        Ok(())
    } else {
        Err(format!(
            "OpenBLAS ({}) sgemm/sgemv disagree with plain loops: relative error {worst:e}",
            core_name()
        ))
    }
}

#[cfg(test)]
mod self_check_tests {
    #[test]
    fn blas_agrees_with_plain_loops() {
        super::self_check().unwrap();
    }
}
