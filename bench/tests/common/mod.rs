//! Helpers shared by the tests that run the `migbench` binary: run it on a
//! scenario, read its records, check nothing was left behind. Every
//! helper that runs migbench checks its exit code against the one the
//! caller names (a panic, exit 101, always fails); lab tests measure
//! timing, so they run one at a time (a shared lock).
#![allow(dead_code)]

pub mod faults;
pub mod lab_hosts;

#[allow(unused_imports)]
pub use faults::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::Mutex;

use migbench_model::RunRecord;

pub static LAB: Mutex<()> = Mutex::new(());

pub fn lab_lock() -> std::sync::MutexGuard<'static, ()> {
    LAB.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn migbench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_migbench"))
}

/// Every run finished, none failed (timed-out and aborted runs included).
pub const EXIT_OK: i32 = 0;
/// A run failed, or the command did (a full results disk, a dead QEMU).
pub const EXIT_FAILED: i32 = 1;
/// Bad input or a preflight refusal: nothing was started.
pub const EXIT_REFUSED: i32 = 2;
/// Ctrl-C: the run in flight recorded `interrupted`.
pub const EXIT_INTERRUPTED: i32 = 130;

/// A finished migbench exited `want`; a panic (101) or a signal is named
/// as such.
#[track_caller]
pub fn assert_exit(status: ExitStatus, want: i32, what: &str) {
    match status.code() {
        Some(c) if c == want => {}
        Some(101) => panic!("{what}: migbench panicked (exit 101), expected exit {want}"),
        Some(c) => panic!("{what}: exit {c}, expected exit {want}"),
        None => panic!("{what}: ended by a signal ({status}), expected exit {want}"),
    }
}

/// Run a migbench command to its end, show what it printed and check its
/// exit code: `migbench().args([..]).exits(EXIT_REFUSED)`.
pub trait Exits {
    fn exits(&mut self, want: i32) -> Output;
}

impl Exits for Command {
    #[track_caller]
    fn exits(&mut self, want: i32) -> Output {
        let out = self.output().unwrap();
        shown(&out);
        assert_exit(out.status, want, &format!("{self:?}"));
        out
    }
}

/// A `migbench run` in the background. Its exit code must be checked
/// ([`Running::wait_exit`], [`Running::wait_killed`]): dropping it
/// unchecked interrupts it (SIGINT, so it cleans up) and fails the test
/// unless the test is failing already.
#[must_use = "a run's exit code must be checked"]
pub struct Running {
    child: Child,
    checked: bool,
}

impl Running {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait (up to `limit`) for it to end; its exit code must be `want`.
    #[track_caller]
    pub fn wait_exit_within(mut self, want: i32, limit: std::time::Duration) -> ExitStatus {
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < limit,
                "migbench did not end within {limit:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        self.checked = true;
        assert_exit(status, want, "migbench run");
        status
    }

    /// Wait for it to end; its exit code must be `want`.
    #[track_caller]
    pub fn wait_exit(self, want: i32) -> ExitStatus {
        self.wait_exit_within(want, std::time::Duration::from_secs(3600))
    }

    /// SIGKILL it and check that is how it ended.
    #[track_caller]
    pub fn kill_and_wait(mut self) {
        use std::os::unix::process::ExitStatusExt;
        signal(self.id() as i32, nix::sys::signal::Signal::SIGKILL);
        let status = self.child.wait().unwrap();
        self.checked = true;
        assert_eq!(status.signal(), Some(9), "migbench run: {status}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id() as i32, nix::sys::signal::Signal::SIGINT);
            let _ = self.child.wait();
        }
        if !self.checked && !std::thread::panicking() {
            panic!("a `migbench run`'s exit code was never checked");
        }
    }
}

/// `migbench run SCENARIO --results ROOT`.
pub fn run_cmd(scenario: &Path, root: &Path) -> Command {
    let mut c = migbench();
    c.args(["run", scenario.to_str().unwrap(), "--results"])
        .arg(root);
    c
}

