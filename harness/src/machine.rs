//! What the look-up kernels are prepared for on this machine: the ISA level (`--isa`) and
//! the caches of the core that runs them (`--caches`), read from Linux's sysfs or given on
//! the command line so that one machine can plan like another (docs/KERNELS.md "Plans from
//! the machine").

use std::fmt;

use anyhow::{Context, Result};
use qcnn_kernels::{CacheSizes, Isa, Target};
use qcnn_results::system::Cache;

/// Where a run's cache sizes came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheSource {
    /// The OS's list (sysfs /sys/devices/system/cpu/cpuN/cache).
    Sysfs { cpu: usize },
    /// `--caches` / QCNN_CACHES, over the detected (or fallback) sizes.
    Override { spec: String },
    /// Nothing readable: [`CacheSizes::FALLBACK`].
    Fallback,
}

impl fmt::Display for CacheSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheSource::Sysfs { cpu } => write!(f, "sysfs (cpu {cpu})"),
            CacheSource::Override { spec } => write!(f, "override '{spec}'"),
            CacheSource::Fallback => f.write_str("fallback (caches not readable here)"),
        }
    }
}

/// The kernels' target and where its caches came from.
#[derive(Clone, Debug)]
pub struct Machine {
    pub target: Target,
    pub caches_from: CacheSource,
}

/// Resolves `--isa` (auto or a level, which this CPU must have) and `--caches` (auto, or
/// sizes such as "l2=512K" over the detected ones) for the core `cpu`.
pub fn resolve(isa: &str, caches: &str, cpu: usize) -> Result<Machine> {
    let isa = if isa == "auto" {
        Isa::detect()
    } else {
        isa.parse::<Isa>()
            .and_then(Isa::require)
            .map_err(|e| anyhow::anyhow!("--isa: {e}"))?
    };
    let (detected, source) = detect(cpu);
    let (sizes, caches_from) = if caches == "auto" {
        (detected, source)
    } else {
        let sizes = CacheSizes::parse_over(detected, caches)
            .map_err(anyhow::Error::msg)
            .context("--caches (QCNN_CACHES)")?;
        let spec = caches.to_string();
        (sizes, CacheSource::Override { spec })
    };
    Ok(Machine {
        target: Target::new(isa, sizes),
        caches_from,
    })
}

impl Machine {
    /// The same ISA planned for the caches of core `cpu` (the core a measurement pinned
    /// itself to; cores of a big.LITTLE CPU differ), unless `--caches` overrode them.
    pub fn for_cpu(&self, cpu: usize) -> Machine {
        if let CacheSource::Override { .. } = self.caches_from {
            return self.clone();
        }
        let (sizes, caches_from) = detect(cpu);
        Machine {
            target: Target::new(self.target.isa, sizes),
            caches_from,
        }
    }
}

/// The CPU this thread runs on now (0 if unknown).
pub fn current_cpu() -> usize {
    // SAFETY: sched_getcpu has no preconditions; it returns −1 on error.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).unwrap_or(0)
}

/// The caches of `cpu` as the OS lists them, or the fallback sizes.
fn detect(cpu: usize) -> (CacheSizes, CacheSource) {
    match sizes_of(&qcnn_results::system::caches_of_core(cpu)) {
        Some(sizes) => (sizes, CacheSource::Sysfs { cpu }),
        None => (CacheSizes::FALLBACK, CacheSource::Fallback),
    }
}

/// L1d, L2 and the largest last level of a core's cache list; None without L1d or L2.
fn sizes_of(caches: &[Cache]) -> Option<CacheSizes> {
    let size = |level: u8, kinds: &[&str]| {
        caches
            .iter()
            .filter(|c| c.level == level && kinds.contains(&c.kind.as_str()))
            .map(|c| c.bytes as usize)
            .max()
    };
    let l3 = [3, 4]
        .iter()
        .filter_map(|&level| size(level, &["Unified"]))
        .max();
    Some(CacheSizes {
        l1d: size(1, &["Data", "Unified"])?,
        l2: size(2, &["Unified", "Data"])?,
        l3: l3.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(level: u8, kind: &str, bytes: u64) -> Cache {
        Cache {
            level,
            kind: kind.into(),
            bytes,
            shared_cpu_list: String::new(),
        }
    }

    #[test]
    fn sizes_of_a_zen3_like_core() {
        let list = [
            cache(1, "Data", 32 << 10),
            cache(1, "Instruction", 32 << 10),
            cache(2, "Unified", 512 << 10),
            cache(3, "Unified", 32 << 20),
        ];
        let sizes = sizes_of(&list).unwrap();
        assert_eq!(
            (sizes.l1d, sizes.l2, sizes.l3),
            (32 << 10, 512 << 10, 32 << 20)
        );
        assert!(sizes_of(&list[1..]).is_none(), "no L1d");
        assert!(sizes_of(&[]).is_none());
    }

    #[test]
    fn overrides_apply_over_the_detected_sizes_and_survive_repinning() {
        let m = resolve("scalar", "l2=512K", 0).unwrap();
        assert_eq!(m.target.caches.l2, 512 << 10);
        assert!(matches!(m.caches_from, CacheSource::Override { .. }));
        assert_eq!(m.for_cpu(0).target.caches, m.target.caches);
        assert!(resolve("scalar", "l2=lots", 0).is_err());
        assert!(resolve("sse9", "auto", 0).is_err());
    }
}
