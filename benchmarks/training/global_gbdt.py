#!/usr/bin/env python3
"""One GBDT over a whole table: `ember train` against xgboost `hist`, same data, same parameters.

One command, one run:

    /work/venv/bin/python benchmarks/training/global_gbdt.py [--rows 1000000] [--bin-dir target/release]

Generates ``--rows`` training rows × 20 features (1% missing values, a non-linear binary label) as
Parquet (8 files) plus 200,000 held-out rows, then times, with XGBoost's defaults (binary:logistic,
max_depth 6, eta 0.3, lambda 1, max_bin 256) and 100 rounds:

* xgboost ``hist`` with ``nthread`` = all cores, from a NumPy matrix already in memory (its
  Parquet read is timed separately and reported);
* ``ember train`` embedded (reads the Parquet itself);
* ``ember train --cluster`` on a local cluster of 2 executors × 1 core.

Every model is scored on the held-out rows *by xgboost* (Ember's models load with
``xgboost.Booster(model_file=...)``), and the AUCs are reported next to the times. Writes
``benchmarks/results/<date>-<host>/training-global-gbdt.json``.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xgboost as xgb
from sklearn.metrics import roc_auc_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import local_cluster, timed, write_report  # noqa: E402

FEATURES = 20
NAMES = [f"f{i}" for i in range(FEATURES)]


def rows(rng, n):
    x = rng.normal(size=(n, FEATURES))
    x[:, 3] = rng.integers(0, 20, size=n)
    signal = np.sin(2 * x[:, 0]) + x[:, 1] * x[:, 2] - 0.1 * x[:, 3] + (x[:, 4] > 0.5) + 0.3 * x[:, 5:10].sum(axis=1)
    y = (signal + rng.normal(scale=1.0, size=n) > 0).astype(np.float64)
    x[rng.random(size=x.shape) < 0.01] = np.nan
    return x, y


def generate(work, n, files=8):
    rng = np.random.default_rng(7)
    train_dir = os.path.join(work, "train")
    os.makedirs(train_dir, exist_ok=True)
    per_file = n // files
    for f in range(files):
        x, y = rows(rng, per_file if f < files - 1 else n - per_file * (files - 1))
        pq.write_table(pa.table({name: x[:, i] for i, name in enumerate(NAMES)} | {"y": y}),
                       os.path.join(train_dir, f"part-{f}.parquet"))
    x, y = rows(rng, 200_000)
    np.save(os.path.join(work, "test_x.npy"), x)
    np.save(os.path.join(work, "test_y.npy"), y)


def read_train(work):
    table = pq.read_table(os.path.join(work, "train"))
    x = np.column_stack([table.column(n).to_numpy() for n in NAMES])
    return x, table.column("y").to_numpy()


def held_out_auc(model_path, work):
    booster = xgb.Booster(model_file=model_path)
    x = np.load(os.path.join(work, "test_x.npy"))
    return float(roc_auc_score(np.load(os.path.join(work, "test_y.npy")), booster.predict(xgb.DMatrix(x, feature_names=NAMES))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--bin-dir", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release"))
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--skip-cluster", action="store_true")
    args = parser.parse_args()
    ember = os.path.join(args.bin_dir, "ember")
    work = args.work_dir or tempfile.mkdtemp(prefix="ember-train-bench-")
    if not os.path.exists(os.path.join(work, "test_y.npy")):
        generate(work, args.rows)
    threads = os.cpu_count()
    results = {}

    started = time.perf_counter()
    x, y = read_train(work)
    results["xgboost_parquet_read_seconds"] = time.perf_counter() - started
    params = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6, "eta": 0.3,
              "lambda": 1.0, "max_bin": 256, "nthread": threads, "seed": 0}
    started = time.perf_counter()
    booster = xgb.train(params, xgb.DMatrix(x, label=y, feature_names=NAMES, nthread=threads), num_boost_round=100)
    results["xgboost_hist_seconds"] = time.perf_counter() - started
    xgb_path = os.path.join(work, "xgboost.json")
    booster.save_model(xgb_path)
    results["xgboost_auc"] = held_out_auc(xgb_path, work)
    print(f"xgboost hist, {threads} threads:        {results['xgboost_hist_seconds']:7.2f} s  AUC {results['xgboost_auc']:.4f}"
          f"  (+{results['xgboost_parquet_read_seconds']:.2f} s Parquet read)", flush=True)
    del x, y

    embedded = os.path.join(work, "ember-embedded.json")
    seconds, out = timed([ember, "train", "--input", os.path.join(work, "train"), "--label", "y",
                          "--model-out", embedded, "--no-progress"])
    results["ember_embedded_seconds"] = seconds
    results["ember_embedded_auc"] = held_out_auc(embedded, work)
    print(f"ember train, embedded:             {seconds:7.2f} s  AUC {results['ember_embedded_auc']:.4f}", flush=True)

    if not args.skip_cluster:
        with local_cluster(ember, args.bin_dir, work) as address:
            clustered = os.path.join(work, "ember-cluster.json")
            seconds, _ = timed([ember, "train", "--input", os.path.join(work, "train"), "--label", "y",
                                "--model-out", clustered, "--cluster", address, "--no-progress"])
        results["ember_cluster_2x1_seconds"] = seconds
        results["ember_cluster_auc"] = held_out_auc(clustered, work)
        with open(embedded) as a, open(clustered) as b:
            results["cluster_model_identical_to_embedded"] = a.read() == b.read()
        print(f"ember train, cluster 2 x 1 core:   {seconds:7.2f} s  AUC {results['ember_cluster_auc']:.4f}", flush=True)

    results["embedded_time_over_xgboost"] = results["ember_embedded_seconds"] / results["xgboost_hist_seconds"]
    print(f"Ember embedded / xgboost wall time: {results['embedded_time_over_xgboost']:.2f}x "
          f"(AUC difference {results['ember_embedded_auc'] - results['xgboost_auc']:+.4f})")
    if "ember_cluster_2x1_seconds" in results:
        results["cluster_time_over_xgboost"] = (
            results["ember_cluster_2x1_seconds"] / results["xgboost_hist_seconds"])
        print(f"Ember cluster / xgboost wall time: {results['cluster_time_over_xgboost']:.2f}x")
    write_report("training-global-gbdt.json", {
        "benchmark": "global GBDT training, 100 rounds, XGBoost defaults",
        "rows": args.rows, "features": FEATURES, "params": params, "results": results,
    })


if __name__ == "__main__":
    main()
