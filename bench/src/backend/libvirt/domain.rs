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

/// The domain XML of one side. `emulator`: the QEMU binary libvirt starts
/// (see [`tcg_pad_emulator`]).
pub fn domain_xml(
    spec: &QemuSpec,
    role: Role,
    uuid: &str,
    log_dir: &Path,
    emulator: Option<&Path>,
) -> String {
    let kind = if spec.accel == "kvm" { "kvm" } else { "qemu" };
    let serial = log_dir.join(format!("guest-{}.log", role.name()));
    let mut x = String::new();
    let _ = write!(
        x,
        "<domain type='{kind}'>\n  <name>{DOMAIN}</name>\n  <uuid>{uuid}</uuid>\n  \
         <memory unit='KiB'>{kib}</memory>\n  <vcpu>{vcpus}</vcpu>\n  \
         <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n    \
         <kernel>{kernel}</kernel>\n    <initrd>{initrd}</initrd>\n    \
         <cmdline>console=ttyS0 quiet panic=-1 mb.ip={GUEST_IP}/{GUEST_PREFIX}</cmdline>\n  \
         </os>\n  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n  \
         <on_crash>destroy</on_crash>\n  <devices>\n",
        kib = spec.ram_mib * 1024,
        vcpus = spec.vcpus,
        kernel = xml(&spec.image.kernel.display().to_string()),
        initrd = xml(&spec.image.initrd.display().to_string()),
    );
    if let Some(e) = emulator {
        let _ = writeln!(
            x,
            "    <emulator>{}</emulator>",
            xml(&e.display().to_string())
        );
    }
    // The tap exists in the host's namespace already (the lab built it).
    let _ = write!(
        x,
        "    <interface type='ethernet'>\n      <target dev='tap0' managed='no'/>\n      \
         <mac address='{GUEST_MAC}'/>\n      <model type='virtio'/>\n    </interface>\n    \
         <serial type='file'>\n      <source path='{}'/>\n      <target port='0'/>\n    \
         </serial>\n    <memballoon model='none'/>\n",
        xml(&serial.display().to_string())
    );
    if let Some(d) = &spec.disks {
        if d.mode == StorageMode::SharedNbd {
            let _ = write!(
                x,
                "    <disk type='network' device='disk'>\n      <driver name='qemu' type='raw' cache='none'/>\n      \
                 <source protocol='nbd' name='disk0'>\n        <host name='{STORAGE_IP}' port='{STORAGE_NBD_PORT}'/>\n      \
                 </source>\n      <target dev='{DISK_TARGET}' bus='virtio'/>\n    </disk>\n"
            );
        } else {
            let img = d.image(role == Role::Source).display().to_string();
            let _ = write!(
                x,
                "    <disk type='file' device='disk'>\n      <driver name='qemu' type='{}' cache='none'/>\n      \
                 <source file='{}'/>\n      <target dev='{DISK_TARGET}' bus='virtio'/>\n    </disk>\n",
                d.format,
                xml(&img)
            );
        }
    }
    x += "  </devices>\n</domain>\n";
    x
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
}
