//! Is the migration address reachable from the source host? libvirt has no
//! call for it, so migbench asks the host itself, the way the URI reaches
//! it: over ssh for `qemu+ssh://` (the user's keys, as libvirt uses them),
//! inside the daemon's network namespace for a local socket (the lab's
//! stand-in hosts), and not at all for tcp/tls transports (said so).

use std::process::Command;

/// How a host named by a libvirt URI can run a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostShell {
    /// `ssh [-p port] [-i keyfile] [user@]host` (or the URI's `command`
    /// in place of `ssh`).
    Ssh {
        /// `[user@]host`.
        target: String,
        /// `-p`.
        port: Option<String>,
        /// `-i` (the URI's `keyfile` parameter).
        keyfile: Option<String>,
        /// The ssh program libvirt runs (the URI's `command` parameter),
        /// so migbench's commands go the way libvirt's connection does.
        command: Option<String>,
    },
    /// A daemon on this machine listening on `socket`: commands run in the
    /// daemon's network namespace.
    Local {
        /// The daemon's UNIX socket.
        socket: String,
    },
    /// No way to run a command there (the reason).
    None(String),
}

/// The URI's query parameter `name`.
fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

impl HostShell {
    /// From a libvirt URI (`driver[+transport]://[user@][host][:port]/path[?query]`).
    pub fn of_uri(uri: &str) -> HostShell {
        let Some((scheme, rest)) = uri.split_once("://") else {
            return HostShell::None(format!("`{uri}` is not a URI"));
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = rest.split('/').next().unwrap_or("");
        let transport = scheme.split_once('+').map(|(_, t)| t);
        match transport {
            Some("ssh") | Some("libssh") | Some("libssh2") => {
                let (user, hostport) = match authority.rsplit_once('@') {
                    Some((u, h)) => (Some(u), h),
                    None => (None, authority),
                };
                let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
                    // [address]:port
                    let (h, p) = v6.split_once(']').unwrap_or((v6, ""));
                    (h, p.strip_prefix(':').map(str::to_string))
                } else {
                    match hostport.split_once(':') {
                        Some((h, p)) => (h, Some(p.to_string())),
                        None => (hostport, None),
                    }
                };
                HostShell::Ssh {
                    target: match user {
                        Some(u) => format!("{u}@{host}"),
                        None => host.to_string(),
                    },
                    port,
                    keyfile: query_param(query, "keyfile").map(str::to_string),
                    command: query_param(query, "command").map(str::to_string),
                }
            }
            None | Some("unix") if authority.is_empty() => {
                let default = if rest.ends_with("session") {
                    String::new()
                } else {
                    "/run/libvirt/libvirt-sock".to_string()
                };
                let socket = query_param(query, "socket")
                    .map(str::to_string)
                    .unwrap_or(default);
                if socket.is_empty() {
                    HostShell::None("a session daemon's socket is not known".into())
                } else {
                    HostShell::Local { socket }
                }
            }
            Some(t) => HostShell::None(format!(
                "the {t} transport gives migbench no shell on the host"
            )),
            None => HostShell::None(format!(
                "`{authority}` is reached without a transport migbench can run a command over"
            )),
        }
    }

    /// The command that runs `argv` on the host, or why there is none.
    fn command(&self, argv: &[&str]) -> Result<Command, String> {
        match self {
            HostShell::Ssh {
                target,
                port,
                keyfile,
                command,
            } => {
                let mut c = Command::new(command.as_deref().unwrap_or("ssh"));
                // Deadlines: 5 s to connect, and a peer silent for 3
                // keepalives 5 s apart is given up (ssh exits 255).
                c.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]);
                c.args(["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]);
                if let Some(p) = port {
                    c.args(["-p", p]);
                }
                if let Some(k) = keyfile {
                    c.args(["-i", k]);
                }
                c.arg(target).arg("--").args(argv);
                Ok(c)
            }
            HostShell::Local { socket } => {
                let pid = listener_pid(socket)?;
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/proc/{pid}/ns/net")).args(argv);
                Ok(c)
            }
            HostShell::None(why) => Err(why.clone()),
        }
    }
}

/// A process in the network namespace of the UNIX socket `path` (UNIX
/// sockets belong to a network namespace: a process's `net/unix` lists
/// those of its own, with flag 0x10000 on a listening one).
fn listener_pid(path: &str) -> Result<u32, String> {
    // The table names the path the socket was bound at: a symlink to it
    // is followed first.
    let bound = std::fs::canonicalize(path)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| path.to_string());
    let procs = std::fs::read_dir("/proc").map_err(|e| format!("/proc: {e}"))?;
    let mut seen = std::collections::HashSet::new();
    for entry in procs.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // One look per namespace.
        let Ok(ns) = std::fs::read_link(format!("/proc/{pid}/ns/net")) else {
            continue;
        };
        if !seen.insert(ns) {
            continue;
        }
        let Ok(table) = std::fs::read_to_string(format!("/proc/{pid}/net/unix")) else {
            continue;
        };
        if table.lines().any(|l| listens_on(l, &bound)) {
            return Ok(pid);
        }
    }
    Err(format!("no process listens on {path}"))
}

