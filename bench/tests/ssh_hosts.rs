//! The ssh lab (`migbench lab-hosts --transport ssh`): `[hosts]` over
//! `qemu+ssh://` as users reach their hypervisors, each libvirt transport,
//! ssh's failures refused with what to fix, and a connection cut
//! mid-migration. Root, QEMU, libvirt, sshd and the guest agent (`.ci/run`
//! provides them); one at a time.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::lab_hosts::LabHosts;
use common::*;
use migbench_model::{Integrity, Outcome};

#[test]
fn real_hosts_over_ssh_migrate_each_transport_say_what_to_fix_and_survive_a_cut() {
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

    // Every ssh connection of the lab killed mid-migration: that run
    // fails or completes, the guest found and answering; the next one
    // starts clean and completes.
    let (mut child, root, _) = lab.spawn_until_migrating(
        "cut",
        &format!(
            "{}[migration]\nmax_bandwidth = \"8MiB/s\"\n",
            hosts.replace("[hosts]", "repetitions = 2\n[hosts]")
        ),
    );
    std::thread::sleep(Duration::from_secs(2));
    let cut = Command::new("pkill")
        .args(["-f", "GlobalKnownHostsFile=/dev/null"])
        .status()
        .unwrap();
    assert!(cut.success(), "no ssh connection to cut");
    let st = child.wait().unwrap();
    let recs = records(&results_dir(&root, "cut"));
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert!(
        matches!(recs[0].outcome, Outcome::Failed | Outcome::Completed),
        "{:?}",
        recs[0]
    );
    assert_eq!(recs[0].integrity, Integrity::Ok, "{:?}", recs[0]);
    assert_eq!(
        (recs[1].outcome, recs[1].integrity),
        (Outcome::Completed, Integrity::Ok),
        "{:?}",
        recs[1]
    );
    let want = if recs[0].outcome == Outcome::Failed {
        EXIT_FAILED
    } else {
        EXIT_OK
    };
    assert_exit(st, want, "the run with its ssh cut");
    assert_eq!(lab.running_on().len(), 1, "the guest runs on one host");
    lab.stop();
}
