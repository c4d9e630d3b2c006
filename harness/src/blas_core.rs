//! Choosing OpenBLAS's kernel family before any measurement.
//!
//! OpenBLAS picks its kernels (the "core type") once, when the library loads, from the CPU
//! or from `OPENBLAS_CORETYPE`. Two things go wrong on current machines: Debian's 0.3.21 may
//! not recognise the CPU and fall back to "Prescott" SSE3 kernels, and environments preset
//! `OPENBLAS_CORETYPE` to an older family (this workplace sets Haswell: AVX2 kernels, about
//! half the GFLOP/s of SkylakeX on an AVX-512 CPU). Either makes the dense baseline a
//! strawman, so by default the process re-executes itself with the best family for the CPU,
//! says so on stderr, and records the outcome in every result. On aarch64 the same happens
//! where OpenBLAS does not know the core's part number (0.3.21 and the Cortex-A76) and
//! falls back to its generic `armv8` kernels.

use std::os::unix::process::CommandExt;

use anyhow::{bail, Context, Result};
use qcnn_kernels::blas;

/// Set in the re-executed child so the switch happens at most once.
const REEXEC_MARK: &str = "QCNN_BLAS_REEXEC";

/// What the user asked for with `--blas-core`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorePolicy {
    /// The best family for this CPU, whatever the environment presets (default).
    Best,
    /// Keep what OpenBLAS loaded with (environment or its own detection), only warn.
    Env,
    /// Exactly this family (an OpenBLAS core name such as SkylakeX or Haswell).
    Named(String),
}

impl std::str::FromStr for CorePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "best" => CorePolicy::Best,
            "env" => CorePolicy::Env,
            "" => return Err("empty core name".into()),
            name => CorePolicy::Named(name.to_string()),
        })
    }
}

/// The outcome, for the results' provenance.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BlasInfo {
    /// The core family OpenBLAS runs with in this process.
    pub core: String,
    /// OpenBLAS's build configuration string (version, threading).
    pub config: String,
    /// `OPENBLAS_CORETYPE` as the environment had it before any switch, if set.
    pub env_core: Option<String>,
    /// Whether this process was re-executed to switch the core.
    pub switched: bool,
    pub threads: usize,
}

/// The OpenBLAS family that runs best on this CPU, where we know better than OpenBLAS's own
/// detection: on x86, where old builds miss recent CPUs and environments preset old families.
#[cfg(target_arch = "x86_64")]
pub fn best_core_for_cpu() -> Option<&'static str> {
    if std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512dq")
    {
        Some("SkylakeX")
    } else if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        Some("Haswell")
    } else {
        None
    }
}

/// On aarch64 OpenBLAS picks its family from the core's part number (MIDR_EL1), and falls
/// back to its generic `armv8` kernels for parts it does not know: Debian's 0.3.21 knows the
/// Cortex-A53/A57/A72/A73 and Neoverse-N1, not the Cortex-A76 of a Raspberry Pi 5 nor any
/// later core. For those, the family of their nearest relative it has.
#[cfg(target_arch = "aarch64")]
pub fn best_core_for_cpu() -> Option<&'static str> {
    let (implementer, part) = arm::midr()?;
    arm::tuned_family(implementer, part)
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn best_core_for_cpu() -> Option<&'static str> {
    None
}

/// What `--blas-core best` does on this architecture, for `qcnn info`.
pub const BEST_POLICY: &str = if cfg!(target_arch = "x86_64") {
    "the strongest family this CPU runs (SkylakeX, else Haswell), overriding a weaker one"
} else if cfg!(target_arch = "aarch64") {
    "OpenBLAS's own choice by part number; where it fell back to generic armv8 kernels, the \
     family of the core's nearest relative it has (Cortex-A76 and later: neoversen1; \
     Cortex-A55/A510/A520: cortexa53)"
} else {
    "OpenBLAS's own choice"
};

