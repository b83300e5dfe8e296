#!/usr/bin/env bash
# Builds hostapp-migration-bench in release and runs it: legacy keys migrated by
# `migrate-db --all --commit` in process. Prints one JSON object per run (seconds, keys/s, peak RSS,
# user/system CPU seconds, minor page faults).
#
# Without arguments it runs the three standard cases, each in its own process (so peak RSS is the
# case's own), RUNS times each (default 1):
#   1,000,000 keys over 100 clusters, 1,000,000 keys in 1 cluster, 1,000,000 keys over 2 clusters.
# Targets on the reference 2-core machine, each case: < 60 s, < 200 MB peak RSS, system time
# < 20 % of wall time, keys/s within 20 % of the 100-cluster case.
#
#   scripts/bench-migration.sh                                   # the three cases
#   RUNS=3 scripts/bench-migration.sh
#   scripts/bench-migration.sh [--keys N] [--clusters C] [--dir DIR] [--keep]   # one run
#
# SCRATCH selects the build directory (default .build).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scratch="${SCRATCH:-$root/.build}"
cd "$root"
swift build -c release --scratch-path "$scratch" --product hostapp-migration-bench >&2
bench="$scratch/release/hostapp-migration-bench"
if [ "$#" -gt 0 ]; then
    exec "$bench" "$@"
fi
for run in $(seq 1 "${RUNS:-1}"); do
    for clusters in 100 1 2; do
        echo "run $run: 1000000 keys, $clusters cluster(s)" >&2
        "$bench" --keys 1000000 --clusters "$clusters"
    done
done
