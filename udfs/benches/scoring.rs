//! Criterion benches of the scoring evaluators, one per model family.
//!
//! Models are synthetic but shaped like real ones (balanced trees of the given
//! depth over 20 features, thresholds drawn from the data's range), written in
//! each library's file format and loaded through the same parser as real
//! models. Rows: 64Ki × 20 features, 1% missing. The side-by-side comparison
//! against XGBoost and LightGBM themselves is `benchmarks/scoring/side_by_side.py`.
//!
//! Run: `cargo bench --bench scoring` (uses rayon's global pool: set
//! `RAYON_NUM_THREADS=1` for single-core figures).

use std::fmt::Write;
use std::hint::black_box;

use arrow::array::Float64Array;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ember_udfs::scoring::model::Model;
use serde_json::json;

const FEATURES: usize = 20;
const ROWS: usize = 1 << 16;

/// A small deterministic generator (no dependency needed for bench data).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() * n as f64) as usize % n
    }
}

fn xgboost_json(trees: usize, depth: u32, rng: &mut Lcg) -> String {
    let nodes = (1usize << (depth + 1)) - 1;
    let internal = (1usize << depth) - 1;
    let tree_values: Vec<_> = (0..trees)
        .map(|id| {
            let left: Vec<i64> = (0..nodes).map(|i| if i < internal { 2 * i as i64 + 1 } else { -1 }).collect();
            let right: Vec<i64> = (0..nodes).map(|i| if i < internal { 2 * i as i64 + 2 } else { -1 }).collect();
            let features: Vec<usize> = (0..nodes).map(|i| if i < internal { rng.below(FEATURES) } else { 0 }).collect();
            let conditions: Vec<f64> = (0..nodes)
                .map(|i| if i < internal { rng.next() } else { (rng.next() - 0.5) * 0.1 })
                .collect();
            let default_left: Vec<u8> = (0..nodes).map(|_| u8::from(rng.next() < 0.5)).collect();
            json!({
                "id": id, "left_children": left, "right_children": right,
                "split_indices": features, "split_conditions": conditions,
                "default_left": default_left, "split_type": vec![0; nodes],
                "categories": [], "categories_nodes": [], "categories_segments": [], "categories_sizes": [],
                "tree_param": {"num_feature": FEATURES.to_string(), "num_nodes": nodes.to_string(), "size_leaf_vector": "1"}
            })
        })
        .collect();
    json!({"learner": {
        "learner_model_param": {"base_score": "5E-1", "num_class": "0", "num_feature": FEATURES.to_string(), "num_target": "1"},
        "objective": {"name": "binary:logistic"},
        "feature_names": (0..FEATURES).map(|i| format!("f{i}")).collect::<Vec<_>>(),
        "gradient_booster": {"name": "gbtree", "model": {
            "gbtree_model_param": {"num_parallel_tree": "1", "num_trees": trees.to_string()},
            "tree_info": vec![0; trees], "trees": tree_values
        }}
    }})
    .to_string()
}

fn lightgbm_text(trees: usize, depth: u32, rng: &mut Lcg) -> String {
    let leaves = 1usize << depth;
    let internal = leaves - 1;
    let names: Vec<String> = (0..FEATURES).map(|i| format!("f{i}")).collect();
    let mut text = format!(
        "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx={}\nobjective=binary sigmoid:1\nfeature_names={}\n\n",
        FEATURES - 1,
        names.join(" ")
    );
    let join = |v: Vec<String>| v.join(" ");
    for t in 0..trees {
        // Heap layout: node i has children 2i+1, 2i+2; indices >= internal are leaves.
        let child = |c: usize| {
            if c < internal {
                c as i64
            } else {
                !((c - internal) as i64)
            }
        };
        let _ = write!(
            text,
            "Tree={t}\nnum_leaves={leaves}\nnum_cat=0\nsplit_feature={}\nthreshold={}\ndecision_type={}\nleft_child={}\nright_child={}\nleaf_value={}\nshrinkage=1\n\n\n",
            join(
                (0..internal)
                    .map(|_| rng.below(FEATURES).to_string())
                    .collect()
            ),
            join(
                (0..internal)
                    .map(|_| format!("{:.17}", rng.next()))
                    .collect()
            ),
            join((0..internal).map(|_| "10".to_string()).collect()),
            join(
                (0..internal)
                    .map(|i| child(2 * i + 1).to_string())
                    .collect()
            ),
            join(
                (0..internal)
                    .map(|i| child(2 * i + 2).to_string())
                    .collect()
            ),
            join(
                (0..leaves)
                    .map(|_| format!("{:.17}", (rng.next() - 0.5) * 0.1))
                    .collect()
            ),
        );
    }
    text.push_str("end of trees\n");
    text
}

fn gblinear_json(rng: &mut Lcg) -> String {
    let weights: Vec<f64> = (0..=FEATURES).map(|_| rng.next() - 0.5).collect();
    json!({"learner": {
        "learner_model_param": {"base_score": "5E-1", "num_class": "0", "num_feature": FEATURES.to_string(), "num_target": "1"},
        "objective": {"name": "binary:logistic"},
        "feature_names": (0..FEATURES).map(|i| format!("f{i}")).collect::<Vec<_>>(),
        "gradient_booster": {"name": "gblinear", "model": {"weights": weights}}
    }})
    .to_string()
}

fn ember_linear_json(rng: &mut Lcg) -> String {
    json!({
        "format": "ember-linear", "version": 1, "objective": "binary:logistic",
        "feature_names": (0..FEATURES).map(|i| format!("f{i}")).collect::<Vec<_>>(),
        "coefficients": (0..FEATURES).map(|_| rng.next() - 0.5).collect::<Vec<_>>(),
        "intercept": 0.1
    })
    .to_string()
}

fn rows(rng: &mut Lcg) -> Vec<Float64Array> {
    (0..FEATURES)
        .map(|_| {
            Float64Array::from_iter((0..ROWS).map(|_| {
                let v = rng.next();
                (rng.next() >= 0.01).then_some(v)
            }))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut rng = Lcg(42);
    let data = rows(&mut rng);
    let columns: Vec<&Float64Array> = data.iter().collect();
    let models = [
        (
            "xgboost_gbtree_100_trees_depth_6",
            xgboost_json(100, 6, &mut rng),
        ),
        (
            "xgboost_gbtree_500_trees_depth_8",
            xgboost_json(500, 8, &mut rng),
        ),
        (
            "lightgbm_100_trees_depth_6",
            lightgbm_text(100, 6, &mut rng),
        ),
        (
            "lightgbm_500_trees_depth_8",
            lightgbm_text(500, 8, &mut rng),
        ),
        ("xgboost_gblinear", gblinear_json(&mut rng)),
        ("ember_linear", ember_linear_json(&mut rng)),
    ];
    let mut group = c.benchmark_group("score_64k_rows_20_features");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(10);
    for (name, text) in &models {
        let model = match Model::from_bytes(name, text.as_bytes()) {
            Ok(model) => model,
            Err(e) => {
                eprintln!("{name}: {e}");
                std::process::exit(1);
            }
        };
        group.bench_function(*name, |b| {
            b.iter(|| match model.raw_scores(black_box(&columns)) {
                Ok(mut scores) => {
                    model.transform(&mut scores);
                    black_box(scores.values.len())
                }
                Err(_) => 0,
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
