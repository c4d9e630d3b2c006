//! `qcnn-gate`: compares a gate run with the committed baseline (or updates it), and checks
//! the wall-time ratio of a short `qcnn reproduce`. Driven by `ci/gate.sh` and `ci/smoke.sh`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use qcnn_gate::{check_ratio, compare, failure_message, parse_run, table, Baseline, Rules};

#[derive(Parser)]
#[command(about = "qcnn-bench's CI performance gate")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compare a gate run (gungraun JSON lines) with the baseline; exit 1 if it fails.
    Compare {
        #[arg(long)]
        baseline: PathBuf,
        /// gungraun's `--output-format=json` output.
        #[arg(long)]
        run: PathBuf,
        /// Largest allowed increase of a kernel's instruction count, percent.
        #[arg(long, default_value_t = 2.0)]
        threshold_pct: f64,
        /// The run measured a subset (a filter): baseline kernels it lacks are not failures.
        #[arg(long)]
        partial: bool,
        /// Write the run as the new baseline (after printing the comparison).
        #[arg(long, conflicts_with = "partial")]
        update: bool,
        /// What the counts depend on, recorded in the baseline: key=value, repeatable.
        #[arg(long = "provenance", value_parser = key_value)]
        provenance: Vec<(String, String)>,
    },
    /// Check a `qcnn reproduce --json` summary's speed-up against a floor; exit 1 below it.
    Ratio {
        /// The file holding reproduce's stdout.
        #[arg(long)]
        summary: PathBuf,
        #[arg(long, default_value = "qcnn")]
        mode: String,
        /// Lowest acceptable speed-up per look-up ISA, `ISA=FLOOR` (repeatable; `*=FLOOR`
        /// for any ISA, a bare number likewise).
        #[arg(long = "floor", value_parser = isa_floor, required = true)]
        floors: Vec<(String, f64)>,
    },
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("expected key=value, got '{s}'"))
}

fn isa_floor(s: &str) -> Result<(String, f64), String> {
    let (isa, floor) = s.split_once('=').unwrap_or(("*", s));
    let floor = floor
        .trim()
        .parse()
        .map_err(|_| format!("expected ISA=FLOOR or a number, got '{s}'"))?;
    Ok((isa.trim().to_string(), floor))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("qcnn-gate: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Ok(passed).
fn run(cli: Cli) -> Result<bool> {
    match cli.command {
        Command::Compare {
            baseline,
            run,
            threshold_pct,
            partial,
            update,
            provenance,
        } => {
            let text = read(&run)?;
            let now = parse_run(&text).with_context(|| format!("reading {}", run.display()))?;
            let provenance: BTreeMap<String, String> = provenance.into_iter().collect();
            let old = if baseline.exists() {
                Baseline::from_json(&read(&baseline)?)
                    .with_context(|| format!("reading {}", baseline.display()))?
            } else if update {
                Baseline::new(Default::default(), Default::default())
            } else {
                anyhow::bail!(
                    "{} does not exist: create it with `ci/gate.sh --update`",
                    baseline.display()
                );
            };
            let fresh = old.counts.is_empty();
            for (key, was, is) in old
                .provenance_changes(&provenance)
                .into_iter()
                .filter(|_| !fresh)
            {
                println!(
                    "note: {key} differs from the baseline's ({was} -> {is}); counts may shift for that reason alone"
                );
            }
            let rules = Rules {
                threshold_pct,
                partial,
            };
            let rows = compare(&old.counts, &now, rules);
            print!("{}", table(&rows));
            if update {
                let new = Baseline::new(now, provenance);
                std::fs::write(&baseline, new.to_json())
                    .with_context(|| format!("writing {}", baseline.display()))?;
                println!(
                    "baseline updated: {} ({} kernels); commit it with the change that explains it",
                    baseline.display(),
                    new.counts.len()
                );
                return Ok(true);
            }
            match failure_message(&rows, rules) {
                Some(msg) => {
                    print!("{msg}");
                    Ok(false)
                }
                None => {
                    println!(
                        "performance gate passed: {} kernel(s) within +{threshold_pct:.1}% of the baseline",
                        rows.len()
                    );
                    Ok(true)
                }
            }
        }
        Command::Ratio {
            summary,
            mode,
            floors,
        } => {
            let ratio = check_ratio(&read(&summary)?, &mode, &floors)
                .with_context(|| format!("reading {}", summary.display()))?;
            println!("{}", ratio.describe());
            Ok(ratio.passes())
        }
    }
}

fn read(path: &PathBuf) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
