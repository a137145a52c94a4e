#!/usr/bin/env python3
"""TPC-H on Apache Spark, timed the way `ember-bench tpch` times Ember.

Runs the 22 queries of ``benchmarks/queries/tpch`` (the same files Ember runs)
on the Parquet tables ``ember-bench`` generated, on ``local[N]`` or a Spark
standalone master, and writes the same JSON report as ``ember-bench``.

    python tpch_spark.py --data-dir benchmarks/data/tpch-sf1 --master local[2] --runs 3 \\
        --output spark.json

Timing rule (identical to ``ember-bench``): one run of a query is the wall time
from submitting its SQL to holding every row of the answer in the driver
(``collect()``); the report keeps every run, the best and the median. Table
registration happens once, before the first query, and is not timed.

``--serve`` is the mode ``ember-bench tpch --engines ...,spark`` uses to
alternate Spark with Ember query by query: the runner reads one JSON request
per line on stdin (``{"query": 6}``), runs the query once and answers one JSON
line on stdout (``{"query": 6, "seconds": 0.41, "rows": 1}`` or
``{"query": 6, "error": "..."}``). Spark's own logging goes to stderr.
"""

import argparse
import json
import os
import re
import socket
import statistics
import sys
import time

TABLES = ["customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier"]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True,
                        help="directory or URL (s3://..., read as s3a://) with one Parquet directory per TPC-H table")
    parser.add_argument("--queries-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                              "..", "queries", "tpch"))
    parser.add_argument("--master", default="local[2]", help="local[N] or spark://HOST:7077")
    parser.add_argument("--partitions", type=int, default=None,
                        help="spark.sql.shuffle.partitions (default: the N of local[N], else 200)")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--executor-memory", default=None, help="for a standalone master")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark settings")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--queries", default="", help="comma-separated query numbers (default: all 22)")
    parser.add_argument("--scale-factor", type=float, default=None, help="recorded in the report")
    parser.add_argument("--output", default=None, help="write the JSON report here (default: stdout)")
    parser.add_argument("--serve", action="store_true", help="answer one query per stdin line (see above)")
    return parser.parse_args()


def default_partitions(master):
    match = re.fullmatch(r"local\[(\d+)\]", master)
    return int(match.group(1)) if match else 200


def load_queries(queries_dir):
    queries = {}
    for n in range(1, 23):
        path = os.path.join(queries_dir, f"q{n}.sql")
        with open(path) as f:
            statements = [s.strip() for s in f.read().split(";") if s.strip()]
        queries[n] = [spark_dialect(s) for s in statements]
    return queries


def spark_dialect(statement):
    """DataFusion's TPC-H SQL as Spark reads it.

    The only difference is query 15's view: Spark's in-memory catalog cannot
    hold a permanent view over temporary views, so it becomes a temporary view.
    """
    return re.sub(r"^\s*create\s+view\s", "create or replace temporary view ", statement, flags=re.IGNORECASE)


def answer_index(statements):
    """The statement whose rows are the answer: the one `select` (query 15 has a view around it)."""
    for i, s in enumerate(statements):
        if s.lstrip().lower().startswith("select"):
            return i
    return len(statements) - 1


def start_spark(args):
    from pyspark.sql import SparkSession

    partitions = args.partitions or default_partitions(args.master)
    builder = (SparkSession.builder.appName("ember-bench-tpch").master(args.master)
               .config("spark.driver.memory", args.driver_memory)
               .config("spark.sql.shuffle.partitions", str(partitions))
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false"))
    if args.executor_memory:
        builder = builder.config("spark.executor.memory", args.executor_memory)
    for setting in args.conf:
        key, sep, value = setting.partition("=")
        if not sep:
            sys.exit(f"tpch_spark: --conf '{setting}' is not KEY=VALUE")
        builder = builder.config(key.strip(), value.strip())
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    for table in TABLES:
        if "://" in args.data_dir:
            # Hadoop's S3 connector is s3a (it needs hadoop-aws: see benchmarks/README.md).
            path = re.sub(r"^s3://", "s3a://", args.data_dir.rstrip("/")) + "/" + table
        else:
            path = os.path.join(os.path.abspath(args.data_dir), table)
            if not os.path.isdir(path):
                sys.exit(f"tpch_spark: {path}: no such table directory (generate it with `ember-bench tpch --sf N`)")
        spark.read.parquet(path).createOrReplaceTempView(table)
    return spark, partitions


def run_once(spark, statements):
    """Runs a query's statements; returns (seconds, rows of the answer)."""
    started = time.perf_counter()
    rows = 0
    answer = answer_index(statements)
    for i, statement in enumerate(statements):
        result = spark.sql(statement)
        if i == answer:
            rows = len(result.collect())
    return time.perf_counter() - started, rows


def serve(spark, queries, out):
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            n = int(json.loads(line)["query"])
            if n not in queries:
                raise ValueError(f"there is no TPC-H query {n}")
            seconds, rows = run_once(spark, queries[n])
            reply = {"query": n, "seconds": seconds, "rows": rows}
        except Exception as e:  # every failure is an answer, never a dead pipe
            reply = {"query": line.strip(), "error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def report(args, partitions, per_query, spark_version):
    engines_queries = []
    for n, (times, rows) in per_query.items():
        engines_queries.append({
            "query": n,
            "runs_s": times,
            "best_s": min(times),
            "median_s": statistics.median(times),
            "rows": rows,
            "verified": None,
        })
    return {
        "scale_factor": args.scale_factor if args.scale_factor is not None else scale_factor_of(args.data_dir),
        "partitions": partitions,
        "runs": args.runs,
        "host": socket.gethostname(),
        "cores": os.cpu_count(),
        "engines": [{
            "engine": "spark",
            "detail": f"Apache Spark {spark_version} {args.master}, shuffle partitions {partitions}",
            "queries": engines_queries,
        }],
    }


def scale_factor_of(data_dir):
    match = re.search(r"sf(\d+(?:\.\d+)?)", os.path.basename(os.path.normpath(data_dir)))
    return float(match.group(1)) if match else 0.0


def main():
    args = parse_args()
    queries = load_queries(args.queries_dir)
    wanted = [int(q) for q in args.queries.split(",") if q.strip()] or list(range(1, 23))
    for n in wanted:
        if n not in queries:
            sys.exit(f"tpch_spark: --queries: there is no TPC-H query {n}")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # In serve mode stdout carries the protocol: it moves to a private file
    # descriptor, and file descriptor 1 (which the JVM inherits) joins stderr.
    protocol = sys.stdout
    if args.serve:
        protocol = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)
    spark, partitions = start_spark(args)
    if args.serve:
        protocol.write(json.dumps({"ready": True, "spark": spark.version, "master": args.master,
                                   "partitions": partitions}) + "\n")
        protocol.flush()
        serve(spark, queries, protocol)
        spark.stop()
        return
    per_query = {}
    for n in wanted:
        times, rows = [], 0
        for _ in range(max(args.runs, 1)):
            seconds, rows = run_once(spark, queries[n])
            times.append(seconds)
        per_query[n] = (times, rows)
        print(f"q{n:<2} spark      best {min(times):8.3f} s  median {statistics.median(times):8.3f} s  rows {rows}",
              file=sys.stderr)
    result = report(args, partitions, per_query, spark.version)
    spark.stop()
    text = json.dumps(result, indent=2)
    if args.output:
        tmp = args.output + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, args.output)
    else:
        print(text)


if __name__ == "__main__":
    main()
