#!/usr/bin/env bash
# The project's test command (README.md): installs the test referees, builds everything with zero
# warnings allowed in our own code, runs every suite, then the concurrency suites under
# ThreadSanitizer. Exit status is non-zero on any failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-test-tools.sh
export PROMTOOL="$PWD/.tools/bin/promtool"

echo "== build (debug, with tests)"
swift build --build-tests 2>&1 | tee .build-log.txt
# Our sources must compile without a single warning (dependencies' warnings are not ours).
if grep -E "^$PWD/(Sources|Tests|StressTests)/.*: warning:" .build-log.txt; then
    echo "error: the build printed warnings in project sources" >&2
    exit 1
fi

echo "== tests"
swift test --skip-build

echo "== concurrency suites under ThreadSanitizer"
swift build --build-tests --sanitize=thread --scratch-path .build-tsan 2>&1 | tail -n 3
swift test --skip-build --sanitize=thread --scratch-path .build-tsan \
    --filter 'HostActorTests|SupervisionTests|TeardownTests|ClusterStoreTests|TransportTests|RethinkChangefeedTests|RethinkConnectorTests|KubeInformerTests|KubeOpsTests|RethinkOpsTests'
