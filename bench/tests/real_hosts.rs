//! Real lab tests of `[hosts]`: scenarios pointed at the lab's libvirt
//! daemons as if they were remote hypervisors (`migbench lab-hosts`):
//! ping-pong of an existing domain, provisioning, a dropped connection,
//! and what cannot work refused before any run. They need root, QEMU,
//! libvirt and the guest agent (`.ci/run` provides them) and run one at a
//! time.

mod common;

use std::path::Path;
use std::time::Duration;

use common::lab_hosts::LabHosts;
use common::*;
use migbench_model::{Integrity, Outcome};

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
    lab.refuses(
        "nodomain",
        &hosts.replace("domain = \"migbench-guest\"", "domain = \"no-such-guest\""),
        &["hosts.domain", "no-such-guest", "not running"],
    );
    let dead = "qemu+unix:///system?socket=/nonexistent/libvirt-sock";
    lab.refuses(
        "nouri",
        &hosts.replace(&lab.get("dst"), dead),
        &["hosts.dst", "cannot connect"],
    );
    lab.refuses_unreachable_migration_address(
        &hosts,
        &["hosts.migration_address", "not reachable from hosts.src"],
    );

    // A migration libvirt aborts (its destination QEMU killed mid-way):
    // failed with libvirt's message, the guest answering on the source.
    let (mut child, root, dst_qemu) = lab.spawn_until_migrating(
        "aborted",
        &format!("{hosts}[migration]\nmax_bandwidth = \"4MiB/s\"\n"),
    );
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
    lab.refuses("deaddst", &hosts, &["hosts.dst", "cannot connect"]);
    lab.stop();
}

