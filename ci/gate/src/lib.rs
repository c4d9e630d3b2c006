//! CI's performance gate, the analysis half (the measuring half is `benches/gate.rs`).
//!
//! - [`parse_run`]: gungraun's JSON lines (`--output-format=json`, one benchmark per line)
//!   into instruction counts per gate key (`<layer>/<kernel>`, e.g. `conv3/conv-lut-f32-avx2`).
//! - [`Baseline`]: the committed counts (`results/gate-baseline.json`) with their provenance.
//! - [`compare`]: baseline vs now, one [`Row`] per key; any increase above the threshold, any
//!   kernel that lost its measurement and any new kernel without a baseline fail the gate.
//! - [`check_ratio`]: the wall-time sanity check on a `qcnn reproduce --json` summary.
//!
//! Instruction counts (callgrind `Ir`) are exact and repeatable for one binary, input and
//! environment, so the threshold only has to absorb intended small changes, not noise.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Instruction counts per gate key.
pub type Counts = BTreeMap<String, u64>;

/// The metric the gate reads from each benchmark's callgrind profile.
pub const METRIC: &str = "Ir";
/// Version of [`Baseline`]'s file format.
pub const BASELINE_SCHEMA: u32 = 1;

/// The gate key of one gungraun benchmark: `<bench id>/<function>` with `_` read as `-`, i.e.
/// the layer and the kernel's own name (`conv3`, `conv_lut_f32_avx2` → `conv3/conv-lut-f32-avx2`).
pub fn gate_key(function: &str, id: Option<&str>) -> String {
    let kernel = function.replace('_', "-");
    match id {
        Some(id) => format!("{id}/{kernel}"),
        None => kernel,
    }
}

/// Reads gungraun's `--output-format=json` output: one JSON object per benchmark and line
/// (other lines are ignored). Fails on a benchmark without an `Ir` total or a key seen twice.
pub fn parse_run(text: &str) -> Result<Counts> {
    let mut counts = Counts::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if !line.starts_with('{') {
            continue;
        }
        let summary: Summary = serde_json::from_str(line)
            .with_context(|| format!("line {}: not a gungraun benchmark summary", n + 1))?;
        let key = gate_key(&summary.function_name, summary.id.as_deref());
        let ir = summary
            .profiles
            .iter()
            .find(|p| p.tool == "Callgrind")
            .and_then(|p| p.data.total.metrics.get(METRIC))
            .and_then(|m| m.values.get("new"))
            .and_then(serde_json::Value::as_u64)
            .with_context(|| format!("line {}: {key} has no callgrind {METRIC} total", n + 1))?;
        if counts.insert(key.clone(), ir).is_some() {
            bail!("line {}: benchmark {key} appears twice", n + 1);
        }
    }
    if counts.is_empty() {
        bail!("no benchmark summary found (was the bench run with --output-format=json?)");
    }
    Ok(counts)
}

/// The parts of gungraun's summary (schema v7) the gate reads.
#[derive(Deserialize)]
struct Summary {
    function_name: String,
    id: Option<String>,
    profiles: Vec<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    tool: String,
    data: ProfileData,
}

#[derive(Deserialize)]
struct ProfileData {
    total: Total,
}

#[derive(Deserialize)]
struct Total {
    metrics: BTreeMap<String, Metric>,
}

#[derive(Deserialize)]
struct Metric {
    /// "new" (this run) and, when gungraun kept an earlier run, "old". Event counts are
    /// integers; anything else is not a count.
    values: BTreeMap<String, serde_json::Value>,
}

/// The committed baseline: counts and what produced them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub schema: u32,
    /// What the numbers are.
    pub metric: String,
    /// Tool versions and settings the counts depend on (rustc, valgrind, OpenBLAS, CPU …).
    pub provenance: BTreeMap<String, String>,
    pub counts: Counts,
}

impl Baseline {
    pub fn new(counts: Counts, provenance: BTreeMap<String, String>) -> Self {
        Baseline {
            schema: BASELINE_SCHEMA,
            metric: format!(
                "callgrind {METRIC}: instructions executed by one measured call (setup excluded)"
            ),
            provenance,
            counts,
        }
    }

    pub fn from_json(text: &str) -> Result<Self> {
        let b: Baseline = serde_json::from_str(text).context("not a gate baseline")?;
        if b.schema != BASELINE_SCHEMA {
            bail!(
                "baseline schema {} (this tool reads {BASELINE_SCHEMA})",
                b.schema
            );
        }
        Ok(b)
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("plain data serializes");
        s.push('\n');
        s
    }

