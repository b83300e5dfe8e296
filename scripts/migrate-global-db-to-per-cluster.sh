#!/usr/bin/env bash
# Thin wrapper over `hostapp migrate-db` (see docs/migration-rollback.md).
#
#   scripts/migrate-global-db-to-per-cluster.sh --state-dir DIR (--cluster ID | --all) (--dry-run | --commit) [options]
#
# Every argument is passed through unchanged. HOSTAPP selects the binary (default: `hostapp` on
# PATH, else .build/release/hostapp, else .build/debug/hostapp). The master key, if any, is read by
# hostapp from GUILDNET_MASTER_KEY (or --master-key-env NAME); never pass it on the command line.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
hostapp="${HOSTAPP:-}"
if [[ -z "$hostapp" ]]; then
    if command -v hostapp >/dev/null 2>&1; then
        hostapp="$(command -v hostapp)"
    elif [[ -x "$root/.build/release/hostapp" ]]; then
        hostapp="$root/.build/release/hostapp"
    elif [[ -x "$root/.build/debug/hostapp" ]]; then
        hostapp="$root/.build/debug/hostapp"
    else
        echo "hostapp not found: build it (swift build -c release) or set HOSTAPP" >&2
        exit 2
    fi
fi

if [[ $# -eq 0 ]]; then
    exec "$hostapp" migrate-db --help
fi
exec "$hostapp" migrate-db "$@"
