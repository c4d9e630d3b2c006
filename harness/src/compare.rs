//! `qcnn compare BASE NEW`: did NEW get slower than BASE, and is it real or noise? Reads
//! stored runs only (no BLAS, no measurement); the statistics are `qcnn_results::compare`'s,
//! the text `qcnn_reports::compare`'s.
//!
//! Exit status, as `diff` and `cmp` have it: 0 when nothing regressed, 1 when something did
//! (beyond the threshold, with its whole interval beyond it), 2 when the comparison could
//! not be made (bad arguments, unreadable or incomparable runs).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use qcnn_results::compare::{compare_folders, CompareOptions, Comparison, DEFAULT_SEED};

/// Exit status when nothing regressed.
pub const EXIT_OK: u8 = 0;
/// Exit status when at least one quantity regressed.
pub const EXIT_REGRESSED: u8 = 1;
/// Exit status when the comparison could not be made (clap's usage errors exit 2 too).
pub const EXIT_ERROR: u8 = 2;

/// How changes are judged; shared by `qcnn compare` and `qcnn report --compare`.
#[derive(clap::Args, Debug, Clone)]
pub struct JudgeArgs {
    /// Noise threshold: a change counts only when its whole interval lies beyond it
    /// ("2%" or "0.02").
    #[arg(long, default_value = "2%", value_parser = parse_fraction)]
    pub threshold: f64,
    /// Confidence of the whole comparison ("0.95" or "95%"): with this probability noise
    /// alone flags no quantity (each interval is at 1 − (1 − confidence)/N for N quantities).
    #[arg(long, default_value = "0.95", value_parser = parse_fraction)]
    pub confidence: f64,
    /// Bootstrap resample pairs per quantity.
    #[arg(long, default_value_t = 10_000)]
    pub resamples: usize,
    /// Seed of the bootstrap (verdicts are reproducible for a given seed).
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Compare runs that differ in model files, CPU model, instruction sets, OpenBLAS core
    /// or --images anyway; the differences are listed first.
    #[arg(long)]
    pub allow_different: bool,
}

impl JudgeArgs {
    pub fn options(&self) -> CompareOptions {
        CompareOptions {
            threshold: self.threshold,
            confidence: self.confidence,
            resamples: self.resamples,
            seed: self.seed,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// The reference: a run folder (results/runs/<run>) or a folder of runs, pooled.
    pub base: PathBuf,
    /// The change: a run folder or a folder of runs, pooled.
    pub new: PathBuf,
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// Print the comparison as one JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the comparison as Markdown for a pull-request comment to FILE.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
}

/// Runs the comparison and turns its outcome into the documented exit status.
pub fn main(args: &CompareArgs) -> ExitCode {
    match run(args) {
        Ok(c) if c.regressed() => ExitCode::from(EXIT_REGRESSED),
        Ok(_) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run(args: &CompareArgs) -> Result<Comparison> {
    let c = compare_folders(
        &args.base,
        &args.new,
        &args.judge.options(),
        args.judge.allow_different,
    )?;
    if let Some(path) = &args.markdown {
        write_markdown(path, &c)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&c)?);
    } else {
        print!("{}", qcnn_reports::compare::comparison_text(&c));
    }
    if c.regressed() {
        eprintln!(
            "{} quantities regressed beyond {}%: exit status {EXIT_REGRESSED}",
            c.tally.regressed,
            args.judge.threshold * 100.0
        );
    }
    Ok(c)
}

fn write_markdown(path: &Path, c: &Comparison) -> Result<()> {
    std::fs::write(path, qcnn_reports::compare::comparison_markdown(c))
        .with_context(|| format!("{}: cannot write the Markdown", path.display()))
}

/// "2%" → 0.02, "0.02" → 0.02. A bare number of 1 or more is refused as ambiguous ("2"
/// could mean 2% or 200%).
fn parse_fraction(text: &str) -> Result<f64, String> {
    let (number, divisor) = match text.trim().strip_suffix('%') {
        Some(n) => (n, 100.0),
        None => (text.trim(), 1.0),
    };
    let v: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number or a percentage (e.g. 2% or 0.02)"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("'{text}' must be a non-negative number"));
    }
    if divisor == 1.0 && v >= 1.0 {
        return Err(format!(
            "'{text}' is ambiguous: write a percentage ({text}%) or a fraction below 1"
        ));
    }
    // Divided, not multiplied by 0.01: 95% is exactly the double nearest 0.95.
    Ok(v / divisor)
}

#[cfg(test)]
mod tests {
    use super::parse_fraction;

    #[test]
    fn fractions_and_percentages() {
        assert_eq!(parse_fraction("2%"), Ok(0.02));
        assert_eq!(parse_fraction("0.05"), Ok(0.05));
        assert_eq!(parse_fraction("95%"), Ok(0.95));
        assert!(parse_fraction("2").unwrap_err().contains("ambiguous"));
        assert!(parse_fraction("-1%").is_err());
        assert!(parse_fraction("abc").is_err());
    }
}
