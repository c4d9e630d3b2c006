//! What the look-up kernels are prepared for on this machine: the ISA level (`--isa`) and
//! the caches of the core that runs them (`--caches`), read from Linux's sysfs or given on
//! the command line so that one machine can plan like another (docs/KERNELS.md "Plans from
//! the machine").

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result};
use qcnn_kernels::{CacheSizes, Isa, Target};

/// Where a run's cache sizes came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheSource {
    /// Read from /sys/devices/system/cpu/cpuN/cache.
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
        isa.parse::<Isa>()?.require()?
    };
    let (detected, source) = match read_sysfs(Path::new("/sys/devices/system/cpu"), cpu) {
        Some(sizes) => (sizes, CacheSource::Sysfs { cpu }),
        None => (CacheSizes::FALLBACK, CacheSource::Fallback),
    };
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

/// The CPU this thread runs on now (0 if unknown).
pub fn current_cpu() -> usize {
    // SAFETY: sched_getcpu has no preconditions; it returns −1 on error.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).unwrap_or(0)
}

/// L1d, L2 and the last level of `cpu` from sysfs (`cacheN/index*/{level,type,size}`); None
/// if L1d or L2 is missing or unreadable.
fn read_sysfs(root: &Path, cpu: usize) -> Option<CacheSizes> {
    let dir = root.join(format!("cpu{cpu}/cache"));
    let mut sizes = CacheSizes {
        l1d: 0,
        l2: 0,
        l3: 0,
    };
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let read = |name: &str| std::fs::read_to_string(path.join(name)).ok();
        let (Some(level), Some(kind), Some(size)) = (read("level"), read("type"), read("size"))
        else {
            continue;
        };
        let Some(bytes) = parse_sysfs_size(&size) else {
            continue;
        };
        match (level.trim(), kind.trim()) {
            ("1", "Data" | "Unified") => sizes.l1d = bytes,
            ("2", "Unified" | "Data") => sizes.l2 = bytes,
            ("3" | "4", "Unified") => sizes.l3 = sizes.l3.max(bytes),
            _ => {}
        }
    }
    (sizes.l1d > 0 && sizes.l2 > 0).then_some(sizes)
}

/// "48K", "2048K", "32M", "1024" → bytes.
fn parse_sysfs_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let (digits, shift) = match text.strip_suffix('K') {
        Some(d) => (d, 10),
        None => match text.strip_suffix('M') {
            Some(d) => (d, 20),
            None => (text, 0),
        },
    };
    digits.parse::<usize>().ok()?.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_cpu(root: &Path, caches: &[(&str, &str, &str)]) {
        for (i, (level, kind, size)) in caches.iter().enumerate() {
            let dir = root.join(format!("cpu3/cache/index{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("level"), format!("{level}\n")).unwrap();
            std::fs::write(dir.join("type"), format!("{kind}\n")).unwrap();
            std::fs::write(dir.join("size"), format!("{size}\n")).unwrap();
        }
    }

    #[test]
    fn reads_a_zen3_like_core() {
        let root = tempfile::tempdir().unwrap();
        fake_cpu(
            root.path(),
            &[
                ("1", "Data", "32K"),
                ("1", "Instruction", "32K"),
                ("2", "Unified", "512K"),
                ("3", "Unified", "32768K"),
            ],
        );
        let sizes = read_sysfs(root.path(), 3).unwrap();
        assert_eq!(
            (sizes.l1d, sizes.l2, sizes.l3),
            (32 << 10, 512 << 10, 32 << 20)
        );
        assert!(read_sysfs(root.path(), 4).is_none(), "no such cpu");
    }

    #[test]
    fn incomplete_readings_fall_back() {
        let root = tempfile::tempdir().unwrap();
        fake_cpu(
            root.path(),
            &[("1", "Data", "32K"), ("3", "Unified", "bogus")],
        );
        assert!(read_sysfs(root.path(), 3).is_none());
    }

    #[test]
    fn overrides_apply_over_the_detected_sizes() {
        let m = resolve("scalar", "l2=512K", 0).unwrap();
        assert_eq!(m.target.caches.l2, 512 << 10);
        assert!(matches!(m.caches_from, CacheSource::Override { .. }));
        assert!(resolve("scalar", "l2=lots", 0).is_err());
        assert!(resolve("sse9", "auto", 0).is_err());
    }
}
