//! Whether two sets of runs measured the same thing on the same kind of machine, from their
//! `meta.json`: what makes a comparison meaningless (another model, CPU, instruction set,
//! BLAS kernel family or image count) and what merely changed (the commit, the kernels,
//! the compiler: usually the point of the comparison).

use std::collections::BTreeSet;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::meta::Meta;
use crate::reader::Run;

/// A property whose values differ between the sides, or between the runs of one side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// What differs ("CPU model", "mode qcnn").
    pub what: String,
    /// The distinct values on each side, joined by " | " when the runs of a side disagree.
    pub base: String,
    pub new: String,
}

/// CPU flags that name instruction-set extensions: the ones that decide which kernels can
/// run and how fast (x86 `/proc/cpuinfo` names).
const ISA_FLAG_PREFIXES: [&str; 11] = [
    "sse",
    "ssse3",
    "avx",
    "fma",
    "f16c",
    "amx",
    "bmi",
    "popcnt",
    "vpclmulqdq",
    "vaes",
    "gfni",
];

/// Properties that must agree for the times to be comparable, each with how to read it.
type Property = (&'static str, fn(&Meta) -> String);

const REQUIRED: [Property; 5] = [
    ("model files (sha256)", model_identity),
    ("CPU model", |m| m.system.cpu_model.clone()),
    ("instruction sets (CPU flags)", isa_flags),
    ("OpenBLAS core type", |m| {
        m.blas
            .as_ref()
            .map_or_else(|| "none".into(), |b| b.core_type.clone())
    }),
    ("images per repeat (--images)", |m| {
        m.planned_images.to_string()
    }),
];

/// Properties that may differ; listed so that the reader knows what the change was.
const INFORMATIONAL: [Property; 6] = [
    ("git commit", |m| {
        m.build.git.as_ref().map_or_else(
            || "unknown".into(),
            |g| {
                format!(
                    "{}{}",
                    short(&g.commit),
                    if g.dirty { " (dirty)" } else { "" }
                )
            },
        )
    }),
    ("compiler", |m| m.build.rustc.clone()),
    ("build", |m| {
        format!(
            "{} profile, opt-level {}",
            m.build.profile, m.build.opt_level
        )
    }),
    ("OpenBLAS build", |m| {
        m.blas
            .as_ref()
            .map_or_else(String::new, |b| b.version.clone())
    }),
    ("input", |m| m.input.clone()),
    ("pinned core", |m| {
        m.pinned_core
            .map_or_else(|| "none".into(), |c| c.to_string())
    }),
];

/// The properties that make `base` and `new` not comparable (empty: comparable).
pub fn blocking(base: &[Run], new: &[Run]) -> Vec<Difference> {
    REQUIRED
        .iter()
        .filter_map(|(what, read)| differs(what, *read, base, new))
        .map(|d| match d.what.as_str() {
            "instruction sets (CPU flags)" => only_differing_flags(d),
            _ => d,
        })
        .collect()
}

/// What changed between the sides without making them incomparable: build, inputs, and
/// each mode's kernels and instruction set.
pub fn informational(base: &[Run], new: &[Run]) -> Vec<Difference> {
    let mut out: Vec<Difference> = INFORMATIONAL
        .iter()
        .filter_map(|(what, read)| differs(what, *read, base, new))
        .collect();
    for mode in common_modes(base, new) {
        let describe = |runs: &[Run]| -> BTreeSet<String> {
            runs.iter()
                .filter_map(|r| r.meta.mode(&mode))
                .map(|m| format!("kernel {}, ISA {}", m.kernel, m.isa))
                .collect()
        };
        let (b, n) = (describe(base), describe(new));
        if b != n || b.len() > 1 || n.len() > 1 {
            out.push(Difference {
                what: format!("mode {mode}"),
                base: join(&b),
                new: join(&n),
            });
        }
    }
    out
}

/// Modes measured on both sides, in the order the first base run ran them.
pub fn common_modes(base: &[Run], new: &[Run]) -> Vec<String> {
    modes(base)
        .into_iter()
        .filter(|m| new.iter().any(|r| r.meta.mode(m).is_some()))
        .collect()
}

/// Every mode of `runs`, in first-seen order.
pub fn modes(runs: &[Run]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in runs.iter().flat_map(|r| &r.meta.modes) {
        if !out.contains(&m.mode) {
            out.push(m.mode.clone());
        }
    }
    out
}

fn differs(what: &str, read: fn(&Meta) -> String, base: &[Run], new: &[Run]) -> Option<Difference> {
    let values =
        |runs: &[Run]| -> BTreeSet<String> { runs.iter().map(|r| read(&r.meta)).collect() };
    let (b, n) = (values(base), values(new));
    (b != n || b.len() > 1 || n.len() > 1).then(|| Difference {
        what: what.to_string(),
        base: join(&b),
        new: join(&n),
    })
}

const NOT_RECORDED: &str = "not recorded";

fn join(values: &BTreeSet<String>) -> String {
    let shown: Vec<&str> = values
        .iter()
        .map(|v| if v.is_empty() { NOT_RECORDED } else { v })
        .collect();
    shown.join(" | ")
}

/// The model as the files it was read from: their names and hashes, folded into one short
/// digest (paths differ between checkouts; contents must not). A model without files (the
/// embedded synthetic one) is its description, which names the seed.
fn model_identity(meta: &Meta) -> String {
    let files = &meta.model.files;
    if files.is_empty() {
        return meta.model.source.clone();
    }
    let mut entries: Vec<String> = files
        .iter()
        .map(|f| format!("{} {}", file_name(&f.path), f.sha256))
        .collect();
    entries.sort();
    let digest = Sha256::digest(entries.join("\n").as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{} files, combined sha256 {hex}…", files.len())
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

fn isa_flags(meta: &Meta) -> String {
    let flags: BTreeSet<&str> = meta
        .system
        .cpu_flags
        .iter()
        .map(String::as_str)
        .filter(|f| ISA_FLAG_PREFIXES.iter().any(|p| f.starts_with(p)))
        .collect();
    flags.into_iter().collect::<Vec<_>>().join(" ")
}

/// Two long flag lists say little: keep the flags that are not on every run of both sides.
fn only_differing_flags(d: Difference) -> Difference {
    let sets = |s: &str| -> Vec<BTreeSet<String>> {
        s.split(" | ")
            .map(|v| match v {
                NOT_RECORDED => BTreeSet::new(),
                v => v.split_whitespace().map(String::from).collect(),
            })
            .collect()
    };
    let (b, n) = (sets(&d.base), sets(&d.new));
    let all: Vec<&BTreeSet<String>> = b.iter().chain(&n).collect();
    let common: BTreeSet<String> = all.iter().skip(1).fold(all[0].clone(), |acc, s| {
        acc.intersection(s).cloned().collect()
    });
    let show = |sets: &[BTreeSet<String>]| {
        sets.iter()
            .map(|s| {
                let extra: Vec<&str> = s.difference(&common).map(String::as_str).collect();
                if extra.is_empty() {
                    "no flags beyond the common ones".to_string()
                } else {
                    format!("also {}", extra.join(" "))
                }
            })
            .collect::<Vec<_>>()
            .join(" | ")
    };
    Difference {
        what: d.what,
        base: show(&b),
        new: show(&n),
    }
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}
