//! One thread on one core: every measurement pins the process first.

use anyhow::{bail, Context, Result};

/// The core `requested` (default: the last, away from core 0's interrupts), checked against
/// the cores this process may use; `--core` names it in the error.
pub fn choose(requested: Option<usize>) -> Result<usize> {
    let cores =
        core_affinity::get_core_ids().context("listing the CPU cores this process may use")?;
    let ids: Vec<usize> = cores.iter().map(|c| c.id).collect();
    match requested {
        Some(id) if ids.contains(&id) => Ok(id),
        Some(id) => bail!("--core {id}: no such core available to this process (cores: {ids:?})"),
        None => ids.last().copied().context("no CPU core available"),
    }
}

/// Pins the process to the core [`choose`] picks.
pub fn pin(requested: Option<usize>) -> Result<usize> {
    let id = choose(requested)?;
    if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
        bail!("could not pin the process to core {id}");
    }
    Ok(id)
}
