//! The machine as the OS describes it: CPU, its features and caches, memory, OS.
//!
//! The same fields on every architecture. On x86 the CPU is the `model name` of
//! `/proc/cpuinfo`; on ARM, where that line is usually absent, it is the core named by the
//! `CPU implementer`/`CPU part` numbers (sysinfo maps them as lscpu does: 0x41/0xd0b is a
//! Cortex-A76). Caches are read from sysfs for the core that runs the measurement.
//! A program emulated on another architecture (an aarch64 binary under qemu-user on an x86
//! host) sees the host's `/proc/cpuinfo` and sysfs: that is detected and recorded, so a
//! run never claims the host's CPU as the one its code was compiled for.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// The CPU's name: `model name` (x86), or the ARM core name from implementer and part
    /// (`Cortex-A76`; `implementer 0x.. part 0x..` when unknown); several names joined with
    /// ` + ` on a CPU with different cores (big.LITTLE).
    pub cpu_model: String,
    /// `GenuineIntel`, `AuthenticAMD`, `ARM`, `Apple`, ...; empty when unknown.
    #[serde(default)]
    pub cpu_vendor: String,
    /// The architecture this program was built for and runs as (`x86_64`, `aarch64`).
    #[serde(default)]
    pub arch: String,
    /// CPU features: on x86 the `/proc/cpuinfo` flags of the first CPU; on aarch64 the
    /// features the Rust runtime detects (`neon`, `dotprod`, `sve`, ...: what the kernels'
    /// own dispatch sees, also under emulation). Empty where neither is available.
    pub cpu_flags: Vec<String>,
    /// Caches of `caches_core` (sysfs), lowest level first; empty where sysfs lists none.
    #[serde(default)]
    pub caches: Vec<Cache>,
    /// The core whose caches are listed: the pinned core of a measurement, else core 0.
    #[serde(default)]
    pub caches_core: Option<usize>,
    /// Set when this program runs emulated on another architecture: says so, and that the
    /// CPU model, vendor and caches above describe the host (and times and memory include
    /// the emulator's).
    #[serde(default)]
    pub emulation: Option<String>,
    pub logical_cores: usize,
    pub physical_cores: Option<usize>,
    pub memory_bytes: u64,
    pub os: String,
    pub kernel: String,
}

/// One cache of a core, as sysfs describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cache {
    pub level: u8,
    /// `Data`, `Instruction` or `Unified`.
    pub kind: String,
    pub bytes: u64,
    /// The logical CPUs sharing it (sysfs `shared_cpu_list`, e.g. `0-1`).
    pub shared_cpu_list: String,
}

impl Cache {
    /// `L1d`, `L1i`, `L2`, ...
    pub fn name(&self) -> String {
        let suffix = match self.kind.as_str() {
            "Data" => "d",
            "Instruction" => "i",
            _ => "",
        };
        format!("L{}{suffix}", self.level)
    }
}

impl SystemInfo {
    /// Lists the caches of `core` instead of the ones collected at start.
    pub fn read_caches_of(&mut self, core: usize) {
        self.caches = caches_of(Path::new(SYSFS_CPU), core);
        self.caches_core = Some(core);
    }

    /// `L1d 48 KiB, L1i 32 KiB, L2 2 MiB, L3 300 MiB (core 1)`, or `unknown`.
    pub fn caches_summary(&self) -> String {
        if self.caches.is_empty() {
            return "unknown (the OS lists no caches)".into();
        }
        let list = self
            .caches
            .iter()
            .map(|c| format!("{} {}", c.name(), human_bytes(c.bytes)))
            .collect::<Vec<_>>()
            .join(", ");
        match self.caches_core {
            Some(core) => format!("{list} (core {core})"),
            None => list,
        }
    }
}

/// CPU, memory and OS as the OS reports them; fields it cannot learn stay empty.
pub fn collect_system() -> SystemInfo {
    use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};
    let sys = System::new_with_specifics(
        RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(MemoryRefreshKind::nothing().with_ram()),
    );
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let brands: Vec<&str> = sys.cpus().iter().map(|c| c.brand().trim()).collect();
    let cpu_model = match cpu_model(&brands) {
        model if model.is_empty() => arm_ids(&cpuinfo).unwrap_or_default(),
        model => model,
    };
    let mut info = SystemInfo {
        cpu_model,
        cpu_vendor: sys
            .cpus()
            .first()
            .map(|c| c.vendor_id().trim().to_string())
            .unwrap_or_default(),
        arch: std::env::consts::ARCH.to_string(),
        cpu_flags: cpu_features(&cpuinfo),
        caches: Vec::new(),
        caches_core: None,
        emulation: emulation(&cpuinfo, std::env::consts::ARCH),
        logical_cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        physical_cores: System::physical_core_count(),
        memory_bytes: sys.total_memory(),
        os: System::long_os_version().unwrap_or_default(),
        kernel: System::kernel_version().unwrap_or_default(),
    };
    info.read_caches_of(0);
    info
}

