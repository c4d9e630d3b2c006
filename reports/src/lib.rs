//! Reports rendered from stored results only: a pure function of run folders (STYLE.md 12).
//! Nothing here measures; every figure comes from the rows `qcnn_results::read_run` returns.
//!
//! [`render`] writes, into an output folder:
//! - `report.md`: per run, provenance, the authors' table (`| Time (ms) | CNN |
//!   Quantized-CNN | Speed-up |`), measured vs theoretical speed-up, spread over repeats,
//!   memory, per-layer times; for a run of `qcnn sweep` (with `sweep.csv`), the trade-off
//!   between response error and measured speed-up; with several runs, a run-by-run table
//!   first;
//! - `index.html`: the same tables and the charts on one static page;
//! - `<run_id>/{repeats,layers,layer_speedup,memory,tradeoff}.{png,svg}` per run (those
//!   with data), and
//!   `history.{png,svg}` when several runs are given.
//!
//! [`render_compare`] (`qcnn report --compare BASE NEW`) writes the same files for every run
//! of both sides, with the comparison ([`qcnn_results::compare`]) first:
//! `compare/<mode>/change.{png,svg}` per mode, the change of each layer with its interval.
//!
//! Glossary: CNN = mode `dense` (the baseline every speed-up divides), Quantized-CNN = mode
//! `qcnn`; other modes (e.g. `qcnn-int8`) get their own columns. Times are ms per image;
//! "median" and "mean" are over repeats.

mod charts;
pub mod compare;
pub mod doc;
pub mod error;
mod html;
pub mod tables;
pub mod view;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use qcnn_results::compare::{compare_folders, CompareOptions, Comparison};
use qcnn_results::{read_run, read_runs, read_sweep, Run, SweepRow};

use crate::charts::Chart;
use crate::doc::{Block, Figure};
pub use crate::error::{ReportError, Result};
pub use crate::view::{LayerTheory, RunView};

/// `report.md` file name inside the output folder.
pub const MARKDOWN_FILE: &str = "report.md";
/// `index.html` file name inside the output folder.
pub const HTML_FILE: &str = "index.html";

/// What the run files cannot say and the caller may add.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReportOptions {
    /// Op counts per conv/fc layer, for the per-layer theoretical speed-up (METHOD.md's
    /// table). The run files do not record the quantization, so without these the per-layer
    /// charts and tables show measured speed-ups only. The whole-network theoretical figure
    /// comes from `meta.json`'s `theoretical_speedup`, else from the sum of these.
    pub layer_theory: Vec<LayerTheory>,
}

/// Which chart a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChartKind {
    /// ms/image per repeat and mode, with each mode's mean.
    Repeats,
    /// Per-layer time per mode, Q-CNN split into table build and look-ups.
    Layers,
    /// Per-layer speed-up, measured vs theoretical.
    LayerSpeedup,
    /// Storage and peak memory per mode.
    Memory,
    /// Speed-up per run in time order (several runs only).
    History,
    /// Response error vs measured speed-up per (d, K) configuration (sweeps only).
    TradeOff,
    /// Change of each layer's time from BASE to NEW, with intervals (comparisons only).
    Change,
}

impl ChartKind {
    /// The file stem, also the chart's id in the page.
    pub fn stem(self) -> &'static str {
        match self {
            ChartKind::Repeats => "repeats",
            ChartKind::Layers => "layers",
            ChartKind::LayerSpeedup => "layer_speedup",
            ChartKind::Memory => "memory",
            ChartKind::History => "history",
            ChartKind::TradeOff => "tradeoff",
            ChartKind::Change => "change",
        }
    }
}

/// One chart written twice.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartFile {
    pub kind: ChartKind,
    /// The run it belongs to; None for the run-by-run chart and the comparison's charts.
    pub run_id: Option<String>,
    pub title: String,
    pub png: PathBuf,
    pub svg: PathBuf,
}

/// Every file [`render`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportFiles {
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub charts: Vec<ChartFile>,
}

/// Renders the run folders `runs` into `out` (created if needed) with default options.
pub fn render(runs: &[PathBuf], out: &Path) -> Result<ReportFiles> {
    render_with(runs, out, &ReportOptions::default())
}

