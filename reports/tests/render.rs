//! Renders the committed fixture runs (`reports/fixtures/`, made by the `make_fixtures`
//! example) and checks the files: charts decode at the expected size, report.md carries the
//! fixtures' numbers, incomplete runs are marked, bad files fail naming file and row.

use std::fs;
use std::path::{Path, PathBuf};

use qcnn_reports::{
    authors_table, compare::comparison_markdown, render, render_compare, render_with, ChartKind,
    LayerTheory, ReportError, ReportFiles, ReportOptions,
};
use qcnn_results::compare::{compare_folders, CompareError, CompareOptions};
use qcnn_results::{read_run, read_sweep, stats, Meta, ModeInfo, RunWriter};

const COMPLETE: &str = "20261127T100000Z-cmplt1";
const OLDER: &str = "20261120T090000Z-older1";
const INTERRUPTED: &str = "20261127T120000Z-intrpt";
/// A real `qcnn sweep --layer conv5 --d 4,8 --k 16,64 --repeats 2 --runs 3 --warmup 1
/// --isas avx512` run folder, with its `sweep.csv`.
const SWEEP: &str = "20261127T121759Z-2q78km";
/// Pixel size every chart is drawn at.
const CHART_SIZE: (u32, u32) = (1100, 620);

fn fixture(id: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(id)
}

fn render_ok(ids: &[&str]) -> (tempfile::TempDir, ReportFiles, String) {
    let out = tempfile::tempdir().unwrap();
    let runs: Vec<PathBuf> = ids.iter().map(|id| fixture(id)).collect();
    let files = render(&runs, out.path()).unwrap_or_else(|e| panic!("render failed: {e}"));
    let md = fs::read_to_string(&files.markdown).unwrap();
    (out, files, md)
}

/// The cells of the Markdown table row whose first cell is `first`.
fn row<'a>(md: &'a str, first: &str) -> Vec<&'a str> {
    md.lines()
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split(" | ")
                .map(str::trim)
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.first() == Some(&first))
        .unwrap_or_else(|| panic!("no table row starting with {first:?} in:\n{md}"))
}

/// The text under the first heading that contains `title`, up to the next heading.
fn section<'a>(md: &'a str, title: &str) -> &'a str {
    let start = md
        .lines()
        .position(|l| l.starts_with('#') && l.contains(title))
        .unwrap_or_else(|| panic!("no heading {title:?} in:\n{md}"));
    let lines: Vec<&str> = md.lines().collect();
    let first = lines[..=start].iter().map(|l| l.len() + 1).sum::<usize>();
    let len = lines[start + 1..]
        .iter()
        .take_while(|l| !l.starts_with('#'))
        .map(|l| l.len() + 1)
        .sum::<usize>();
    &md[first..first + len]
}

fn assert_png(path: &Path) {
    let bytes = fs::read(path).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder
        .read_info()
        .unwrap_or_else(|e| panic!("{}: not a PNG: {e}", path.display()));
    let info = reader.info();
    assert_eq!((info.width, info.height), CHART_SIZE, "{}", path.display());
}

/// An SVG root with the chart's size, and tags that open and close in order.
fn assert_svg(path: &Path) {
    let text = fs::read_to_string(path).unwrap();
    let (w, h) = CHART_SIZE;
    let root = text
        .find("<svg")
        .unwrap_or_else(|| panic!("{}: no <svg", path.display()));
    let tag = &text[root..root + text[root..].find('>').unwrap()];
    assert!(tag.contains(&format!("width=\"{w}\"")), "{tag}");
    assert!(tag.contains(&format!("height=\"{h}\"")), "{tag}");
    assert_balanced_tags(&text, path);
}

fn assert_balanced_tags(text: &str, path: &Path) {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("unclosed <") + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        let name = tag
            .trim_start_matches('/')
            .split_whitespace()
            .next()
            .unwrap();
        if tag.starts_with('/') {
            assert_eq!(open.pop(), Some(name), "{}: bad nesting", path.display());
        } else {
            open.push(name);
        }
    }
    assert!(open.is_empty(), "{}: unclosed {open:?}", path.display());
}

