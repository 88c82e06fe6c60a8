//! Provenance for a results directory: the scenario as given, the expanded
//! matrix, host kernel, QEMU version, accelerator, guest image and git
//! revision ([`build`]).

use migbench_model::matrix::varying;
use migbench_model::{Manifest, RunParams, Scenario};
use sha2::{Digest, Sha256};

use crate::recorder::unix_now;
use crate::system::first_line;

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
