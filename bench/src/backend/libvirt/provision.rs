//! migbench's own guest on real hosts (`[hosts.provision]`): the guest
//! image's kernel and initramfs are uploaded into a libvirt storage pool on
//! both hosts over the libvirt connections themselves (no ssh, nothing
//! copied by hand), the guest boots on the first host on a bridge there
//! with the scenario's RAM and vCPUs, and the domain and volumes are removed
//! when the matrix ends, however it ends.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use migbench_model::scenario::hosts::{HostsSpec, ProvisionSpec};
use migbench_model::scenario::Accel;
use migbench_model::units::Size;
use migbench_probes::host::agent_client::AgentClient;
use migbench_probes::protocol::CONTROL_PORT;
use virt::connect::Connect;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::stream::Stream;

use super::domain::{bridged_devices, mac_of, new_uuid, tcg_pad_emulator, DomainXml};
use super::reach::HostShell;
use super::remote::connect;
use crate::control::Cancel;
use crate::lab::image::GuestImage;
use crate::migrate::guest::wait_for_agent;

/// The two hosts' fields, in order.
fn hosts(spec: &HostsSpec) -> [(&'static str, &str); 2] {
    [("hosts.src", &spec.src), ("hosts.dst", &spec.dst)]
}

fn provision_of(spec: &HostsSpec) -> &ProvisionSpec {
    spec.provision
        .as_ref()
        .expect("called for [hosts.provision]")
}

/// The pool's target path (`<target><path>` of its XML).
fn pool_path(pool: &StoragePool) -> Option<String> {
    let x = pool.xml_desc(0).ok()?;
    let target = &x[x.find("<target>")?..];
    let start = target.find("<path>")? + "<path>".len();
    let end = target[start..].find("</path>")? + start;
    Some(target[start..end].to_string())
}

/// Before anything is created: both hosts answer, the pool is active on
/// both at the same path (the domain names its kernel by path, on either
/// host), and the guest's name is free on both.
pub fn check(spec: &HostsSpec) -> Result<()> {
    // Errors are returned, not printed by libvirt itself.
    virt::error::clear_error_callback();
    let prov = provision_of(spec);
    let mut paths = Vec::new();
    for (field, uri) in hosts(spec) {
        let c = connect(field, uri)?;
        let pool = c.lookup_storage_pool_by_name(&prov.pool).map_err(|e| {
            anyhow!(
                "hosts.provision.pool = \"{}\" on {field}: {}",
                prov.pool,
                e.message()
            )
        })?;
        if !pool.is_active().unwrap_or(false) {
            bail!(
                "hosts.provision.pool = \"{}\" is not active on {field} (virsh pool-start {})",
                prov.pool,
                prov.pool
            );
        }
        paths.push(pool_path(&pool).unwrap_or_default());
        if c.lookup_domain_by_name(&spec.domain).is_ok() {
            bail!(
                "hosts.domain = \"{}\" already exists on {field}: migbench names its own guest so; choose another hosts.domain",
                spec.domain
            );
        }
    }
    if paths[0] != paths[1] {
        bail!(
            "hosts.provision.pool = \"{}\" is at {} on hosts.src but {} on hosts.dst: use a pool at the same path on both",
            prov.pool,
            paths[0],
            paths[1]
        );
    }
    Ok(())
}

/// The accelerator for the guest: the scenario's, or under `auto` KVM
/// where the source host offers it.
pub fn accel_for(spec: &HostsSpec, setting: Accel) -> Result<String> {
    Ok(match setting {
        Accel::Kvm => "kvm".into(),
        Accel::Tcg => "tcg".into(),
        Accel::Auto => {
            let caps = connect("hosts.src", &spec.src)?.capabilities()?;
            if caps.contains("<domain type='kvm'") {
                "kvm".into()
            } else {
                "tcg".into()
            }
        }
    })
}

/// Upload `file` as volume `name` of `pool` (replacing a leftover of that
/// name); its path on the host.
fn upload(c: &Connect, pool: &StoragePool, name: &str, file: &Path) -> Result<String> {
    if let Ok(old) = pool.lookup_storage_vol_by_name(name) {
        let _ = old.delete(0);
    }
    let size = std::fs::metadata(file)
        .with_context(|| file.display().to_string())?
        .len();
    let vol = StorageVol::create_xml(
        pool,
        &format!(
            "<volume><name>{name}</name><capacity unit='bytes'>{size}</capacity>\
             <target><format type='raw'/></target></volume>"
        ),
        0,
    )?;
    let stream = Stream::new(c, 0)?;
    vol.upload(&stream, 0, size, 0)?;
    let mut f = std::fs::File::open(file)?;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let mut sent = 0;
        while sent < n {
            sent += stream.send(&buf[sent..n])?.max(0) as usize;
        }
    }
    stream.finish()?;
    Ok(vol.path()?)
}

