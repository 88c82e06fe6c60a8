//! `migbench lab-hosts` driven from the real-hosts tests: two lab libvirt
//! hosts with a running guest, the `[hosts]` table that reaches them, and
//! runs made inside the client namespace.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use super::*;

/// `migbench lab-hosts`: two libvirt hosts with a running guest.
pub struct LabHosts {
    child: Option<Child>,
    /// The client namespace, where the guest's network is.
    pub ns: String,
    /// The `[hosts]` table it printed.
    pub table: String,
    pub tmp: tempfile::TempDir,
}

impl LabHosts {
    pub fn start() -> LabHosts {
        LabHosts::start_with(&[])
    }

    /// `migbench lab-hosts` with `args` beside `--logs`.
    pub fn start_with(args: &[&str]) -> LabHosts {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = migbench()
            .arg("lab-hosts")
            .args(args)
            .arg("--logs")
            .arg(tmp.path().join("logs"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut ns, mut table) = (String::new(), String::new());
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(cmd) = line.strip_prefix("# run migbench inside the client namespace: ") {
                ns = cmd.split_whitespace().nth(3).unwrap().to_string();
            } else if line.starts_with("ready") {
                break;
            } else {
                table.push_str(&line);
                table.push('\n');
            }
        }
        assert!(
            table.contains("[hosts]"),
            "lab-hosts did not start: {table}"
        );
        // Keep draining its stdout so it never blocks.
        std::thread::spawn(move || lines.for_each(drop));
        LabHosts {
            child: Some(child),
            ns,
            table,
            tmp,
        }
    }

    /// A value of the printed table.
    pub fn get(&self, key: &str) -> String {
        self.table
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
            .unwrap()
            .trim_end_matches('"')
            .to_string()
    }

    /// `migbench run` of `[hosts]` + `extra` (+ a declared 1 Gbit link)
    /// inside the client namespace; it must exit `want`.
    #[track_caller]
    pub fn run(&self, name: &str, hosts: &str, extra: &str, want: i32) -> (Output, PathBuf) {
        let sc = self.scenario(name, &format!("{hosts}{extra}"));
        let root = self.tmp.path().join("results");
        let out = self.run_cmd(&sc, &root).exits(want);
        (out, root)
    }

    /// `migbench run` of the hosts table `hosts` refused before any run
    /// (exit 2, no results), its error holding each of `what`.
    pub fn refuses(&self, name: &str, hosts: &str, what: &[&str]) {
        let (out, root) = self.run(name, hosts, "", EXIT_REFUSED);
        refused(&out, &root, name, what);
    }

    /// A migration address the source host does not reach (198.18.0.99,
    /// nobody's in the lab), refused naming the field and the host: `what`.
    pub fn refuses_unreachable_migration_address(&self, hosts: &str, what: &[&str]) {
        let hosts = hosts.replace(&self.get("migration_address"), "198.18.0.99");
        self.refuses("noroute", &hosts, what);
    }

    pub fn scenario(&self, name: &str, text: &str) -> PathBuf {
        let link = if text.contains("[link]") {
            ""
        } else {
            "[link]\nrate = \"1gbit\"\n"
        };
        write_scenario(self.tmp.path(), name, &format!("{text}{link}"))
    }

    pub fn run_cmd(&self, sc: &Path, root: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, env!("CARGO_BIN_EXE_migbench")])
            .args(["run", sc.to_str().unwrap(), "--results"])
            .arg(root);
        c
    }

    /// `migbench run` of scenario `text` in the background, once the
    /// migration has begun: the run, its results root and the
    /// destination's new guest QEMU.
    // The run is returned for the caller to wait on (or killed and
    // waited on here if the migration never begins).
    #[allow(clippy::zombie_processes)]
    pub fn spawn_until_migrating(&self, name: &str, text: &str) -> (Child, PathBuf, u32) {
        let before = guest_qemus();
        let sc = self.scenario(name, text);
        let root = self.tmp.path().join("results");
        let mut child = self
            .run_cmd(&sc, &root)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        loop {
            if let Some(p) = guest_qemus().into_iter().find(|p| !before.contains(p)) {
                return (child, root, p);
            }
            if start.elapsed() > std::time::Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no destination QEMU");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The host URIs the domain is running on.
    pub fn running_on(&self) -> Vec<String> {
        ["src", "dst"]
            .iter()
            .map(|h| self.get(h))
            .filter(|uri| {
                // From the client namespace, where an ssh lab's hosts are reached.
                stdout_of(
                    "ip",
                    &[
                        "netns", "exec", &self.ns, "virsh", "-c", uri, "list", "--name",
                    ],
                )
                .lines()
                .any(|l| l.trim() == "migbench-guest")
            })
            .collect()
    }

    /// Stop it (SIGTERM) and check it took everything with it.
    pub fn stop(mut self) {
        let child = self.child.take().unwrap();
        let pid = child.id();
        let st = terminate(child);
        assert_exit(st, EXIT_OK, "migbench lab-hosts after SIGTERM");
        assert_nothing_left(pid);
    }
}

/// A failing test stops the hosts too.
impl Drop for LabHosts {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            terminate(child);
        }
    }
}

/// SIGTERM, then wait.
pub fn terminate(mut child: Child) -> std::process::ExitStatus {
    signal(child.id() as i32, nix::sys::signal::Signal::SIGTERM);
    child.wait().unwrap()
}

/// QEMU processes of the lab's guest domain.
pub fn guest_qemus() -> Vec<u32> {
    stdout_of("pgrep", &["-f", "qemu-system.*guest=migbench-guest"])
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}
