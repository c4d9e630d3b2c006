//! Which instruction-set levels a kernel suite must test (STYLE.md 7: never test fewer levels
//! silently). `.ci/run` reads the levels this CPU has from `/proc/cpuinfo` (independently of
//! the code under test) and sets:
//! `QCNN_REQUIRE_ISA`: comma-separated levels every dense and look-up kernel suite must run
//! (e.g. `scalar,avx2,avx512`; every family, the int8 one included, has a kernel per level).
//!
//! A suite tests every level the code detects; [`tested_levels`] fails when a required level
//! is not among them and prints what ran (CI shows it with `--nocapture`).
use qcnn_kernels::Isa;

/// The kernel suites' requirement.
pub const REQUIRE: &str = "QCNN_REQUIRE_ISA";

/// The levels `var` requires; None when it is not set (a developer's machine).
pub fn required(var: &str) -> Option<Vec<Isa>> {
    let text = std::env::var(var).ok()?;
    let levels = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            name.parse::<Isa>()
                .unwrap_or_else(|e| panic!("{var}={text}: {e}"))
        })
        .collect();
    Some(levels)
}

/// The levels a `family` suite tests (`detected`, as the code under test finds them),
/// checked against `var`: a required level missing from them fails the calling test.
pub fn tested_levels(family: &str, var: &str, detected: Vec<Isa>) -> Vec<Isa> {
    let names = |levels: &[Isa]| {
        levels
            .iter()
            .map(|i| i.name())
            .collect::<Vec<_>>()
            .join(",")
    };
    match required(var) {
        Some(want) => {
            let missing: Vec<Isa> = want
                .iter()
                .copied()
                .filter(|i| !detected.contains(i))
                .collect();
            assert!(
                missing.is_empty(),
                "{family}: {var}={} requires {} but the kernels detect only {} on this CPU",
                names(&want),
                names(&missing),
                names(&detected)
            );
            eprintln!(
                "{family}: tested ISA levels {} (required by {var}: {})",
                names(&detected),
                names(&want)
            );
        }
        None => eprintln!(
            "{family}: tested ISA levels {} ({var} not set: nothing required)",
            names(&detected)
        ),
    }
    detected
}
