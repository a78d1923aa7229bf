//! Recipient parsing and de-duplication (issue 13): `$to` with 1,000 / 100,000 /
//! 1,000,000 addresses. Linear means the time per address stays flat across the sizes.
//! Compare with stock PHP's mail() at 100,000 addresses (bench/README.md).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mailguard_core::message::recipients;

fn to_list(n: usize) -> String {
    (0..n)
        .map(|i| {
            if i % 10 == 0 {
                format!("\"User {i}\" <user{i}@example.com>")
            } else {
                format!("user{i}@example.com")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("recipients");
    g.sample_size(10);
    for n in [1_000usize, 100_000, 1_000_000] {
        let to = to_list(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &to, |b, to| {
            b.iter(|| {
                let r = recipients(to.as_bytes(), b"");
                assert_eq!(r.len(), n);
                r
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
