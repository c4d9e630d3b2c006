//! Choosing OpenBLAS's kernel family before any measurement.
//!
//! OpenBLAS picks its kernels (the "core type") once, when the library loads, from the CPU
//! or from `OPENBLAS_CORETYPE`. Two things go wrong on current machines: Debian's 0.3.21 may
//! not recognise the CPU and fall back to "Prescott" SSE3 kernels, and environments preset
//! `OPENBLAS_CORETYPE` to an older family (this workplace sets Haswell: AVX2 kernels, about
//! half the GFLOP/s of SkylakeX on an AVX-512 CPU). Either makes the dense baseline a
//! strawman, so by default the process re-executes itself with the best family for the CPU,
//! says so on stderr, and records the outcome in every result.

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

/// The OpenBLAS family that runs best on this CPU.
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

/// AVX-512 families (one name per kernel set; Cooperlake and Sapphire Rapids reuse SkylakeX's
/// sgemm kernels), then AVX2 ones: a rank to tell "weaker than the CPU allows".
fn rank(core: &str) -> u8 {
    match core.to_ascii_lowercase().as_str() {
        "skylakex" | "cooperlake" | "sapphirerapids" => 3,
        "haswell" | "zen" | "skylake" => 2,
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
            bail!(
                "OpenBLAS still runs the '{loaded}' kernels after restarting with \
                 OPENBLAS_CORETYPE={wanted}: this OpenBLAS build lacks that core type \
                 (try --blas-core env)"
            );
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
    if blas::is_generic_fallback(&loaded) && best_core_for_cpu().is_some() {
        eprintln!(
            "warning: OpenBLAS runs its generic '{loaded}' kernels on a CPU with AVX2/AVX-512"
        );
    }
    Ok(BlasInfo {
        core: loaded,
        config: blas::config(),
        env_core,
        switched,
        threads: blas::num_threads(),
    })
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
