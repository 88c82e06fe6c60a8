//! Load and summarise 10,000 synthetic runs with 10 million probe events
//! (see `migbench_analysis::synth` for the generator). Target: under 10 s
//! per summary and under 2 GiB peak memory on a 2-core machine; the peak
//! (VmHWM) is printed after the measurements.

use criterion::{criterion_group, criterion_main, Criterion};
use migbench_analysis::load::load_results;
use migbench_analysis::summary::summarise;

const RUNS: usize = 10_000;
const PROBES_PER_RUN: usize = 1_000;

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("synthetic");
    migbench_analysis::synth::generate(&dir, RUNS, PROBES_PER_RUN, 42)
        .expect("generate synthetic results");
    let mut g = c.benchmark_group("analysis");
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(30));
    g.bench_function("load+summarise 10k runs / 10M probes", |b| {
        b.iter(|| {
            let set = load_results(&dir).expect("load");
            let s = summarise(std::slice::from_ref(&set), true).expect("summarise");
            assert_eq!(s.rows.iter().map(|r| r.n).sum::<usize>(), RUNS);
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