pub fn write_scenario(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

/// The single results directory under `root/<name>/`.
pub fn results_dir(root: &Path, name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join(name))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

pub fn records(dir: &Path) -> Vec<RunRecord> {
    std::fs::read_to_string(dir.join("runs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Run `tests/scenarios/<name>.toml` to the end; migbench must exit
/// `want` ([`EXIT_OK`], or [`EXIT_FAILED`] where a run is meant to
/// fail): its temp dir (keep it), records and results directory.
#[track_caller]
pub fn run_scenario(name: &str, want: i32) -> (tempfile::TempDir, Vec<RunRecord>, PathBuf) {
    let text = &std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/scenarios/{name}.toml")),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let sc = write_scenario(tmp.path(), name, text);
    run_cmd(&sc, &tmp.path().join("results")).exits(want);
    let dir = results_dir(&tmp.path().join("results"), name);
    let recs = records(&dir);
    (tmp, recs, dir)
}

/// `migbench run` in the background, its stderr shown.
pub fn spawn_run(scenario: &Path, results: &Path) -> Running {
    let child = run_cmd(scenario, results)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    Running {
        child,
        checked: false,
    }
}

/// Write scenario `text` as `name` in a new temp dir and start `migbench
/// run` on it: the temp dir (keep it), the results root and the process.
pub fn start_run(name: &str, text: &str) -> (tempfile::TempDir, PathBuf, Running) {
    let tmp = tempfile::tempdir().unwrap();
    let sc = write_scenario(tmp.path(), name, text);
    let root = tmp.path().join("results");
    let child = spawn_run(&sc, &root);
    (tmp, root, child)
}

/// Print what a finished command wrote (shown when a test fails).
pub fn shown(out: &std::process::Output) -> &std::process::Output {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    out
}

/// What a command printed on stdout.
pub fn stdout_of(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// Nothing of a finished migbench process may remain.
pub fn assert_nothing_left(pid: u32) {
    let ns = stdout_of("ip", &["netns", "list"]);
    let prefix = format!("migbench-{pid}-");
    assert!(!ns.contains(&prefix), "namespaces left: {ns}");
    let tmp_left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(tmp_left.is_empty(), "temp dirs left: {tmp_left:?}");
    let ps = stdout_of("ps", &["-eo", "args"]);
    let qemus: Vec<&str> = ps
        .lines()
        .filter(|l| l.contains("qemu-system") && l.contains(&format!("/tmp/{prefix}")))
        .collect();
    assert!(qemus.is_empty(), "QEMU processes left: {qemus:?}");
    let daemons: Vec<&str> = ps
        .lines()
        .filter(|l| l.starts_with("libvirtd") && l.contains(&format!("/tmp/{prefix}")))
        .collect();
    assert!(daemons.is_empty(), "libvirt daemons left: {daemons:?}");
}

/// The run of `[[variant]]` `name`.
pub fn by_variant<'a>(recs: &'a [RunRecord], name: &str) -> &'a RunRecord {
    recs.iter()
        .find(|r| r.params.variant == name)
        .unwrap_or_else(|| panic!("no run of variant {name}"))
}

/// `migbench report DIR --reports ROOT --name NAME` (must exit 0): the report's directory.
pub fn report(dir: &Path, reports: &Path, name: &str) -> PathBuf {
    migbench()
        .arg("report")
        .arg(dir)
        .arg("--reports")
        .arg(reports)
        .args(["--name", name])
        .exits(EXIT_OK);
    reports.join(name)
}

/// A raw file of run `run_id` in results directory `dir`.
pub fn run_file(dir: &Path, run_id: &str, file: &str) -> String {
    std::fs::read_to_string(dir.join("runs").join(run_id).join(file)).unwrap()
}

/// The switchover's reply gap in run-0000's probe series `file`
/// (`probes.csv`, `service/icmp.csv`) at `interval_ms` probes, by the
/// record's rule: the last gap above the threshold begun before the
/// migration was seen complete.
pub fn switchover_gap(
    dir: &Path,
    file: &str,
    interval_ms: f64,
) -> migbench_pure::outage::OutageWindow {
    use migbench_pure::outage::{gap_before, outage_threshold_ms};
    let timeline: migbench::migrate::record::Timeline =
        serde_json::from_str(&run_file(dir, "run-0000", "timeline.json")).unwrap();
    let completed = timeline.watched.at.completed_ms.expect("completed");
    let events = migbench_model::record::read_probes_csv(&run_file(dir, "run-0000", file)).unwrap();
    let mut arrivals: Vec<f64> = events.iter().filter_map(|e| e.recv_ms).collect();
    arrivals.sort_by(f64::total_cmp);
    gap_before(&arrivals, outage_threshold_ms(interval_ms), completed)
        .expect("a reply gap at switchover")
}

/// Send `sig` to process `pid` (it must exist).
pub fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
}

/// SIGKILL the process whose pid a pid file holds.
pub fn kill_pidfile(pidfile: &Path) {
    let pid: i32 = std::fs::read_to_string(pidfile)
        .unwrap_or_else(|e| panic!("{}: {e}", pidfile.display()))
        .trim()
        .parse()
        .unwrap();
    signal(pid, nix::sys::signal::Signal::SIGKILL);
}

/// `migbench run SCENARIO --results ROOT --resume DIR`, to the end; it
/// must exit `want`.
#[track_caller]
pub fn resume(scenario: &Path, root: &Path, dir: &Path, want: i32) -> Output {
    run_cmd(scenario, root).arg("--resume").arg(dir).exits(want)
}

/// Every record completed (the records are shown when one did not).
pub fn assert_all_completed(recs: &[RunRecord]) {
    assert!(
        recs.iter()
            .all(|r| r.outcome == migbench_model::Outcome::Completed),
        "{recs:?}"
    );
}

/// Render a page in headless Chromium; return the fraction of pixels that
/// are not (near) white.
pub fn screenshot_ink(page: &Path, png: &Path) -> f64 {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs (apt-get install chromium)");
    assert!(
        png.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoder = png::Decoder::new(std::fs::File::open(png).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = info.color_type.samples();
    let data = &buf[..info.buffer_size()];
    let inked = data
        .chunks(px)
        .filter(|p| p.iter().take(3).any(|&c| c < 200))
        .count();
    inked as f64 / (data.len() / px) as f64
}

/// `migbench calibrate ARGS --json FILE` (must exit 0): its stdout and the
/// rows of its JSON.
pub fn calibrate_json(args: &[&str]) -> (String, Vec<serde_json::Value>) {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("cal.json");
    let out = migbench()
        .arg("calibrate")
        .args(args)
        .arg("--json")
        .arg(&json)
        .exits(EXIT_OK);
    let rows = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (String::from_utf8_lossy(&out.stdout).into_owned(), rows)
}

/// Wait (up to 180 s) until the one results directory under
/// `root/<name>/` has its first run recorded; that directory.
pub fn first_run_recorded(root: &Path, name: &str) -> PathBuf {
    let start = std::time::Instant::now();
    loop {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(180),
            "run 0 never finished"
        );
        if let Ok(mut d) = std::fs::read_dir(root.join(name)) {
            if let Some(Ok(e)) = d.next() {
                if std::fs::read_to_string(e.path().join("runs.jsonl"))
                    .is_ok_and(|s| s.lines().count() == 1)
                {
                    return e.path();
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The migration poll interval (ms) of scenario `name` as
/// [`run_scenario`] wrote it into `tmp`: how late a policy may act.
pub fn poll_ms(tmp: &Path, name: &str) -> f64 {
    let sc = migbench_model::Scenario::load(&tmp.join(format!("{name}.toml"))).unwrap();
    sc.migration.poll_interval.0.as_secs_f64() * 1e3
}

/// Nova's downtime stepping as it happened: intervention `n` (step
/// `n + 1`) sets `base + (limit − base)/steps · (n + 1)` and comes no
/// sooner than its schedule (`delay · 2 GiB · (n + 1)`, small guests
/// counting as 2 GiB) and no later than one poll plus 200 ms of
/// scheduling slack after it.
#[track_caller]
pub fn assert_on_nova_schedule(r: &RunRecord, delay_ms: f64, steps: f64, limit_ms: f64, poll: f64) {
    let base = limit_ms / steps;
    for (n, i) in r.interventions.iter().enumerate() {
        eprintln!(
            "downtime step {}: {:?} ms at {:.0} ms",
            n + 1,
            i.value,
            i.t_ms
        );
        let step = (n + 1) as f64;
        assert_eq!(i.action, migbench_model::record::Action::SetDowntimeLimit);
        assert_eq!(i.value, Some(base + (limit_ms - base) / steps * step));
        let due = delay_ms * 2.0 * step;
        assert!(
            (due..=due + poll + 200.0).contains(&i.t_ms),
            "step {step} at {} ms, due at {due} ms (poll {poll} ms)",
            i.t_ms
        );
    }
}

/// When the no-progress policy's clock started for the abort
/// `abort` of run `r` (ms after `migrate`, the interventions' clock): the
/// first `active` sample of `progress.jsonl` at which remaining RAM
/// reached the low it then never went below — the policy's own rule
/// replayed on what it saw.
pub fn no_progress_since_ms(
    dir: &Path,
    r: &RunRecord,
    abort: &migbench_model::record::Intervention,
) -> f64 {
    // Samples are stamped on the run's clock, interventions from `migrate`;
    // the abort's own sample ties the two.
    let offset = abort.state.t_ms - abort.t_ms;
    let mut low: Option<(u64, f64)> = None;
    for l in run_file(dir, &r.run_id, "progress.jsonl").lines() {
        let s: migbench_model::ProgressSample = serde_json::from_str(l).unwrap();
        if s.t_ms > abort.state.t_ms {
            break;
        }
        if s.status != "active" {
            continue;
        }
        match low {
            Some((l, _)) if s.remaining >= l => {}
            _ => low = Some((s.remaining, s.t_ms - offset)),
        }
    }
    low.expect("active samples before the abort").1
}

/// How far short of libvirt's pause what the probe sees may fall, ms.
/// libvirt stamps the resume when its event handler gets to it, a few ms
/// after the vCPUs run; the guest answers the probe once its kernel
/// (ICMP) or its agent (UDP) runs. Which comes first varies under load:
/// CI saw the probe's outage 1.7 ms short of libvirt's with ICMP
/// (2026-11-24), 1.4 ms short with UDP (2026-12-06: 267.6 ms against
/// 269), and the switchover's outage in the libvirt fault test 2.3 ms
/// short (2026-12-06: 344.7 ms against 347), where 1 ms was allowed.
pub const LIBVIRT_STAMP_SLACK_MS: f64 = 5.0;

/// libvirt's downtime (stop to resume) is inside what the client sees,
/// within [`LIBVIRT_STAMP_SLACK_MS`] of libvirt's own lateness in
/// stamping the resume.
pub fn probe_sees_libvirts_downtime(r: &RunRecord) {
    let (l, p) = (
        r.downtime_libvirt_ms.expect("libvirt reports its downtime"),
        r.downtime_probe_ms.unwrap(),
    );
    assert!(l > 0.0, "{r:?}");
    let slack = LIBVIRT_STAMP_SLACK_MS;
    assert!(p >= l - slack, "probe downtime {p} below libvirt's {l}");
    let net = r
        .downtime_libvirt_net_ms
        .expect("and without the clock offset");
    assert!(net <= l + 1.0 && net > 0.0, "downtime_net {net} vs {l}");
}

/// A refused run (exit 2, checked where it ran): `what` in the message,
/// no results written.
pub fn refused(out: &std::process::Output, root: &Path, name: &str, what: &[&str]) {
    assert_eq!(out.status.code(), Some(EXIT_REFUSED));
    let err = String::from_utf8_lossy(&out.stderr);
    for w in what {
        assert!(err.contains(w), "`{w}` not in: {err}");
    }
    assert!(!root.join(name).exists(), "a refused run wrote results");
}