#[cfg(target_arch = "aarch64")]
mod arm {
    /// MIDR_EL1's implementer and part number, read as OpenBLAS reads it: the kernel
    /// emulates the register read for user space where it sets HWCAP_CPUID (so does
    /// qemu-user, for its emulated core).
    pub fn midr() -> Option<(u32, u32)> {
        // SAFETY: getauxval only reads this process's auxiliary vector.
        let hwcap = unsafe { libc::getauxval(libc::AT_HWCAP) };
        if hwcap & libc::HWCAP_CPUID == 0 {
            return None;
        }
        let midr: u64;
        // SAFETY: with HWCAP_CPUID set, the kernel traps and emulates this EL0 read.
        unsafe {
            std::arch::asm!("mrs {}, midr_el1", out(reg) midr, options(nomem, nostack, preserves_flags))
        };
        Some((((midr >> 24) & 0xff) as u32, ((midr >> 4) & 0xfff) as u32))
    }

    /// The OpenBLAS 0.3.21 family for an Arm Ltd part it does not detect itself.
    pub fn tuned_family(implementer: u32, part: u32) -> Option<&'static str> {
        const ARM: u32 = 0x41;
        match (implementer, part) {
            // The Neoverse-N1 is the server version of the Cortex-A76; the A77, A78, X1 and
            // the Armv9 big cores descend from it with the same 128-bit NEON FMA pipes
            // (2 to 4 of them).
            (
                ARM,
                0xd0b | 0xd0e | 0xd0d | 0xd41 | 0xd42 | 0xd4b | 0xd44 | 0xd4c | 0xd40 | 0xd49
                | 0xd47 | 0xd48 | 0xd4d | 0xd4e | 0xd4f | 0xd81 | 0xd82 | 0xd84 | 0xd85 | 0xd87
                | 0xd8e,
            ) => Some("neoversen1"),
            // The Cortex-A55, A510 and A520 are in-order little cores, successors of the A53.
            (ARM, 0xd05 | 0xd46 | 0xd80) => Some("cortexa53"),
            _ => None,
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn maps_unknown_big_and_little_cores_and_leaves_the_rest() {
            assert_eq!(super::tuned_family(0x41, 0xd0b), Some("neoversen1")); // Cortex-A76
            assert_eq!(super::tuned_family(0x41, 0xd05), Some("cortexa53")); // Cortex-A55
            assert_eq!(super::tuned_family(0x41, 0xd08), None); // A72: OpenBLAS knows it
            assert_eq!(super::tuned_family(0x61, 0x022), None); // Apple: no rule
            assert!(super::super::rank("neoversen1") > super::super::rank("armv8"));
        }

        #[test]
        fn reads_the_midr_of_this_core() {
            // Linux has emulated MIDR_EL1 reads since 4.11, qemu-user too.
            let (implementer, _) = super::midr().expect("HWCAP_CPUID set");
            assert_ne!(implementer, 0, "an implementer code");
        }
    }
}

/// AVX-512 families (one name per kernel set; Cooperlake and Sapphire Rapids reuse SkylakeX's
/// sgemm kernels), then AVX2 ones, then generic ones: a rank to tell "weaker than the CPU
/// allows".
fn rank(core: &str) -> u8 {
    match core.to_ascii_lowercase().as_str() {
        "skylakex" | "cooperlake" | "sapphirerapids" => 3,
        "haswell" | "zen" | "skylake" => 2,
        // aarch64: every tuned family beats the generic one.
        other if cfg!(target_arch = "aarch64") && !blas::is_generic_fallback(other) => 2,
        _ => 1,
    }
}