    /// Provenance entries that differ from `now`'s: (key, baseline's, now's).
    pub fn provenance_changes(
        &self,
        now: &BTreeMap<String, String>,
    ) -> Vec<(String, String, String)> {
        let missing = || "(unset)".to_string();
        let keys: std::collections::BTreeSet<&String> =
            self.provenance.keys().chain(now.keys()).collect();
        keys.into_iter()
            .filter(|k| self.provenance.get(*k) != now.get(*k))
            .map(|k| {
                let old = self.provenance.get(k).cloned().unwrap_or_else(missing);
                let new = now.get(k).cloned().unwrap_or_else(missing);
                (k.clone(), old, new)
            })
            .collect()
    }
}

/// What the gate says about one kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the threshold either way.
    Ok,
    /// Fewer instructions by more than the threshold: fine, but the baseline should follow.
    Improved,
    /// More instructions by more than the threshold: fails.
    Regressed,
    /// In the baseline but not measured: fails (a benchmark was lost).
    Missing,
    /// Measured but not in the baseline: fails until the baseline is updated.
    New,
}

impl Verdict {
    pub fn fails(self) -> bool {
        matches!(self, Verdict::Regressed | Verdict::Missing | Verdict::New)
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Improved => "improved",
            Verdict::Regressed => "REGRESSED",
            Verdict::Missing => "MISSING",
            Verdict::New => "NEW",
        }
    }
}

/// One kernel's line of the comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub key: String,
    pub baseline: Option<u64>,
    pub now: Option<u64>,
    pub verdict: Verdict,
}

impl Row {
    /// (now − baseline) / baseline in percent, when both exist.
    pub fn change_pct(&self) -> Option<f64> {
        match (self.baseline, self.now) {
            (Some(b), Some(n)) if b > 0 => Some((n as f64 - b as f64) / b as f64 * 100.0),
            (Some(0), Some(n)) => Some(if n == 0 { 0.0 } else { f64::INFINITY }),
            _ => None,
        }
    }
}

/// How a run is compared with the baseline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rules {
    /// Largest allowed increase, percent.
    pub threshold_pct: f64,
    /// The run measured a subset on purpose (a filter): baseline keys it lacks are not
    /// failures.
    pub partial: bool,
}

/// Baseline vs now, one row per key of either, in key order.
pub fn compare(baseline: &Counts, now: &Counts, rules: Rules) -> Vec<Row> {
    let keys: std::collections::BTreeSet<&String> = baseline.keys().chain(now.keys()).collect();
    keys.into_iter()
        .filter_map(|key| {
            let (b, n) = (baseline.get(key).copied(), now.get(key).copied());
            let mut row = Row {
                key: key.clone(),
                baseline: b,
                now: n,
                verdict: Verdict::Ok,
            };
            row.verdict = match (b, n) {
                (Some(_), None) if rules.partial => return None,
                (Some(_), None) => Verdict::Missing,
                (None, _) => Verdict::New,
                (Some(_), Some(_)) => {
                    let change = row.change_pct().expect("both counts exist");
                    if change > rules.threshold_pct {
                        Verdict::Regressed
                    } else if change < -rules.threshold_pct {
                        Verdict::Improved
                    } else {
                        Verdict::Ok
                    }
                }
            };
            Some(row)
        })
        .collect()
}

/// The table CI prints: kernel, baseline, now, change, verdict.
pub fn table(rows: &[Row]) -> String {
    let width = rows.iter().map(|r| r.key.len()).max().unwrap_or(6).max(6);
    let count = |c: Option<u64>| c.map_or_else(|| "-".to_string(), group_digits);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:width$}  {:>15}  {:>15}  {:>8}  verdict",
        "kernel", "baseline Ir", "now Ir", "change"
    );
    for r in rows {
        let change = r
            .change_pct()
            .map_or_else(|| "-".to_string(), |c| format!("{c:+.2}%"));
        let _ = writeln!(
            out,
            "{:width$}  {:>15}  {:>15}  {:>8}  {}",
            r.key,
            count(r.baseline),
            count(r.now),
            change,
            r.verdict.label()
        );
    }
    out
}

