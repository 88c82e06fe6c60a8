//! Disk images of a run: for `shared` one image both hosts open (the
//! destination keeps it inactive until switchover, as QEMU does for an
//! incoming migration); for `block` a source image and an empty
//! destination image of the same size, filled by the NBD mirror. Images
//! live in the run's private directory and go with it.

use std::path::{Path, PathBuf};

use migbench_model::units::{DiskFormat, Size, StorageMode};

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

/// Create the images a run needs; `None` for `storage.mode = none`.
pub fn prepare(
    dir: &Path,
    mode: StorageMode,
    format: DiskFormat,
    size: Size,
) -> Result<Option<Disks>, CommandError> {
    let ext = format.to_string();
    let disks = match mode {
        StorageMode::None => return Ok(None),
        StorageMode::Shared => {
            let img = dir.join(format!("shared.{ext}"));
            create(&img, format, size)?;
            Disks {
                mode,
                format,
                src: img.clone(),
                dst: img,
            }
        }
        StorageMode::Block => {
            let (src, dst) = (
                dir.join(format!("src.{ext}")),
                dir.join(format!("dst.{ext}")),
            );
            create(&src, format, size)?;
            create(&dst, format, size)?;
            Disks {
                mode,
                format,
                src,
                dst,
            }
        }
    };
    Ok(Some(disks))
}
