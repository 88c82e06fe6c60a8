//! Helpers shared by the real lab tests: run the `migbench` binary on a
//! scenario, read its records, check nothing was left behind. Lab tests
//! measure timing, so they run one at a time (a shared lock).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use migbench_model::RunRecord;

pub static LAB: Mutex<()> = Mutex::new(());

pub fn lab_lock() -> std::sync::MutexGuard<'static, ()> {
    LAB.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn migbench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_migbench"))
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

/// Run `tests/scenarios/<name>.toml` to the end: its temp dir (keep it),
/// records and results directory.
pub fn run_scenario(name: &str) -> (tempfile::TempDir, Vec<RunRecord>, PathBuf) {
    let text = &std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/scenarios/{name}.toml")),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let sc = write_scenario(tmp.path(), name, text);
    let out = run_cmd(&sc, &tmp.path().join("results")).output().unwrap();
    shown(&out);
    let dir = results_dir(&tmp.path().join("results"), name);
    let recs = records(&dir);
    (tmp, recs, dir)
}

/// `migbench run` in the background, its stderr shown.
pub fn spawn_run(scenario: &Path, results: &Path) -> std::process::Child {
    run_cmd(scenario, results)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Write scenario `text` as `name` in a new temp dir and start `migbench
/// run` on it: the temp dir (keep it), the results root and the process.
pub fn start_run(name: &str, text: &str) -> (tempfile::TempDir, PathBuf, std::process::Child) {
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

/// `migbench report DIR --reports ROOT --name NAME` (must succeed): the report's directory.
pub fn report(dir: &Path, reports: &Path, name: &str) -> PathBuf {
    let out = migbench()
        .arg("report")
        .arg(dir)
        .arg("--reports")
        .arg(reports)
        .args(["--name", name])
        .output()
        .unwrap();
    assert!(shown(&out).status.success());
    reports.join(name)
}

/// A raw file of run `run_id` in results directory `dir`.
pub fn run_file(dir: &Path, run_id: &str, file: &str) -> String {
    std::fs::read_to_string(dir.join("runs").join(run_id).join(file)).unwrap()
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

/// `migbench run SCENARIO --results ROOT --resume DIR`, to the end.
pub fn resume(scenario: &Path, root: &Path, dir: &Path) -> std::process::Output {
    run_cmd(scenario, root)
        .arg("--resume")
        .arg(dir)
        .output()
        .unwrap()
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

/// `migbench calibrate ARGS --json FILE` (must succeed): its stdout and the
/// rows of its JSON.
pub fn calibrate_json(args: &[&str]) -> (String, Vec<serde_json::Value>) {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("cal.json");
    let out = migbench()
        .arg("calibrate")
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(shown(&out).status.success());
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
