//! What every kernel bench prepares its look-up layers for.

use qcnn_kernels::{CacheSizes, Isa, Target};

/// The caches the benches' plans are sized for: `QCNN_CACHES` (e.g. `l1d=48K,l2=2M,l3=32M`,
/// as `qcnn --caches` takes it: set it to this machine's, or to another machine's to plan
/// like it), else [`CacheSizes::FALLBACK`]. Printed once, so every figure says what it
/// measured.
pub fn caches() -> CacheSizes {
    static CACHES: std::sync::OnceLock<CacheSizes> = std::sync::OnceLock::new();
    *CACHES.get_or_init(|| {
        let caches = match std::env::var("QCNN_CACHES") {
            Ok(spec) => CacheSizes::parse_over(CacheSizes::FALLBACK, &spec)
                .unwrap_or_else(|e| panic!("QCNN_CACHES: {e}")),
            Err(_) => CacheSizes::FALLBACK,
        };
        eprintln!("plans sized for caches {caches} (QCNN_CACHES to change)");
        caches
    })
}

/// How many of a layer's K codewords its random assignments draw from: `QCNN_BENCH_CODES`
/// (1 ≤ n ≤ K), else all K. With 1 every tap reads the same codeword's table rows, which
/// then stay in L1: the look-up time that remains is what the loop costs without the
/// table's cache misses (docs/KERNELS.md "Where the conv look-up time goes"). Printed once.
#[allow(dead_code)] // Only the conv benches draw assignments this way; each bench compiles this module.
pub fn codes_drawn(k: usize) -> usize {
    static CODES: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    let limit = *CODES.get_or_init(|| {
        let limit = std::env::var("QCNN_BENCH_CODES").ok().map(|v| {
            v.parse::<usize>()
                .ok()
                .filter(|&n| n >= 1)
                .unwrap_or_else(|| panic!("QCNN_BENCH_CODES: a count ≥ 1, not {v:?}"))
        });
        if let Some(n) = limit {
            eprintln!("assignments drawn from the first {n} codewords (QCNN_BENCH_CODES)");
        }
        limit
    });
    limit.map_or(k, |n| n.min(k))
}

/// `isa` with the benches' caches.
pub fn target(isa: Isa, caches: CacheSizes) -> Target {
    Target::new(isa, caches)
}
