#!/usr/bin/env bash
# Port-forward benchmark (issue 10). Builds release binaries and prints one JSON object per run:
# echo throughput of one and of 8 parallel 256 MiB transfers and connect latency p50/p99 (5,000
# samples) for hostapp's forward, `kubectl port-forward` and a direct loopback connection to the
# pod's backend, all through one KubeSim; and the daemon's RSS growth after 10,000 connections.
# RUNS=3 (default) repeats the whole measurement; extra arguments go to hostapp-forward-bench.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scratch=${SCRATCH_PATH:-.build}
swift build -c release --scratch-path "$scratch" --product hostapp >&2
swift build -c release --scratch-path "$scratch" --product hostapp-forward-bench >&2
for _ in $(seq "${RUNS:-3}"); do
    "$scratch/release/hostapp-forward-bench" --hostapp "$scratch/release/hostapp" "$@"
done
