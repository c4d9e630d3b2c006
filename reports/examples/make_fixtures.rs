//! Regenerates the committed test fixtures under `reports/fixtures/` with the results crate's
//! writer: three small runs with invented times (their `input` and notes say so).
//! Usage: `cargo run -p qcnn-reports --example make_fixtures -- reports/fixtures`.
//!
//! - `20261120T090000Z-older1`: complete, dense + qcnn, 3 repeats (the older run of the
//!   run-by-run chart);
//! - `20261127T100000Z-cmplt1`: complete, dense + qcnn + qcnn-int8, 5 repeats;
//! - `20261127T120000Z-intrpt`: interrupted after 2 of 5 repeats, with a half-written line,
//!   and a noisy dense mode (CV above 5%).
//!
//! The writer names folders by the current time, so each folder is renamed and its
//! `meta.json` restamped afterwards: fixture names and dates stay fixed across regenerations.

use std::fs;
use std::io::Write;
use std::path::Path;

use qcnn_results::{
    BlasInfo, FileDigest, GitInfo, ImageRow, LayerRow, Meta, ModeInfo, ModelInfo, Phase,
    RepeatRecord, RepeatRow, RunWriter, SystemInfo,
};

/// AlexNet's 23 layers and an invented dense time per image (ms) for each.
const DENSE_MS: [(&str, f64); 23] = [
    ("conv1", 3.7),
    ("relu1", 0.12),
    ("norm1", 0.45),
    ("pool1", 0.2),
    ("conv2", 3.3),
    ("relu2", 0.08),
    ("norm2", 0.28),
    ("pool2", 0.12),
    ("conv3", 2.4),
    ("relu3", 0.03),
    ("conv4", 1.8),
    ("relu4", 0.03),
    ("conv5", 1.2),
    ("relu5", 0.02),
    ("pool5", 0.03),
    ("fc6", 9.4),
    ("relu6", 0.004),
    ("drop6", 0.001),
    ("fc7", 4.2),
    ("relu7", 0.004),
    ("drop7", 0.001),
    ("fc8", 1.0),
    ("prob", 0.01),
];

/// Invented Q-CNN (table, look-up) ms per image of the conv and fc layers.
const QCNN_MS: [(&str, f64, f64); 8] = [
    ("conv1", 1.2, 2.0),
    ("conv2", 0.5, 1.4),
    ("conv3", 0.35, 1.35),
    ("conv4", 0.5, 1.0),
    ("conv5", 0.5, 0.7),
    ("fc6", 0.05, 0.9),
    ("fc7", 0.03, 0.45),
    ("fc8", 0.02, 0.3),
];

/// How a mode's layers are recorded: `all` rows only, phases plus `all`, or phases only.
#[derive(Clone, Copy, PartialEq)]
enum Rows {
    Dense,
    PhasesAndAll,
    PhasesOnly { lookup_scale: f64 },
}

struct Plan {
    id: &'static str,
    started: &'static str,
    finished: Option<&'static str>,
    planned: u32,
    written: u32,
    modes: &'static [(&'static str, &'static str, Rows)],
    /// Relative slow-down of the dense mode per repeat (index repeat − 1).
    dense_noise: &'static [f64],
}

const IMAGES: u32 = 4;
/// The int8 mode: look-ups 2.5× faster than f32, no `all` rows.
const INT8: Rows = Rows::PhasesOnly { lookup_scale: 0.4 };

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::args()
        .nth(1)
        .ok_or("usage: make_fixtures FIXTURES_DIR")?;
    let root = Path::new(&root);
    let plans = [
        Plan {
            id: "20261120T090000Z-older1",
            started: "2026-11-20T09:00:00Z",
            finished: Some("2026-11-20T09:03:10Z"),
            planned: 3,
            written: 3,
            modes: &[
                ("dense", "dense_sgemm_openblas", Rows::Dense),
                ("qcnn", "lut_f32_scalar", Rows::PhasesAndAll),
            ],
            dense_noise: &[0.0, 0.01, 0.005],
        },
        Plan {
            id: "20261127T100000Z-cmplt1",
            started: "2026-11-27T10:00:00Z",
            finished: Some("2026-11-27T10:06:40Z"),
            planned: 5,
            written: 5,
            modes: &[
                ("dense", "dense_sgemm_openblas", Rows::Dense),
                ("qcnn", "lut_f32_avx512", Rows::PhasesAndAll),
                ("qcnn-int8", "lut_i8_avx512", INT8),
            ],
            dense_noise: &[0.0, 0.004, 0.012, 0.002, 0.008],
        },
        Plan {
            id: "20261127T120000Z-intrpt",
            started: "2026-11-27T12:00:00Z",
            finished: None,
            planned: 5,
            written: 2,
            modes: &[
                ("dense", "dense_sgemm_openblas", Rows::Dense),
                ("qcnn", "lut_f32_avx512", Rows::PhasesAndAll),
            ],
            dense_noise: &[0.0, 0.15],
        },
    ];
    fs::create_dir_all(root)?;
    for plan in &plans {
        let dir = write_run(root, plan)?;
        println!("{}", dir.display());
    }
    Ok(())
}

fn write_run(root: &Path, plan: &Plan) -> Result<std::path::PathBuf, Box<dyn std::error::Error>> {
    let modes = plan
        .modes
        .iter()
        .map(|(m, k, _)| ModeInfo::new(m, k, "avx512"))
        .collect();
    let mut writer = RunWriter::create(root, fixture_meta(plan.planned, modes))?;
    for repeat in 1..=plan.written {
        writer.append_repeat(&record(plan, repeat))?;
    }
    let tmp = writer.dir().to_path_buf();
    if plan.finished.is_some() {
        writer.finish()?;
    } else {
        drop(writer);
        // A repeat row cut short by the kill: the reader must ignore it.
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(tmp.join("repeats.csv"))?;
        f.write_all(b"3,dense,dense_sgemm_openblas,4,11")?;
    }
    let dir = root.join(plan.id);
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::rename(&tmp, &dir)?;
    restamp(&dir, plan)?;
    Ok(dir)
}

