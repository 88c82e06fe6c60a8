//! Real lab test of a run's times against the world's clock: tcpdump
//! captures the client namespace's probe traffic during a run with the
//! `icmp` service; every reply in the capture must be where the run's
//! `clock.jsonl` puts `recv_ms` on the wall clock, and the switchover's gap
//! between the guest's echo replies in the capture must be the record's
//! `downtime_icmp_ms`, at the wall time the run's series put it.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use migbench::lab::net::GUEST_IP;
use migbench::migrate::record::Timeline;
use migbench_model::{Outcome, ProbeEvent};
use migbench_probes::clock::{wall_at, WallSample};
use migbench_probes::protocol::{decode_probe, ECHO_PORT};

const SCENARIO: &str =
    "# The alignment lab test: the icmp service on one idle migration over 1 Gbit.
[guest]
ram = \"256MiB\"
[link]
rate = \"1gbit\"
[service]
kind = \"icmp\"
[probe]
after = \"3s\"
[migration]
timeout = \"60s\"
";

#[test]
fn a_packet_capture_sees_the_icmp_outage_where_clock_jsonl_puts_it() {
    let _g = lab_lock();
    let (_tmp, root, mut run) = start_run("align", SCENARIO);
    let pid = run.id();
    let ns = client_namespace(pid, &mut run);
    let pcap = root.with_file_name("client.pcap");
    let mut capture = Capture::start(&ns, &pcap);
    // Stop the capture a second after the migration was seen complete
    // (events.jsonl is written then): the reply gap has ended by then, and
    // the client's namespace (where migbench kills what runs at the end)
    // still exists for the probing window after.
    let events = wait_for(&root, "align", "runs/run-0000/events.jsonl", &mut run);
    std::thread::sleep(Duration::from_secs(1));
    let stats = capture.stop();
    eprintln!("tcpdump: {stats}");
    let ps = stdout_of("ps", &["-eo", "args"]);
    let pcap_arg = pcap.to_string_lossy();
    assert!(
        !ps.lines().any(|l| l.contains(&*pcap_arg)),
        "tcpdump left running"
    );
    run.wait_exit(EXIT_OK);
    assert_nothing_left(pid);
    let dir = events.parent().unwrap().parent().unwrap().parent().unwrap();
    let recs = records(dir);
    let r = &recs[0];
    assert_eq!(r.outcome, Outcome::Completed, "{r:?}");
    let origin = r.origin_unix.expect("origin_unix in the record");
    let timeline: Timeline =
        serde_json::from_str(&run_file(dir, "run-0000", "timeline.json")).unwrap();
    assert_eq!(
        timeline.origin_unix,
        Some(origin),
        "timeline.json and the record"
    );
    eprintln!(
        "origin_unix {origin:.6}: {:.3} s after started_at",
        origin - r.started_at
    );
    let icmp =
        migbench_model::record::read_probes_csv(&run_file(dir, "run-0000", "service/icmp.csv"))
            .unwrap();
    let interval = r.params.probe_interval.ms();
    let udp =
        migbench_model::record::read_probes_csv(&run_file(dir, "run-0000", "probes.csv")).unwrap();
    // The run's probers' replies in the capture (matched by the sequence
    // and send time in their payload).
    let clock: Vec<WallSample> = run_file(dir, "run-0000", "clock.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(clock[0].wall_ms, 0.0, "clock.jsonl starts at origin_unix");
    let origin_ns = (origin * 1e6).round() as u64 * 1000;
    let captured = captured_replies(&std::fs::read(&pcap).unwrap());
    let ours_icmp = ours(&captured, Proto::Icmp, &icmp);
    let ours_udp = ours(&captured, Proto::Udp, &udp);
    // A capture's wall time as ms since origin_unix, exact to the ns.
    let wall_ms = |c: &Reply| (c.unix_ns as i128 - origin_ns as i128) as f64 / 1e6;
    let at_ms = |c: &Reply| series_ms(&clock, wall_ms(c));
    let slew = slew_ppm(&clock);
    eprintln!(
        "wall clock against monotonic over the run: {:.0} to {:.0} ppm",
        slew.iter().copied().fold(f64::INFINITY, f64::min),
        slew.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );

    // Every reply against its arrival in icmp.csv and probes.csv.
    for (name, ours) in [("icmp.csv", &ours_icmp), ("probes.csv", &ours_udp)] {
        assert!(ours.len() > 1000, "{name}: {} replies captured", ours.len());
        let mut off: Vec<(f64, f64)> = ours
            .iter()
            .filter_map(|(c, recv)| {
                let us = (wall_ms(c) - wall_at(&clock, (*recv)?).unwrap()) * 1e3;
                Some((us.abs(), interpolation_bound_us(&clock, (*recv)?)))
            })
            .collect();
        off.sort_by(|a, b| a.0.total_cmp(&b.0));
        let max = off[off.len() - 1].0;
        eprintln!(
            "{name}: capture − clock.jsonl(recv_ms) over {} replies: |offset| median {:.2} µs, p99 {:.2} µs, max {max:.2} µs",
            off.len(),
            off[off.len() / 2].0,
            off[off.len() * 99 / 100].0,
        );
        // The probers place the kernel's receive stamp, the one tcpdump
        // sees, by its age on the monotonic clock; clock.jsonl maps that
        // back to the wall. What is left is rounding — origin_unix in
        // whole µs, the CSVs' 0.1 µs, the back-to-back clock reads — within
        // 1 µs (before the wall log, with no slew:
        // median 0.06, p99 0.16–0.17, max 0.18–0.19 µs over ~4300
        // replies, 2 runs), plus, where the slew rate changed inside a
        // 100 ms sample interval, the interpolation's bound.
        for (us, bound) in &off {
            assert!(
                us <= bound,
                "{name}: a reply {us:.2} µs off the capture (bound {bound:.2} µs)"
            );
        }
    }

    // The switchover's gap as the run saw it (the record's rule: the last
    // gap above the threshold that began before completion).
    let completed = timeline.watched.at.completed_ms.expect("completed");
    let seen = switchover_gap(dir, "service/icmp.csv", interval);
    let downtime = r.downtime_icmp_ms.expect("downtime_icmp_ms");
    // (icmp.csv keeps 0.1 µs.)
    let from_csv = seen.gap_ms() - interval / 2.0;
    assert!(
        (from_csv - downtime).abs() < 1e-3,
        "{from_csv} ms from icmp.csv, {downtime} ms recorded"
    );

    // The capture's longest reply gap around the switchover: overlapping
    // (±50 ms) the moment the migration was seen complete (the source
    // pauses before it, the destination answers after).
    let mut wall: Vec<f64> = ours_icmp.iter().map(|(c, _)| at_ms(c)).collect();
    wall.sort_by(f64::total_cmp);
    let began = timeline.watched.at.started_ms;
    assert!(
        wall.first().is_some_and(|&t| t < began)
            && wall.last().is_some_and(|&t| t > completed + 500.0),
        "the capture ({:?} – {:?} ms) does not span the migration ({began} – {completed} ms)",
        wall.first(),
        wall.last()
    );
    let (start, end) = wall
        .windows(2)
        .filter(|w| w[1] >= completed - 50.0 && w[0] <= completed + 50.0)
        .map(|w| (w[0], w[1]))
        .max_by(|a, b| (a.1 - a.0).total_cmp(&(b.1 - b.0)))
        .expect("replies around the switchover");
    let captured = end - start - interval / 2.0;
    let d_len = captured - downtime;
    let (d_start, d_end) = (start - seen.start_ms, end - seen.end_ms);
    eprintln!(
        "switchover gap: capture {captured:.3} ms, downtime_icmp_ms {downtime:.3} (diff {d_len:+.4} ms); \
         capture − series: start {d_start:+.4} ms, end {d_end:+.4} ms"
    );
    assert!(d_len.abs() <= 2.0, "gap length differs by {d_len:.3} ms");
    assert!(d_start.abs() <= 5.0, "gap start off by {d_start:.3} ms");
    assert!(d_end.abs() <= 5.0, "gap end off by {d_end:.3} ms");
}

/// A wall time (ms since origin_unix) on the run's series clock: less
/// the interpolated offset near it (the offset moves by ms a minute at
/// most, so one step from the wall time as a guess is exact to the ns).
fn series_ms(clock: &[WallSample], wall_ms: f64) -> f64 {
    wall_ms - (wall_at(clock, wall_ms).unwrap() - wall_ms)
}

/// Slew rate of each sample interval, ppm (wall against monotonic).
fn slew_ppm(clock: &[WallSample]) -> Vec<f64> {
    clock
        .windows(2)
        .map(|w| {
            let dt = w[1].t_ms - w[0].t_ms;
            ((w[1].wall_ms - w[0].wall_ms) - dt) / dt * 1e6
        })
        .collect()
}

/// How far interpolating `clock.jsonl` at `t_ms` can be off: 1 µs of
/// rounding, plus a quarter of the interval times the change of slew rate
/// around it (a rate that changes once inside an interval bends the
/// offset there; the chord misses the bend by at most that).
fn interpolation_bound_us(clock: &[WallSample], t_ms: f64) -> f64 {
    let rates = slew_ppm(clock);
    let i = clock
        .partition_point(|s| s.t_ms <= t_ms)
        .clamp(1, clock.len() - 1)
        - 1;
    let near = &rates[i.saturating_sub(1)..(i + 2).min(rates.len())];
    let spread = near.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        - near.iter().copied().fold(f64::INFINITY, f64::min);
    let len_s = (clock[i + 1].t_ms - clock[i].t_ms) / 1e3;
    1.0 + len_s / 4.0 * spread
}

/// tcpdump in a namespace writing a pcap file; stopped on drop whatever
/// happened.
struct Capture {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

impl Capture {
    /// Capture ICMP and the UDP probe on the client's bridge (the guest LAN, where the
    /// prober's replies arrive) of namespace `ns` into `file`, with ns
    /// stamps, each packet written as it comes; returns once it listens.
    /// (`-Z root`: tcpdump would drop to its own user, which cannot
    /// write in the test's private temp dir.)
    fn start(ns: &str, file: &Path) -> Capture {
        let mut child = Command::new("ip")
            .args([
                "netns", "exec", ns, "tcpdump", "-i", "br0", "-n", "-U", "-Z", "root",
            ])
            .args(["-s", "128"])
            // Immediate mode: packets reach tcpdump as they come, not in
            // blocks (a block still pending when it stops is lost).
            .args(["--immediate-mode", "--time-stamp-precision=nano", "-w"])
            .arg(file)
            .args(["icmp", "or", "udp", "port"])
            .arg(ECHO_PORT.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump runs (apt-get install tcpdump)");
        let (tx, stderr) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut c = Capture { child, stderr };
        match c.stderr.recv_timeout(Duration::from_secs(10)) {
            Ok(l) if l.contains("listening on") => c,
            other => panic!("tcpdump did not start: {other:?} {}", c.stop()),
        }
    }

    /// Stop tcpdump (SIGINT: it writes its counts); what it said last.
    fn stop(&mut self) -> String {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id() as i32, nix::sys::signal::Signal::SIGINT);
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        self.stderr.try_iter().collect::<Vec<_>>().join("; ")
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The client namespace of migbench process `pid`, once its guest LAN
/// bridge exists.
fn client_namespace(pid: u32, run: &mut Running) -> String {
    let prefix = format!("migbench-{pid}-");
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no client namespace"
        );
        assert!(run.running(), "migbench ended early");
        let list = stdout_of("ip", &["netns", "list"]);
        let ns = list
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .find(|n| n.starts_with(&prefix) && n.ends_with("-client"));
        if let Some(ns) = ns {
            let bridge = Command::new("ip")
                .args(["-n", ns, "link", "show", "br0", "up"])
                .output()
                .unwrap();
            if bridge.status.success() && !bridge.stdout.is_empty() {
                return ns.to_string();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait (up to 300 s) for `file` in the one results directory under
/// `root/<name>/`; its path.
fn wait_for(root: &Path, name: &str, file: &str, run: &mut Running) -> PathBuf {
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "{file} never written"
        );
        if let Ok(mut d) = std::fs::read_dir(root.join(name)) {
            if let Some(Ok(e)) = d.next() {
                let p = e.path().join(file);
                if p.is_file() {
                    return p;
                }
            }
        }
        assert!(run.running(), "migbench ended without {file}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How a probe travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    /// ICMP echo (the `icmp` service, `service/icmp.csv`).
    Icmp,
    /// The UDP probe (`probes.csv`).
    Udp,
}

/// A reply of the guest to a probe in the capture.
#[derive(Debug, Clone, Copy)]
struct Reply {
    proto: Proto,
    /// Capture time, ns since the Unix epoch.
    unix_ns: u64,
    /// Probe sequence and send time (ns since the run's origin) from its payload.
    seq: u64,
    sent_ns: u64,
}

/// The guest's replies to probes (ICMP echo, UDP echo) in a classic pcap file
/// (µs or ns stamps, either byte order) of an Ethernet capture; a record
/// cut short at the end is ignored.
fn captured_replies(pcap: &[u8]) -> Vec<Reply> {
    assert!(pcap.len() >= 24, "no pcap header");
    let magic = u32::from_le_bytes(pcap[..4].try_into().unwrap());
    // (Little-endian magic, ns per stamp fraction unit.)
    let (le, unit) = match magic {
        0xa1b2_c3d4 => (true, 1000),
        0xa1b2_3c4d => (true, 1),
        0xd4c3_b2a1 => (false, 1000),
        0x4d3c_b2a1 => (false, 1),
        m => panic!("not a pcap file (magic {m:#x})"),
    };
    let u32_at = |b: &[u8], i: usize| {
        let w: [u8; 4] = b[i..i + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    assert_eq!(u32_at(pcap, 20), 1, "not an Ethernet capture");
    let mut out = Vec::new();
    let mut i = 24;
    while i + 16 <= pcap.len() {
        let (sec, sub, len) = (u32_at(pcap, i), u32_at(pcap, i + 4), u32_at(pcap, i + 8));
        let data = match pcap.get(i + 16..i + 16 + len as usize) {
            Some(d) => d,
            None => break,
        };
        i += 16 + len as usize;
        if let Some((proto, seq, sent_ns)) = probe_reply(data) {
            out.push(Reply {
                proto,
                unix_ns: u64::from(sec) * 1_000_000_000 + u64::from(sub) * unit,
                seq,
                sent_ns,
            });
        }
    }
    out
}

/// The probe in an Ethernet frame holding the guest's ICMP echo reply or
/// UDP echo (from its echo port).
fn probe_reply(frame: &[u8]) -> Option<(Proto, u64, u64)> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    if ip.first()? >> 4 != 4 || ip.get(12..16)? != GUEST_IP.octets() {
        return None;
    }
    let l4 = ip.get(ihl..)?;
    let (proto, payload) = match ip.get(9)? {
        1 if *l4.first()? == 0 => (Proto::Icmp, l4.get(8..)?),
        17 if l4.get(..2)? == ECHO_PORT.to_be_bytes() => (Proto::Udp, l4.get(8..)?),
        _ => return None,
    };
    let (seq, sent) = decode_probe(payload)?;
    Some((proto, seq, sent))
}

/// The captured `proto` replies of the run's prober (sequence and send
/// time as in its series `events`, first copy only), each with its
/// arrival in the series.
fn ours(replies: &[Reply], proto: Proto, events: &[ProbeEvent]) -> Vec<(Reply, Option<f64>)> {
    let mut seen = std::collections::HashSet::new();
    replies
        .iter()
        .filter(|c| c.proto == proto)
        .filter_map(|c| {
            let e = events.get(c.seq as usize)?;
            // The series keep times to 0.1 µs.
            let same = (e.sent_ms - c.sent_ns as f64 / 1e6).abs() < 1e-3;
            (same && seen.insert(c.seq)).then_some((*c, e.recv_ms))
        })
        .collect()
}