fn assert_charts(files: &ReportFiles, expected: &[ChartKind]) {
    let kinds: Vec<ChartKind> = files.charts.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, expected);
    for chart in &files.charts {
        assert_png(&chart.png);
        assert_svg(&chart.svg);
    }
}

const RUN_CHARTS: [ChartKind; 4] = [
    ChartKind::Repeats,
    ChartKind::Layers,
    ChartKind::LayerSpeedup,
    ChartKind::Memory,
];

#[test]
fn complete_run_renders_all_charts_and_its_numbers() {
    let (_out, files, md) = render_ok(&[COMPLETE]);
    assert_charts(&files, &RUN_CHARTS);
    let run = read_run(&fixture(COMPLETE)).unwrap();
    let analysis = run.analysis();
    // The authors' table: header, one row per repeat, means in the Ave. row.
    assert_eq!(
        row(&md, "Time (ms)"),
        [
            "Time (ms)",
            "CNN",
            "Quantized-CNN",
            "qcnn-int8",
            "Speed-up",
            "Speed-up (qcnn-int8)"
        ]
    );
    let dense = &analysis.modes["dense"];
    let qcnn = &analysis.modes["qcnn"];
    let r3 = row(&md, "3");
    assert_eq!(r3[1], format!("{:.3}", dense.ms_per_image[2]));
    assert_eq!(r3[2], format!("{:.3}", qcnn.ms_per_image[2]));
    let mean = |v: &[f64]| stats::mean(v).unwrap();
    let ave = row(&md, "Ave.");
    assert_eq!(ave[1], format!("{:.3}", mean(&dense.ms_per_image)));
    let speedup = mean(&dense.ms_per_image) / mean(&qcnn.ms_per_image);
    assert_eq!(ave[4], format!("{speedup:.2}×"));
    // Spread: the medians, as the spread table formats them.
    let spread = row(section(&md, "Spread over repeats"), "qcnn");
    assert!(
        spread.contains(&format!("{:.3}", qcnn.median_ms).as_str()),
        "{spread:?}"
    );
    // Measured vs theoretical.
    let measured = analysis.speedup["qcnn"];
    assert!(md.contains(&format!("{measured:.2}×")));
    assert!(md.contains("4.156×"));
    assert!(md.contains(&format!("{:.2}", measured / 4.156)));
    // Provenance.
    for fact in [
        "Fixture CPU @ 3.0GHz",
        "SkylakeX",
        "lut_i8_avx512",
        "0123456789abcdef",
    ] {
        assert!(md.contains(fact), "missing {fact}");
    }
    // Memory and per-layer tables.
    assert_eq!(
        row(section(&md, "Memory"), "dense")[..2],
        ["dense", "310.0"]
    );
    let dense_conv3: Vec<f64> = run
        .layers
        .iter()
        .filter(|l| l.mode == "dense" && l.layer == "conv3")
        .map(|l| l.ms_per_image)
        .collect();
    assert_eq!(dense_conv3.len(), 5);
    let conv3 = row(&md, "conv3");
    let median = stats::median(&dense_conv3).unwrap();
    assert_eq!(
        conv3[1],
        format!("{median:.3}"),
        "dense conv3 median: {conv3:?}"
    );
    assert!(!md.contains("incomplete"));
    assert!(
        !md.contains("Warning"),
        "a quiet fixture run got a warning:\n{md}"
    );
}

#[test]
fn page_links_every_chart_and_shows_the_tables() {
    let (out, files, _) = render_ok(&[COMPLETE]);
    let html = fs::read_to_string(&files.html).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        !html.contains("<script"),
        "the page must need no JavaScript"
    );
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(html.contains("<th class=\"num\">Quantized-CNN</th>"));
    for chart in &files.charts {
        for file in [&chart.png, &chart.svg] {
            let rel = file.strip_prefix(out.path()).unwrap();
            let link = rel.to_string_lossy().replace('\\', "/");
            assert!(
                html.contains(&format!("href=\"{link}\"")),
                "no link to {link}"
            );
        }
    }
    assert_balanced_html(&html);
}

