//! One thread on one core: every measurement pins the process first.

use anyhow::{bail, Context, Result};

/// Pins the process to one core (default: the last, away from core 0's interrupts).
pub fn pin(requested: Option<usize>) -> Result<usize> {
    let cores =
        core_affinity::get_core_ids().context("listing the CPU cores this process may use")?;
    let ids: Vec<usize> = cores.iter().map(|c| c.id).collect();
    let id = match requested {
        Some(id) if ids.contains(&id) => id,
        Some(id) => bail!("--core {id}: no such core available to this process (cores: {ids:?})"),
        None => *ids.last().context("no CPU core available")?,
    };
    if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
        bail!("could not pin the process to core {id}");
    }
    Ok(id)
}