/// Renders the run folders `runs` into `out`. Runs are shown oldest first whatever their
/// order in `runs`. Fails, naming the file and row, on the first unreadable run; refuses an
/// `out` inside a run folder (run folders are append-only).
pub fn render_with(runs: &[PathBuf], out: &Path, options: &ReportOptions) -> Result<ReportFiles> {
    if runs.is_empty() {
        return Err(ReportError::NoRuns);
    }
    let loaded = runs
        .iter()
        .map(|dir| read_run(dir))
        .collect::<Result<Vec<Run>, _>>()?;
    write_report(loaded, out, options, None)
}

/// Renders a comparison of BASE and NEW (each a run folder or a folder of runs) into `out`:
/// the comparison first (tables and a change chart per mode), then every run of both sides
/// as [`render_with`] shows it. Incomparable sides are refused unless `allow_different`.
pub fn render_compare(
    base: &Path,
    new: &Path,
    out: &Path,
    compare: &CompareOptions,
    allow_different: bool,
    options: &ReportOptions,
) -> Result<ReportFiles> {
    let comparison = compare_folders(base, new, compare, allow_different)?;
    let mut loaded = read_runs(base)?;
    loaded.extend(read_runs(new)?);
    // A run given on both sides is shown once.
    loaded.sort_by(|a, b| a.dir.cmp(&b.dir));
    loaded.dedup_by(|a, b| a.dir == b.dir);
    write_report(loaded, out, options, Some(&comparison))
}

/// Writes report.md, index.html and the charts of `runs` (and of `comparison`, first).
fn write_report(
    runs: Vec<Run>,
    out: &Path,
    options: &ReportOptions,
    comparison: Option<&Comparison>,
) -> Result<ReportFiles> {
    let mut loaded = runs
        .into_iter()
        .map(|run| {
            let sweep = read_sweep(&run.dir)?;
            Ok((run, sweep))
        })
        .collect::<Result<Vec<(Run, Option<Vec<SweepRow>>)>>>()?;
    loaded.sort_by(|(a, _), (b, _)| {
        (&a.meta.started_utc, &a.meta.run_id).cmp(&(&b.meta.started_utc, &b.meta.run_id))
    });
    let (loaded, sweeps): (Vec<Run>, Vec<_>) = loaded.into_iter().unzip();
    refuse_output_in_runs(out, &loaded)?;
    fs::create_dir_all(out).map_err(|e| ReportError::io(out, "create the report folder", e))?;
    let views: Vec<RunView> = loaded
        .iter()
        .zip(sweeps)
        .map(|(r, sweep)| RunView::new(r, &options.layer_theory).with_sweep(sweep))
        .collect();

    let mut charts = Vec::new();
    let mut blocks = intro(&views, options);
    let mut folders = BTreeSet::new();
    if let Some(c) = comparison {
        let files = comparison_charts(out, &mut folders, c)?;
        let figures: Vec<Figure> = files.iter().map(|f| figure(out, f)).collect();
        blocks.extend(compare::comparison_blocks(c, 2, &figures));
        charts.extend(files);
    }
    if let Some(chart) = charts::history_chart(&views) {
        let file = write(out, Path::new(""), None, ChartKind::History, &chart)?;
        blocks.push(Block::Heading(2, "Runs over time".into()));
        blocks.push(Block::Table(tables::history(&views)));
        blocks.push(Block::Figure(figure(out, &file)));
        charts.push(file);
    }
    for view in &views {
        let folder = unique_folder(&mut folders, view.run_id());
        fs::create_dir_all(out.join(&folder))
            .map_err(|e| ReportError::io(&out.join(&folder), "create", e))?;
        let files = run_charts(out, Path::new(&folder), view)?;
        let figures: Vec<(ChartKind, Figure)> =
            files.iter().map(|f| (f.kind, figure(out, f))).collect();
        blocks.extend(run_blocks(view, &figures));
        charts.extend(files);
    }

    let markdown = out.join(MARKDOWN_FILE);
    let md = doc::markdown(&blocks);
    fs::write(&markdown, md).map_err(|e| ReportError::io(&markdown, "write", e))?;
    let html = out.join(HTML_FILE);
    let page = html::page("qcnn-bench report", &blocks);
    fs::write(&html, page).map_err(|e| ReportError::io(&html, "write", e))?;
    Ok(ReportFiles {
        markdown,
        html,
        charts,
    })
}

