//! Leftovers: what killed runs left behind (namespaces, QEMU processes,
//! run directories, half-written saved states), swept before each run and
//! by `migbench cleanup`, which also reports or removes the saved guest
//! states.

use anyhow::{Context, Result};

use crate::lab::{net, rundir};
use crate::scheduler::Display;

/// Sweep leftovers of killed runs, warning about each.
pub fn sweep(display: &Display) {
    for ns in net::sweep_leftovers() {
        display.line(&format!(
            "warning: removed namespace {ns} left by a killed migbench run"
        ));
    }
    for d in rundir::sweep_leftovers()
        .into_iter()
        .chain(crate::backend::qmp::snapshot::sweep_partial())
    {
        display.line(&format!(
            "warning: removed {} left by a killed migbench run",
            d.display()
        ));
    }
}

/// `migbench cleanup`: sweep what killed runs left, then say what the
/// saved guest states take (removing them with `snapshots`).
pub fn cleanup(snapshots: bool, display: &Display) -> Result<()> {
    sweep(display);
    let saved = crate::backend::qmp::snapshot::saved();
    let bytes: u64 = saved.iter().map(|(_, n)| n).sum();
    let dir = crate::backend::qmp::snapshot::cache();
    let size = format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64);
    if !snapshots {
        display.line(&format!(
            "saved guest states: {} ({size}) in {}{}",
            saved.len(),
            dir.display(),
            if saved.is_empty() {
                ""
            } else {
                "; `migbench cleanup --snapshots` removes them"
            }
        ));
        return Ok(());
    }
    for (f, _) in &saved {
        std::fs::remove_file(f).with_context(|| format!("removing {}", f.display()))?;
    }
    display.line(&format!(
        "removed {} saved guest states ({size}) from {}; the next run of each guest boots and saves it again",
        saved.len(),
        dir.display()
    ));
    Ok(())
}
