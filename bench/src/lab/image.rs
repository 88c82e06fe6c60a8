//! The guest image: Debian's cloud kernel (downloaded with `apt-get
//! download` and extracted, never installed) and an initramfs holding
//! busybox-static, the virtio modules and the migbench guest agent.
//! Built on demand and cached under a hash of everything that goes in, so
//! a changed agent gives a new image.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::system::{run, CommandError};

/// Modules to load, in dependency order (they are `=m` in the cloud kernel).
pub const MODULES: &[&str] = &[
    "drivers/virtio/virtio_ring",
    "drivers/virtio/virtio",
    "drivers/virtio/virtio_pci_modern_dev",
    "drivers/virtio/virtio_pci_legacy_dev",
    "drivers/virtio/virtio_pci",
    "net/core/failover",
    "drivers/net/net_failover",
    "drivers/net/virtio_net",
    "drivers/block/virtio_blk",
];

/// The guest's /init. It prints `migbench-agent ready` (from the agent) on
/// the serial console once the guest answers; the accelerator check waits
/// for that line.
pub const INIT_SCRIPT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/order); do
  insmod /lib/modules/$m.ko || echo "migbench-init: insmod $m failed"
done
ip=198.18.1.10/24; gw=
for a in $(cat /proc/cmdline); do
  case "$a" in mb.ip=*) ip="${a#mb.ip=}";; mb.gw=*) gw="${a#mb.gw=}";; esac
done
ip link set lo up
ip link set eth0 up
ip addr add "$ip" dev eth0
[ -n "$gw" ] && ip route add default via "$gw"
echo "migbench-init: eth0 $ip${gw:+ via $gw}"
while true; do
  /sbin/migbench-agent
  echo "migbench-init: agent exited $?, restarting"
  sleep 1
done
"#;

/// A built guest image.
#[derive(Debug, Clone)]
pub struct GuestImage {
    /// Content hash (first 16 hex digits of SHA-256).
    pub id: String,
    /// Kernel image.
    pub kernel: PathBuf,
    /// Initramfs (gzip'd cpio).
    pub initrd: PathBuf,
    /// Kernel package it came from.
    pub kernel_package: String,
}

/// Errors building the image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The agent binary is missing.
    #[error("Guest agent binary not found (looked in: {looked}). Build it with `cargo build --release -p migbench-probes --bin migbench-agent --target x86_64-unknown-linux-musl` (after `rustup target add x86_64-unknown-linux-musl`), or pass --agent PATH / set MIGBENCH_AGENT")]
    NoAgent {
        /// Paths tried.
        looked: String,
    },
    /// The agent is not statically linked.
    #[error("Guest agent {0} is not a static binary: build it for x86_64-unknown-linux-musl")]
    NotStatic(PathBuf),
    /// A file could not be read or written.
    #[error("Cannot access {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A command failed (apt-get, dpkg-deb, cpio).
    #[error("Building the guest image failed")]
    Command(#[from] CommandError),
    /// Something expected is missing.
    #[error("{0}")]
    Missing(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where migbench caches kernels and images: `$MIGBENCH_CACHE`, else
/// `$XDG_CACHE_HOME/migbench`, else `~/.cache/migbench`.
pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("MIGBENCH_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("migbench");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/migbench")
}

/// Find the agent: explicit path, `$MIGBENCH_AGENT`, or the musl release
/// build under `$CARGO_TARGET_DIR` / `./target`.
pub fn find_agent(explicit: Option<&Path>) -> Result<PathBuf, ImageError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = explicit {
        candidates.push(p.to_owned());
    } else {
        if let Some(p) = std::env::var_os("MIGBENCH_AGENT") {
            candidates.push(PathBuf::from(p));
        }
        let rel = "x86_64-unknown-linux-musl/release/migbench-agent";
        if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
            candidates.push(PathBuf::from(t).join(rel));
        }
        candidates.push(PathBuf::from("target").join(rel));
        if let Ok(exe) = std::env::current_exe() {
            // target/release/migbench -> target/<triple>/release/migbench-agent
            if let Some(t) = exe.parent().and_then(Path::parent) {
                candidates.push(t.join(rel));
            }
        }
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| ImageError::NoAgent {
            looked: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// True if the ELF file has no program interpreter (statically linked).
fn is_static_elf(bytes: &[u8]) -> bool {
    // ELF64 little-endian: e_phoff at 0x20, e_phentsize at 0x36, e_phnum at 0x38.
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return false;
    }
    let u16at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16at(0x36), u16at(0x38));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        // PT_INTERP = 3
        bytes
            .get(o..o + 4)
            .map(|t| u32::from_le_bytes(t.try_into().unwrap()) != 3)
            .unwrap_or(false)
    })
}