/// The change chart of each mode, under `out/compare/<mode>/`.
fn comparison_charts(
    out: &Path,
    folders: &mut BTreeSet<String>,
    c: &Comparison,
) -> Result<Vec<ChartFile>> {
    let root = unique_folder(folders, "compare");
    let mut modes = BTreeSet::new();
    let mut files = Vec::new();
    for (mode, chart) in charts::change_charts(c) {
        let folder = Path::new(&root).join(unique_folder(&mut modes, &mode));
        fs::create_dir_all(out.join(&folder))
            .map_err(|e| ReportError::io(&out.join(&folder), "create", e))?;
        files.push(write(out, &folder, None, ChartKind::Change, &chart)?);
    }
    Ok(files)
}

/// The authors' table of one run as Markdown (also fine in a terminal).
pub fn authors_table(run: &Run) -> String {
    tables::authors(&RunView::new(run, &[])).markdown()
}

/// Everything `report.md` says about one run, without the charts: for terminals.
pub fn run_markdown(run: &Run, options: &ReportOptions) -> String {
    doc::markdown(&run_blocks(&RunView::new(run, &options.layer_theory), &[]))
}

fn intro(views: &[RunView], options: &ReportOptions) -> Vec<Block> {
    let theory = if !options.layer_theory.is_empty() {
        "computed from the op counts the caller gave (dense multiply-adds over table \
         multiply-adds plus look-ups, METHOD.md)"
    } else if views.iter().all(|v| !v.run.meta.layer_ops.is_empty()) {
        "computed from the op counts each run recorded (dense multiply-adds over table \
         multiply-adds plus look-ups, METHOD.md)"
    } else {
        "not recorded by every run, so some per-layer speed-ups are measured only"
    };
    let ids: Vec<&str> = views.iter().map(|v| v.run_id()).collect();
    vec![
        Block::Heading(1, "qcnn-bench report".into()),
        Block::Para(format!(
            "Rendered from the stored result files of {} run(s), oldest first: {}. Nothing \
             was re-measured. Times are ms per image (single-image batches, one thread); \
             CNN = mode dense, Quantized-CNN = mode qcnn; speed-ups divide dense time by \
             the other mode's.",
            views.len(),
            ids.join(", ")
        )),
        Block::Para(format!("Per-layer theoretical speed-ups: {theory}.")),
    ]
}

/// One run's section: provenance, tables, warnings, the trade-off of a sweep, then its
/// other charts.
fn run_blocks(view: &RunView, figures: &[(ChartKind, Figure)]) -> Vec<Block> {
    let mut b = vec![
        Block::Heading(2, tables::run_title(view)),
        tables::provenance(view),
    ];
    b.extend(tables::run_warnings(view));
    if view.repeats.is_empty() {
        b.push(Block::Para(
            "No repeat was completed: nothing to show.".into(),
        ));
        return b;
    }
    b.push(Block::Heading(
        3,
        "Time per image (the authors' table)".into(),
    ));
    b.push(Block::Table(tables::authors(view)));
    b.push(Block::Para(
        "One row per repeat (ms/image over its single-image batches); Ave. is the mean over \
         repeats, as in the authors' README."
            .into(),
    ));
    b.push(Block::Heading(3, "Measured vs theoretical speed-up".into()));
    b.push(Block::Table(tables::speedups(view)));
    b.push(Block::Heading(3, "Spread over repeats".into()));
    b.push(Block::Table(tables::spread(view)));
    b.extend(tables::spread_warnings(view));
    b.push(Block::Heading(3, "Memory and storage".into()));
    b.push(Block::Table(tables::memory(view)));
    b.extend(tables::memory_notes(view));
    if !view.layers.is_empty() {
        b.push(Block::Heading(
            3,
            "Per-layer time (ms/image, median over repeats)".into(),
        ));
        b.push(Block::Table(tables::layers(view)));
    }
    if let Some(rows) = view.sweep.as_deref().filter(|r| !r.is_empty()) {
        b.push(Block::Heading(3, "Trade-off".into()));
        b.push(tables::trade_off_note(rows));
        b.push(Block::Table(tables::trade_off(rows)));
        b.extend(
            figures
                .iter()
                .filter(|(kind, _)| *kind == ChartKind::TradeOff)
                .map(|(_, f)| Block::Figure(f.clone())),
        );
    }
    let others: Vec<&Figure> = figures
        .iter()
        .filter(|(kind, _)| *kind != ChartKind::TradeOff)
        .map(|(_, f)| f)
        .collect();
    if !others.is_empty() {
        b.push(Block::Heading(3, "Charts".into()));
        b.extend(others.into_iter().cloned().map(Block::Figure));
    }
    b
}

