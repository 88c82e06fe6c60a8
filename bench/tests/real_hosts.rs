//! Real lab tests of `[hosts]`: scenarios pointed at the lab's libvirt
//! daemons as if they were remote hypervisors (`migbench lab-hosts`):
//! ping-pong of an existing domain, provisioning, a dropped connection,
//! and what cannot work refused before any run. They need root, QEMU,
//! libvirt and the guest agent (`.ci/run` provides them) and run one at a
//! time.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use migbench_model::{Integrity, Outcome};

/// `migbench lab-hosts`: two libvirt hosts with a running guest.
struct LabHosts {
    child: Option<Child>,
    /// The client namespace, where the guest's network is.
    ns: String,
    /// The `[hosts]` table it printed.
    table: String,
    tmp: tempfile::TempDir,
}

impl LabHosts {
    fn start() -> LabHosts {
        LabHosts::start_with(&[])
    }

    /// `migbench lab-hosts` with `args` beside `--logs`.
    fn start_with(args: &[&str]) -> LabHosts {
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
    fn get(&self, key: &str) -> String {
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
    fn run(&self, name: &str, hosts: &str, extra: &str, want: i32) -> (Output, PathBuf) {
        let sc = self.scenario(name, &format!("{hosts}{extra}"));
        let root = self.tmp.path().join("results");
        let out = self.run_cmd(&sc, &root).exits(want);
        (out, root)
    }

    fn scenario(&self, name: &str, text: &str) -> PathBuf {
        let link = if text.contains("[link]") {
            ""
        } else {
            "[link]\nrate = \"1gbit\"\n"
        };
        write_scenario(self.tmp.path(), name, &format!("{text}{link}"))
    }

    fn run_cmd(&self, sc: &Path, root: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, env!("CARGO_BIN_EXE_migbench")])
            .args(["run", sc.to_str().unwrap(), "--results"])
            .arg(root);
        c
    }

