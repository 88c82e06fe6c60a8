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
use migbench::lab::sshd::{USER_WITHOUT_HELPER, USER_WITHOUT_LIBVIRT};
use migbench_model::{Integrity, Outcome};

#[test]
fn real_hosts_over_ssh_migrate_each_transport_say_what_to_fix_and_survive_a_cut() {
    let _g = lab_lock();
    let privsep = Path::new("/run/sshd").exists();
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
    lab.refuses(
        "refused",
        &hosts.replace(key, other.to_str().unwrap()),
        &[
            "hosts.src",
            "cannot connect to root@198.18.1.2 over ssh: the host refused the key",
        ],
    );
    let known = Path::new(key).with_file_name("known_hosts");
    let saved = std::fs::read_to_string(&known).unwrap();
    std::fs::write(&known, "").unwrap();
    lab.refuses(
        "unknown",
        &hosts,
        &["root@198.18.1.2 over ssh: the host's key is not in known_hosts"],
    );
    // The source host's key changed (another key known for its address).
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_pub: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    let changed: String = saved
        .lines()
        .map(|l| match l.strip_prefix("198.18.1.2 ") {
            Some(_) => format!("198.18.1.2 {}\n", other_pub.join(" ")),
            None => format!("{l}\n"),
        })
        .collect();
    assert_ne!(changed, saved);
    std::fs::write(&known, changed).unwrap();
    lab.refuses(
        "changed",
        &hosts,
        &["root@198.18.1.2 over ssh: the host's key differs from the one known_hosts holds"],
    );
    std::fs::write(&known, &saved).unwrap();
    // A remote user outside libvirt's group, and a host without
    // libvirt's ssh helper (the lab's users for each).
    for (user, name, fix) in [
        (
            USER_WITHOUT_LIBVIRT,
            "nolibvirt",
            "the remote user may not use libvirt's socket there",
        ),
        (
            USER_WITHOUT_HELPER,
            "nohelper",
            "the host lacks libvirt's ssh helper",
        ),
    ] {
        lab.refuses(
            name,
            &hosts.replace("root@198.18.1.2", &format!("{user}@198.18.1.2")),
            &[&format!(
                "cannot connect to {user}@198.18.1.2 over ssh: {fix}"
            )],
        );
    }
    // A migration address the source host does not reach (checked
    // from that host, over the same ssh).
    lab.refuses_unreachable_migration_address(
        &hosts,
        &[
            "hosts.migration_address = \"198.18.0.99\": not reachable from hosts.src = \"qemu+ssh://root@198.18.1.2/",
        ],
    );
    assert_eq!(lab.running_on(), vec![src.clone()], "nothing moved");

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
    if recs[0].outcome == Outcome::Failed {
        // libvirt's words, and which connection they mean.
        let err = recs[0].error.as_deref().unwrap_or_default();
        assert!(
            err.contains("End of file while reading data")
                && err.contains("the connection over ssh to root@198.18.1.2"),
            "{err}"
        );
    }
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
    // sshd's /run/sshd goes with the lab that made it.
    assert!(
        privsep || !Path::new("/run/sshd").exists(),
        "/run/sshd left"
    );
}

/// Block migration over ssh as `virsh migrate --copy-storage-all` does
/// it: the guest's disk lives in the source host's pool only, and the
/// direct and peer-to-peer transports move it there and back with the
/// guest, memory and disk intact (a tunnel is refused: libvirt 9.0
/// copies no disk through it).
#[test]
fn real_hosts_over_ssh_copy_the_guests_disk_directly_and_peer_to_peer() {
    let _g = lab_lock();
    let privsep = Path::new("/run/sshd").exists();
    let lab = LabHosts::start_with(&["--transport", "ssh", "--disk", "64MiB"]);
    let src = lab.get("src");
    let (_, root) = lab.run(
        "block",
        &lab.table.replace(
            "[hosts]",
            "repetitions = 2\n[backend]\ntransport = [\"direct\", \"p2p\"]\n[hosts]",
        ),
        "probe = \"udp\"\n[storage]\nmode = \"block\"\ndisk_size = \"64MiB\"\n\
         [workload]\ndirty_rate = \"2MB/s\"\nworking_set = \"32MiB\"\ndisk_write_rate = \"1MB/s\"\n",
        EXIT_OK,
    );
    let recs = records(&results_dir(&root, "block"));
    assert_eq!(recs.len(), 4);
    for r in &recs {
        eprintln!(
            "{}: {} disk {:?} bytes in {:?} ms, memory {:?}, disk {:?}",
            r.params.transport,
            r.outcome,
            r.disk_bytes,
            r.disk_time_ms,
            r.integrity,
            r.disk_integrity
        );
        assert_eq!(
            (r.outcome, r.integrity, r.disk_integrity),
            (Outcome::Completed, Integrity::Ok, Integrity::Ok),
            "{r:?}"
        );
    }
    assert_eq!(lab.running_on(), vec![src], "back where it started");
    lab.stop();
    // sshd's /run/sshd goes with the lab that made it.
    assert!(
        privsep || !Path::new("/run/sshd").exists(),
        "/run/sshd left"
    );
}
