#!/usr/bin/env bash
# The project's test command (README.md): installs the test referees, builds everything with zero
# warnings allowed in our own code, runs every suite, then the concurrency suites under
# ThreadSanitizer. Exit status is non-zero on any failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-test-tools.sh
export PROMTOOL="$PWD/.tools/bin/promtool"

echo "== format (swift format lint --strict, configuration .swift-format)"
swift format lint --strict --parallel --recursive --configuration .swift-format Sources Tests StressTests

echo "== build (debug, with tests; every imported module must be a declared dependency)"
swift build --build-tests --explicit-target-dependency-import-check error 2>&1 | tee .build-log.txt
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

# --- fuzzing (issue 18): every untrusted-input parser, a short budget each; any crash fails.
# Its own instrumented build in .build-fuzz (see docs/operations.md, "Fuzzing").
echo "== fuzz (scripts/fuzz.sh, ${FUZZ_SECONDS:-20} s per target)"
bash scripts/fuzz.sh --seconds "${FUZZ_SECONDS:-20}"
