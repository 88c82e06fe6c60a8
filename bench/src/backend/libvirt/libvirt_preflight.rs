//! The libvirt backend's preflight: before any run, refuse the settings of
//! libvirt runs that libvirt cannot express ([`super::libvirt_settings::refused`]),
//! naming the field, the value and the libvirt version. What QEMU itself
//! lacks is the QMP preflight's to find (libvirt runs the same QEMU).

use migbench_model::settings::Backend;
use migbench_model::RunParams;
use virt::connect::Connect;

use super::libvirt_settings::refused;
use crate::migrate::{Preflight, Unsupported};

/// libvirt's library version as "9.0.0".
pub fn libvirt_version() -> anyhow::Result<String> {
    let v = Connect::version()?;
    Ok(format!(
        "{}.{}.{}",
        v / 1_000_000,
        v / 1000 % 1000,
        v % 1000
    ))
}

/// Refuses settings libvirt lacks.
pub struct LibvirtPreflight;

impl Preflight for LibvirtPreflight {
    async fn check(&self, runs: &[RunParams]) -> anyhow::Result<Result<(), Unsupported>> {
        let libvirt = runs.iter().filter(|p| p.backend == Backend::Libvirt);
        for p in libvirt {
            if let Some((field, value, why)) = refused(&p.migration()) {
                return Ok(Err(Unsupported {
                    field: field.into(),
                    value,
                    why: why.into(),
                    backend: format!("libvirt {}", libvirt_version()?),
                }));
            }
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use migbench_model::matrix::sample_run;

    #[tokio::test]
    async fn only_libvirt_runs_are_held_to_libvirt() {
        let qmp = sample_run("[migration]\nannounce = \"initial=10ms\"\n");
        assert!(LibvirtPreflight.check(&[qmp]).await.unwrap().is_ok());
        let lv =
            sample_run("[backend]\nkind = \"libvirt\"\n[migration]\nannounce = \"initial=10ms\"\n");
        let u = LibvirtPreflight.check(&[lv]).await.unwrap().unwrap_err();
        assert_eq!(u.field, "migration.announce");
        assert!(u.to_string().contains("libvirt 9."), "{u}");
    }
}