/// Every non-void element closes, in order.
fn assert_balanced_html(html: &str) {
    let body = html.trim_start_matches("<!DOCTYPE html>");
    let cleaned = body.replace("<meta charset=\"utf-8\">", "");
    let cleaned = cleaned
        .split("<img ")
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part.to_string()
            } else {
                part[part.find('>').unwrap() + 1..].to_string()
            }
        })
        .collect::<String>();
    assert_balanced_tags(&cleaned, Path::new("index.html"));
}

#[test]
fn interrupted_run_renders_marked_incomplete() {
    let (_out, files, md) = render_ok(&[INTERRUPTED]);
    assert_charts(&files, &RUN_CHARTS);
    assert!(md.contains("(incomplete)"), "{md}");
    assert!(md.contains("incomplete: 2 of 5 planned repeats"), "{md}");
    // Only the two committed repeats appear; the half-written third line is ignored.
    row(&md, "2");
    assert!(!md.lines().any(|l| l.starts_with("| 3 ")), "{md}");
    // Its dense repeats differ by 15%: the spread warning names the mode.
    assert!(md.contains("mode dense: ms/image varies by CV"), "{md}");
    let svg = fs::read_to_string(&files.charts[0].svg).unwrap();
    assert!(svg.contains("(incomplete)"), "chart titles say so too");
}

#[test]
fn several_runs_in_time_order_with_history_chart() {
    // Given newest first; shown oldest first.
    let (_out, files, md) = render_ok(&[INTERRUPTED, COMPLETE, OLDER]);
    let kinds: Vec<ChartKind> = files.charts.iter().map(|c| c.kind).collect();
    assert_eq!(kinds[0], ChartKind::History);
    assert_eq!(kinds.len(), 1 + 3 * RUN_CHARTS.len());
    assert_charts(&files, &kinds);
    let positions: Vec<usize> = [OLDER, COMPLETE, INTERRUPTED]
        .iter()
        .map(|id| md.find(&format!("| {id}")).expect("history row"))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let older = read_run(&fixture(OLDER)).unwrap().analysis().speedup["qcnn"];
    assert_eq!(row(&md, OLDER)[4], format!("{older:.2}×"));
    assert!(md.contains(&format!("| {INTERRUPTED} (incomplete)")));
    // Every run's charts land in their own folder.
    for id in [OLDER, COMPLETE, INTERRUPTED] {
        assert!(files
            .charts
            .iter()
            .any(|c| c.png.ends_with(format!("{id}/layers.png"))));
    }
}

#[test]
fn authors_table_for_a_terminal() {
    let run = read_run(&fixture(OLDER)).unwrap();
    let table = authors_table(&run);
    assert_eq!(
        table.lines().count(),
        2 + 3 + 1,
        "header, rule, 3 repeats, Ave.:\n{table}"
    );
    let header = row(&table, "Time (ms)");
    assert_eq!(header, ["Time (ms)", "CNN", "Quantized-CNN", "Speed-up"]);
    let (dense, qcnn) = (&run.repeats[0], &run.repeats[1]);
    assert_eq!((dense.repeat, qcnn.mode.as_str()), (1, "qcnn"));
    let r1 = row(&table, "1");
    assert_eq!(r1[1], format!("{:.3}", dense.ms_per_image));
    let speedup = dense.ms_per_image / qcnn.ms_per_image;
    assert_eq!(r1[3], format!("{speedup:.2}×"));
}

#[test]
fn theoretical_per_layer_speedups_from_given_op_counts() {
    // conv3 of METHOD.md: 13·13·384·9·256 dense, 13·13·256·128 table, 13·13·384·9·32 look-ups.
    let conv3 = LayerTheory {
        layer: "conv3".into(),
        dense_macs: 149_520_384,
        table_macs: 5_537_792,
        lookups: 18_690_048,
    };
    let options = ReportOptions {
        layer_theory: vec![conv3],
    };
    let out = tempfile::tempdir().unwrap();
    let files = render_with(&[fixture(COMPLETE)], out.path(), &options).unwrap();
    let md = fs::read_to_string(files.markdown).unwrap();
    let header = row(&md, "Layer");
    assert_eq!(header.last(), Some(&"Theoretical"));
    assert_eq!(row(&md, "conv3").last(), Some(&"6.17×"));
    assert_eq!(row(&md, "conv1").last(), Some(&"–"));
}

