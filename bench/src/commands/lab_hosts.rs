//! `migbench lab-hosts`: the lab's two libvirt hosts, with a running
//! guest, served as if they were real ones until interrupted.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::*;

/// `migbench lab-hosts`: two libvirt hosts in the lab with a running guest,
/// until interrupted.
pub fn lab_hosts(
    rt: &tokio::runtime::Runtime,
    cancel: &Cancel,
    ram: &str,
    agent: Option<PathBuf>,
    logs: &Path,
    ssh: bool,
    disk: Option<&str>,
) -> Result<i32> {
    #[cfg(not(feature = "libvirt"))]
    {
        let _ = (rt, cancel, ram, agent, logs, ssh, disk);
        bail!(UsageError(
            "lab-hosts needs migbench built with the `libvirt` feature".into()
        ));
    }
    #[cfg(feature = "libvirt")]
    {
        use crate::backend::libvirt::libvirt_lab::LibvirtLab;
        use crate::migrate::env::Environment;
        let ram = migbench_model::units::Size::parse_str(ram)
            .map_err(|e| UsageError(format!("--ram: {e}")))?;
        let disk = disk
            .map(|d| {
                migbench_model::units::Size::parse_str(d)
                    .ok()
                    .filter(|s| s.0 >= 1 << 20)
                    .ok_or_else(|| {
                        UsageError(format!(
                            "--disk \"{d}\": a size of at least 1MiB, e.g. 64MiB"
                        ))
                    })
            })
            .transpose()?;
        preflight()?;
        let display = Display::new();
        sweep(&display);
        let img = guest_image(agent.as_deref(), &display)?;
        let accel = rt.block_on(accel::resolve(Accel::Auto, &img));
        let env = LibvirtLab {
            image: img,
            accel,
            tcg_dirty_workaround: true,
            disk_in_pool: disk.is_some(),
        };
        let mut p = RunParams {
            ram,
            backend: migbench_model::settings::Backend::Libvirt,
            ..RunParams::default()
        };
        if let Some(size) = disk {
            p.storage_mode = migbench_model::settings::StorageMode::Block;
            p.disk_format = migbench_model::settings::DiskFormat::Qcow2;
            p.disk_size = size;
        }
        std::fs::create_dir_all(logs)?;
        let mut hosts = rt.block_on(env.boot(&p, logs, cancel))?;
        let ssh_dir = ssh.then(|| std::path::absolute(logs).map(|l| l.join("ssh")));
        let ready = hosts.add_image_pools().and_then(|()| match ssh_dir {
            Some(dir) => rt.block_on(hosts.serve_ssh(&dir?)),
            None => Ok(()),
        });
        if let Err(e) = ready {
            rt.block_on(env.teardown(hosts));
            return Err(e);
        }
        println!("{}", hosts.describe());
        println!("ready (Ctrl-C stops the hosts and removes them)");
        while !cancel.is_cancelled() {
            std::thread::sleep(Duration::from_millis(100));
        }
        rt.block_on(env.teardown(hosts));
        Ok(0)
    }
}
