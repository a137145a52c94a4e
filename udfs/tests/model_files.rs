//! Model files as untrusted input: broken, unsupported and randomly mutated
//! files give errors naming the file and the problem, and never panic.

// Test code: a failed expectation is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use arrow::array::Float64Array;
use ember_udfs::scoring::model::Model;
use proptest::prelude::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scoring")
}

fn load_error(name: &str) -> String {
    let path = fixtures().join("corrupt").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match Model::from_bytes(name, &bytes) {
        Ok(_) => panic!("{name} should not load"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn truncated_files_are_malformed_and_named() {
    for name in ["truncated.json", "truncated.ubj", "truncated.txt"] {
        let err = load_error(name);
        assert!(err.contains(name) && err.contains("malformed"), "{err}");
    }
}

#[test]
fn unknown_boosters_and_objectives_are_named() {
    let err = load_error("unknown_booster.json");
    assert!(
        err.contains("booster 'gbfoo'") && err.contains("does not support"),
        "{err}"
    );
    let err = load_error("unknown_objective.json");
    assert!(err.contains("objective 'reg:madeup'"), "{err}");
    let err = load_error("unknown_objective.txt");
    assert!(
        err.contains("unknown_objective.txt") && err.contains("objective"),
        "{err}"
    );
}

#[test]
fn multi_target_trees_are_refused() {
    let err = load_error("multi_target.json");
    assert!(err.contains("multi-target"), "{err}");
}

#[test]
fn empty_and_foreign_files_are_unknown_formats() {
    for bytes in [&b""[..], b"   ", b"PAR1\x00\x00", b"<html>"] {
        let err = Model::from_bytes("x.bin", bytes).unwrap_err().to_string();
        assert!(
            err.contains("x.bin") && err.contains("not an XGBoost"),
            "{err}"
        );
    }
}

/// Model files the mutations start from: one per parser.
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: std::sync::LazyLock<Vec<Vec<u8>>> = std::sync::LazyLock::new(read_seeds);
    &SEEDS
}

fn read_seeds() -> Vec<Vec<u8>> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("manifest.json")).expect("manifest"))
            .expect("manifest json");
    let mut wanted = vec![".json", ".ubj", ".txt"];
    let mut seeds = Vec::new();
    for case in manifest.as_array().into_iter().flatten() {
        let Some(model) = case.get("model").and_then(|m| m.as_str()) else {
            continue;
        };
        if let Some(i) = wanted.iter().position(|ext| model.ends_with(ext)) {
            wanted.remove(i);
            seeds.push(std::fs::read(fixtures().join(model)).expect("model"));
        }
    }
    assert_eq!(
        seeds.len(),
        3,
        "need a JSON, a UBJSON and a text model among the fixtures"
    );
    seeds
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Truncate(i) => bytes.truncate(i % len),
            Mutation::Flip(i, b) => {
                if !bytes.is_empty() {
                    let i = i % bytes.len();
                    bytes[i] ^= b | 1;
                }
            }
            Mutation::Insert(i, b) => {
                let i = i % len;
                let tail = bytes.split_off(i.min(bytes.len()));
                bytes.extend_from_slice(b);
                bytes.extend(tail);
            }
            Mutation::Delete(i, n) => {
                let i = (i % len).min(bytes.len());
                let end = (i + n).min(bytes.len());
                bytes.drain(i..end);
            }
        }
    }
    bytes
}

/// Scores a few rows with whatever model was accepted: evaluation of an
/// accepted model must not panic either.
fn score_some_rows(model: &Model) {
    let values = [0.0, -1.0, 1.5, f64::NAN, 1e-40, 3.0, 1e30];
    let columns: Vec<Float64Array> = (0..model.num_features)
        .map(|f| {
            Float64Array::from_iter((0..values.len()).map(|r| {
                let v = values[(r + f) % values.len()];
                (r % 5 != 4).then_some(v)
            }))
        })
        .collect();
    let refs: Vec<&Float64Array> = columns.iter().collect();
    if let Ok(mut scores) = model.raw_scores(&refs) {
        model.transform(&mut scores);
        let _ = ember_udfs::scoring::OutputKind::Probabilities.build(model, scores);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn mutated_model_files_never_panic(seed in 0usize..3, mutations in proptest::collection::vec(mutation(), 1..4)) {
        let seeds = seeds();
        let bytes = mutate(seeds[seed].clone(), &mutations);
        match Model::from_bytes("fuzz", &bytes) {
            Ok(model) => score_some_rows(&model),
            Err(e) => prop_assert!(e.to_string().contains("fuzz")),
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), prefix in 0usize..4) {
        let mut input = [&b""[..], b"{", b"tree\n", b"{\"learner\":"][prefix].to_vec();
        input.extend(bytes);
        if let Ok(model) = Model::from_bytes("fuzz", &input) {
            score_some_rows(&model);
        }
    }
}
