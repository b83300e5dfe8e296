#!/usr/bin/env bash
# Runtime benchmark (issue: runtime foundation). Builds release binaries and prints one JSON
# object: start-to-ready, register/unregister latency over 1,000 clusters, RSS and FDs per idle
# cluster, db.put replies per second from 8 pipelining clients across 100 clusters.
# Extra arguments go to hostapp-bench (e.g. --clusters 200 --puts 50000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
swift build -c release --product hostapp >&2
swift build -c release --product hostapp-bench >&2
exec .build/release/hostapp-bench --hostapp .build/release/hostapp "$@"