/// The charts of one run that have data, written under `out/folder`.
fn run_charts(out: &Path, folder: &Path, view: &RunView) -> Result<Vec<ChartFile>> {
    let id = Some(view.run_id().to_string());
    let mut files = Vec::new();
    if let Some(c) = charts::repeat_chart(view) {
        files.push(write(out, folder, id.clone(), ChartKind::Repeats, &c)?);
    }
    if let Some(c) = charts::layer_chart(view) {
        files.push(write(out, folder, id.clone(), ChartKind::Layers, &c)?);
    }
    if let Some(c) = charts::layer_speedup_chart(view) {
        files.push(write(out, folder, id.clone(), ChartKind::LayerSpeedup, &c)?);
    }
    if let Some(c) = charts::memory_chart(view) {
        files.push(write(out, folder, id.clone(), ChartKind::Memory, &c)?);
    }
    if let Some(c) = charts::tradeoff_chart(view) {
        files.push(write(out, folder, id, ChartKind::TradeOff, &c)?);
    }
    Ok(files)
}

fn write(
    out: &Path,
    folder: &Path,
    run_id: Option<String>,
    kind: ChartKind,
    chart: &impl Chart,
) -> Result<ChartFile> {
    let base = out.join(folder);
    let png = base.join(format!("{}.png", kind.stem()));
    let svg = base.join(format!("{}.svg", kind.stem()));
    charts::write_chart(chart, &png, &svg)?;
    Ok(ChartFile {
        kind,
        run_id,
        title: chart.title().to_string(),
        png,
        svg,
    })
}

/// A chart as the documents link it: paths relative to `out`, with forward slashes.
fn figure(out: &Path, file: &ChartFile) -> Figure {
    let rel = |p: &Path| {
        let r = p.strip_prefix(out).unwrap_or(p);
        r.components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/")
    };
    Figure {
        title: file.title.clone(),
        png: rel(&file.png),
        svg: rel(&file.svg),
    }
}

/// A folder name for a run's charts: its id with anything but `[A-Za-z0-9._-]` replaced
/// (ids come from files, which are not trusted), made unique if the same id recurs.
fn unique_folder(taken: &mut BTreeSet<String>, run_id: &str) -> String {
    let mut base: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if base.is_empty() || base.chars().all(|c| c == '.') {
        base = "run".into();
    }
    let mut name = base.clone();
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// Run folders are append-only: a report must never be written into one.
fn refuse_output_in_runs(out: &Path, runs: &[Run]) -> Result<()> {
    let out_abs = absolute(out);
    for run in runs {
        let dir = absolute(&run.dir);
        if out_abs.starts_with(&dir) {
            return Err(ReportError::OutputInRun {
                out: out.to_path_buf(),
                run: run.dir.clone(),
            });
        }
    }
    Ok(())
}

/// `path` made absolute and resolved as far as it exists (the output may not exist yet).
fn absolute(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return abs,
        }
    }
    let mut resolved = existing
        .canonicalize()
        .unwrap_or_else(|_| existing.to_path_buf());
    resolved.extend(rest.iter().rev());
    resolved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_are_safe_and_unique() {
        let mut taken = BTreeSet::new();
        assert_eq!(
            unique_folder(&mut taken, "20261127T1-abc"),
            "20261127T1-abc"
        );
        assert_eq!(
            unique_folder(&mut taken, "20261127T1-abc"),
            "20261127T1-abc-2"
        );
        assert_eq!(unique_folder(&mut taken, "../x/y"), ".._x_y");
        assert_eq!(unique_folder(&mut taken, ".."), "run");
    }
}
