#!/usr/bin/env python3
"""One model per group: Ember's `train_gbdt ... GROUP BY` against Spark `applyInPandas` with xgboost.

One command, one run:

    /work/venv/bin/python benchmarks/training/per_group.py [--groups 1000] [--rows-per-group 1000]

Generates ``--groups`` × ``--rows-per-group`` rows × 10 features (shuffled across 8 Parquet
files, so every group's rows are spread over all partitions) and trains one GBDT per group with
XGBoost's defaults and 100 rounds (binary:logistic, max_depth 6, eta 0.3), writing
``(g, model JSON)`` as Parquet:

* Ember embedded: ``ember sql "SELECT g, train_gbdt(y, f0, ..., f9) AS model FROM t GROUP BY g" -o out``;
* Ember on a local cluster of 2 executors × 1 core (``ember cluster up``);
* Spark ``local[2]`` (PySpark 4.x): ``groupBy("g").applyInPandas`` training ``xgboost.train``
  (``tree_method=hist``, ``nthread=1``) per group, the usual way per-segment models are trained on
  Spark today.

Checks that every run wrote one model per group, and loads a sample of Ember's models in xgboost
to compare their training AUC with xgboost's own models of the same groups. Writes
``benchmarks/results/<date>-<host>/training-per-group.json``.
"""

import argparse
import json
import os
import shutil
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

FEATURES = 10
NAMES = [f"f{i}" for i in range(FEATURES)]
PARAMS = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6, "eta": 0.3, "nthread": 1, "seed": 0}


def generate(path, groups, per_group, files=8):
    rng = np.random.default_rng(3)
    n = groups * per_group
    g = np.repeat(np.arange(groups, dtype=np.int64), per_group)
    x = rng.normal(size=(n, FEATURES))
    weights = rng.normal(size=(groups, 3))
    signal = weights[g, 0] * x[:, 0] + weights[g, 1] * np.sin(2 * x[:, 1]) + weights[g, 2] * x[:, 2] * x[:, 3]
    y = (signal + rng.normal(scale=0.7, size=n) > 0).astype(np.float64)
    order = rng.permutation(n)
    os.makedirs(path, exist_ok=True)
    for f, part in enumerate(np.array_split(order, files)):
        pq.write_table(pa.table({"g": g[part]} | {name: x[part, i] for i, name in enumerate(NAMES)} | {"y": y[part]}),
                       os.path.join(path, f"part-{f}.parquet"))


def spark_train(input_dir, output_dir):
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    spark = (SparkSession.builder.master("local[2]").config("spark.driver.memory", "8g")
             .config("spark.sql.execution.arrow.pyspark.enabled", "true").config("spark.ui.enabled", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    df = spark.read.parquet(input_dir)

    def train(pdf):
        import pandas as pd
        booster = xgb.train(PARAMS, xgb.DMatrix(pdf[NAMES].to_numpy(), label=pdf["y"].to_numpy()), num_boost_round=100)
        return pd.DataFrame({"g": [int(pdf["g"].iloc[0])], "model": [booster.save_raw("json").decode()]})

    started = time.perf_counter()
    df.groupBy("g").applyInPandas(train, "g long, model string").write.mode("overwrite").parquet(output_dir)
    elapsed = time.perf_counter() - started
    spark.stop()
    return elapsed


def models(path):
    table = pq.read_table(path)
    return dict(zip(table.column("g").to_pylist(), table.column("model").to_pylist()))


def training_auc(model_text, rows):
    booster = xgb.Booster(model_file=bytearray(model_text.encode()))
    return roc_auc_score(rows["y"], booster.predict(xgb.DMatrix(rows[NAMES].to_numpy(), feature_names=NAMES)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--rows-per-group", type=int, default=1000)
    parser.add_argument("--bin-dir", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release"))
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--skip-spark", action="store_true")
    parser.add_argument("--skip-cluster", action="store_true")
    args = parser.parse_args()
    ember = os.path.join(args.bin_dir, "ember")
    work = args.work_dir or tempfile.mkdtemp(prefix="ember-groups-bench-")
    input_dir = os.path.join(work, "input")
    if not os.path.exists(os.path.join(input_dir, "part-0.parquet")):
        generate(input_dir, args.groups, args.rows_per_group)
    features = ", ".join(NAMES)
    sql = (f"CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{input_dir}/'; "
           f"SELECT g, train_gbdt(y, {features}) AS model FROM t GROUP BY g")
    results = {}

    out = os.path.join(work, "ember-embedded")
    shutil.rmtree(out, ignore_errors=True)
    seconds, _ = timed([ember, "sql", sql, "-o", out])
    results["ember_embedded_seconds"] = seconds
    print(f"Ember embedded:                        {seconds:7.2f} s", flush=True)
    ember_models = models(out)
    assert len(ember_models) == args.groups, len(ember_models)

    if not args.skip_cluster:
        with local_cluster(ember, args.bin_dir, work) as address:
            out_cluster = os.path.join(work, "ember-cluster")
            shutil.rmtree(out_cluster, ignore_errors=True)
            seconds, _ = timed([ember, "sql", sql, "-o", out_cluster, "--cluster", address])
        results["ember_cluster_2x1_seconds"] = seconds
        results["cluster_models_identical_to_embedded"] = models(out_cluster) == ember_models
        print(f"Ember cluster 2 x 1 core:              {seconds:7.2f} s", flush=True)

    if not args.skip_spark:
        out_spark = os.path.join(work, "spark")
        shutil.rmtree(out_spark, ignore_errors=True)
        seconds = spark_train(input_dir, out_spark)
        results["spark_local2_apply_in_pandas_seconds"] = seconds
        spark_models = models(out_spark)
        assert len(spark_models) == args.groups, len(spark_models)
        print(f"Spark local[2], applyInPandas+xgboost: {seconds:7.2f} s", flush=True)
        results["speedup_embedded_vs_spark"] = seconds / results["ember_embedded_seconds"]
        if "ember_cluster_2x1_seconds" in results:
            results["speedup_cluster_vs_spark"] = seconds / results["ember_cluster_2x1_seconds"]
        table = pq.read_table(input_dir).to_pandas()
        sample = sorted(ember_models)[:20]
        ember_auc = [training_auc(ember_models[g], table[table.g == g]) for g in sample]
        spark_auc = [training_auc(spark_models[g], table[table.g == g]) for g in sample]
        results["mean_training_auc_20_groups"] = {"ember": float(np.mean(ember_auc)), "xgboost": float(np.mean(spark_auc))}
        print(f"speed-up over Spark: embedded {results['speedup_embedded_vs_spark']:.1f}x; "
              f"training AUC (20 groups) Ember {np.mean(ember_auc):.4f} vs xgboost {np.mean(spark_auc):.4f}")
    write_report("training-per-group.json", {
        "benchmark": "per-group GBDT training, 100 rounds, XGBoost defaults",
        "groups": args.groups, "rows_per_group": args.rows_per_group, "features": FEATURES,
        "params": PARAMS | {"num_boost_round": 100}, "results": results,
    })


if __name__ == "__main__":
    main()
