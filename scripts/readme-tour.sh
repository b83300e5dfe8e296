#!/usr/bin/env bash
# Runs the README's tour and every example of `hostapp ctl --help`, as written, against the built
# binary: the README's ```sh blocks that follow a `<!-- tour -->` line, in order, in one shell, in a
# fresh directory (with free ports substituted for 9464 and 28016, so parallel runs never collide);
# then each `hostapp ctl --help` example against a fresh daemon. Every command must exit 0.
#
# Each part runs in its own process group, which is killed at the end, so nothing the README
# starts (the daemon, the simulators) outlives the script. Output is shown only on failure.
#   scripts/readme-tour.sh            uses .build/debug/hostapp (HOSTAPP_BIN overrides)
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
hostapp_bin="${HOSTAPP_BIN:-$repo_root/.build/debug/hostapp}"
[ -x "$hostapp_bin" ] || { echo "error: $hostapp_bin not found; build first (swift build)" >&2; exit 1; }

work="$(mktemp -d)"
groups=()
cleanup() {
    for group in "${groups[@]}"; do kill -KILL -- "-$group" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Runs script $1 in directory $2 in a new process group (at most $3 seconds); fails, printing its
# output, when it fails, times out or leaves a process behind.
run_isolated() {
    local script="$1" directory="$2" limit="$3" log="$1.log"
    (cd "$directory" && PATH="$(dirname "$hostapp_bin"):$PATH" exec setsid bash -euo pipefail -x "$script" >"$log" 2>&1) &
    local pid=$! waited=0
    groups+=("$pid")
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt $((limit * 10)) ]; do sleep 0.1; waited=$((waited + 1)); done
    local status=0 problem=""
    if kill -0 "$pid" 2>/dev/null; then
        problem="did not finish within ${limit}s"
    else
        wait "$pid" || status=$?
        [ "$status" -eq 0 ] || problem="failed (exit $status)"
    fi
    if [ -z "$problem" ] && pgrep -g "$pid" >/dev/null 2>&1; then
        problem="left processes behind: $(pgrep -g "$pid" -a | tr '\n' ';')"
    fi
    kill -KILL -- "-$pid" 2>/dev/null || true
    if [ -n "$problem" ]; then
        echo "error: $(basename "$script") $problem; its output (bash -x):" >&2
        sed 's/^/  | /' "$log" >&2
        for extra in "$directory"/*.log "$directory"/*.out; do
            [ -f "$extra" ] || continue
            echo "  $(basename "$extra"):" >&2
            sed 's/^/  | /' "$extra" >&2
        done
        return 1
    fi
}

# 1. The README tour.
metrics_port="$(free_port)"
rethink_port="$(free_port)"
mkdir -p "$work/tour"
awk '
    /^<!-- tour -->$/ { armed = 1; next }
    armed && /^```sh$/ { inside = 1; armed = 0; blocks++; print "# --- README tour block " blocks; next }
    inside && /^```$/ { inside = 0; next }
    inside { print }
' "$repo_root/README.md" | sed -e "s/9464/$metrics_port/g" -e "s/28016/$rethink_port/g" > "$work/tour.sh"
blocks="$(grep -c '^# --- README tour block' "$work/tour.sh" || true)"
[ "$blocks" -gt 0 ] || { echo "error: README.md has no <!-- tour --> blocks" >&2; exit 1; }
run_isolated "$work/tour.sh" "$work/tour" 300

# 2. Every example of `hostapp ctl --help`, in order, against a fresh daemon on ./state.
mkdir -p "$work/help"
{
    echo 'hostapp serve --state-dir ./state 2> hostapp.log &'
    echo 'daemon=$!'
    echo "timeout 30 sh -c 'until grep -q event=host_ready hostapp.log; do sleep 0.1; done'"
    "$hostapp_bin" ctl --help | sed -n 's/^  \(hostapp ctl .*\|export HOSTAPP_SOCKET=.*\)$/\1/p'
    echo 'hostapp ctl --state-dir ./state host.shutdown'
    echo 'wait $daemon'
} > "$work/help.sh"
examples="$(grep -c '^hostapp ctl \|^export ' "$work/help.sh")"
[ "$examples" -gt 2 ] || { echo "error: hostapp ctl --help shows no examples" >&2; exit 1; }
run_isolated "$work/help.sh" "$work/help" 120

echo "README tour: $blocks blocks passed; hostapp ctl --help: $((examples - 1)) examples passed"