/// What went wrong, one line per failing kernel, naming it; `None` if the gate passes.
pub fn failure_message(rows: &[Row], rules: Rules) -> Option<String> {
    let failing: Vec<&Row> = rows.iter().filter(|r| r.verdict.fails()).collect();
    if failing.is_empty() {
        return None;
    }
    let mut out = format!(
        "performance gate FAILED: {} kernel(s) (threshold +{:.1}% instructions)\n",
        failing.len(),
        rules.threshold_pct
    );
    for r in failing {
        let line = match r.verdict {
            Verdict::Regressed => format!(
                "  {}: {} -> {} instructions ({:+.2}%), above the +{:.1}% threshold",
                r.key,
                count_or_dash(r.baseline),
                count_or_dash(r.now),
                r.change_pct().unwrap_or(f64::NAN),
                rules.threshold_pct
            ),
            Verdict::Missing => format!(
                "  {}: in the baseline but not measured (benchmark removed or renamed?)",
                r.key
            ),
            Verdict::New => format!("  {}: measured but has no baseline", r.key),
            Verdict::Ok | Verdict::Improved => unreachable!("only failing rows"),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(
        "If the change is intended, update the baseline with `ci/gate.sh --update` and commit \
         results/gate-baseline.json with the change that explains it.\n",
    );
    Some(out)
}

fn count_or_dash(c: Option<u64>) -> String {
    c.map_or_else(|| "-".to_string(), group_digits)
}

/// 1234567 → "1 234 567" (thin columns are easier to compare by eye).
fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(ch);
    }
    out
}

/// The look-up ISA a mode ran at, read from its kernel names (`conv-lut-f32-avx512, …`):
/// the widest level any of them names.
pub fn kernels_isa(kernels: &str) -> &'static str {
    ["avx512", "avx2"]
        .into_iter()
        .find(|isa| {
            kernels
                .split([',', ' '])
                .any(|k| k.ends_with(&format!("-{isa}")))
        })
        .unwrap_or("scalar")
}

/// The floor for `isa` from `floors` (ISA name, floor); the entry `*` applies to any ISA.
pub fn floor_for(isa: &str, floors: &[(String, f64)]) -> Result<f64> {
    floors
        .iter()
        .find(|(k, _)| k == isa)
        .or_else(|| floors.iter().find(|(k, _)| k == "*"))
        .map(|&(_, f)| f)
        .with_context(|| format!("no speed-up floor given for look-up ISA {isa}"))
}

/// The outcome of the wall-time sanity check.
#[derive(Clone, Debug, PartialEq)]
pub struct Ratio {
    pub mode: String,
    /// The look-up ISA the floor was chosen for.
    pub isa: String,
    /// Median ms/image of the dense baseline over the mode's median.
    pub speedup: f64,
    pub floor: f64,
    pub dense_ms: f64,
    pub mode_ms: f64,
    pub kernels: String,
}

impl Ratio {
    pub fn passes(&self) -> bool {
        self.speedup >= self.floor
    }

    pub fn describe(&self) -> String {
        format!(
            "{} speed-up over dense: {:.2}x (median dense {:.2} ms/image, {} {:.2} ms/image; \
             kernels: {}); floor at {} {:.2}x: {}",
            self.mode,
            self.speedup,
            self.dense_ms,
            self.mode,
            self.mode_ms,
            self.kernels,
            self.isa,
            self.floor,
            if self.passes() { "ok" } else { "FAILED" }
        )
    }
}

/// Reads `mode`'s speed-up from a `qcnn reproduce --json` summary (the last JSON object in
/// `text`, so progress lines before it do no harm) and picks the floor of the ISA its
/// kernels ran at from `floors` (see [`floor_for`]).
pub fn check_ratio(text: &str, mode: &str, floors: &[(String, f64)]) -> Result<Ratio> {
    let json = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("no JSON summary in the reproduce output")?;
    let summary: ReproduceSummary =
        serde_json::from_str(json).context("not a `qcnn reproduce --json` summary")?;
    if !summary.complete {
        bail!("the reproduce run did not complete every repeat");
    }
    let speedup = *summary
        .speedup
        .get(mode)
        .with_context(|| format!("the summary has no speed-up for mode '{mode}'"))?;
    let median = |m: &str| {
        summary
            .modes
            .get(m)
            .map(|s| (s.median_ms, s.kernel.clone()))
            .with_context(|| format!("the summary has no mode '{m}'"))
    };
    let (dense_ms, _) = median("dense")?;
    let (mode_ms, kernels) = median(mode)?;
    let isa = kernels_isa(&kernels);
    let floor = floor_for(isa, floors)?;
    Ok(Ratio {
        mode: mode.to_string(),
        isa: isa.to_string(),
        speedup,
        floor,
        dense_ms,
        mode_ms,
        kernels,
    })
}

