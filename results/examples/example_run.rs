//! Writes a small run folder with made-up times, to show the API and the files it produces
//! (e.g. for report fixtures). Usage: `cargo run -p qcnn-results --example example_run -- ROOT`.
//! The rows are invented, and `meta.json` says so in `input` and `notes`.

use qcnn_results::{ImageRow, LayerRow};
use qcnn_results::{Meta, ModeInfo, Phase, RepeatRecord, RepeatRow, RunWriter};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::args().nth(1).ok_or("usage: example_run ROOT")?;
    let modes = [("dense", "dense_sgemm", 160.0), ("qcnn", "lut_f32", 50.0)];
    let (repeats, images) = (3, 4);
    let mut meta = Meta::new(
        repeats,
        images,
        modes
            .iter()
            .map(|(m, k, _)| ModeInfo::new(m, k, "avx2"))
            .collect(),
    );
    meta.input = "example: invented times, not a measurement".into();
    meta.theoretical_speedup = Some(4.156);
    meta.notes.insert("example".into(), "true".into());
    let mut writer = RunWriter::create(std::path::Path::new(&root), meta)?;
    for repeat in 1..=repeats {
        writer.append_repeat(&invented_repeat(repeat, images, &modes))?;
    }
    let summary = writer.finish()?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

fn invented_repeat(repeat: u32, images: u32, modes: &[(&str, &str, f64)]) -> RepeatRecord {
    let mut rec = RepeatRecord::new(repeat);
    for &(mode, kernel, ms) in modes {
        let times: Vec<f64> = (0..images)
            .map(|i| ms * (1.0 + 0.01 * f64::from((repeat * 7 + i * 3) % 5)))
            .collect();
        let total: f64 = times.iter().sum();
        rec.rows.push(RepeatRow::new(
            repeat, mode, kernel, images, total, total, total,
        ));
        for (image, ms) in (0..).zip(times) {
            let mode = mode.to_string();
            rec.images.push(ImageRow {
                repeat,
                mode,
                image,
                ms,
            });
        }
        let layer = |phase, ms_per_image| LayerRow {
            repeat,
            mode: mode.to_string(),
            layer: "conv2".into(),
            phase,
            ms_per_image,
        };
        if mode == "dense" {
            rec.layers.push(layer(Phase::All, ms * 0.3));
        } else {
            rec.layers.push(layer(Phase::Table, ms * 0.05));
            rec.layers.push(layer(Phase::Lookup, ms * 0.2));
        }
    }
    rec
}
