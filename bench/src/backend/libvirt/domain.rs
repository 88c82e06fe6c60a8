//! The lab guest as a libvirt domain: the XML for one side (direct kernel
//! boot of migbench's image, the lab's tap as an unmanaged `ethernet`
//! interface, the storage mode's disk, the detected accelerator, serial
//! console to the run's results), and the QEMU wrapper that keeps the
//! TCG RAM padding libvirt would round away.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use migbench_model::settings::StorageMode;

use crate::lab::image::cache_dir;
use crate::lab::net::{GUEST_IP, GUEST_PREFIX, STORAGE_IP, STORAGE_NBD_PORT};
use crate::lab::qemu::{QemuSpec, Role, GUEST_MAC, TCG_RAM_PAD_KIB};

/// Name of the lab's domain on both hosts.
pub const DOMAIN: &str = "migbench-guest";
/// Guest disk target (the agent writes `/dev/vda`).
pub const DISK_TARGET: &str = "vda";

/// Escape text for an XML attribute or element.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// A fresh domain UUID (both sides of a migration carry the same one).
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        b = (t ^ (u128::from(std::process::id()) << 64)).to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A direct-kernel-boot domain of migbench's image; [`DomainXml::render`]
/// writes its XML. Shared by the lab's guest and the guest migbench
/// provisions on real hosts.
pub struct DomainXml<'a> {
    /// Domain name.
    pub name: &'a str,
    /// Domain UUID (both sides of a migration carry the same one).
    pub uuid: &'a str,
    /// "kvm" or "tcg".
    pub accel: &'a str,
    /// Guest RAM, KiB.
    pub ram_kib: u64,
    /// vCPUs.
    pub vcpus: u32,
    /// Kernel and initramfs paths on the host.
    pub kernel: &'a str,
    /// See `kernel`.
    pub initrd: &'a str,
    /// The guest's address (`mb.ip=`, CIDR) and optional gateway (`mb.gw=`).
    pub ip: String,
    /// See `ip`.
    pub gateway: Option<&'a str>,
    /// The QEMU binary libvirt starts (see [`tcg_pad_emulator`]).
    pub emulator: Option<&'a Path>,
    /// The devices beyond the defaults, as XML.
    pub devices: String,
}

impl DomainXml<'_> {
    /// The XML.
    pub fn render(&self) -> String {
        let kind = if self.accel == "kvm" { "kvm" } else { "qemu" };
        let gw = self
            .gateway
            .map(|g| format!(" mb.gw={g}"))
            .unwrap_or_default();
        let mut x = String::new();
        let _ = write!(
            x,
            "<domain type='{kind}'>\n  <name>{name}</name>\n  <uuid>{uuid}</uuid>\n  \
             <memory unit='KiB'>{kib}</memory>\n  <vcpu>{vcpus}</vcpu>\n  \
             <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n    \
             <kernel>{kernel}</kernel>\n    <initrd>{initrd}</initrd>\n    \
             <cmdline>console=ttyS0 loglevel=5 panic=-1 mb.ip={ip}{gw}</cmdline>\n  \
             </os>\n  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n  \
             <on_crash>destroy</on_crash>\n  <devices>\n",
            name = xml(self.name),
            uuid = xml(self.uuid),
            kib = self.ram_kib,
            vcpus = self.vcpus,
            kernel = xml(self.kernel),
            initrd = xml(self.initrd),
            ip = xml(&self.ip),
            gw = xml(&gw),
        );
        if let Some(e) = self.emulator {
            let _ = writeln!(
                x,
                "    <emulator>{}</emulator>",
                xml(&e.display().to_string())
            );
        }
        x += &self.devices;
        x += "    <memballoon model='none'/>\n  </devices>\n</domain>\n";
        x
    }
}

/// A guest MAC address from a domain UUID (QEMU's 52:54:00 prefix).
pub fn mac_of(uuid: &str) -> String {
    let hex: Vec<char> = uuid.chars().filter(char::is_ascii_hexdigit).collect();
    let b = |i: usize| hex.get(i..i + 2).map(|c| c.iter().collect::<String>());
    format!(
        "52:54:00:{}:{}:{}",
        b(26).unwrap_or_else(|| "6d".into()),
        b(28).unwrap_or_else(|| "62".into()),
        b(30).unwrap_or_else(|| "02".into())
    )
}