/// Fixed provenance, so regenerated fixtures differ only where the plan does.
fn fixture_meta(planned: u32, modes: Vec<ModeInfo>) -> Meta {
    let mut meta = Meta::new(planned, IMAGES, modes);
    meta.command_line = vec!["qcnn".into(), "reproduce".into(), "(fixture)".into()];
    meta.input = "fixture: invented times, not a measurement".into();
    meta.theoretical_speedup = Some(4.156);
    meta.pinned_core = Some(1);
    meta.model = ModelInfo {
        source: "fixture model (no files read)".into(),
        files: vec![FileDigest {
            path: "bvlc_alexnet_aCaF.ctrdLst.09.bin".into(),
            bytes: 1_572_880,
            sha256: "0".repeat(64),
        }],
    };
    meta.blas = Some(BlasInfo {
        library: "OpenBLAS".into(),
        version: "0.3.29".into(),
        core_type: "SkylakeX".into(),
    });
    meta.build.rustc = "rustc 1.95.0".into();
    meta.build.profile = "release".into();
    meta.build.opt_level = "3".into();
    meta.build.debug_assertions = false;
    meta.build.git = Some(GitInfo {
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
        dirty: false,
    });
    meta.system = SystemInfo {
        cpu_model: "Fixture CPU @ 3.0GHz".into(),
        cpu_flags: vec!["avx2".into(), "avx512f".into()],
        logical_cores: 2,
        physical_cores: Some(1),
        memory_bytes: 24_000_000_000,
        os: "Linux (fixture)".into(),
        kernel: "6.1.0".into(),
        ..Default::default()
    };
    meta.load_at_start = None;
    meta.notes.insert(
        "fixture".into(),
        "invented numbers for reports tests".into(),
    );
    meta
}

/// Rewrites `run_id` and the dates in `meta.json` to the plan's fixed values.
fn restamp(dir: &Path, plan: &Plan) -> Result<(), Box<dyn std::error::Error>> {
    let path = dir.join("meta.json");
    let mut meta: Meta = serde_json::from_str(&fs::read_to_string(&path)?)?;
    meta.run_id = plan.id.into();
    meta.started_utc = plan.started.into();
    meta.finished_utc = plan.finished.map(String::from);
    fs::write(&path, serde_json::to_string_pretty(&meta)? + "\n")?;
    let summary = dir.join("summary.json");
    let text = fs::read_to_string(&summary)?;
    let mut value: serde_json::Value = serde_json::from_str(&text)?;
    value["results_dir"] = serde_json::Value::String(format!("fixtures/{}", plan.id));
    fs::write(&summary, serde_json::to_string_pretty(&value)? + "\n")?;
    Ok(())
}

fn record(plan: &Plan, repeat: u32) -> RepeatRecord {
    let mut rec = RepeatRecord::new(repeat);
    let wobble = 1.0 + 0.003 * f64::from(repeat % 3);
    for (i, &(mode, kernel, rows)) in plan.modes.iter().enumerate() {
        let scale = if rows == Rows::Dense {
            1.0 + plan.dense_noise[repeat as usize - 1]
        } else {
            wobble
        };
        let layers = layer_rows(repeat, mode, rows, scale);
        let per_image: f64 = layers
            .iter()
            .filter(|l| l.phase == Phase::All || rows != Rows::PhasesAndAll)
            .map(|l| l.ms_per_image)
            .sum::<f64>()
            + 0.05;
        let times: Vec<f64> = (0..IMAGES)
            .map(|k| per_image * (1.0 + 0.002 * f64::from(k)))
            .collect();
        let total: f64 = times.iter().sum();
        let rss = [310_000_000, 95_000_000, 60_000_000][i % 3];
        let row = RepeatRow::new(repeat, mode, kernel, IMAGES, total, total, total * 1.01)
            .with_accuracy(3, 4)
            .with_peak_rss(rss);
        rec.rows.push(row);
        for (image, ms) in (0..).zip(times) {
            rec.images.push(ImageRow {
                repeat,
                mode: mode.into(),
                image,
                ms,
            });
        }
        rec.layers.extend(layers);
    }
    rec
}

fn layer_rows(repeat: u32, mode: &str, rows: Rows, scale: f64) -> Vec<LayerRow> {
    let row = |layer: &str, phase, ms: f64| LayerRow {
        repeat,
        mode: mode.into(),
        layer: layer.into(),
        phase,
        ms_per_image: ms * scale,
    };
    let mut out = Vec::new();
    for (layer, dense) in DENSE_MS {
        let quantized = QCNN_MS.iter().find(|q| q.0 == layer);
        match (rows, quantized) {
            (Rows::Dense, _) | (_, None) => out.push(row(layer, Phase::All, dense)),
            (Rows::PhasesAndAll, Some(&(_, table, lookup))) => {
                out.push(row(layer, Phase::Table, table));
                out.push(row(layer, Phase::Lookup, lookup));
                out.push(row(layer, Phase::All, table + lookup + 0.02));
            }
            (Rows::PhasesOnly { lookup_scale }, Some(&(_, table, lookup))) => {
                out.push(row(layer, Phase::Table, table));
                out.push(row(layer, Phase::Lookup, lookup * lookup_scale));
            }
        }
    }
    out
}
