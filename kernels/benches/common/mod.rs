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

/// `isa` with the benches' caches.
pub fn target(isa: Isa, caches: CacheSizes) -> Target {
    Target::new(isa, caches)
}
