//! Criterion benches of the training hot paths.
//!
//! * `histogram`: one level's histogram accumulation from rows kept row by
//!   row, 64Ki rows × 20 features, 4 nodes built (the summing part of what
//!   every partition does per tree level);
//! * `best_split`: split search over one node's histogram (20 features × 256 bins);
//! * `group`: boosting one group of 1,000 rows × 10 features, 100 rounds,
//!   depth 6 — the unit of work of `train_gbdt ... GROUP BY`;
//! * `levels`: three rounds of `ember train`'s level work over one
//!   partition's kept rows (500k rows × 20 features in batches of 8,192):
//!   bringing rows up to date, selecting those of the nodes being built and
//!   summing their histograms, then choosing the splits.
//!
//! The side-by-side comparisons with xgboost and Spark are
//! `benchmarks/training/global_gbdt.py` and `benchmarks/training/per_group.py`.
//!
//! Run: `cargo bench --bench training`.

use std::hint::black_box;

use arrow::buffer::ScalarBuffer;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ember_udfs::training::distributed::resident_rows::ResidentRows;
use ember_udfs::training::gbdt::booster::train_in_memory;
use ember_udfs::training::gbdt::cuts::MISSING_BIN;
use ember_udfs::training::gbdt::grad::{GradPair, Quantiser};
use ember_udfs::training::gbdt::hist::{HistShape, accumulate_row_major};
use ember_udfs::training::gbdt::messages::{GradientPlan, LevelPlan, ResidentLevelPlan};
use ember_udfs::training::gbdt::split::best_split;
use ember_udfs::training::gbdt::tree::Grower;
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
    // Kept rows hold their bins row by row.
    let rows: Vec<u16> = (0..ROWS)
        .flat_map(|r| bins.iter().map(move |column| column[r]))
        .collect();
    let mut selected = Vec::new();
    for row in 0..ROWS {
        let slot = (rng.next() * 8.0) as usize;
        let grad = Quantiser { scale_log2: 40 }.row_gradient(
            Objective::BinaryLogistic,
            rng.next() * 4.0 - 2.0,
            (rng.next() > 0.5) as u8 as f64,
        );
        if slot < 4 {
            selected.push((row, slot, grad));
        }
    }
    let shape = HistShape {
        slots: 4,
        features: FEATURES,
        stride: 257,
    };
    let sum = |hist: &mut [GradPair]| {
        for (row, slot, grad) in &selected {
            let bins = &rows[row * FEATURES..(row + 1) * FEATURES];
            accumulate_row_major(hist, shape, *slot, bins, *grad);
        }
    };
    let mut group = c.benchmark_group("histogram");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("64Ki_rows_20_features_4_nodes", |b| {
        b.iter(|| {
            let mut hist = vec![GradPair::default(); shape.len()];
            sum(&mut hist);
            black_box(hist)
        })
    });
    group.finish();

    let mut hist = vec![GradPair::default(); shape.len()];
    sum(&mut hist);
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

fn bench_levels(c: &mut Criterion) {
    const ROWS: usize = 500_000;
    const BATCH: usize = 8192;
    const FEATURES: usize = 20;
    const ROUNDS: u32 = 3;
    let mut rng = Lcg(11);
    let columns: Vec<Vec<u16>> = (0..FEATURES)
        .map(|_| {
            (0..ROWS)
                .map(|_| {
                    if rng.next() < 0.01 {
                        MISSING_BIN
                    } else {
                        (rng.next() * 256.0) as u16
                    }
                })
                .collect()
        })
        .collect();
    // The label depends on a few features, so trees grow to full depth.
    let labels: Vec<f64> = (0..ROWS)
        .map(|r| {
            let signal: f64 = (0..4)
                .map(|f| f64::from(columns[f][r].min(255)) / 128.0 - 1.0)
                .sum();
            (signal + rng.next() - 0.5 > 0.0) as u8 as f64
        })
        .collect();
    // Kept rows change as levels run, so every iteration starts from new ones.
    let batches = || -> Vec<ResidentRows> {
        (0..ROWS.div_ceil(BATCH))
            .map(|b| {
                let range = b * BATCH..((b + 1) * BATCH).min(ROWS);
                ResidentRows::new(
                    0.0,
                    ScalarBuffer::from(labels[range.clone()].to_vec()),
                    columns
                        .iter()
                        .map(|c| ScalarBuffer::from(c[range.clone()].to_vec()))
                        .collect(),
                    (b as i64, range.len() as i64 - 1),
                )
            })
            .collect()
    };
    let cuts: Vec<Vec<f32>> = (0..FEATURES)
        .map(|_| (1..256).map(|v| v as f32).collect())
        .collect();
    let params = GbdtParams::default();
    let quantiser = Quantiser { scale_log2: 40 };
    let mut group = c.benchmark_group("levels");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("500k_rows_20_features_3_rounds", |b| {
        b.iter_batched(
            batches,
            |mut batches| {
                let mut trees = Vec::new();
                for round in 0..ROUNDS {
                    let mut grower = Grower::new(&params, &cuts, quantiser);
                    while let Some(build) = grower.pending() {
                        let plan = ResidentLevelPlan {
                            run: "bench".into(),
                            round,
                            start: 0.0,
                            gradient: GradientPlan {
                                objective: "binary:logistic".into(),
                                quantiser,
                            },
                            level: LevelPlan {
                                features: FEATURES,
                                stride: grower.stride(),
                                build: build.to_vec(),
                                tree: grower.tree().clone(),
                            },
                            trees_from: 0,
                            trees: trees.clone(),
                        };
                        let shape = HistShape {
                            slots: plan.level.build.len(),
                            features: FEATURES,
                            stride: plan.level.stride,
                        };
                        let mut slot_of_node = vec![u32::MAX; plan.level.tree.nodes.len()];
                        for (slot, node) in plan.level.build.iter().enumerate() {
                            slot_of_node[*node as usize] = slot as u32;
                        }
                        let mut hist = vec![GradPair::default(); shape.len()];
                        for rows in &mut batches {
                            assert!(rows.add_level(
                                &plan,
                                Objective::BinaryLogistic,
                                quantiser,
                                &slot_of_node,
                                &mut hist,
                                shape
                            ));
                        }
                        assert!(
                            grower.apply(&hist).is_ok(),
                            "the bench's histograms are well formed"
                        );
                    }
                    trees.push(grower.finish());
                }
                black_box(trees)
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench_histogram, bench_group, bench_levels
}
criterion_main!(benches);
