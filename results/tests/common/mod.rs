//! Builders shared by the integration tests: a small plan and synthetic repeats.

#![allow(dead_code)]

use qcnn_results::{ImageRow, LayerRow, Meta, ModeInfo, Phase, RepeatRecord, RepeatRow};

pub const MODES: [&str; 2] = ["dense", "qcnn"];
pub const IMAGES: u32 = 3;

pub fn meta(planned_repeats: u32) -> Meta {
    let mut meta = Meta::new(
        planned_repeats,
        IMAGES,
        vec![
            ModeInfo::new("dense", "dense_sgemm_openblas", "avx2"),
            ModeInfo::new("qcnn", "lut_f32_avx2", "avx2"),
        ],
    );
    meta.theoretical_speedup = Some(4.156);
    meta.input = "synthetic seed 7".into();
    meta
}

/// A full repeat: one row per mode, two layer phases, one row per image. Times vary with
/// the repeat so statistics are not trivial.
pub fn record(repeat: u32) -> RepeatRecord {
    let mut rec = RepeatRecord::new(repeat);
    for (i, mode) in MODES.iter().enumerate() {
        let per_image = 10.0 / (1 + 2 * i) as f64 + 0.1 * f64::from(repeat);
        let images: Vec<f64> = (0..IMAGES)
            .map(|k| per_image + 0.01 * f64::from(k))
            .collect();
        let total: f64 = images.iter().sum();
        let row = RepeatRow::new(
            repeat,
            mode,
            &format!("kernel_{mode}"),
            IMAGES,
            total,
            total * 0.99,
            total * 1.01,
        )
        .with_accuracy(1, 2)
        .with_peak_rss(1_000_000 * (i as u64 + 1));
        rec.rows.push(row);
        for (k, ms) in images.into_iter().enumerate() {
            rec.images.push(ImageRow {
                repeat,
                mode: mode.to_string(),
                image: k as u32,
                ms,
            });
        }
        for phase in [Phase::Table, Phase::Lookup] {
            rec.layers.push(LayerRow {
                repeat,
                mode: mode.to_string(),
                layer: "conv1".into(),
                phase,
                ms_per_image: per_image / 3.0,
            });
        }
    }
    rec
}