/// The parts of `qcnn reproduce --json` the ratio check reads.
#[derive(Deserialize)]
struct ReproduceSummary {
    complete: bool,
    modes: BTreeMap<String, ModeSummary>,
    speedup: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
struct ModeSummary {
    kernel: String,
    median_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        threshold_pct: 2.0,
        partial: false,
    };

    fn counts(pairs: &[(&str, u64)]) -> Counts {
        pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
    }

    /// One line as gungraun 0.20 prints it (trimmed to the fields the gate reads and a few).
    fn line(function: &str, id: &str, ir: u64) -> String {
        format!(
            r#"{{"baselines":[null,null],"function_name":"{function}","group":"lookup","id":"{id}","kind":"LibraryBenchmark","module_path":"gate::lookup::{function}","profiles":[{{"data":{{"parts":[],"total":{{"metrics":{{"Ir":{{"values":{{"new":{ir},"old":1}}}}}},"regressions":[]}}}},"tool":"Callgrind"}}],"version":"7"}}"#
        )
    }

    #[test]
    fn keys_are_layer_and_kernel_name() {
        assert_eq!(
            gate_key("conv_lut_f32_avx2", Some("conv3")),
            "conv3/conv-lut-f32-avx2"
        );
        assert_eq!(gate_key("qcnn_avx2", Some("alexnet")), "alexnet/qcnn-avx2");
        assert_eq!(gate_key("max_pool", None), "max-pool");
    }

    #[test]
    fn parses_gungraun_json_lines_and_skips_other_lines() {
        let text = format!(
            "Running benches\n{}\n{}\n",
            line("conv_lut_f32_avx2", "conv3", 12_216_083),
            line("fc_lut_f32_scalar", "fc8", 67_183_642)
        );
        let c = parse_run(&text).unwrap();
        assert_eq!(
            c,
            counts(&[
                ("conv3/conv-lut-f32-avx2", 12_216_083),
                ("fc8/fc-lut-f32-scalar", 67_183_642)
            ])
        );
    }

    #[test]
    fn parse_rejects_duplicates_empty_runs_and_missing_metrics() {
        let l = line("lrn_avx2", "norm1", 5);
        assert!(parse_run(&format!("{l}\n{l}\n"))
            .unwrap_err()
            .to_string()
            .contains("norm1/lrn-avx2 appears twice"));
        assert!(parse_run("nothing here\n").is_err());
        let no_ir = l.replace("\"Ir\"", "\"Dr\"");
        assert!(format!("{:#}", parse_run(&no_ir).unwrap_err()).contains("no callgrind Ir"));
    }

    #[test]
    fn identical_counts_pass() {
        let b = counts(&[
            ("conv3/conv-lut-f32-avx2", 100),
            ("fc6/fc-lut-f32-avx2", 50),
        ]);
        let rows = compare(&b, &b.clone(), RULES);
        assert!(rows.iter().all(|r| r.verdict == Verdict::Ok));
        assert_eq!(failure_message(&rows, RULES), None);
    }

    #[test]
    fn a_slowed_kernel_fails_naming_it() {
        let b = counts(&[
            ("conv3/conv-lut-f32-avx2", 1_000_000),
            ("fc6/fc-lut-f32-avx2", 500),
        ]);
        let mut now = b.clone();
        now.insert("conv3/conv-lut-f32-avx2".into(), 1_020_001); // +2.0001 %
        let rows = compare(&b, &now, RULES);
        assert_eq!(rows[0].verdict, Verdict::Regressed);
        assert_eq!(rows[1].verdict, Verdict::Ok);
        let msg = failure_message(&rows, RULES).expect("fails");
        assert!(
            msg.contains("conv3/conv-lut-f32-avx2: 1 000 000 -> 1 020 001"),
            "{msg}"
        );
        assert!(msg.contains("+2.00%"), "{msg}");
        assert!(!msg.contains("fc6"), "{msg}");
        assert!(table(&rows).contains("REGRESSED"));
    }

    #[test]
    fn the_threshold_itself_passes_and_improvements_do_not_fail() {
        let b = counts(&[("a/k", 1000), ("b/k", 1000)]);
        let now = counts(&[("a/k", 1020), ("b/k", 700)]);
        let rows = compare(&b, &now, RULES);
        assert_eq!(rows[0].verdict, Verdict::Ok);
        assert_eq!(rows[1].verdict, Verdict::Improved);
        assert_eq!(failure_message(&rows, RULES), None);
    }