/// Whether a `/proc/net/unix` line is a listening socket bound to `path`.
fn listens_on(line: &str, path: &str) -> bool {
    let f: Vec<&str> = line.split_whitespace().collect();
    // Num RefCount Protocol Flags Type St Inode Path
    f.len() == 8
        && f[7] == path
        && u32::from_str_radix(f[3], 16).is_ok_and(|flags| flags & 0x10000 != 0)
}

/// What the reachability check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// The host reached the address (how it was asked).
    Reached(String),
    /// Not checked (why).
    NotChecked(String),
}

/// Whether the host at `uri` reaches `address` (one ICMP echo, 2 s).
/// `Err` only when the host was asked and the address did not answer.
pub fn reach(uri: &str, address: &str) -> Result<Reach, String> {
    let shell = HostShell::of_uri(uri);
    let ping = if address.contains(':') {
        ["ping", "-6", "-c", "1", "-W", "2", address]
    } else {
        ["ping", "-4", "-c", "1", "-W", "2", address]
    };
    let mut cmd = match shell.command(&ping) {
        Ok(c) => c,
        Err(why) => return Ok(Reach::NotChecked(why)),
    };
    let how = match &shell {
        HostShell::Ssh { target, .. } => format!("ping over ssh {target}"),
        _ => "ping in the daemon's network namespace".into(),
    };
    let out = cmd
        .output()
        .map_err(|e| format!("running {:?}: {e}", cmd.get_program()))?;
    match out.status.code() {
        Some(0) => Ok(Reach::Reached(how)),
        // ping: 1 no reply, 2 an error such as "Network is unreachable".
        Some(1) => Err(format!("{address} does not answer ({how})")),
        Some(2) => Err(format!(
            "{} ({how})",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Some(255) if matches!(shell, HostShell::Ssh { .. }) => Ok(Reach::NotChecked(format!(
            "ssh failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
        _ => Ok(Reach::NotChecked(format!(
            "{how} could not run: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_uris_give_user_host_port_and_key() {
        assert_eq!(
            HostShell::of_uri("qemu+ssh://root@hv-a/system"),
            HostShell::Ssh {
                target: "root@hv-a".into(),
                port: None,
                keyfile: None,
                command: None
            }
        );
        assert_eq!(
            HostShell::of_uri("qemu+ssh://ops@hv-b:2222/system?keyfile=/k/id&no_verify=1"),
            HostShell::Ssh {
                target: "ops@hv-b".into(),
                port: Some("2222".into()),
                keyfile: Some("/k/id".into()),
                command: None
            }
        );
        assert_eq!(
            HostShell::of_uri("qemu+ssh://root@hv-a/system?keyfile=/k/id&command=/lab/ssh"),
            HostShell::Ssh {
                target: "root@hv-a".into(),
                port: None,
                keyfile: Some("/k/id".into()),
                command: Some("/lab/ssh".into())
            }
        );
        assert_eq!(
            HostShell::of_uri("qemu+ssh://[fd00::1]:22/system"),
            HostShell::Ssh {
                target: "fd00::1".into(),
                port: Some("22".into()),
                keyfile: None,
                command: None
            }
        );
        assert_eq!(
            HostShell::of_uri("qemu+ssh://[fd00::1]/system"),
            HostShell::Ssh {
                target: "fd00::1".into(),
                port: None,
                keyfile: None,
                command: None
            }
        );
    }

    #[test]
    fn local_sockets_and_unusable_transports() {
        assert_eq!(
            HostShell::of_uri("qemu+unix:///system?socket=/tmp/x/libvirt-sock"),
            HostShell::Local {
                socket: "/tmp/x/libvirt-sock".into()
            }
        );
        assert_eq!(
            HostShell::of_uri("qemu:///system"),
            HostShell::Local {
                socket: "/run/libvirt/libvirt-sock".into()
            }
        );
        assert!(matches!(
            HostShell::of_uri("qemu+tls://hv-a/system"),
            HostShell::None(why) if why.contains("tls")
        ));
        assert!(matches!(
            HostShell::of_uri("qemu://hv-a/system"),
            HostShell::None(_)
        ));
    }

    #[test]
    fn listening_lines_of_proc_net_unix() {
        let l = "0000000000000000: 00000002 00000000 00010000 0001 01 31337 /tmp/x/libvirt-sock";
        assert!(listens_on(l, "/tmp/x/libvirt-sock"));
        assert!(!listens_on(l, "/tmp/y/libvirt-sock"));
        let client =
            "0000000000000000: 00000003 00000000 00000000 0001 03 31338 /tmp/x/libvirt-sock";
        assert!(!listens_on(client, "/tmp/x/libvirt-sock"));
    }

    #[test]
    fn a_socket_nobody_listens_on_is_not_checked() {
        let r = reach("qemu+unix:///system?socket=/nonexistent/sock", "198.18.0.2").unwrap();
        assert!(matches!(r, Reach::NotChecked(why) if why.contains("/nonexistent/sock")));
    }
}
