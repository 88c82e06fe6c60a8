//! Load and summarise 100,000 synthetic runs with 100 million probe rows
//! (see `migbench_analysis::synth` for the generator; ~2.8 GB written
//! once to a temp dir, which takes about two minutes). Target: under 15 s
//! per summary and under 4 GiB peak memory on a 2-core machine; the peak
//! (VmHWM) is printed after the measurements. `MIGBENCH_BENCH_RUNS=10000`
//! measures a smaller set.

use criterion::{criterion_group, criterion_main, Criterion};
use migbench_analysis::load::load_results;
use migbench_analysis::summary::summarise;

const PROBES_PER_RUN: usize = 1_000;

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn bench(c: &mut Criterion) {
    let runs: usize = std::env::var("MIGBENCH_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("synthetic");
    migbench_analysis::synth::generate(&dir, runs, PROBES_PER_RUN, 42)
        .expect("generate synthetic results");
    let mut g = c.benchmark_group("analysis");
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(60));
    let name = format!(
        "load+summarise {runs} runs / {}M probes",
        runs * PROBES_PER_RUN / 1_000_000
    );
    g.bench_function(name, |b| {
        b.iter(|| {
            let set = load_results(&dir).expect("load");
            let s = summarise(std::slice::from_ref(&set), true).expect("summarise");
            assert_eq!(s.rows.iter().map(|r| r.n).sum::<usize>(), runs);
            s
        })
    });
    g.finish();
    if let Some(p) = peak_rss_mib() {
        println!("peak memory (VmHWM): {p:.0} MiB");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
