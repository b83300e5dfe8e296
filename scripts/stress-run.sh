#!/usr/bin/env bash
# Stress run (docs/operations.md, "Stress runs"): builds hostapp and hostapp-stress if needed,
# then runs `hostapp-stress --hostapp <built hostapp> "$@"`, e.g.
#   scripts/stress-run.sh --profile ci
#   STRESS_CONFIGURATION=release scripts/stress-run.sh --profile soak --json-out soak.json
# STRESS_CONFIGURATION is debug (default, .build) or release (.build-release). The exit status is
# hostapp-stress's: 0 passed, 1 a leak, a lost event or a crash, 64 a usage error.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

configuration=${STRESS_CONFIGURATION:-debug}
case "$configuration" in
    debug) scratch=.build ;;
    release) scratch=.build-release ;;
    *) echo "STRESS_CONFIGURATION must be debug or release, got $configuration" >&2; exit 64 ;;
esac

# `swift build` is incremental: a no-op when both products are up to date.
swift build -c "$configuration" --scratch-path "$scratch" --product hostapp >&2
swift build -c "$configuration" --scratch-path "$scratch" --product hostapp-stress >&2
bin=$(swift build -c "$configuration" --scratch-path "$scratch" --show-bin-path)
exec "$bin/hostapp-stress" --hostapp "$bin/hostapp" "$@"
