#!/usr/bin/env python3
"""Ember's model evaluators side by side with XGBoost's and LightGBM's own predictors.

One command, one run:

    /work/venv/bin/python benchmarks/scoring/side_by_side.py [--rows 1000000] [--bench target/release/ember-bench]

For each library and model shape (100 trees of depth 6, 500 trees of depth 8; 20 features;
binary logistic), the script trains a model on synthetic data (on a subsample, to keep
training short; the trees still reach full depth), then times on the same 1M rows at 1 and
2 threads, best of 3 runs, rows already in memory:

* XGBoost ``Booster.inplace_predict`` (nthread = threads),
* LightGBM ``Booster.predict`` (num_threads = threads),
* Ember ``ember-bench score`` (a rayon pool of that many threads; same Parquet rows read into
  Arrow columns before timing).

It checks Ember's predictions equal the library's (max abs difference printed), prints rows/s
per thread and the ratio Ember / library, and writes the JSON report under
``benchmarks/results/<date>-<host>/scoring-side-by-side.json``.

Requires: xgboost, lightgbm, numpy, pyarrow (see udfs/tests/fixtures/requirements.txt) and a
release build of ``ember-bench`` (``cargo build --release --bin ember-bench``).
"""

import argparse
import datetime
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xgboost as xgb

FEATURES = 20
SHAPES = [(100, 6), (500, 8)]


def make_data(rows, seed=7):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES))
    logits = (
        x[:, 0] * x[:, 1]
        + np.sin(3 * x[:, 2])
        + 0.5 * x[:, 3] ** 2
        - x[:, 4]
        + 0.3 * x[:, 5:10].sum(axis=1)
        + 0.2 * np.abs(x[:, 10:20]).sum(axis=1)
        - 1.5
    )
    y = (logits + rng.logistic(size=rows) > 0).astype(np.float64)
    mask = rng.random(size=x.shape) < 0.01
    x[mask] = np.nan
    return x, y


def best_of(runs, fn):
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def ember_score(bench, model_path, data_path, threads, runs, predictions_path):
    out = subprocess.run(
        [
            bench, "score", "--model", model_path, "--input", data_path,
            "--threads", ",".join(str(t) for t in threads), "--runs", str(runs),
            "--predictions", predictions_path, "--json",
        ],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--train-rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--bench", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "ember-bench"))
    parser.add_argument("--work-dir", default=None, help="keep models and data here (default: a temp dir)")
    parser.add_argument("--output", default=None, help="JSON report path")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    work = args.work_dir or tempfile.mkdtemp(prefix="ember-scoring-")
    os.makedirs(work, exist_ok=True)

    x, y = make_data(args.rows)
    names = [f"f{i}" for i in range(FEATURES)]
    data_path = os.path.join(work, "rows.parquet")
    pq.write_table(pa.table({n: x[:, i] for i, n in enumerate(names)}), data_path)
    xt, yt = x[: args.train_rows], y[: args.train_rows]

    results = []
    for trees, depth in SHAPES:
        # XGBoost
        dtrain = xgb.DMatrix(xt, label=yt, feature_names=names)
        booster = xgb.train(
            {"objective": "binary:logistic", "tree_method": "hist", "max_depth": depth, "eta": 0.1, "nthread": 2, "seed": 1},
            dtrain, num_boost_round=trees,
        )
        xgb_path = os.path.join(work, f"xgb_{trees}x{depth}.json")
        booster.save_model(xgb_path)
        # LightGBM
        lgb_booster = lgb.train(
            {"objective": "binary", "num_leaves": 2 ** depth, "max_depth": depth, "learning_rate": 0.1,
             "num_threads": 2, "verbose": -1, "seed": 1, "min_data_in_leaf": 5},
            lgb.Dataset(xt, label=yt, feature_name=names), num_boost_round=trees,
        )
        lgb_path = os.path.join(work, f"lgb_{trees}x{depth}.txt")
        lgb_booster.save_model(lgb_path)

        for library, path in (("xgboost", xgb_path), ("lightgbm", lgb_path)):
            predictions_path = os.path.join(work, f"ember_{library}_{trees}x{depth}.parquet")
            ember = ember_score(args.bench, path, data_path, threads, args.runs, predictions_path)
            ember_by_threads = {t["threads"]: t for t in ember["timings"]}
            if library == "xgboost":
                reference = xgb.Booster(model_file=path)
                expected = reference.inplace_predict(x)
            else:
                reference = lgb.Booster(model_file=path)
                expected = reference.predict(x)
            got = pq.read_table(predictions_path).column("prediction").to_numpy()
            max_diff = float(np.max(np.abs(got - expected)))
            for t in threads:
                if library == "xgboost":
                    reference.set_param({"nthread": t})
                    seconds = best_of(args.runs, lambda: reference.inplace_predict(x))
                else:
                    seconds = best_of(args.runs, lambda: reference.predict(x, num_threads=t))
                lib_rate = args.rows / seconds / t
                ember_rate = ember_by_threads[t]["rows_per_second_per_thread"]
                row = {
                    "library": library, "trees": trees, "depth": depth, "threads": t, "rows": args.rows,
                    "library_seconds": seconds, "library_rows_per_s_per_core": lib_rate,
                    "ember_seconds": ember_by_threads[t]["best_seconds"], "ember_rows_per_s_per_core": ember_rate,
                    "ratio_ember_over_library": ember_rate / lib_rate, "max_abs_prediction_diff": max_diff,
                }
                results.append(row)
                print(
                    f"{library:8} {trees:3} trees depth {depth}  {t} thread(s): "
                    f"library {lib_rate:12,.0f} rows/s/core  ember {ember_rate:12,.0f} rows/s/core  "
                    f"ratio {ember_rate / lib_rate:5.2f}x  max|diff| {max_diff:.2e}",
                    flush=True,
                )

    report = {
        "benchmark": "scoring side by side",
        "command": " ".join([sys.executable] + sys.argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "host": socket.gethostname(), "cpus": os.cpu_count(), "platform": platform.platform(),
        "versions": {"xgboost": xgb.__version__, "lightgbm": lgb.__version__, "numpy": np.__version__},
        "results": results,
    }
    output = args.output or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "results",
        f"{datetime.date.today().isoformat()}-{socket.gethostname()}", "scoring-side-by-side.json",
    )
    os.makedirs(os.path.dirname(output), exist_ok=True)
    with open(output + ".tmp", "w") as f:
        json.dump(report, f, indent=2)
    os.replace(output + ".tmp", output)
    print(f"report: {os.path.normpath(output)}")


if __name__ == "__main__":
    main()
