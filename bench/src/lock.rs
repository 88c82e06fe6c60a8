//! One measuring migbench per host: `run` and `calibrate` hold an
//! exclusive lock (`flock` on [`LOCK_PATH`], holding the owner's pid) for
//! their lifetime, because two of them at once on a 2-core machine
//! distort each other's timings. The kernel drops the lock when the
//! process dies, however it dies.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::usage::UsageError;

/// The lock file.
pub const LOCK_PATH: &str = "/run/lock/migbench.lock";

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct HostLock(#[allow(dead_code)] Flock<File>);

/// Take the lock at `path`; when another process holds it, `Err` with its pid.
pub fn take(path: &Path) -> std::io::Result<Result<HostLock, Option<u32>>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut held) => {
            held.set_len(0)?;
            held.rewind()?;
            write!(held, "{}", std::process::id())?;
            held.sync_data()?;
            Ok(Ok(HostLock(held)))
        }
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut pid = String::new();
            file.read_to_string(&mut pid)?;
            Ok(Err(pid.trim().parse().ok()))
        }
        Err((_, e)) => Err(e.into()),
    }
}

/// The host lock, unless concurrent runs are allowed; refused (exit 2)
/// while another measuring migbench holds it.
pub fn for_measuring(allow_concurrent: bool) -> anyhow::Result<Option<HostLock>> {
    if allow_concurrent {
        return Ok(None);
    }
    match take(Path::new(LOCK_PATH))? {
        Ok(l) => Ok(Some(l)),
        Err(pid) => anyhow::bail!(UsageError(format!(
            "another migbench run or calibrate{} is measuring on this host: concurrent runs distort each other's timings; wait for it, or pass --allow-concurrent",
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("lock");
        let first = take(&path).unwrap().expect("free");
        // flock locks belong to the open file: a second open is a second holder.
        assert_eq!(take(&path).unwrap().unwrap_err(), Some(std::process::id()));
        drop(first);
        assert!(take(&path).unwrap().is_ok());
    }
}