/// The extracted cloud kernel: (package name, root of the extracted tree).
fn kernel_tree(cache: &Path) -> Result<(String, PathBuf), ImageError> {
    let kdir = cache.join("kernel");
    fs::create_dir_all(&kdir).map_err(io(&kdir))?;
    // Prefer the package apt currently points at; fall back to what is cached
    // (works offline).
    let wanted = run("apt-cache", &["depends", "linux-image-cloud-amd64"])
        .ok()
        .and_then(|out| {
            out.lines()
                .filter_map(|l| l.trim().strip_prefix("Depends: "))
                .find(|p| p.starts_with("linux-image-") && p.ends_with("-cloud-amd64"))
                .map(str::to_string)
        });
    let cached_debs = || -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(&kdir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "deb"))
            .collect();
        v.sort();
        v
    };
    let deb = match &wanted {
        Some(pkg) => match cached_debs().into_iter().find(|d| d.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&format!("{pkg}_")))) {
            Some(d) => d,
            None => {
                let status = std::process::Command::new("apt-get")
                    .args(["download", pkg])
                    .current_dir(&kdir)
                    .output()
                    .map_err(io(&kdir))?;
                if !status.status.success() {
                    return Err(ImageError::Missing(format!(
                        "`apt-get download {pkg}` failed: {}",
                        String::from_utf8_lossy(&status.stderr).trim()
                    )));
                }
                cached_debs()
                    .into_iter()
                    .find(|d| d.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&format!("{pkg}_"))))
                    .ok_or_else(|| ImageError::Missing(format!("apt-get download {pkg} left no .deb in {}", kdir.display())))?
            }
        },
        None => cached_debs().pop().ok_or_else(|| {
            ImageError::Missing("No linux-image-*-cloud-amd64 package known to apt and none cached: run `apt-get update`".into())
        })?,
    };
    let name = deb.file_stem().unwrap().to_string_lossy().into_owned();
    let tree = kdir.join(&name);
    if !tree.join("boot").is_dir() {
        let tmp = kdir.join(format!("{name}.partial"));
        let _ = fs::remove_dir_all(&tmp);
        run(
            "dpkg-deb",
            &["-x", &deb.to_string_lossy(), &tmp.to_string_lossy()],
        )?;
        fs::rename(&tmp, &tree).map_err(io(&tree))?;
    }
    Ok((name, tree))
}

fn find_one(dir: &Path, prefix: &str) -> Result<PathBuf, ImageError> {
    fs::read_dir(dir)
        .map_err(io(dir))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .ok_or_else(|| ImageError::Missing(format!("No {prefix}* in {}", dir.display())))
}

/// Build (or reuse) the guest image for this agent binary.
pub fn build(agent: &Path) -> Result<GuestImage, ImageError> {
    let cache = cache_dir();
    let agent_bytes = fs::read(agent).map_err(io(agent))?;
    if !is_static_elf(&agent_bytes) {
        return Err(ImageError::NotStatic(agent.to_owned()));
    }
    let busybox = Path::new("/bin/busybox");
    let busybox_bytes = fs::read(busybox).map_err(|_| {
        ImageError::Missing("/bin/busybox is missing: apt-get install busybox-static".into())
    })?;
    if !is_static_elf(&busybox_bytes) {
        return Err(ImageError::Missing(
            "/bin/busybox is not static: apt-get install busybox-static".into(),
        ));
    }
    let (package, tree) = kernel_tree(&cache)?;
    let kernel = find_one(&tree.join("boot"), "vmlinuz-")?;
    let moddir = find_one(&tree.join("lib/modules"), "")?.join("kernel");

    let mut h = Sha256::new();
    h.update(package.as_bytes());
    h.update(INIT_SCRIPT.as_bytes());
    h.update(&busybox_bytes);
    h.update(&agent_bytes);
    for m in MODULES {
        h.update(m.as_bytes());
    }
    let id: String = h
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();

    let dir = cache.join("images").join(&id);
    let image = GuestImage {
        id: id.clone(),
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.gz"),
        kernel_package: package.clone(),
    };
    if image.kernel.is_file() && image.initrd.is_file() {
        return Ok(image);
    }
    let tmp = cache
        .join("images")
        .join(format!("{id}.partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let root = tmp.join("root");
    for d in [
        "bin",
        "sbin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "etc",
        "lib/modules",
    ] {
        fs::create_dir_all(root.join(d)).map_err(io(&root))?;
    }
    let copy = |from: &Path, to: &Path| fs::copy(from, to).map(|_| ()).map_err(io(from));
    copy(busybox, &root.join("bin/busybox"))?;
    copy(agent, &root.join("sbin/migbench-agent"))?;
    let mut order = String::new();
    for m in MODULES {
        let src = moddir.join(format!("{m}.ko"));
        let name = Path::new(m)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        copy(&src, &root.join(format!("lib/modules/{name}.ko")))?;
        order.push_str(&name);
        order.push('\n');
    }
    fs::write(root.join("lib/modules/order"), order).map_err(io(&root))?;
    let init = root.join("init");
    fs::write(&init, INIT_SCRIPT).map_err(io(&init))?;
    use std::os::unix::fs::PermissionsExt;
    for f in [
        &init,
        &root.join("bin/busybox"),
        &root.join("sbin/migbench-agent"),
    ] {
        fs::set_permissions(f, fs::Permissions::from_mode(0o755)).map_err(io(f))?;
    }
    let script = format!(
        "cd '{}' && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -1 > ../initrd.gz",
        root.display()
    );
    run("sh", &["-c", &script])?;
    copy(&kernel, &tmp.join("vmlinuz"))?;
    fs::remove_dir_all(&root).map_err(io(&root))?;
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&tmp, &dir).map_err(io(&dir))?;
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_detection_tells_busybox_static_from_dynamic_binaries() {
        let sh = fs::read("/bin/sh").unwrap();
        assert!(!is_static_elf(&sh), "/bin/sh is dynamic");
        assert!(!is_static_elf(
            b"not an elf at all, clearly not static........................."
        ));
    }
}
