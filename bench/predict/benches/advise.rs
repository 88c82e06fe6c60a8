//! `advise` over its whole settings grid (10 240 predictions) for a guest
//! that outpaces its link (the slow case: every plain setting runs to
//! the timeout). Target: under 100 ms.

use criterion::{criterion_group, criterion_main, Criterion};
use migbench_predict::advise::{advise, grid, link_needed, Question};
use migbench_predict::Constants;

fn hard() -> Question {
    Question {
        ram: 8.0 * 1073741824.0,
        working_set: 2.0 * 1073741824.0,
        dirty_rate: 200e6,
        compressibility: 0.5,
        link_bps: 1e9,
        max_downtime_ms: 1000.0,
        max_time_ms: Some(600_000.0),
        timeout_ms: 3_600_000.0,
    }
}

fn bench(c: &mut Criterion) {
    let q = hard();
    assert_eq!(grid(&q).len(), 10_240);
    c.bench_function("advise 10k-point grid", |b| {
        b.iter(|| advise(std::hint::black_box(&q), &Constants::LAB))
    });
    c.bench_function("link needed", |b| {
        b.iter(|| link_needed(std::hint::black_box(&q), &Constants::LAB))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
