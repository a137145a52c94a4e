#!/usr/bin/env python3
"""Batch scoring end to end, Parquet to Parquet: `ember score` against Spark with a pandas UDF.

One command, one run:

    /work/venv/bin/python benchmarks/scoring/end_to_end.py [--rows 10000000] [--bin-dir target/release]

The script generates ``--rows`` rows × 20 features as Parquet (8 files), trains an XGBoost model
(100 trees, depth 6, binary:logistic) on a subsample, then times, each writing every input column
plus the prediction as Parquet:

* ``ember score`` embedded (in-process scheduler and executor, all cores);
* ``ember score --cluster`` on a local cluster of 2 executors × 1 core (``ember cluster up``);
* Spark ``local[2]`` (PySpark 4.x): ``mapInPandas`` calling ``Booster.inplace_predict`` per Arrow
  batch, the usual way nightly scoring runs in Spark today.

It checks that the three outputs hold the same predictions (Spark's from xgboost itself) and writes
``benchmarks/results/<date>-<host>/scoring-end-to-end.json``. Needs pyspark, xgboost, pyarrow,
numpy, Java 17, and release builds of ember, ember-scheduler and ember-executor.
"""

import argparse
import datetime
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xgboost as xgb

FEATURES = 20


def generate(path, rows, files=8, seed=11):
    os.makedirs(path, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"f{i}" for i in range(FEATURES)]
    per_file = rows // files
    train_x, train_y = None, None
    for f in range(files):
        n = per_file if f < files - 1 else rows - per_file * (files - 1)
        x = rng.normal(size=(n, FEATURES))
        x[rng.random(size=x.shape) < 0.01] = np.nan
        columns = {"id": np.arange(f * per_file, f * per_file + n, dtype=np.int64)}
        columns.update({name: x[:, i] for i, name in enumerate(names)})
        pq.write_table(pa.table(columns), os.path.join(path, f"part-{f}.parquet"))
        if train_x is None:
            logits = np.nan_to_num(x[:, 0] * x[:, 1] + np.sin(3 * x[:, 2]) - x[:, 4])
            train_x, train_y = x[:200_000], (logits[:200_000] > 0).astype(float)
    return names, train_x, train_y


def timed(command, env=None):
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr}")
    return elapsed, result


def spark_score(model_path, input_dir, output_dir, names):
    from pyspark.sql import SparkSession
    from pyspark.sql.types import DoubleType, StructField, StructType

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.driver.memory", "8g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    df = spark.read.parquet(input_dir)
    schema = StructType(list(df.schema.fields) + [StructField("prediction", DoubleType())])

    def score(batches):
        booster = xgb.Booster(model_file=model_path)
        booster.set_param({"nthread": 1})
        for pdf in batches:
            pdf["prediction"] = booster.inplace_predict(pdf[names].to_numpy()).astype("float64")
            yield pdf

    started = time.perf_counter()
    df.mapInPandas(score, schema).write.mode("overwrite").parquet(output_dir)
    elapsed = time.perf_counter() - started
    spark.stop()
    return elapsed


def predictions_by_id(path):
    table = pq.read_table(path, columns=["id", "prediction"])
    ids = table.column("id").to_numpy()
    p = table.column("prediction").to_numpy()
    order = np.argsort(ids)
    return ids[order], p[order]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--bin-dir", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release"))
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--skip-spark", action="store_true")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    ember = os.path.join(args.bin_dir, "ember")
    work = args.work_dir or tempfile.mkdtemp(prefix="ember-e2e-")
    input_dir = os.path.join(work, "input")
    model_path = os.path.join(work, "model.json")
    if not os.path.exists(os.path.join(input_dir, "part-0.parquet")) or not os.path.exists(model_path):
        names, x, y = generate(input_dir, args.rows)
        booster = xgb.train(
            {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6, "eta": 0.1, "nthread": 2, "seed": 1},
            xgb.DMatrix(x, label=y, feature_names=names), num_boost_round=100,
        )
        booster.save_model(model_path)
    names = [f"f{i}" for i in range(FEATURES)]
    results = {}

    out = os.path.join(work, "ember-embedded")
    shutil.rmtree(out, ignore_errors=True)
    seconds, _ = timed([ember, "score", "--model", model_path, "--input", input_dir, "--output", out, "--no-progress"])
    results["ember_embedded_seconds"] = seconds
    print(f"ember score, embedded:                 {seconds:7.2f} s", flush=True)

    state = os.path.join(work, "cluster-state")
    env = dict(os.environ, EMBER_BIN_DIR=args.bin_dir)
    up = subprocess.run([ember, "cluster", "up", "--executors", "2", "--vcores", "1", "--state-dir", state],
                        capture_output=True, text=True, env=env)
    if up.returncode != 0:
        sys.exit(f"cluster up failed: {up.stderr}")
    address = re.search(r"df://\S+", up.stdout + up.stderr).group(0)
    try:
        out_cluster = os.path.join(work, "ember-cluster")
        shutil.rmtree(out_cluster, ignore_errors=True)
        seconds, _ = timed([ember, "score", "--model", model_path, "--input", input_dir, "--output", out_cluster,
                            "--cluster", address, "--no-progress"], env=env)
        results["ember_cluster_2x1_seconds"] = seconds
        print(f"ember score, cluster 2 executors x 1:  {seconds:7.2f} s", flush=True)
    finally:
        subprocess.run([ember, "cluster", "down", "--state-dir", state], capture_output=True, env=env)

    ids, ember_p = predictions_by_id(out)
    ids_c, cluster_p = predictions_by_id(out_cluster)
    assert np.array_equal(ids, ids_c) and len(ids) == args.rows
    results["max_abs_diff_embedded_vs_cluster"] = float(np.max(np.abs(ember_p - cluster_p)))

    if not args.skip_spark:
        out_spark = os.path.join(work, "spark")
        shutil.rmtree(out_spark, ignore_errors=True)
        seconds = spark_score(model_path, input_dir, out_spark, names)
        results["spark_local2_pandas_udf_seconds"] = seconds
        print(f"Spark local[2], mapInPandas + xgboost: {seconds:7.2f} s", flush=True)
        ids_s, spark_p = predictions_by_id(out_spark)
        assert np.array_equal(ids, ids_s)
        results["max_abs_diff_ember_vs_spark_xgboost"] = float(np.max(np.abs(ember_p - spark_p)))
        results["speedup_embedded_vs_spark"] = seconds / results["ember_embedded_seconds"]
        results["speedup_cluster_vs_spark"] = seconds / results["ember_cluster_2x1_seconds"]
        print(f"speed-up over Spark: embedded {results['speedup_embedded_vs_spark']:.1f}x, "
              f"cluster {results['speedup_cluster_vs_spark']:.1f}x; "
              f"max |ember - xgboost| {results['max_abs_diff_ember_vs_spark_xgboost']:.1e}")

    report = {
        "benchmark": "scoring end to end (Parquet to Parquet)",
        "command": " ".join([sys.executable] + sys.argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "host": socket.gethostname(), "cpus": os.cpu_count(), "rows": args.rows,
        "model": "xgboost 100 trees depth 6, 20 features, binary:logistic",
        "results": results,
    }
    output = args.output or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "results",
        f"{datetime.date.today().isoformat()}-{socket.gethostname()}", "scoring-end-to-end.json",
    )
    os.makedirs(os.path.dirname(output), exist_ok=True)
    with open(output + ".tmp", "w") as f:
        json.dump(report, f, indent=2)
    os.replace(output + ".tmp", output)
    print(f"report: {os.path.normpath(output)}")


if __name__ == "__main__":
    main()
