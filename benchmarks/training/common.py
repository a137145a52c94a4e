"""Shared helpers of the training benchmarks: timing commands, a local Ember cluster, reports."""

import datetime
import json
import os
import re
import socket
import subprocess
import sys
import time
from contextlib import contextmanager


def timed(command, env=None):
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr}")
    return elapsed, result


@contextmanager
def local_cluster(ember, bin_dir, work, executors=2, vcores=1):
    """`ember cluster up` for the duration of a block; yields the scheduler address."""
    state = os.path.join(work, "cluster-state")
    env = dict(os.environ, EMBER_BIN_DIR=bin_dir)
    up = subprocess.run([ember, "cluster", "up", "--executors", str(executors), "--vcores", str(vcores),
                         "--state-dir", state], capture_output=True, text=True, env=env)
    if up.returncode != 0:
        sys.exit(f"cluster up failed: {up.stderr}")
    address = re.search(r"df://\S+", up.stdout + up.stderr).group(0)
    try:
        yield address
    finally:
        subprocess.run([ember, "cluster", "down", "--state-dir", state], capture_output=True, env=env)


def write_report(name, report):
    report.update({
        "command": " ".join([sys.executable] + sys.argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
    })
    output = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "results",
                          f"{datetime.date.today().isoformat()}-{socket.gethostname()}", name)
    os.makedirs(os.path.dirname(output), exist_ok=True)
    with open(output + ".tmp", "w") as f:
        json.dump(report, f, indent=2)
    os.replace(output + ".tmp", output)
    print(f"report: {os.path.normpath(output)}")
