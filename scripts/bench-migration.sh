#!/usr/bin/env bash
# Builds hostapp-migration-bench in release and runs it: 1,000,000 legacy keys across 100 clusters
# migrated by `migrate-db --all --commit` in process. Prints one JSON object (seconds, keys/s,
# peak RSS). Targets on the reference 2-core machine: < 60 s, < 200 MB peak RSS.
#
#   scripts/bench-migration.sh [--keys N] [--clusters C] [--dir DIR] [--keep]
#
# SCRATCH selects the build directory (default .build).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scratch="${SCRATCH:-$root/.build}"
cd "$root"
swift build -c release --scratch-path "$scratch" --product hostapp-migration-bench >&2
exec "$scratch/release/hostapp-migration-bench" "$@"
