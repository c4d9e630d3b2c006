//! The measurements a comparison resamples, taken from stored runs as they were measured
//! (the repeats of every run, see [`Clustered`]): per-image times (`images.csv`), per image pair
//! speed-ups, per-repeat layer times (`layers.csv`).

use std::collections::BTreeMap;

use super::bootstrap::Clustered;
use crate::reader::Run;
use crate::rows::{LayerRow, Phase};
use crate::summary::BASELINE_MODE;

/// Every single-image time of `mode`, one cluster per repeat of each run.
pub fn image_times(runs: &[Run], mode: &str) -> Clustered {
    Clustered::new(
        runs.iter()
            .flat_map(|run| {
                let mut by_repeat: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
                for row in run.images.iter().filter(|r| r.mode == mode) {
                    by_repeat.entry(row.repeat).or_default().push(row.ms);
                }
                by_repeat.into_values()
            })
            .collect(),
    )
}

/// Dense time over `mode`'s time of the same image in the same repeat: a ratio measured
/// within one repeat, seconds apart, so a machine that is slower in one run than in
/// another changes it less than it changes either time. One cluster per repeat of each run.
pub fn speedup_pairs(runs: &[Run], mode: &str) -> Clustered {
    Clustered::new(
        runs.iter()
            .flat_map(|run| {
                let dense: BTreeMap<(u32, u32), f64> = run
                    .images
                    .iter()
                    .filter(|r| r.mode == BASELINE_MODE)
                    .map(|r| ((r.repeat, r.image), r.ms))
                    .collect();
                let mut by_repeat: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
                for row in run.images.iter().filter(|r| r.mode == mode && r.ms > 0.0) {
                    if let Some(d) = dense.get(&(row.repeat, row.image)) {
                        by_repeat.entry(row.repeat).or_default().push(d / row.ms);
                    }
                }
                by_repeat.into_values()
            })
            .collect(),
    )
}

/// One layer's (or phase's) time per image in each repeat, one cluster (of one value) per
/// repeat of each run. For [`Phase::All`], a mode that recorded only the two phases of a
/// layer counts their sum (as the reports do).
pub fn layer_times(runs: &[Run], mode: &str, layer: &str, phase: Phase) -> Clustered {
    Clustered::new(
        runs.iter()
            .flat_map(|run| {
                let mut by_repeat: BTreeMap<u32, BTreeMap<Phase, f64>> = BTreeMap::new();
                for row in rows_of(run, mode, layer) {
                    by_repeat
                        .entry(row.repeat)
                        .or_default()
                        .insert(row.phase, row.ms_per_image);
                }
                by_repeat
                    .into_values()
                    .filter_map(|phases| phase_time(&phases, phase))
                    .map(|v| vec![v])
            })
            .collect(),
    )
}

fn rows_of<'a>(run: &'a Run, mode: &'a str, layer: &'a str) -> impl Iterator<Item = &'a LayerRow> {
    run.layers
        .iter()
        .filter(move |r| r.mode == mode && r.layer == layer)
}

fn phase_time(phases: &BTreeMap<Phase, f64>, phase: Phase) -> Option<f64> {
    match (phase, phases.get(&phase)) {
        (_, Some(&v)) => Some(v),
        (Phase::All, None) => {
            let split: Vec<f64> = [Phase::Table, Phase::Lookup]
                .iter()
                .filter_map(|p| phases.get(p).copied())
                .collect();
            (!split.is_empty()).then(|| split.iter().sum())
        }
        _ => None,
    }
}

/// The (layer, phases) of `mode` in the order the runs' `layers.csv` first name them.
pub fn layers_of(runs: &[Run], mode: &str) -> Vec<(String, Vec<Phase>)> {
    let mut order: Vec<(String, Vec<Phase>)> = Vec::new();
    for row in runs
        .iter()
        .flat_map(|r| &r.layers)
        .filter(|r| r.mode == mode)
    {
        let at = match order.iter().position(|(l, _)| *l == row.layer) {
            Some(i) => i,
            None => {
                // Every layer has a total, recorded or summed from its phases.
                order.push((row.layer.clone(), vec![Phase::All]));
                order.len() - 1
            }
        };
        if !order[at].1.contains(&row.phase) {
            order[at].1.push(row.phase);
        }
    }
    for (_, phases) in &mut order {
        phases.sort();
    }
    order
}