/// One name per kind of core, in the order the OS lists them, with a count when the CPU
/// mixes kinds: `Cortex-A55 ×4 + Cortex-A76 ×4`.
fn cpu_model(brands: &[&str]) -> String {
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for &brand in brands.iter().filter(|b| !b.is_empty()) {
        match kinds.iter_mut().find(|(b, _)| *b == brand) {
            Some((_, n)) => *n += 1,
            None => kinds.push((brand, 1)),
        }
    }
    match kinds.as_slice() {
        [(only, _)] => only.to_string(),
        _ => kinds
            .iter()
            .map(|(b, n)| format!("{b} ×{n}"))
            .collect::<Vec<_>>()
            .join(" + "),
    }
}

/// `implementer 0x41 part 0xd0b` of the first ARM core, for parts no name is known for.
fn arm_ids(cpuinfo: &str) -> Option<String> {
    let implementer = cpuinfo_value(cpuinfo, "CPU implementer")?;
    let part = cpuinfo_value(cpuinfo, "CPU part")?;
    Some(format!("implementer {implementer} part {part}"))
}

/// The value of the first `key : value` line of `/proc/cpuinfo`.
fn cpuinfo_value<'a>(cpuinfo: &'a str, key: &str) -> Option<&'a str> {
    cpuinfo.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// Which architecture `/proc/cpuinfo` describes, where its keys tell.
fn cpuinfo_arch(cpuinfo: &str) -> Option<&'static str> {
    if cpuinfo_value(cpuinfo, "CPU implementer").is_some() {
        Some("aarch64")
    } else if cpuinfo_value(cpuinfo, "vendor_id").is_some()
        && cpuinfo_value(cpuinfo, "flags").is_some()
    {
        Some("x86_64")
    } else {
        None
    }
}

/// A note when this `arch` program reads another architecture's `/proc/cpuinfo`.
fn emulation(cpuinfo: &str, arch: &str) -> Option<String> {
    let host = cpuinfo_arch(cpuinfo)?;
    (host != arch).then(|| {
        format!(
            "this {arch} program runs emulated (e.g. qemu-user) on an {host} host: cpu_model, \
             cpu_vendor and caches describe the host, not the emulated CPU; times and peak \
             memory include the emulator's"
        )
    })
}

#[cfg(target_arch = "aarch64")]
fn cpu_features(_cpuinfo: &str) -> Vec<String> {
    use std::arch::is_aarch64_feature_detected as has;
    let detected = [
        ("neon", has!("neon")),
        ("fp16", has!("fp16")),
        ("rdm", has!("rdm")),
        ("dotprod", has!("dotprod")),
        ("i8mm", has!("i8mm")),
        ("bf16", has!("bf16")),
        ("fcma", has!("fcma")),
        ("sve", has!("sve")),
        ("sve2", has!("sve2")),
        ("lse", has!("lse")),
        ("crc", has!("crc")),
        ("aes", has!("aes")),
        ("sha2", has!("sha2")),
    ];
    detected
        .into_iter()
        .filter(|&(_, on)| on)
        .map(|(name, _)| name.to_string())
        .collect()
}

#[cfg(not(target_arch = "aarch64"))]
fn cpu_features(cpuinfo: &str) -> Vec<String> {
    parse_cpu_flags(cpuinfo)
}

/// The `flags` line of `/proc/cpuinfo` (sysinfo does not report flags).
#[cfg_attr(target_arch = "aarch64", allow(dead_code))]
fn parse_cpu_flags(cpuinfo: &str) -> Vec<String> {
    cpuinfo_value(cpuinfo, "flags")
        .map(|v| v.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

const SYSFS_CPU: &str = "/sys/devices/system/cpu";

/// The caches the OS lists for `core` (sysfs), lowest level first; empty if none.
pub fn caches_of_core(core: usize) -> Vec<Cache> {
    caches_of(Path::new(SYSFS_CPU), core)
}

/// The caches sysfs lists for `core` under `root` (`cpuN/cache/indexM/{level,type,size}`).
fn caches_of(root: &Path, core: usize) -> Vec<Cache> {
    let Ok(entries) = std::fs::read_dir(root.join(format!("cpu{core}/cache"))) else {
        return Vec::new();
    };
    let read = |dir: &Path, file: &str| {
        std::fs::read_to_string(dir.join(file))
            .ok()
            .map(|s| s.trim().to_string())
    };
    let mut caches: Vec<Cache> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("index"))
        })
        .filter_map(|dir| {
            Some(Cache {
                level: read(&dir, "level")?.parse().ok()?,
                kind: read(&dir, "type")?,
                bytes: parse_size(&read(&dir, "size")?)?,
                shared_cpu_list: read(&dir, "shared_cpu_list").unwrap_or_default(),
            })
        })
        .collect();
    // Data before Instruction before Unified within a level, as lscpu lists them.
    caches.sort_by(|a, b| (a.level, &a.kind).cmp(&(b.level, &b.kind)));
    caches
}

