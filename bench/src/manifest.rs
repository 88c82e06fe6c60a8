//! Provenance for a results directory: the scenario as given, the expanded
//! matrix, host kernel, QEMU version, accelerator, guest image and git
//! revision ([`build`]); and the check that a results directory is being
//! resumed with the scenario it was started with ([`same_scenario`]).

use std::path::Path;

use migbench_model::matrix::varying;
use migbench_model::{Manifest, RunParams, Scenario};
use sha2::{Digest, Sha256};

use crate::recorder::unix_now;
use crate::system::first_line;
use crate::usage::UsageError;

/// Hex SHA-256 of some text.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `git describe --always --dirty` of the migbench source tree, if built from one.
pub fn git_revision() -> String {
    first_line(
        "git",
        &[
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "describe",
            "--always",
            "--dirty",
        ],
    )
}

/// QEMU's version line.
pub fn qemu_version() -> String {
    first_line("qemu-system-x86_64", &["--version"])
}

/// Assemble the manifest of a run of `sc`.
pub fn build(
    sc: &Scenario,
    path: &str,
    text: &str,
    matrix: &[RunParams],
    accel: &str,
    image: &str,
) -> Manifest {
    let padding = if accel == "tcg" && sc.lab.tcg_dirty_workaround {
        crate::lab::qemu::TCG_RAM_PAD_KIB
    } else {
        0
    };
    let uts = nix::sys::utsname::uname().ok();
    let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uts.as_ref()
            .map(|u| f(u).to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    Manifest {
        scenario_name: sc.name.clone(),
        scenario_path: path.to_string(),
        scenario_text: text.to_string(),
        scenario_sha256: sha256_hex(text),
        matrix: matrix.to_vec(),
        varying: varying(matrix),
        host_kernel: field(|u| u.release()),
        host_name: field(|u| u.nodename()),
        qemu_version: qemu_version(),
        accel: accel.to_string(),
        guest_image: image.to_string(),
        qemu_ram_padding_kib: padding,
        git_revision: git_revision(),
        migbench_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: unix_now(),
    }
}

/// Refuse to resume `dir` with a scenario other than the one it was
/// started with, naming the first line that changed.
pub fn same_scenario(dir: &Path, scenario: &Path, text: &str) -> anyhow::Result<()> {
    let path = dir.join("manifest.json");
    let m: migbench_model::Manifest = std::fs::read_to_string(&path)
        .map_err(|e| {
            UsageError(format!(
                "--resume {}: {e} (not a results directory?)",
                path.display()
            ))
        })
        .and_then(|t| {
            serde_json::from_str(&t)
                .map_err(|e| UsageError(format!("--resume {}: {e}", path.display())))
        })?;
    if m.scenario_sha256 == sha256_hex(text) {
        return Ok(());
    }
    let (old, new): (Vec<&str>, Vec<&str>) =
        (m.scenario_text.lines().collect(), text.lines().collect());
    let n = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let line = |v: &[&str]| {
        v.get(n)
            .map(|l| format!("`{l}`"))
            .unwrap_or_else(|| "(end of file)".into())
    };
    anyhow::bail!(UsageError(format!(
        "--resume {}: {} is not the scenario this matrix was started with ({}): line {}: was {}, now {}",
        dir.display(),
        scenario.display(),
        m.scenario_path,
        n + 1,
        line(&old),
        line(&new)
    )))
}
