//! Criterion benches of the training hot paths.
//!
//! * `histogram`: one level's histogram accumulation, 64Ki rows × 20
//!   features, 4 nodes built (what every partition does per tree level);
//! * `best_split`: split search over one node's histogram (20 features × 256 bins);
//! * `group`: boosting one group of 1,000 rows × 10 features, 100 rounds,
//!   depth 6 — the unit of work of `train_gbdt ... GROUP BY`.
//!
//! The side-by-side comparisons with xgboost and Spark are
//! `benchmarks/training/global_gbdt.py` and `benchmarks/training/per_group.py`.
//!
//! Run: `cargo bench --bench training`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ember_udfs::training::gbdt::booster::train_in_memory;
use ember_udfs::training::gbdt::grad::{GradPair, Quantiser};
use ember_udfs::training::gbdt::hist::{HistShape, SelectedRows, accumulate};
use ember_udfs::training::gbdt::split::best_split;
use ember_udfs::training::params::{GbdtParams, Objective};

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn bench_histogram(c: &mut Criterion) {
    const ROWS: usize = 1 << 16;
    const FEATURES: usize = 20;
    let mut rng = Lcg(1);
    let bins: Vec<Vec<u16>> = (0..FEATURES)
        .map(|_| (0..ROWS).map(|_| (rng.next() * 256.0) as u16).collect())
        .collect();
    let views: Vec<&[u16]> = bins.iter().map(Vec::as_slice).collect();
    let mut selected = SelectedRows::default();
    for row in 0..ROWS {
        let slot = (rng.next() * 8.0) as u32;
        let grad = Quantiser { scale_log2: 40 }.row_gradient(
            Objective::BinaryLogistic,
            rng.next() * 4.0 - 2.0,
            (rng.next() > 0.5) as u8 as f64,
        );
        if slot < 4 {
            selected.push(row, slot, grad);
        }
    }
    let shape = HistShape {
        slots: 4,
        features: FEATURES,
        stride: 257,
    };
    let mut group = c.benchmark_group("histogram");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("64Ki_rows_20_features_4_nodes", |b| {
        b.iter(|| {
            let mut hist = vec![GradPair::default(); shape.len()];
            accumulate(&mut hist, shape, &selected, &views);
            black_box(hist)
        })
    });
    group.finish();

    let mut hist = vec![GradPair::default(); shape.len()];
    accumulate(&mut hist, shape, &selected, &views);
    let node = &hist[..FEATURES * 257];
    let mut total = GradPair::default();
    node[..257].iter().for_each(|p| total.add(*p));
    let cuts: Vec<Vec<f32>> = (0..FEATURES)
        .map(|_| (1..256).map(|v| v as f32).collect())
        .collect();
    let params = GbdtParams::default();
    c.bench_function("best_split/20_features_256_bins", |b| {
        b.iter(|| {
            black_box(best_split(
                Quantiser { scale_log2: 40 },
                node,
                257,
                total,
                &cuts,
                &params,
            ))
        })
    });
}

fn bench_group(c: &mut Criterion) {
    // The data of `benchmarks/training/per_group.py`: standard normal
    // features, a label from three of them plus noise, so trees grow to full
    // depth as they do there.
    const ROWS: usize = 1000;
    let mut rng = Lcg(7);
    let mut normal = move || {
        let (u, v) = (1.0 - rng.next(), rng.next());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let columns: Vec<Vec<f64>> = (0..10)
        .map(|_| (0..ROWS).map(|_| normal()).collect())
        .collect();
    let weights = [normal(), normal(), normal()];
    let labels: Vec<f64> = (0..ROWS)
        .map(|r| {
            let signal = weights[0] * columns[0][r]
                + weights[1] * (2.0 * columns[1][r]).sin()
                + weights[2] * columns[2][r] * columns[3][r];
            (signal + 0.7 * normal() > 0.0) as u8 as f64
        })
        .collect();
    let names: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
    let params = GbdtParams::default();
    c.bench_function("group/1000_rows_10_features_100_rounds", |b| {
        b.iter(|| {
            black_box(train_in_memory(
                "bench", "y", &params, &columns, &labels, &names,
            ))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench_histogram, bench_group
}
criterion_main!(benches);
