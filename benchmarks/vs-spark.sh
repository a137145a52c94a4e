#!/usr/bin/env bash
# TPC-H on Apache Spark, Ember embedded, Ember on a local cluster and
# single-process DataFusion (Ember's floor), side by side in one run, on the
# same Parquet files, the engines taking turns run by run.
#
#   benchmarks/vs-spark.sh [--sf 1] [--runs 3] [--executors 2] [--partitions N]
#                          [--no-spark] [--spark-master spark://HOST:7077]
#                          [--cluster df://HOST:PORT] [--bin-dir DIR] [--out DIR]
#                          [extra ember-bench tpch flags, e.g. --spark-driver-memory 8g]
#
# Builds Ember in release mode (unless --bin-dir names prebuilt binaries),
# installs pinned pyspark (benchmarks/spark/requirements.txt) into a
# virtualenv ($EMBER_BENCH_VENV, default ~/.cache/ember-bench-venv),
# generates the data once (benchmarks/data/tpch-sf<SF>), starts a local
# cluster (unless --cluster names one) and writes
# benchmarks/results/<date>-<host>/tpch-sf<SF>.{json,md,svg}: every run's
# time, the table (per query: Spark s, Ember s, Spark/Ember, Ember/DataFusion;
# totals; geometric means; targets) and the chart. Every Ember answer is
# verified against DataFusion's; Spark's by its row count.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ember-target}"

sf=1; runs=3; executors=2; spark=1; cluster=""; bin=""; out=""; partitions=""; extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sf) sf="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --executors) executors="$2"; shift 2 ;;
    --partitions) partitions="$2"; shift 2 ;;
    --no-spark) spark=0; shift ;;
    --cluster) cluster="$2"; shift 2 ;;
    --bin-dir) bin="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done

if [ -z "$bin" ]; then
  cargo build --release --workspace --bins
  bin="$CARGO_TARGET_DIR/release"
fi
bin="$(cd "$bin" && pwd)"
export EMBER_BIN_DIR="$bin"
out="${out:-benchmarks/results/$(date +%Y-%m-%d)-$(hostname)}"
mkdir -p "$out"
partitions="${partitions:-$(nproc)}"

engines="datafusion,embedded,cluster"
if [ "$spark" = 1 ]; then
  command -v java >/dev/null || { echo "vs-spark: Spark needs Java 17 or 21 on the PATH (or pass --no-spark)" >&2; exit 1; }
  venv="${EMBER_BENCH_VENV:-$HOME/.cache/ember-bench-venv}"
  want="$(grep -E '^pyspark==' benchmarks/spark/requirements.txt | cut -d= -f3)"
  have="$("$venv/bin/python" -c 'import pyspark; print(pyspark.__version__)' 2>/dev/null || true)"
  if [ "$have" != "$want" ]; then
    echo "vs-spark: installing pyspark $want into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r benchmarks/spark/requirements.txt
  fi
  engines="$engines,spark"
  extra+=(--spark-python "$venv/bin/python")
fi

state=""
cleanup() {
  if [ -n "$state" ]; then
    "$bin/ember" cluster down --state-dir "$state" >/dev/null 2>&1 || true
    rm -rf "$state"
  fi
}
trap cleanup EXIT
if [ -z "$cluster" ]; then
  state="$(mktemp -d)"
  vcores=$(( $(nproc) / executors )); [ "$vcores" -ge 1 ] || vcores=1
  cluster=$("$bin/ember" cluster up --executors "$executors" --vcores "$vcores" --state-dir "$state")
  echo "cluster: $cluster ($executors executors x $vcores vcores)"
fi

"$bin/ember-bench" tpch --sf "$sf" --runs "$runs" --verify --partitions "$partitions" \
  --engines "$engines" --cluster "$cluster" \
  --output "$out/tpch-sf$sf.json" ${extra[@]+"${extra[@]}"}
"$bin/ember-bench" summary --dir "$out"
echo
cat "$out/tpch-sf$sf.md"
