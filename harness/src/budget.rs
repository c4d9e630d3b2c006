//! Counts from the user that decide how much memory a command holds at once (images kept
//! for a run or a calibration, error-correction columns, sweep configurations) are checked
//! against the memory this machine has available, before anything is allocated: a count
//! that does not fit is an error naming the argument, what it would take and how many fit,
//! never an abort halfway through.

use anyhow::{bail, Result};
use qcnn_model::Shape;
use sysinfo::System;

/// The share of the available memory one such allocation may take: the rest is for the
/// model, the networks and everything else running.
const SHARE: f64 = 0.5;

/// Bytes of one preprocessed network input of shape `input`, f32 (AlexNet's (3, 227, 227):
/// ≈ 618 KB; the 224 × 224 networks': ≈ 602 KB).
pub fn input_bytes(input: Shape) -> u64 {
    4 * input.len() as u64
}

/// The memory this process may still use: MemAvailable, or less when a container's memory
/// limit (below the machine's memory) leaves less beside its resident memory. (A cgroup's
/// own "free" figure counts reclaimable page cache as used, so it is not taken as is.)
pub fn available_bytes() -> u64 {
    let mut system = System::new();
    system.refresh_memory();
    let machine = system.available_memory();
    match system.cgroup_limits() {
        Some(cgroup) if cgroup.total_memory < system.total_memory() => {
            machine.min(cgroup.total_memory.saturating_sub(cgroup.rss))
        }
        _ => machine,
    }
}

/// Checks that `count` items of `each` bytes (what `arg` asks for, described by `what`) fit
/// in [`SHARE`] of the available memory.
pub fn check(arg: &str, count: u64, each: u64, what: &str) -> Result<()> {
    check_within(arg, count, each, what, available_bytes())
}

fn check_within(arg: &str, count: u64, each: u64, what: &str, available: u64) -> Result<()> {
    let budget = (available as f64 * SHARE) as u64;
    let need = count.saturating_mul(each);
    if need > budget {
        let fit = budget / each.max(1);
        bail!(
            "{arg}: {count} {what} of {} each need {}, more than half of the {} this machine \
             has available; at most {fit} fit",
            human(each),
            human(need),
            human(available)
        );
    }
    Ok(())
}

/// "618.3 KB", "3.1 GB": decimal units, one decimal.
fn human(bytes: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_beyond_half_the_available_memory_are_refused_with_what_fits() {
        let gb = 1_000_000_000;
        let image = input_bytes(qcnn_model::alexnet().input);
        assert!(check_within("--images", 1000, image, "images", 2 * gb).is_ok());
        let err = check_within("--images", 5000, image, "images", 2 * gb)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--images: 5000 images of 618.3 KB each need 3.1 GB, more than half of the 2.0 GB \
             this machine has available; at most 1617 fit"
        );
        assert!(check_within("--n", u64::MAX, u64::MAX, "x", u64::MAX).is_err());
        assert!(available_bytes() > 0);
    }
}
