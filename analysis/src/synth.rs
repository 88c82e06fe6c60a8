//! Synthetic results directories for the analyzer's benchmark and tests.
//!
//! [`generate`] writes a results directory shaped like `migbench run`'s:
//! a manifest over a matrix of link rate {100mbit, 1gbit} × dirty rate
//! {0, 2, 8, 20 MB/s} × repetitions, one `runs.jsonl` line per run and a
//! `probes.csv` per run. The numbers follow a simple pre-copy model
//! (time = non-zero RAM / (link − dirty rate), with multiplicative noise;
//! a dirty rate at or above the link times out) and a deterministic
//! xorshift generator, so a given `(runs, probes_per_run, seed)` always
//! gives the same files. They are plausible, not measurements: never put
//! them in a report.

use std::io::Write;
use std::path::Path;

use migbench_model::record::{write_probes_csv, RttSummary};
use migbench_model::{expand, Integrity, Manifest, Outcome, ProbeEvent, RunRecord, Scenario};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Write a synthetic results directory into `dir` with about `runs` runs
/// (rounded to a multiple of 8) of `probes_per_run` probes each.
pub fn generate(dir: &Path, runs: usize, probes_per_run: usize, seed: u64) -> std::io::Result<()> {
    let reps = runs.div_ceil(8).max(1);
    let text = format!(
        "repetitions = {reps}\n[guest]\nram = \"1GiB\"\n[workload]\ndirty_rate = [\"0\", \"2MB/s\", \"8MB/s\", \"20MB/s\"]\n[link]\nrate = [\"100mbit\", \"1gbit\"]\n"
    );
    let sc = Scenario::parse(Path::new("synthetic.toml"), &text).map_err(std::io::Error::other)?;
    let matrix = expand(&sc);
    let manifest = Manifest {
        scenario_name: "synthetic".into(),
        scenario_path: "synthetic.toml".into(),
        scenario_text: text.clone(),
        scenario_sha256: String::new(),
        matrix: matrix.clone(),
        varying: vec!["dirty_rate".into(), "link_rate".into()],
        host_kernel: "synthetic".into(),
        host_name: "synthetic".into(),
        qemu_version: "synthetic".into(),
        accel: "none".into(),
        guest_image: "none".into(),
        qemu_ram_padding_kib: 0,
        git_revision: "synthetic".into(),
        migbench_version: env!("CARGO_PKG_VERSION").into(),
        started_at: 0.0,
    };
    std::fs::create_dir_all(dir.join("runs"))?;
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("runs.jsonl"))?);
    let mut rng = Rng(seed | 1);
    for p in &matrix {
        let mut r = RunRecord::pending(p, 0.0, "none");
        let link = p.link_rate.0 as f64 / 8.0 * 0.95;
        let dirty = p.dirty_rate.0 as f64;
        let nonzero = 300e6;
        r.zero_bytes = Some(p.ram.0 - nonzero as u64);
        let downtime = 50.0 + 250.0 * rng.next();
        if dirty < link * 0.9 {
            let secs = nonzero / (link - dirty) * (1.0 + 0.1 * rng.next());
            r.total_time_ms = Some(secs * 1e3);
            r.qemu_total_time_ms = Some(secs * 1e3 - 5.0);
            r.qemu_setup_time_ms = Some(2.0);
            r.downtime_qemu_ms = Some(downtime);
            r.downtime_probe_ms = Some(downtime + 80.0 + 60.0 * rng.next());
            let sent = nonzero * link / (link - dirty);
            r.transferred_bytes = Some(sent as u64);
            r.throughput_mbps = Some(sent * 8.0 / secs / 1e6);
            r.passes = Some(2 + (8.0 * dirty / link) as u64);
            r.integrity = Integrity::Ok;
        } else {
            r.outcome = Outcome::TimedOut;
        }
        r.rtt = RttSummary::default();
        serde_json::to_writer(&mut out, &r)?;
        out.write_all(b"\n")?;
        let rd = dir.join("runs").join(p.run_id());
        std::fs::create_dir_all(&rd)?;
        let events: Vec<ProbeEvent> = (0..probes_per_run)
            .map(|i| {
                let sent_ms = i as f64;
                let lost = i > probes_per_run / 2 && (i - probes_per_run / 2) as f64 <= downtime;
                ProbeEvent {
                    seq: i as u64,
                    sent_ms,
                    recv_ms: (!lost).then(|| sent_ms + 0.2 + 0.3 * rng.next()),
                }
            })
            .collect();
        write_probes_csv(
            std::io::BufWriter::new(std::fs::File::create(rd.join("probes.csv"))?),
            &events,
        )?;
    }
    out.flush()
}