/// sysfs sizes: `48K`, `2048K`, `32M`, or plain bytes.
fn parse_size(text: &str) -> Option<u64> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let scale = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

/// `48 KiB`, `2 MiB`, `1.25 MiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first core of a Raspberry Pi 5 (`/proc/cpuinfo`, abridged).
    const CPUINFO_AARCH64: &str = "processor\t: 0\nBogoMIPS\t: 108.00\n\
        Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid \
        asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\n\
        CPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n";
    const CPUINFO_X86: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\n\
        model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz\nflags\t\t: fpu avx2 fma\n";

    #[test]
    fn parses_x86_flags() {
        assert_eq!(parse_cpu_flags(CPUINFO_X86), ["fpu", "avx2", "fma"]);
        assert_eq!(
            parse_cpu_flags("processor\t: 0\nflags\t\t: fpu avx2 fma\nflags : x\n"),
            ["fpu", "avx2", "fma"]
        );
        assert!(parse_cpu_flags(CPUINFO_AARCH64).is_empty());
    }

    #[test]
    fn names_arm_cores_by_their_numbers_when_no_name_is_known() {
        assert_eq!(
            arm_ids(CPUINFO_AARCH64).as_deref(),
            Some("implementer 0x41 part 0xd0b")
        );
        assert_eq!(arm_ids(CPUINFO_X86), None);
    }

    #[test]
    fn one_name_per_kind_of_core() {
        assert_eq!(cpu_model(&["Cortex-A76"; 4]), "Cortex-A76");
        assert_eq!(
            cpu_model(&["Cortex-A55", "Cortex-A55", "Cortex-A76", "Cortex-A55"]),
            "Cortex-A55 ×3 + Cortex-A76 ×1"
        );
        assert_eq!(cpu_model(&["", ""]), "");
        assert_eq!(cpu_model(&[]), "");
    }

    #[test]
    fn detects_another_architectures_cpuinfo() {
        assert_eq!(emulation(CPUINFO_X86, "x86_64"), None);
        assert_eq!(emulation(CPUINFO_AARCH64, "aarch64"), None);
        let note = emulation(CPUINFO_X86, "aarch64").expect("emulated");
        assert!(note.contains("aarch64 program runs emulated"), "{note}");
        assert!(note.contains("x86_64 host"), "{note}");
        assert!(emulation(CPUINFO_AARCH64, "x86_64").is_some());
        assert_eq!(emulation("", "aarch64"), None);
    }

    #[test]
    fn reads_sysfs_caches_sorted_and_sized() {
        let root = tempfile::tempdir().unwrap();
        let write = |index: u32, level: &str, kind: &str, size: &str| {
            let dir = root.path().join(format!("cpu3/cache/index{index}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("level"), format!("{level}\n")).unwrap();
            std::fs::write(dir.join("type"), format!("{kind}\n")).unwrap();
            std::fs::write(dir.join("size"), format!("{size}\n")).unwrap();
        };
        write(3, "3", "Unified", "2048K");
        write(0, "1", "Data", "64K");
        write(2, "2", "Unified", "512K");
        write(1, "1", "Instruction", "64K");
        // A directory sysfs would not have as a cache: ignored.
        std::fs::create_dir_all(root.path().join("cpu3/cache/uevent_dir")).unwrap();
        let caches = caches_of(root.path(), 3);
        let names: Vec<_> = caches.iter().map(|c| (c.name(), c.bytes)).collect();
        assert_eq!(
            names,
            [
                ("L1d".to_string(), 64 << 10),
                ("L1i".to_string(), 64 << 10),
                ("L2".to_string(), 512 << 10),
                ("L3".to_string(), 2 << 20),
            ]
        );
        assert!(caches_of(root.path(), 7).is_empty());
        let info = SystemInfo {
            caches,
            caches_core: Some(3),
            ..Default::default()
        };
        assert_eq!(
            info.caches_summary(),
            "L1d 64 KiB, L1i 64 KiB, L2 512 KiB, L3 2 MiB (core 3)"
        );
    }

    #[test]
    fn parses_sysfs_sizes() {
        assert_eq!(parse_size("48K"), Some(48 << 10));
        assert_eq!(parse_size("32M"), Some(32 << 20));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("12Q"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("99999999999999999999K"), None);
        assert_eq!(human_bytes(1280 << 10), "1.25 MiB");
        assert_eq!(human_bytes(100), "100 B");
    }

    #[test]
    fn this_machine_is_described() {
        let info = collect_system();
        assert_eq!(info.arch, std::env::consts::ARCH);
        assert!(info.logical_cores >= 1);
        assert_eq!(info.caches_core, Some(0));
    }
}