/// The lab guest's domain XML of one side. `emulator`: the QEMU binary
/// libvirt starts (see [`tcg_pad_emulator`]).
pub fn domain_xml(
    spec: &QemuSpec,
    role: Role,
    uuid: &str,
    log_dir: &Path,
    emulator: Option<&Path>,
) -> String {
    let serial = log_dir.join(format!("guest-{}.log", role.name()));
    // The tap exists in the host's namespace already (the lab built it).
    let mut devices = format!(
        "    <interface type='ethernet'>\n      <target dev='tap0' managed='no'/>\n      \
         <mac address='{GUEST_MAC}'/>\n      <model type='virtio'/>\n    </interface>\n    \
         <serial type='file'>\n      <source path='{}'/>\n      <target port='0'/>\n    \
         </serial>\n",
        xml(&serial.display().to_string())
    );
    if let Some(d) = &spec.disks {
        if d.mode == StorageMode::SharedNbd {
            let _ = write!(
                devices,
                "    <disk type='network' device='disk'>\n      <driver name='qemu' type='raw' cache='none'/>\n      \
                 <source protocol='nbd' name='disk0'>\n        <host name='{STORAGE_IP}' port='{STORAGE_NBD_PORT}'/>\n      \
                 </source>\n      <target dev='{DISK_TARGET}' bus='virtio'/>\n    </disk>\n"
            );
        } else {
            let img = d.image(role == Role::Source).display().to_string();
            let _ = write!(
                devices,
                "    <disk type='file' device='disk'>\n      <driver name='qemu' type='{}' cache='none'/>\n      \
                 <source file='{}'/>\n      <target dev='{DISK_TARGET}' bus='virtio'/>\n    </disk>\n",
                d.format,
                xml(&img)
            );
        }
    }
    DomainXml {
        name: DOMAIN,
        uuid,
        accel: &spec.accel,
        ram_kib: spec.ram_mib * 1024,
        vcpus: spec.vcpus,
        kernel: &spec.image.kernel.display().to_string(),
        initrd: &spec.image.initrd.display().to_string(),
        ip: format!("{GUEST_IP}/{GUEST_PREFIX}"),
        gateway: None,
        emulator,
        devices,
    }
    .render()
}

/// A domain on a bridge of the host (libvirt makes the tap), its serial
/// console a pty (`virsh console`): migbench's guest on real hosts.
pub fn bridged_devices(bridge: &str, mac: &str) -> String {
    format!(
        "    <interface type='bridge'>\n      <source bridge='{}'/>\n      \
         <mac address='{}'/>\n      <model type='virtio'/>\n    </interface>\n    \
         <serial type='pty'>\n      <target port='0'/>\n    </serial>\n",
        xml(bridge),
        xml(mac)
    )
}