/// Makes sure OpenBLAS runs the wanted core family, re-executing the process if it must.
/// Returns only in the process that will do the work.
pub fn ensure(policy: &CorePolicy) -> Result<BlasInfo> {
    blas::set_single_thread();
    let loaded = blas::core_name();
    let switched = std::env::var_os(REEXEC_MARK).is_some();
    let env_core = if switched {
        std::env::var("QCNN_BLAS_ENV_CORE")
            .ok()
            .filter(|s| !s.is_empty())
    } else {
        std::env::var("OPENBLAS_CORETYPE")
            .ok()
            .filter(|s| !s.is_empty())
    };
    let wanted = match policy {
        CorePolicy::Env => None,
        CorePolicy::Named(name) => Some(name.clone()),
        CorePolicy::Best => best_core_for_cpu()
            .filter(|best| rank(best) > rank(&loaded))
            .map(str::to_string),
    };
    if let Some(wanted) = wanted.filter(|w| !w.eq_ignore_ascii_case(&loaded)) {
        if switched {
            let problem = format!(
                "OpenBLAS still runs the '{loaded}' kernels after restarting with \
                 OPENBLAS_CORETYPE={wanted}: this OpenBLAS build lacks that core type"
            );
            // A family asked for by name must be there; the best one is only a preference.
            if matches!(policy, CorePolicy::Named(_)) {
                bail!("{problem} (try --blas-core env)");
            }
            eprintln!("warning: {problem}; measuring with '{loaded}'");
            return Ok(info(loaded, env_core, switched));
        }
        eprintln!(
            "notice: OpenBLAS loaded its '{loaded}' kernels{}; this CPU runs '{wanted}': \
             restarting with OPENBLAS_CORETYPE={wanted} for a strong dense baseline \
             (--blas-core env keeps the environment's choice)",
            env_core
                .as_deref()
                .map(|c| format!(" (OPENBLAS_CORETYPE={c} in the environment)"))
                .unwrap_or_default()
        );
        return Err(reexec(&wanted, env_core.as_deref()));
    }
    if matches!(policy, CorePolicy::Env) {
        if let Some(best) = best_core_for_cpu().filter(|b| rank(b) > rank(&loaded)) {
            eprintln!(
                "warning: OpenBLAS runs '{loaded}' kernels but this CPU runs '{best}': the \
                 dense baseline is weaker than it could be"
            );
        }
    }
    if let Some(warning) = generic_kernels_warning(&loaded) {
        eprintln!("warning: {warning}");
    }
    Ok(info(loaded, env_core, switched))
}

fn info(core: String, env_core: Option<String>, switched: bool) -> BlasInfo {
    BlasInfo {
        core,
        config: blas::config(),
        env_core,
        switched,
        threads: blas::num_threads(),
    }
}

/// Why the loaded family makes a weak dense baseline, if it is one of OpenBLAS's generic
/// fall-backs on a CPU that has better kernels.
fn generic_kernels_warning(loaded: &str) -> Option<String> {
    if !blas::is_generic_fallback(loaded) {
        return None;
    }
    match best_core_for_cpu() {
        Some(best) if cfg!(target_arch = "x86_64") => Some(format!(
            "OpenBLAS runs its generic '{loaded}' kernels on a CPU that runs '{best}' \
             (AVX2/AVX-512)"
        )),
        None if cfg!(target_arch = "aarch64") => Some(format!(
            "OpenBLAS runs its generic '{loaded}' kernels: neither it nor qcnn knows this \
             CPU's part number; the dense baseline may be weaker than a tuned one \
             (--blas-core NAME forces a family, e.g. neoversen1 or cortexa72)"
        )),
        _ => None,
    }
}

/// Replaces this process with itself under `OPENBLAS_CORETYPE=core`. Only returns on error.
fn reexec(core: &str, env_core: Option<&str>) -> anyhow::Error {
    let exe = match std::env::current_exe().context("locating the qcnn executable to restart it") {
        Ok(exe) => exe,
        Err(e) => return e,
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("OPENBLAS_CORETYPE", core)
        .env(REEXEC_MARK, "1")
        .env("QCNN_BLAS_ENV_CORE", env_core.unwrap_or(""))
        .exec();
    anyhow::Error::new(err).context("restarting qcnn with a new OPENBLAS_CORETYPE")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_parses() {
        assert_eq!("best".parse::<CorePolicy>(), Ok(CorePolicy::Best));
        assert_eq!("env".parse::<CorePolicy>(), Ok(CorePolicy::Env));
        assert_eq!(
            "SkylakeX".parse::<CorePolicy>(),
            Ok(CorePolicy::Named("SkylakeX".into()))
        );
        assert!("".parse::<CorePolicy>().is_err());
    }

    #[test]
    fn ranks_avx512_families_above_avx2_above_generic() {
        assert!(rank("SkylakeX") > rank("Haswell"));
        assert!(rank("Haswell") > rank("Prescott"));
        assert_eq!(rank("Cooperlake"), rank("SkylakeX"));
    }
}
