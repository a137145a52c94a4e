#!/usr/bin/env bash
# TPC-H on single-process DataFusion, Ember embedded and Ember on a local
# cluster (a scheduler and N executors as separate processes), in one run.
#
#   benchmarks/tpch.sh [--sf 1] [--runs 3] [--executors 2] [extra ember-bench flags]
#
# Builds in release mode, writes benchmarks/results/<date>-<host>/tpch-sf<SF>.json
# and prints the totals.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ember-target}"

sf=1; runs=3; executors=2; extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sf) sf="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --executors) executors="$2"; shift 2 ;;
    *) extra+=("$1"); shift ;;
  esac
done

cargo build --release --workspace --bins
bin="$CARGO_TARGET_DIR/release"
out="benchmarks/results/$(date +%Y-%m-%d)-$(hostname)"
mkdir -p "$out"
state="$(mktemp -d)"
trap '"$bin/ember" cluster down --state-dir "$state" >/dev/null 2>&1 || true; rm -rf "$state"' EXIT

vcores=$(( $(nproc) / executors )); [ "$vcores" -ge 1 ] || vcores=1
address=$("$bin/ember" cluster up --executors "$executors" --vcores "$vcores" --state-dir "$state")
echo "cluster: $address ($executors executors x $vcores vcores)"

"$bin/ember-bench" tpch --sf "$sf" --runs "$runs" --verify \
  --engines datafusion,embedded,cluster --cluster "$address" \
  --output "$out/tpch-sf$sf.json" "${extra[@]}"
echo "report: $out/tpch-sf$sf.json"