/// The QEMU 7.2 TCG lost-dirty-page workaround through libvirt: libvirt
/// rounds guest RAM up to whole MiB, which undoes the lab's
/// [`TCG_RAM_PAD_KIB`] (see `lab::qemu`), so the domain names this wrapper
/// as its emulator. It adds the pad to the RAM backend libvirt asks for
/// (`-m` and the `pc.ram` object, which QEMU requires to agree) and runs
/// QEMU; every other invocation (libvirt's capability probes) passes
/// through unchanged. Written once into migbench's cache directory, the
/// same path on both lab hosts.
pub fn tcg_pad_emulator() -> std::io::Result<PathBuf> {
    let dir = cache_dir().join("libvirt");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("qemu-tcg-pad-{TCG_RAM_PAD_KIB}k"));
    let script = format!(
        r#"#!/bin/bash
# migbench: add {TCG_RAM_PAD_KIB} KiB to the guest RAM (QEMU 7.2 TCG lost dirty pages workaround)
pad=$(({TCG_RAM_PAD_KIB} * 1024)); size=
for a in "$@"; do
  if [[ $a == *'"id":"pc.ram"'* && $a =~ \"size\":([0-9]+) ]]; then size=${{BASH_REMATCH[1]}}; fi
done
[[ -z $size ]] && exec qemu-system-x86_64 "$@"
args=(); prev=
for a in "$@"; do
  if [[ $prev == -m ]]; then a="$(((size + pad) / 1024))K"
  elif [[ $a == *'"id":"pc.ram"'* ]]; then a=${{a/\"size\":$size/\"size\":$((size + pad))}}
  fi
  args+=("$a"); prev=$a
done
exec qemu-system-x86_64 "${{args[@]}}"
"#
    );
    if std::fs::read_to_string(&path).ok().as_deref() != Some(script.as_str()) {
        let tmp = dir.join(format!(".tmp-{}", std::process::id()));
        std::fs::write(&tmp, &script)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::image::GuestImage;

    fn spec(disks: Option<crate::lab::storage::Disks>) -> QemuSpec {
        QemuSpec {
            image: GuestImage {
                id: "0".into(),
                kernel: "/k/vmlinuz".into(),
                initrd: "/k/initrd.gz".into(),
                kernel_package: "k".into(),
            },
            ram_mib: 256,
            tcg_dirty_workaround: true,
            vcpus: 2,
            accel: "tcg".into(),
            disks,
            reserve: 0,
        }
    }

    #[test]
    fn each_side_logs_its_own_serial_and_opens_its_own_block_image() {
        let disks = crate::lab::storage::Disks {
            mode: StorageMode::Block,
            format: migbench_model::settings::DiskFormat::Qcow2,
            src: "/r/src.qcow2".into(),
            dst: "/r/dst.qcow2".into(),
        };
        let s = spec(Some(disks));
        let src = domain_xml(&s, Role::Source, "u", Path::new("/res"), None);
        let dst = domain_xml(&s, Role::Destination, "u", Path::new("/res"), None);
        assert!(src.contains("<source file='/r/src.qcow2'/>"));
        assert!(dst.contains("<source file='/r/dst.qcow2'/>"));
        assert!(src.contains("/res/guest-src.log") && dst.contains("/res/guest-dst.log"));
        assert!(src.contains("<domain type='qemu'>") && src.contains("<vcpu>2</vcpu>"));
        assert!(src.contains("<memory unit='KiB'>262144</memory>"));
        assert!(!src.contains("<emulator>"));
        assert!(src.contains("<uuid>u</uuid>") && dst.contains("<uuid>u</uuid>"));
    }

    #[test]
    fn uuids_are_random_version_4() {
        let (a, b) = (new_uuid(), new_uuid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn shared_nbd_opens_the_storage_hosts_export_and_text_is_escaped() {
        let disks = crate::lab::storage::Disks {
            mode: StorageMode::SharedNbd,
            format: migbench_model::settings::DiskFormat::Raw,
            src: "/r/x".into(),
            dst: "/r/x".into(),
        };
        let x = domain_xml(
            &spec(Some(disks)),
            Role::Source,
            "u",
            Path::new("/a&b"),
            Some(Path::new("/e")),
        );
        assert!(x.contains(&format!(
            "<host name='{STORAGE_IP}' port='{STORAGE_NBD_PORT}'/>"
        )));
        assert!(x.contains("/a&amp;b/guest-src.log"));
        assert!(x.contains("<emulator>/e</emulator>"));
    }

    #[test]
    fn a_bridged_guest_has_its_own_mac_and_gateway() {
        let u = "5470354d-3c50-424d-999e-dd14402b3ed5";
        assert_eq!(mac_of(u), "52:54:00:2b:3e:d5");
        let x = DomainXml {
            name: "mb-own",
            uuid: u,
            accel: "kvm",
            ram_kib: 131072,
            vcpus: 1,
            kernel: "/p/k",
            initrd: "/p/i",
            ip: "10.0.1.50/24".into(),
            gateway: Some("10.0.1.1"),
            emulator: None,
            devices: bridged_devices("br0", &mac_of(u)),
        }
        .render();
        assert!(x.contains("<domain type='kvm'>") && x.contains("<name>mb-own</name>"));
        assert!(
            x.contains("mb.ip=10.0.1.50/24 mb.gw=10.0.1.1</cmdline>"),
            "{x}"
        );
        assert!(x.contains("<source bridge='br0'/>") && x.contains("52:54:00:2b:3e:d5"));
    }
}
