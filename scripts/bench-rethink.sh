#!/usr/bin/env bash
# RethinkDB benchmark (issue: RethinkDB per cluster). Builds release binaries and prints one JSON
# object: query round trips/s on one connection, changefeed events/s delivered to a control-protocol
# client, 100 concurrent feeds across 10 clusters, and cluster B's feed latency while cluster A's
# feed is flooded (--flood-rate rows/s, 0 = as fast as possible). Extra arguments go to
# hostapp-rethink-bench (e.g. --flood-rate 30000 --probes 1000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
swift build -c release --product hostapp >&2
swift build -c release --product hostapp-rethink-bench >&2
exec .build/release/hostapp-rethink-bench --hostapp .build/release/hostapp "$@"
