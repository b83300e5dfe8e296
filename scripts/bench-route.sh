#!/usr/bin/env bash
# API route / host proxy benchmark (issue 11). Builds release binaries and prints one JSON object per
# run: GET-one-pod latency p50/p99, the time of one GET of every pod (10,000 by default) and
# watch-event latency p50/p99, for a direct client, `kubectl proxy` alone and hostapp's host proxy
# (`hostapp serve --proxy-addr`), all against one KubeSim. RUNS=3 (default) repeats the whole
# measurement; extra arguments go to hostapp-route-bench.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scratch=${SCRATCH_PATH:-.build}
swift build -c release --scratch-path "$scratch" --product hostapp >&2
swift build -c release --scratch-path "$scratch" --product hostapp-route-bench >&2
for _ in $(seq "${RUNS:-3}"); do
    "$scratch/release/hostapp-route-bench" --hostapp "$scratch/release/hostapp" --kubectl "${KUBECTL:-kubectl}" "$@"
done
