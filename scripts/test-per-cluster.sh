#!/usr/bin/env bash
# The curated per-cluster integration subset (docs/operations.md, "Per-cluster integration tests"):
# cluster isolation (storage, Kubernetes), teardown, and the end-to-end suites that drive the built
# `hostapp serve` with several clusters at once. Against the simulators (KubeSim, RethinkSim) by
# default; with HOSTAPP_E2E_KUBECONFIGS=/path/a:/path/b the parallel-clusters suite runs against
# those real clusters instead (kind, k3s, …) and says which of its phases it skips.
#   --skip-build   run the already built tests
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

suites=(
    StorageIsolationTests
    KubeIsolationTests
    TeardownTests
    SubsystemsEndToEndTests
    ForwardEndToEndTests
    RouteEndToEndTests
    MetricsEndToEndTests
    RestoreEndToEndTests
    ParallelClustersEndToEndTests
)
filter="$(IFS='|'; echo "${suites[*]}")"

if [ "${1:-}" != "--skip-build" ]; then
    bash scripts/install-test-tools.sh
    swift build --build-tests
fi
if [ -z "${PROMTOOL:-}" ] && [ -x .tools/bin/promtool ]; then export PROMTOOL="$PWD/.tools/bin/promtool"; fi

if [ -n "${HOSTAPP_E2E_KUBECONFIGS:-}" ]; then
    echo "== per-cluster suites; ParallelClustersEndToEndTests against the clusters of HOSTAPP_E2E_KUBECONFIGS"
else
    echo "== per-cluster suites against the simulators"
fi
swift test --skip-build --disable-xctest --filter "$filter"
