//! Disk images of a run: for `shared` one image both hosts open (the
//! destination keeps it inactive until switchover, as QEMU does for an
//! incoming migration); for `block` a source image and an empty
//! destination image of the same size, filled by the NBD mirror. Images
//! live in the run's private directory and go with it.

use std::path::{Path, PathBuf};

use migbench_model::settings::{DiskFormat, StorageMode};
use migbench_model::units::Size;

use crate::lab::net::{STORAGE_IP, STORAGE_NBD_PORT};
use crate::system::{run, CommandError};

/// Images of one run.
#[derive(Debug, Clone)]
pub struct Disks {
    /// How the disk moves.
    pub mode: StorageMode,
    /// Format of both images.
    pub format: DiskFormat,
    /// The source host's image.
    pub src: PathBuf,
    /// The destination host's image (the same file for `shared`).
    pub dst: PathBuf,
}

impl Disks {
    /// The image a side opens.
    pub fn image(&self, source: bool) -> &Path {
        if source {
            &self.src
        } else {
            &self.dst
        }
    }
}

fn create(path: &Path, format: DiskFormat, size: Size) -> Result<(), CommandError> {
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            &format.to_string(),
            &path.to_string_lossy(),
            &size.0.to_string(),
        ],
    )
    .map(|_| ())
}

/// A raw image of `size` whose first `base` bytes hold the guest agent's
/// block pattern at the base generation (what it verifies after migration).
fn write_base(path: &Path, size: Size, base: Size, block: u64) -> std::io::Result<()> {
    use std::io::Write;
    let f = std::fs::File::create(path)?;
    f.set_len(size.0)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut buf = vec![0u8; block as usize];
    for i in 0..base.0 / block {
        migbench_pure::tags::render_block(&mut buf, i, migbench_pure::tags::BASE_GENERATION);
        w.write_all(&buf)?;
    }
    w.flush()
}

/// Start qemu-storage-daemon in the storage host's namespace, serving the
/// image over NBD at [`STORAGE_IP`]:[`STORAGE_NBD_PORT`], and wait until it
/// accepts connections from the source host. Killed on drop; the namespace
/// teardown removes it too.
pub async fn serve_nbd(
    disks: &Disks,
    storage_ns: &str,
    src_ns: &str,
    run_dir: &Path,
    log_dir: &Path,
) -> anyhow::Result<tokio::process::Child> {
    use anyhow::Context;
    let log = std::fs::File::create(log_dir.join("qemu-storage-daemon.log"))?;
    let child = tokio::process::Command::new("ip")
        .args(["netns", "exec", storage_ns, "qemu-storage-daemon"])
        .arg("--blockdev")
        .arg(format!(
            "driver=file,filename={},node-name=file0,cache.direct=on",
            disks.src.display()
        ))
        .arg("--blockdev")
        .arg(format!(
            "driver={},file=file0,node-name=disk0",
            disks.format
        ))
        .arg("--nbd-server")
        .arg(format!(
            "addr.type=inet,addr.host={STORAGE_IP},addr.port={STORAGE_NBD_PORT}"
        ))
        .arg("--export")
        .arg("type=nbd,id=export0,node-name=disk0,name=disk0,writable=on")
        .arg("--pidfile")
        .arg(run_dir.join("qsd.pid"))
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting qemu-storage-daemon (apt-get install qemu-system-common)")?;
    let addr = std::net::SocketAddr::from((STORAGE_IP, STORAGE_NBD_PORT));
    let start = std::time::Instant::now();
    loop {
        let ok = migbench_probes::host::netns::in_netns(Some(src_ns), || {
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200))
        })
        .is_ok();
        if ok {
            return Ok(child);
        }
        if start.elapsed() > std::time::Duration::from_secs(15) {
            anyhow::bail!(
                "qemu-storage-daemon did not serve NBD within 15s; see {}",
                log_dir.join("qemu-storage-daemon.log").display()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Errors preparing images.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// qemu-img failed.
    #[error("Creating a disk image failed (apt-get install qemu-utils)")]
    Command(#[from] CommandError),
    /// Writing the base data failed.
    #[error("Writing base data into {0}")]
    Io(PathBuf, #[source] std::io::Error),
}

/// Create the images a run needs; `None` for `storage.mode = none`.
/// `base` bytes of data (in `block`-sized blocks) are on the disk from the
/// start: copied into every image that needs them, or, for
/// block-incremental, the shared backing image under both overlays.
pub fn prepare(
    dir: &Path,
    mode: StorageMode,
    format: DiskFormat,
    size: Size,
    base: Size,
    block: u64,
) -> Result<Option<Disks>, StorageError> {
    if mode == StorageMode::None {
        return Ok(None);
    }
    let ext = format.to_string();
    let path = |name: &str| dir.join(format!("{name}.{ext}"));
    let raw_base = dir.join("base.raw");
    let with_base = |img: &Path| -> Result<(), StorageError> {
        if base.0 == 0 {
            return create(img, format, size).map_err(Into::into);
        }
        write_base(&raw_base, size, base, block)
            .map_err(|e| StorageError::Io(raw_base.clone(), e))?;
        run(
            "qemu-img",
            &[
                "convert",
                "-q",
                "-f",
                "raw",
                "-O",
                &ext,
                &raw_base.to_string_lossy(),
                &img.to_string_lossy(),
            ],
        )?;
        Ok(())
    };
    let disks = match mode {
        StorageMode::None => unreachable!("handled above"),
        StorageMode::Shared | StorageMode::SharedNbd => {
            // For shared-nbd this file is what the storage host serves.
            let img = path("shared");
            with_base(&img)?;
            Disks {
                mode,
                format,
                src: img.clone(),
                dst: img,
            }
        }
        StorageMode::Block => {
            let (src, dst) = (path("src"), path("dst"));
            with_base(&src)?;
            create(&dst, format, size)?;
            Disks {
                mode,
                format,
                src,
                dst,
            }
        }
        StorageMode::BlockIncremental => {
            // The backing image "present on both hosts": one file both open read-only.
            write_base(&raw_base, size, base, block)
                .map_err(|e| StorageError::Io(raw_base.clone(), e))?;
            let (src, dst) = (dir.join("src.qcow2"), dir.join("dst.qcow2"));
            for overlay in [&src, &dst] {
                run(
                    "qemu-img",
                    &[
                        "create",
                        "-q",
                        "-f",
                        "qcow2",
                        "-b",
                        &raw_base.to_string_lossy(),
                        "-F",
                        "raw",
                        &overlay.to_string_lossy(),
                    ],
                )?;
            }
            Disks {
                mode,
                format: DiskFormat::Qcow2,
                src,
                dst,
            }
        }
    };
    Ok(Some(disks))
}