/// migbench's guest, running on the source host.
pub struct Provisioned {
    spec: HostsSpec,
    volumes: Vec<String>,
}

/// Provision the guest: upload the image to both hosts, start the domain
/// on the source, wait for its agent. Whatever was created is removed
/// again if a step fails.
pub async fn provision(
    spec: &HostsSpec,
    image: &GuestImage,
    (ram, vcpus): (Size, u32),
    accel: &str,
    tcg_dirty_workaround: bool,
    cancel: &Cancel,
) -> Result<Provisioned> {
    let prov = provision_of(spec);
    let mut made = Provisioned {
        spec: spec.clone(),
        volumes: Vec::new(),
    };
    let result = async {
        // Named after the guest too: pairs that share a host each remove
        // their own volumes, not the ones another pair's guest runs from.
        let kernel_vol = format!("migbench-{}-{}-vmlinuz", spec.domain, image.id);
        let initrd_vol = format!("migbench-{}-{}-initrd.gz", spec.domain, image.id);
        let mut paths = Vec::new();
        for (field, uri) in hosts(spec) {
            let c = connect(field, uri)?;
            let pool = c.lookup_storage_pool_by_name(&prov.pool)?;
            made.volumes = vec![kernel_vol.clone(), initrd_vol.clone()];
            let k = upload(&c, &pool, &kernel_vol, &image.kernel)
                .with_context(|| format!("uploading the guest kernel to {field}"))?;
            let i = upload(&c, &pool, &initrd_vol, &image.initrd)
                .with_context(|| format!("uploading the guest initramfs to {field}"))?;
            paths.push((k, i));
        }
        // The TCG padding wrapper is a local file: usable when the source
        // host is this machine (the lab's stand-in hosts).
        let local = matches!(HostShell::of_uri(&spec.src), HostShell::Local { .. });
        let emulator = if accel == "tcg" && tcg_dirty_workaround && local {
            Some(tcg_pad_emulator()?)
        } else {
            None
        };
        let uuid = new_uuid();
        let (kernel, initrd) = &paths[0];
        let xml = DomainXml {
            name: &spec.domain,
            uuid: &uuid,
            accel,
            ram_kib: ram.0 >> 10,
            vcpus,
            kernel,
            initrd,
            ip: format!("{}/{}", spec.guest_address, prov.prefix),
            gateway: prov.gateway.as_deref(),
            emulator: emulator.as_deref(),
            devices: bridged_devices(&prov.bridge, &mac_of(&uuid)),
        }
        .render();
        connect("hosts.src", &spec.src)?
            .create_domain_xml(&xml, 0)
            .map_err(|e| anyhow!("starting the guest on hosts.src: {}", e.message()))?;
        let ip: Ipv4Addr = spec.guest_address.parse()?;
        let agent = AgentClient::new(None, SocketAddr::V4(SocketAddrV4::new(ip, CONTROL_PORT)));
        wait_for_agent(&agent, Duration::from_secs(90), cancel)
            .await
            .with_context(|| {
                format!(
                    "the guest booted on hosts.src but its agent does not answer at {} (bridge \"{}\", prefix /{}{})",
                    spec.guest_address,
                    prov.bridge,
                    prov.prefix,
                    prov.gateway
                        .as_deref()
                        .map(|g| format!(", gateway {g}"))
                        .unwrap_or_default()
                )
            })?;
        anyhow::Ok(())
    }
    .await;
    match result {
        Ok(()) => Ok(made),
        Err(e) => {
            made.remove();
            Err(e)
        }
    }
}

impl Provisioned {
    /// Stop the guest wherever it runs and delete its volumes on both
    /// hosts; what could not be removed, as warnings.
    pub fn remove(self) -> Vec<String> {
        let mut left = Vec::new();
        let pool_name = &provision_of(&self.spec).pool;
        for (field, uri) in hosts(&self.spec) {
            let c = match connect(field, uri) {
                Ok(c) => c,
                Err(e) => {
                    left.push(format!("{e:#}: the guest and its volumes may remain there"));
                    continue;
                }
            };
            if let Ok(d) = c.lookup_domain_by_name(&self.spec.domain) {
                if let Err(e) = d.destroy() {
                    left.push(format!(
                        "stopping {} on {field}: {}",
                        self.spec.domain,
                        e.message()
                    ));
                }
                let _ = d.undefine();
            }
            if let Ok(pool) = c.lookup_storage_pool_by_name(pool_name) {
                for v in &self.volumes {
                    if let Ok(vol) = pool.lookup_storage_vol_by_name(v) {
                        if let Err(e) = vol.delete(0) {
                            left.push(format!("deleting volume {v} on {field}: {}", e.message()));
                        }
                    }
                }
            }
        }
        left
    }
}
