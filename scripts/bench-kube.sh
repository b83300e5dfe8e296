#!/usr/bin/env bash
# Kubernetes benchmark (issue: Kubernetes per cluster). Builds release binaries and prints one JSON
# object: watch events/s applied to informer caches for 1 and 50 clusters, memory per 10,000 cached
# pods, relist time for 10,000 pods, and cluster B's watch-event latency while cluster A's API
# server is stalled. Extra arguments go to hostapp-kube-bench.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
swift build -c release --product hostapp-kube-bench >&2
exec .build/release/hostapp-kube-bench "$@"
