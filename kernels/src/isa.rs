//! Which instruction set a kernel uses: a value you can print, force and record
//! (docs/KERNELS.md "Dispatch").
//!
//! A level is available when the CPU has every feature its kernels use ([`Isa::features`]),
//! nothing more: the AVX-512 level needs AVX-512 F and BW (Skylake-X and every later
//! AVX-512 CPU), not the VBMI or VNNI extensions no kernel uses.

use std::fmt;
use std::str::FromStr;

/// Instruction-set levels, lowest first within an architecture. Every variant exists on every
/// architecture (so names parse and results read the same everywhere); a level of another
/// architecture is never available.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust, the reference twin of every fast kernel.
    Scalar,
    /// x86-64: AVX2 + FMA (16 × 256-bit registers).
    Avx2,
    /// x86-64: AVX-512 F/BW on top of AVX2 + FMA (32 × 512-bit registers).
    Avx512,
    /// aarch64: Advanced SIMD (NEON, 32 × 128-bit registers).
    Neon,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IsaError {
    #[error("unknown ISA '{0}' (expected one of: scalar, avx2, avx512, neon)")]
    Unknown(String),
    #[error("ISA '{0}' was requested but this CPU lacks it (available: {1})")]
    Unavailable(Isa, String),
}

impl Isa {
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// The CPU features this level's kernels use, in the names of Rust's feature detection
    /// (`is_x86_feature_detected!`, `is_aarch64_feature_detected!`). Recorded in every run.
    pub fn features(self) -> &'static [&'static str] {
        match self {
            Isa::Scalar => &[],
            Isa::Avx2 => &["avx2", "fma"],
            Isa::Avx512 => &["avx2", "fma", "avx512f", "avx512bw"],
            Isa::Neon => &["neon"],
        }
    }

    /// The architecture whose CPUs can have this level.
    fn arch(self) -> Option<&'static str> {
        match self {
            Isa::Scalar => None,
            Isa::Avx2 | Isa::Avx512 => Some("x86_64"),
            Isa::Neon => Some("aarch64"),
        }
    }

    /// Whether this CPU (as the OS reports it) runs this level's kernels.
    pub fn is_available(self) -> bool {
        let right_arch = self.arch().is_none_or(|a| a == std::env::consts::ARCH);
        right_arch && self.features().iter().all(|f| cpu_has(f))
    }

    /// The best level this CPU runs.
    pub fn detect() -> Isa {
        Isa::available().into_iter().last().unwrap_or(Isa::Scalar)
    }

    /// Every level this CPU runs, lowest first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_available()).collect()
    }

    /// `self`, if the CPU has it; forcing a missing level is an error, never a silent fallback.
    pub fn require(self) -> Result<Isa, IsaError> {
        if self.is_available() {
            Ok(self)
        } else {
            let names: Vec<_> = Isa::available().iter().map(|i| i.name()).collect();
            Err(IsaError::Unavailable(self, names.join(", ")))
        }
    }
}

/// The SIMD features of this CPU that any kernel level could use, detected at run time:
/// what a run records beside the level it chose.
pub fn cpu_features() -> Vec<&'static str> {
    KNOWN_FEATURES
        .iter()
        .copied()
        .filter(|f| cpu_has(f))
        .collect()
}

#[cfg(target_arch = "x86_64")]
const KNOWN_FEATURES: &[&str] = &[
    "sse4.2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512dq",
    "avx512vbmi",
    "avx512vnni",
    "avxvnni",
];

#[cfg(target_arch = "aarch64")]
const KNOWN_FEATURES: &[&str] = &["neon", "dotprod", "i8mm", "sve", "sve2"];

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const KNOWN_FEATURES: &[&str] = &[];

/// Whether the CPU has `feature` (a name of [`KNOWN_FEATURES`]; any other name is false).
#[cfg(target_arch = "x86_64")]
pub fn cpu_has(feature: &str) -> bool {
    use std::arch::is_x86_feature_detected as has;
    match feature {
        "sse4.2" => has!("sse4.2"),
        "avx" => has!("avx"),
        "avx2" => has!("avx2"),
        "fma" => has!("fma"),
        "avx512f" => has!("avx512f"),
        "avx512bw" => has!("avx512bw"),
        "avx512vl" => has!("avx512vl"),
        "avx512dq" => has!("avx512dq"),
        "avx512vbmi" => has!("avx512vbmi"),
        "avx512vnni" => has!("avx512vnni"),
        "avxvnni" => has!("avxvnni"),
        _ => false,
    }
}

/// Whether the CPU has `feature` (a name of [`KNOWN_FEATURES`]; any other name is false).
#[cfg(target_arch = "aarch64")]
pub fn cpu_has(feature: &str) -> bool {
    use std::arch::is_aarch64_feature_detected as has;
    match feature {
        "neon" => has!("neon"),
        "dotprod" => has!("dotprod"),
        "i8mm" => has!("i8mm"),
        "sve" => has!("sve"),
        "sve2" => has!("sve2"),
        _ => false,
    }
}

/// Whether the CPU has `feature`: no SIMD level is known on this architecture.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn cpu_has(_feature: &str) -> bool {
    false
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Isa {
    type Err = IsaError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Isa::ALL
            .into_iter()
            .find(|i| i.name() == s)
            .ok_or_else(|| IsaError::Unknown(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for isa in Isa::ALL {
            assert_eq!(isa.name().parse::<Isa>(), Ok(isa));
        }
        assert!("sse9".parse::<Isa>().is_err());
    }

    #[test]
    fn detect_is_available_and_scalar_always_is() {
        assert!(Isa::detect().is_available());
        assert_eq!(Isa::Scalar.require(), Ok(Isa::Scalar));
    }

    #[test]
    fn levels_of_another_architecture_are_never_available() {
        for isa in Isa::ALL {
            if let Some(arch) = isa.arch() {
                if arch != std::env::consts::ARCH {
                    assert!(!isa.is_available(), "{isa} on {}", std::env::consts::ARCH);
                }
            }
        }
    }

    #[test]
    fn a_level_is_available_exactly_when_the_cpu_has_its_features() {
        for isa in Isa::ALL {
            let native = isa.arch().is_none_or(|a| a == std::env::consts::ARCH);
            let has_all = isa.features().iter().all(|f| cpu_features().contains(f));
            assert_eq!(isa.is_available(), native && has_all, "{isa}");
        }
    }
}
