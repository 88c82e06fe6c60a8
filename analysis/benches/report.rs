//! `migbench-analyze report` on 10,000 synthetic runs with 10 million
//! probe rows (`migbench_analysis::synth`), the binary as a user runs it:
//! load, summary, every chart as SVG and PNG, index.html. Targets: under
//! 5 s per report and an index.html under 1 MB on a 2-core machine; the
//! size is printed after the measurements.

use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion};

const RUNS: usize = 10_000;
const PROBES_PER_RUN: usize = 1_000;

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("synthetic");
    migbench_analysis::synth::generate(&dir, RUNS, PROBES_PER_RUN, 42)
        .expect("generate synthetic results");
    let reports = tmp.path().join("reports");
    let report = || {
        let out = Command::new(env!("CARGO_BIN_EXE_migbench-analyze"))
            .arg("report")
            .arg(&dir)
            .arg("--reports")
            .arg(&reports)
            .args(["--name", "bench"])
            .output()
            .expect("run migbench-analyze");
        assert!(
            out.status.success(),
            "report failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let mut g = c.benchmark_group("analysis");
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(60));
    g.bench_function("report 10k runs / 10M probes", |b| b.iter(report));
    g.finish();
    let index = reports.join("bench/index.html");
    let size = std::fs::metadata(&index).expect("index.html").len();
    println!("index.html: {:.0} KB", size as f64 / 1e3);
}

criterion_group!(benches, bench);
criterion_main!(benches);