    /// The host URIs the domain is running on.
    fn running_on(&self) -> Vec<String> {
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
    fn stop(mut self) {
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
fn terminate(mut child: Child) -> std::process::ExitStatus {
    signal(child.id() as i32, nix::sys::signal::Signal::SIGTERM);
    child.wait().unwrap()
}

/// QEMU processes of the lab's guest domain.
fn guest_qemus() -> Vec<u32> {
    stdout_of("pgrep", &["-f", "qemu-system.*guest=migbench-guest"])
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn real_hosts_ping_pong_a_domain_direct_and_p2p_and_refuse_what_cannot_work() {
    let _g = lab_lock();
    let lab = LabHosts::start();
    let src = lab.get("src");
    let hosts = lab.table.clone();
    assert_eq!(lab.running_on(), vec![src.clone()]);

    // Two repetitions with the agent's UDP probe and a dirtying guest:
    // there and back again.
    let (_, root) = lab.run(
        "udp",
        &hosts.replace("[hosts]", "repetitions = 2\n[hosts]"),
        "probe = \"udp\"\n[workload]\ndirty_rate = \"2MB/s\"\nworking_set = \"32MiB\"\n[link]\nrate = \"1gbit\"\n",
        EXIT_OK,
    );
    let dir = results_dir(&root, "udp");
    let recs = records(&dir);
    assert_eq!(recs.len(), 2);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(
            (r.outcome, r.integrity),
            (Outcome::Completed, Integrity::Ok),
            "{r:?}"
        );
        assert_eq!(r.accel, "remote");
        assert_eq!(r.params.ram.to_string(), "256MiB", "the domain's own size");
        probe_sees_libvirts_downtime(r);
        let call = run_file(&dir, &r.run_id, "migration-settings.json");
        let to = lab.get(["migration_address", "return_address"][i]);
        assert!(call.contains(&format!("tcp://{to}")), "run {i}: {call}");
    }
    assert_eq!(lab.running_on(), vec![src.clone()], "back where it started");

    // `advise --dirty-rate measure` through libvirt: QEMU's calc-dirty-rate
    // on the running domain (idle between runs: a little background).
    let out = migbench()
        .current_dir(lab.tmp.path())
        .args([
            "advise",
            "--ram",
            "256MiB",
            "--dirty-rate",
            "measure",
            "--connect",
            &src,
        ])
        .args([
            "--domain",
            "migbench-guest",
            "--link",
            "1gbit",
            "--max-downtime",
            "300ms",
        ])
        .args(["--format", "json"])
        .exits(EXIT_OK);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["dirty_rate_source"].as_str().unwrap().contains("libvirt"),
        "{v}"
    );
    let rate = v["dirty_rate_bytes_per_s"].as_f64().unwrap();
    assert!((0.0..50e6).contains(&rate), "{v}");

    // ICMP: any guest, answered by its kernel; no agent, no integrity
    // check. Peer to peer (`virsh migrate --p2p`): the source daemon opens
    // the other host's URI itself, there and back again.
    let (_, root) = lab.run(
        "icmp",
        &hosts.replace(
            "[hosts]",
            "repetitions = 2\n[backend]\ntransport = \"p2p\"\n[hosts]",
        ),
        "probe = \"icmp\"\n",
        EXIT_OK,
    );
    let dir = results_dir(&root, "icmp");
    for r in records(&dir) {
        assert_eq!(r.outcome, Outcome::Completed, "{r:?}");
        assert_eq!(r.integrity, Integrity::NotChecked);
        assert_eq!(r.params.transport.to_string(), "p2p");
        let call = run_file(&dir, &r.run_id, "migration-settings.json");
        assert!(call.contains("\"p2p\""), "{call}");
        probe_sees_libvirts_downtime(&r);
    }
    assert_eq!(lab.running_on(), vec![src.clone()], "back where it started");

    // Refused before anything starts.
    let (out, root) = lab.run(
        "nodomain",
        &hosts.replace("domain = \"migbench-guest\"", "domain = \"no-such-guest\""),
        "",
        EXIT_REFUSED,
    );
    refused(
        &out,
        &root,
        "nodomain",
        &["hosts.domain", "no-such-guest", "not running"],
    );
    let dead = "qemu+unix:///system?socket=/nonexistent/libvirt-sock";
    let (out, root) = lab.run(
        "nouri",
        &hosts.replace(&lab.get("dst"), dead),
        "",
        EXIT_REFUSED,
    );
    refused(&out, &root, "nouri", &["hosts.dst", "cannot connect"]);
    let (out, root) = lab.run(
        "noroute",
        &hosts.replace(&lab.get("migration_address"), "198.18.0.99"),
        "",
        EXIT_REFUSED,
    );
    refused(
        &out,
        &root,
        "noroute",
        &["hosts.migration_address", "not reachable from hosts.src"],
    );

    // A migration libvirt aborts (its destination QEMU killed mid-way):
    // failed with libvirt's message, the guest answering on the source.
    let before = guest_qemus();
    let sc = lab.scenario(
        "aborted",
        &format!("{hosts}[migration]\nmax_bandwidth = \"4MiB/s\"\n"),
    );
    let root = lab.tmp.path().join("results");
    let mut child = lab
        .run_cmd(&sc, &root)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let dst_qemu = loop {
        if let Some(p) = guest_qemus().into_iter().find(|p| !before.contains(p)) {
            break p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no destination QEMU"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_secs(3));
    signal(dst_qemu as i32, nix::sys::signal::Signal::SIGKILL);
    let st = child.wait().unwrap();
    assert_exit(st, EXIT_FAILED, "a failed run exits 1");
    let r = &records(&results_dir(&root, "aborted"))[0];
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    let err = r.error.as_deref().unwrap();
    assert!(!err.contains("not answering"), "{err}");
    assert_eq!(r.integrity, Integrity::Ok, "verified on the source: {err}");
    assert_eq!(lab.running_on(), vec![src.clone()]);

    // migbench's own guest beside the existing one: its image uploaded to
    // both hosts' pools, booted, migrated there and back, then removed.
    let own = hosts
        .replace("domain = \"migbench-guest\"", "domain = \"migbench-own\"")
        .replace(&lab.get("guest_address"), "198.18.1.11")
        .replace(
            "[hosts]",
            "repetitions = 2\n[guest]\nram = \"128MiB\"\n[lab]\naccel = \"tcg\"\n[hosts]",
        );
    let (_, root) = lab.run(
        "own",
        &own,
        "[hosts.provision]\nbridge = \"br0\"\n[workload]\ndirty_rate = \"2MB/s\"\nworking_set = \"32MiB\"\n",
        EXIT_OK,
    );
    let recs = records(&results_dir(&root, "own"));
    assert_eq!(recs.len(), 2);
    for r in &recs {
        assert_eq!(
            (r.outcome, r.integrity),
            (Outcome::Completed, Integrity::Ok),
            "{r:?}"
        );
        assert_eq!(
            (r.params.ram.to_string(), r.accel.as_str()),
            ("128MiB".into(), "tcg")
        );
        probe_sees_libvirts_downtime(r);
    }
    for h in ["src", "dst"] {
        let uri = lab.get(h);
        let domains = stdout_of("virsh", &["-c", &uri, "list", "--all", "--name"]);
        assert!(!domains.contains("migbench-own"), "{h}: {domains}");
        let vols = stdout_of("virsh", &["-c", &uri, "vol-list", "default"]);
        assert!(!vols.contains("migbench-"), "{h}: {vols}");
    }
    assert_eq!(
        lab.running_on(),
        vec![src.clone()],
        "the existing guest untouched"
    );
    let (out, root) = lab.run(
        "clash",
        &own.replace("migbench-own", "migbench-guest"),
        "[hosts.provision]\nbridge = \"br0\"\n",
        EXIT_REFUSED,
    );
    refused(&out, &root, "clash", &["hosts.domain", "already exists"]);

    // A dead destination daemon.
    let dst_sock = lab.get("dst");
    let pidfile = Path::new(dst_sock.split("socket=").nth(1).unwrap())
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("libvirtd.pid");
    kill_pidfile(&pidfile);
    std::thread::sleep(Duration::from_millis(300));
    let (out, root) = lab.run("deaddst", &hosts, "", EXIT_REFUSED);
    refused(&out, &root, "deaddst", &["hosts.dst", "cannot connect"]);
    lab.stop();
}

#[test]
fn real_hosts_over_ssh_migrate_direct_p2p_and_tunnelled_and_say_what_to_fix() {
    let _g = lab_lock();
    let lab = LabHosts::start_with(&["--transport", "ssh"]);
    let src = lab.get("src");
    assert!(
        src.starts_with("qemu+ssh://root@198.18.1.2/system?keyfile="),
        "{src}"
    );
    assert_eq!(lab.running_on(), vec![src.clone()]);
    let hosts = lab.table.clone();
    // Each transport there and back again, over ssh as users migrate.
    let (out, root) = lab.run(
        "ssh",
        &hosts.replace(
            "[hosts]",
            "repetitions = 2\n[backend]\ntransport = [\"direct\", \"p2p\", \"tunnelled\"]\n[hosts]",
        ),
        "probe = \"udp\"\n[workload]\ndirty_rate = \"2MB/s\"\nworking_set = \"32MiB\"\n",
        EXIT_OK,
    );
    // The preflight's ping from each host went over the same ssh.
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("hosts.src reaches hosts.migration_address 198.18.0.2"),
        "{said}"
    );
    let recs = records(&results_dir(&root, "ssh"));
    let ran: Vec<String> = recs
        .iter()
        .map(|r| r.params.transport.to_string())
        .collect();
    assert_eq!(
        ran,
        ["direct", "direct", "p2p", "p2p", "tunnelled", "tunnelled"]
    );
    for r in &recs {
        assert_eq!(
            (r.outcome, r.integrity),
            (Outcome::Completed, Integrity::Ok),
            "{r:?}"
        );
        probe_sees_libvirts_downtime(r);
    }
    assert_eq!(lab.running_on(), vec![src.clone()], "back where it started");

    // A key the hosts do not accept, and a known_hosts without them:
    // refused before any run, naming the host and what to fix.
    let key = src
        .split("keyfile=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let other = lab.tmp.path().join("other_key");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(made.success());
    let (out, _) = lab.run(
        "refused",
        &hosts.replace(key, other.to_str().unwrap()),
        "",
        EXIT_REFUSED,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hosts.src")
            && err.contains("cannot connect to root@198.18.1.2 over ssh: the host refused the key"),
        "{err}"
    );
    let known = Path::new(key).with_file_name("known_hosts");
    let saved = std::fs::read_to_string(&known).unwrap();
    std::fs::write(&known, "").unwrap();
    let (out, _) = lab.run("unknown", &hosts, "", EXIT_REFUSED);
    std::fs::write(&known, saved).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("root@198.18.1.2 over ssh: the host's key is not in known_hosts"),
        "{err}"
    );
    lab.stop();
}
