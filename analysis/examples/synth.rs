//! Write a synthetic results directory (see `migbench_analysis::synth`)
//! for timing the analyzer by hand:
//! `cargo run --release --example synth -- DIR [RUNS] [PROBES_PER_RUN]`
//! (default 10,000 runs of 1,000 probes). Plausible numbers, not
//! measurements: never put them in a report.

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: synth DIR [RUNS] [PROBES_PER_RUN]");
        std::process::exit(2);
    };
    let num = |a: Option<String>, default: usize| -> usize {
        a.map(|s| {
            s.parse().unwrap_or_else(|_| {
                eprintln!("not a count: {s}");
                std::process::exit(2)
            })
        })
        .unwrap_or(default)
    };
    let runs = num(args.next(), 10_000);
    let probes = num(args.next(), 1_000);
    migbench_analysis::synth::generate(std::path::Path::new(&dir), runs, probes, 42)
}