#[test]
fn host_pairs_run_in_parallel_name_their_records_and_a_dead_pair_waits_for_resume() {
    let _g = lab_lock();
    let lab = LabHosts::start();
    let (src, dst) = (lab.get("src"), lab.get("dst"));
    let (there, back) = (lab.get("migration_address"), lab.get("return_address"));
    let pair = |name: &str, (a, b): (&str, &str), (to, from): (&str, &str), ip: &str| {
        format!(
            "[[hosts.pair]]\nname = \"{name}\"\nsrc = \"{a}\"\ndst = \"{b}\"\n\
             migration_address = \"{to}\"\nreturn_address = \"{from}\"\nguest_address = \"{ip}\"\n"
        )
    };
    // Two pairs on the lab's two hosts, one each way, each with its own
    // guest; a third whose source host does not answer.
    let dead = format!(
        "qemu+unix:///system?socket={}/later/libvirt-sock",
        lab.tmp.path().display()
    );
    let text = format!(
        "repetitions = 2\n[guest]\nram = \"128MiB\"\n[lab]\naccel = \"tcg\"\n\
         [workload]\ndirty_rate = \"2MB/s\"\nworking_set = \"32MiB\"\n\
         [hosts]\n[hosts.provision]\nbridge = \"br0\"\n{}{}{}",
        pair("one", (&src, &dst), (&there, &back), "198.18.1.11"),
        pair("two", (&dst, &src), (&back, &there), "198.18.1.12"),
        pair("gone", (&dead, &dst), (&there, &back), "198.18.1.13"),
    );
    let (out, root) = lab.run("pairs", &text, "", EXIT_FAILED);
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("pair `gone` is skipped (2 runs)"), "{said}");
    assert!(said.contains("--resume"), "{said}");
    let dir = results_dir(&root, "pairs");
    let recs = records(&dir);
    let named: Vec<(&str, &str)> = recs
        .iter()
        .map(|r| (r.params.pair.as_str(), r.run_id.as_str()))
        .collect();
    assert_eq!(
        named,
        [
            ("one", "run-0000"),
            ("one", "run-0001"),
            ("two", "run-0002"),
            ("two", "run-0003")
        ]
    );
    for r in &recs {
        assert_eq!(
            (r.outcome, r.integrity),
            (Outcome::Completed, Integrity::Ok),
            "{r:?}"
        );
        // Each pair migrated its own guest, from its own source first.
        let call = run_file(&dir, &r.run_id, "migration-settings.json");
        let first = if r.params.pair == "one" {
            &there
        } else {
            &back
        };
        let to = if r.params.repetition == 0 {
            first
        } else if first == &there {
            &back
        } else {
            &there
        };
        assert!(
            call.contains(&format!("tcp://{to}")),
            "{}: {call}",
            r.run_id
        );
    }
    assert!(
        said.contains("run-0002"),
        "the table lists pair two's runs: {said}"
    );
    // In parallel: the pairs' spans of time overlap.
    let span = |pair: &str| {
        let mine = recs.iter().filter(|r| r.params.pair == pair);
        let start = mine.clone().map(|r| r.started_at).fold(f64::MAX, f64::min);
        let end = mine
            .map(|r| r.started_at + r.wall_ms.unwrap() / 1e3)
            .fold(0.0, f64::max);
        (start, end)
    };
    let ((a0, a1), (b0, b1)) = (span("one"), span("two"));
    assert!(a0 < b1 && b0 < a1, "one {a0}–{a1}, two {b0}–{b1}");

    // The report compares the pairs.
    let cmp = migbench()
        .current_dir(lab.tmp.path())
        .arg("compare")
        .arg(&dir)
        .args(["--by", "pair"])
        .exits(EXIT_OK);
    let shown = String::from_utf8_lossy(&cmp.stdout);
    assert!(shown.contains("by pair: A = one, B = two"), "{shown}");

    // A resume knows what each pair ran. While `gone` is still down,
    // nothing can run: refused, nothing recorded twice.
    let sc = lab.scenario("pairs", &text);
    let resume = |want: i32| {
        let out = lab
            .run_cmd(&sc, &root)
            .arg("--resume")
            .arg(&dir)
            .exits(want);
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
    };
    let said = resume(EXIT_REFUSED);
    assert!(
        said.contains("resume: 4 of 6 runs recorded, 2 to run"),
        "{said}"
    );
    assert!(
        said.contains("no host pair can run: pair `gone`: "),
        "{said}"
    );
    assert_eq!(records(&dir).len(), 4, "nothing run twice");
    // Once its host answers (its socket now leads to the first host), only
    // its two runs are made; the pairs that are done are neither checked
    // nor provisioned again.
    let sock = Path::new(dead.split("socket=").nth(1).unwrap());
    std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(src.split("socket=").nth(1).unwrap(), sock).unwrap();
    let said = resume(EXIT_OK);
    assert!(said.contains("pair `one`: all 2 runs recorded"), "{said}");
    assert!(said.contains("pair `two`: all 2 runs recorded"), "{said}");
    assert!(said.contains("provisioning migbench-guest-gone"), "{said}");
    assert_eq!(said.matches("provisioning").count(), 1, "{said}");
    // Its host's socket is reached through a symlink: still checked.
    assert!(said.contains("pair `gone`: hosts.src reaches"), "{said}");
    let recs = records(&dir);
    let named: Vec<&str> = recs.iter().map(|r| r.params.pair.as_str()).collect();
    assert_eq!(named, ["one", "one", "two", "two", "gone", "gone"]);
    assert!(recs[4..]
        .iter()
        .all(|r| (r.outcome, r.integrity) == (Outcome::Completed, Integrity::Ok)));

    // Both guests and their volumes are gone from both hosts.
    for h in ["src", "dst"] {
        let uri = lab.get(h);
        let domains = stdout_of("virsh", &["-c", &uri, "list", "--all", "--name"]);
        assert!(!domains.contains("migbench-guest-"), "{h}: {domains}");
        let vols = stdout_of("virsh", &["-c", &uri, "vol-list", "default"]);
        assert!(!vols.contains("migbench-"), "{h}: {vols}");
    }
    assert_eq!(lab.running_on(), vec![src], "the lab's own guest untouched");
    lab.stop();
}