/// Copies a fixture run into a temporary folder so a test can damage it.
fn damaged_copy(
    id: &str,
    file: &str,
    edit: impl Fn(&str) -> String,
) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(id);
    fs::create_dir(&dir).unwrap();
    for entry in fs::read_dir(fixture(id)).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let text = fs::read_to_string(dir.join(file)).unwrap();
    fs::write(dir.join(file), edit(&text)).unwrap();
    (tmp, dir)
}

fn render_err(run: &Path) -> String {
    let out = tempfile::tempdir().unwrap();
    match render(&[run.to_path_buf()], out.path()) {
        Ok(_) => panic!("rendered a damaged run"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_row_fails_naming_file_and_line() {
    let (_tmp, dir) = damaged_copy(COMPLETE, "layers.csv", |t| {
        let mut lines: Vec<String> = t.lines().map(String::from).collect();
        lines[4] = lines[4].rsplit_once(',').unwrap().0.to_string() + ",fast";
        lines.join("\n") + "\n"
    });
    let err = render_err(&dir);
    assert!(err.contains("layers.csv, line 5"), "{err}");
    assert!(err.contains("ms_per_image"), "{err}");
}

#[test]
fn foreign_csv_fails_naming_file_and_header_line() {
    let (_tmp, dir) = damaged_copy(COMPLETE, "repeats.csv", |_| "when,what\n1,2\n".into());
    let err = render_err(&dir);
    assert!(err.contains("repeats.csv, line 1"), "{err}");
    assert!(err.contains("not a qcnn repeats.csv file"), "{err}");
}

#[test]
fn refuses_to_write_into_a_run_folder_or_render_nothing() {
    let (_tmp, dir) = damaged_copy(OLDER, "meta.json", str::to_string);
    let err = render(std::slice::from_ref(&dir), &dir.join("report")).unwrap_err();
    assert!(matches!(err, ReportError::OutputInRun { .. }), "{err}");
    assert!(!dir.join("report").exists());
    let out = tempfile::tempdir().unwrap();
    assert!(matches!(render(&[], out.path()), Err(ReportError::NoRuns)));
}

#[test]
fn run_killed_before_its_first_repeat_renders_without_charts() {
    let root = tempfile::tempdir().unwrap();
    let modes = vec![
        ModeInfo::new("dense", "dense_sgemm_openblas", "avx2"),
        ModeInfo::new("qcnn", "lut_f32_avx2", "avx2"),
    ];
    let writer = RunWriter::create(root.path(), Meta::new(3, 2, modes)).unwrap();
    let dir = writer.dir().to_path_buf();
    drop(writer);
    let out = tempfile::tempdir().unwrap();
    let files = render(&[dir], out.path()).unwrap();
    assert!(files.charts.is_empty(), "{:?}", files.charts);
    let md = fs::read_to_string(files.markdown).unwrap();
    assert!(md.contains("incomplete: 0 of 3 planned repeats"), "{md}");
    assert!(md.contains("No repeat was completed"), "{md}");
}

#[test]
fn sweep_run_renders_the_tradeoff_table_and_chart() {
    let (_out, files, md) = render_ok(&[SWEEP]);
    assert_charts(
        &files,
        &[
            ChartKind::Repeats,
            ChartKind::Layers,
            ChartKind::LayerSpeedup,
            ChartKind::TradeOff,
        ],
    );
    let rows = read_sweep(&fixture(SWEEP))
        .unwrap()
        .expect("the fixture has sweep.csv");
    assert_eq!(rows.len(), 4);
    let table = section(&md, "Trade-off");
    assert_eq!(
        row(table, "d"),
        [
            "d",
            "K",
            "Theoretical speed-up",
            "Compression",
            "Speed-up avx512",
            "Response error (held-out)"
        ]
    );
    for r in &rows {
        let (d, k) = (r.d.to_string(), r.k.to_string());
        let cells = table
            .lines()
            .map(|l| {
                l.trim()
                    .trim_matches('|')
                    .split(" | ")
                    .map(str::trim)
                    .collect::<Vec<_>>()
            })
            .find(|c| c.len() == 6 && c[0] == d && c[1] == k)
            .unwrap_or_else(|| panic!("no trade-off row for d={d}, K={k}:\n{table}"));
        let speedup = r.dense_ms.unwrap() / r.lut_ms_avx512.unwrap();
        let expected = [
            format!("{:.2}×", r.theoretical_speedup),
            format!("{:.1}×", r.compression),
            format!("{speedup:.2}×"),
            format!("{:.4}", r.holdout_response_rel_error.unwrap()),
        ];
        assert_eq!(cells[2..], expected, "d={d}, K={k}");
    }
    // The chart sits in the trade-off section and labels every configuration d/K.
    let chart = files.charts.last().unwrap();
    assert!(table.contains("tradeoff.png"), "{table}");
    let svg = fs::read_to_string(&chart.svg).unwrap();
    for r in &rows {
        // Once beside the measured point, once beside the theoretical one.
        let label = format!("{}/{}", r.d, r.k);
        let n = svg.lines().filter(|l| l.trim() == label).count();
        assert_eq!(n, 2, "label {label} in the SVG");
    }
    assert!(svg.contains("avx512 look-ups (measured)"));
}

#[test]
fn runs_without_a_sweep_have_no_tradeoff() {
    let (_out, files, md) = render_ok(&[COMPLETE]);
    assert!(files.charts.iter().all(|c| c.kind != ChartKind::TradeOff));
    assert!(!md.contains("Trade-off"));
}

#[test]
fn malformed_sweep_csv_fails_naming_file_and_line() {
    let (_tmp, dir) = damaged_copy(SWEEP, "sweep.csv", |t| {
        let mut lines: Vec<String> = t.lines().map(String::from).collect();
        lines[2] = lines[2].replacen(",pq,", ",pq,fast,", 1);
        lines[3] = lines[3].replacen(",8,16,", ",8,sixteen,", 1);
        lines.join("\n") + "\n"
    });
    let err = render_err(&dir);
    assert!(err.contains("sweep.csv, line 3"), "{err}");
    assert!(err.contains("17 fields, expected 16"), "{err}");
    let (_tmp, dir) = damaged_copy(SWEEP, "sweep.csv", |t| {
        t.replacen(",8,16,", ",8,sixteen,", 1)
    });
    let err = render_err(&dir);
    assert!(err.contains("sweep.csv, line 4"), "{err}");
    assert!(err.contains("column `k`"), "{err}");
}

fn render_compare_ok(
    base: &Path,
    new: &Path,
    allow_different: bool,
) -> (tempfile::TempDir, ReportFiles, String) {
    let out = tempfile::tempdir().unwrap();
    let files = render_compare(
        base,
        new,
        out.path(),
        &CompareOptions::default(),
        allow_different,
        &ReportOptions::default(),
    )
    .unwrap_or_else(|e| panic!("render_compare failed: {e}"));
    let md = fs::read_to_string(&files.markdown).unwrap();
    (out, files, md)
}

#[test]
fn compare_report_puts_the_comparison_first_with_a_change_chart_per_mode() {
    let (_out, files, md) = render_compare_ok(&fixture(OLDER), &fixture(COMPLETE), false);
    let mut expected = vec![ChartKind::Change, ChartKind::Change, ChartKind::History];
    expected.extend(RUN_CHARTS);
    expected.extend(RUN_CHARTS);
    assert_charts(&files, &expected);
    let change: Vec<String> = files.charts[..2]
        .iter()
        .map(|c| {
            c.png
                .strip_prefix(files.markdown.parent().unwrap())
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(
        change,
        ["compare/dense/change.png", "compare/qcnn/change.png"]
    );
    let comparison = md
        .find("## Comparison: no regression")
        .expect("comparison heading");
    assert!(comparison < md.find("## Runs over time").unwrap(), "{md}");
    let dense = row(&md, "dense (whole network)");
    assert_eq!(dense[1], "28.658 ms", "{dense:?}");
    assert_eq!(dense[4], "within noise", "{dense:?}");
    assert_eq!(row(&md, "qcnn conv1 (lookup)")[4], "within noise");
    assert!(
        md.contains("mode qcnn-int8: measured in NEW only, not compared"),
        "{md}"
    );
    assert!(
        md.contains("**mode qcnn:** kernel lut_f32_scalar, ISA avx512 → kernel lut_f32_avx512"),
        "{md}"
    );
    let html = fs::read_to_string(&files.html).unwrap();
    assert!(
        html.contains("compare/qcnn/change.png"),
        "the page shows the change chart"
    );
    assert_balanced_html(&html);
}

#[test]
fn compare_report_of_an_interrupted_run_says_it_used_the_finished_repeats() {
    let (_out, _files, md) = render_compare_ok(&fixture(COMPLETE), &fixture(INTERRUPTED), false);
    assert!(
        md.contains("> **Warning:** NEW run 20261127T120000Z-intrpt is incomplete (unfinished: interrupted or still running): compared on its 2 finished of 5 planned repeats"),
        "{md}"
    );
    assert!(md.contains("NEW has 2 repeat(s) in all"), "{md}");
}

#[test]
fn pull_request_markdown_shows_the_verdict_and_folds_the_layers() {
    let c = compare_folders(
        &fixture(OLDER),
        &fixture(COMPLETE),
        &CompareOptions::default(),
        false,
    )
    .unwrap();
    let md = comparison_markdown(&c);
    assert!(
        md.starts_with("## qcnn compare: no regression, no improvement\n"),
        "{md}"
    );
    assert_eq!(row(&md, "qcnn speed-up over dense")[4], "within noise");
    let details = md
        .find("<details><summary>All 62 layer rows</summary>")
        .expect("folded layers");
    assert!(md[details..].contains("| qcnn fc8 (lookup)"), "{md}");
    assert!(md.trim_end().ends_with("</details>"), "{md}");
}

#[test]
fn compare_gives_the_errors_report_gives_for_a_damaged_run() {
    let (_tmp, dir) = damaged_copy(COMPLETE, "images.csv", |t| t.replacen("28.43", "soon", 1));
    let expected = render_err(&dir);
    assert!(expected.contains("images.csv, line 2"), "{expected}");
    let out = tempfile::tempdir().unwrap();
    let options = CompareOptions::default();
    let err = render_compare(
        &fixture(OLDER),
        &dir,
        out.path(),
        &options,
        false,
        &ReportOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), expected);
    let err = compare_folders(&dir, &fixture(OLDER), &options, false).unwrap_err();
    assert_eq!(err.to_string(), expected);
    let empty = tempfile::tempdir().unwrap();
    let err = compare_folders(empty.path(), &fixture(OLDER), &options, false).unwrap_err();
    assert!(
        err.to_string()
            .contains("not a run folder, nor a folder of runs"),
        "{err}"
    );
}

#[test]
fn incomparable_runs_are_refused_unless_allowed_and_then_listed_first() {
    let (_tmp, dir) = damaged_copy(COMPLETE, "meta.json", |t| {
        t.replace("\"cpu_model\": \"", "\"cpu_model\": \"Other ")
    });
    let options = CompareOptions::default();
    let err = compare_folders(&fixture(OLDER), &dir, &options, false).unwrap_err();
    let CompareError::NotComparable(differences) = &err else {
        panic!("{err}")
    };
    assert_eq!(differences.len(), 1, "{differences:?}");
    assert_eq!(differences[0].what, "CPU model");
    assert!(err.to_string().contains("pass --allow-different"), "{err}");
    let (_out, _files, md) = render_compare_ok(&fixture(OLDER), &dir, true);
    let warning = md
        .find(
            "> **Warning:** not comparable, compared anyway (--allow-different): CPU model differs",
        )
        .expect("warning");
    assert!(warning < md.find("### Whole network").unwrap(), "{md}");
}
