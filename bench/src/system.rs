//! Running host commands (`ip`, `tc`, `apt-get`, ...) with errors that name
//! the command line and carry its stderr, so an operator can re-run it.

use std::process::{Command, Stdio};

/// A host command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The program could not be started at all.
    #[error("Cannot run `{cmdline}`")]
    Spawn {
        /// The command line.
        cmdline: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The program ran and exited non-zero.
    #[error("`{cmdline}` failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        cmdline: String,
        /// Exit status.
        status: std::process::ExitStatus,
        /// Its standard error, trimmed.
        stderr: String,
    },
}

/// Run `program args...`, return its stdout; non-zero exit is an error.
pub fn run(program: &str, args: &[&str]) -> Result<String, CommandError> {
    let cmdline = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| CommandError::Spawn {
            cmdline: cmdline.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(CommandError::Failed {
            cmdline,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Like [`run`] but ignores failure (idempotent teardown steps).
pub fn run_quiet(program: &str, args: &[&str]) -> bool {
    run(program, args).is_ok()
}

/// First line of a command's stdout, or `unknown`.
pub fn first_line(program: &str, args: &[&str]) -> String {
    run(program, args)
        .ok()
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// Prefix of every namespace and temp directory migbench creates; the pid
/// of the owning process follows it (`migbench-<pid>-...`).
pub const OWNED_PREFIX: &str = "migbench-";

/// The pid of the migbench process that made a namespace or temp dir named
/// `name`, if the name is one of ours.
pub fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(OWNED_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// Whether a process with this pid exists.
pub fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether process `pid` has exited: gone, or a zombie (dead, its
/// descriptors closed, waiting to be reaped).
pub fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name's closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| matches!(state, 'Z' | 'X')),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_child_has_exited_before_it_is_reaped() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(!exited(pid) && pid_alive(pid));
        child.kill().unwrap();
        let start = std::time::Instant::now();
        while !exited(pid) {
            assert!(start.elapsed() < std::time::Duration::from_secs(5));
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // A zombie until reaped: still in /proc, but exited.
        assert!(pid_alive(pid));
        child.wait().unwrap();
        assert!(exited(pid));
    }
}