    #[test]
    fn lost_and_unbaselined_kernels_fail_unless_the_run_is_partial() {
        let b = counts(&[("a/k", 10), ("b/k", 10)]);
        let now = counts(&[("a/k", 10), ("c/k", 10)]);
        let rows = compare(&b, &now, RULES);
        let verdicts: Vec<_> = rows.iter().map(|r| (r.key.as_str(), r.verdict)).collect();
        assert_eq!(
            verdicts,
            [
                ("a/k", Verdict::Ok),
                ("b/k", Verdict::Missing),
                ("c/k", Verdict::New)
            ]
        );
        let msg = failure_message(&rows, RULES).unwrap();
        assert!(msg.contains("b/k: in the baseline but not measured"));
        assert!(msg.contains("c/k: measured but has no baseline"));
        let partial = Rules {
            partial: true,
            ..RULES
        };
        let rows = compare(&b, &counts(&[("a/k", 10)]), partial);
        assert_eq!(rows.len(), 1);
        assert_eq!(failure_message(&rows, partial), None);
    }

    #[test]
    fn baseline_round_trips_and_reports_provenance_changes() {
        let prov: BTreeMap<String, String> = [("rustc", "1.95.0"), ("valgrind", "3.19.0")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let b = Baseline::new(counts(&[("a/k", 7)]), prov.clone());
        assert_eq!(Baseline::from_json(&b.to_json()).unwrap(), b);
        let mut now = prov;
        now.insert("rustc".into(), "1.96.0".into());
        assert_eq!(
            b.provenance_changes(&now),
            [(
                "rustc".to_string(),
                "1.95.0".to_string(),
                "1.96.0".to_string()
            )]
        );
        let wrong = b.to_json().replace("\"schema\": 1", "\"schema\": 9");
        assert!(Baseline::from_json(&wrong).is_err());
    }

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1 000");
        assert_eq!(group_digits(114_046_476), "114 046 476");
    }

    fn reproduce_json(speedup: f64) -> String {
        format!(
            r#"{{"results_dir":"x","complete":true,"completed_repeats":3,"planned_repeats":3,"modes":{{"dense":{{"kernel":"sgemm-openblas","ms_per_image":[30.0],"median_ms":30.0,"min_ms":30.0,"max_ms":30.0,"cv":null,"peak_rss_bytes":null,"top1_accuracy":null,"top5_accuracy":null}},"qcnn":{{"kernel":"conv-lut-f32-avx512","ms_per_image":[10.0],"median_ms":10.0,"min_ms":10.0,"max_ms":10.0,"cv":null,"peak_rss_bytes":null,"top1_accuracy":null,"top5_accuracy":null}}}},"speedup":{{"qcnn":{speedup}}},"theoretical_speedup":4.15}}"#
        )
    }

    fn floors(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
        pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
    }

    #[test]
    fn ratio_reads_the_summary_and_applies_the_isa_floor() {
        let f = floors(&[("avx512", 2.5), ("avx2", 1.3)]);
        let ok = check_ratio(&format!("progress\n{}\n", reproduce_json(3.0)), "qcnn", &f).unwrap();
        assert!(ok.passes());
        assert_eq!((ok.isa.as_str(), ok.floor), ("avx512", 2.5));
        assert_eq!((ok.dense_ms, ok.mode_ms), (30.0, 10.0));
        assert!(ok.describe().contains("3.00x"), "{}", ok.describe());
        let low = check_ratio(&reproduce_json(2.0), "qcnn", &f).unwrap();
        assert!(!low.passes());
        assert!(low.describe().contains("FAILED"));
        assert!(check_ratio(&reproduce_json(3.0), "int8", &f).is_err());
        let incomplete = reproduce_json(3.0).replace("\"complete\":true", "\"complete\":false");
        assert!(check_ratio(&incomplete, "qcnn", &f).is_err());
        let scalar = reproduce_json(3.0).replace("conv-lut-f32-avx512", "conv-lut-f32-scalar");
        assert!(
            check_ratio(&scalar, "qcnn", &f).is_err(),
            "no floor for scalar"
        );
        let any = floors(&[("*", 1.5)]);
        assert_eq!(check_ratio(&scalar, "qcnn", &any).unwrap().floor, 1.5);
    }

    #[test]
    fn the_isa_is_the_widest_kernel_named() {
        assert_eq!(
            kernels_isa("conv-lut-f32-avx512, fc-lut-f32-avx512, lrn-avx512"),
            "avx512"
        );
        assert_eq!(
            kernels_isa("conv-lut-f32-avx2, fc-lut-f32-avx2, lrn-avx2"),
            "avx2"
        );
        assert_eq!(kernels_isa("conv-lut-f32-scalar, lrn-scalar"), "scalar");
    }
}
