import Foundation
import GuildNetCore
import TestSupport
import Testing

@testable import GuildNetMetrics

/// The host-wide families the alert rules need: churn counters, DB open failures, child restarts
/// and give-ups by child (kept after a cluster is gone), the process's FDs, RSS and tasks.
@Suite("host counters")
struct HostCountersTests {
    @Test func hostFamiliesAreExportedAndOutliveTheirCluster() async throws {
        let host = HostMetrics()
        host.observeSupervisedTasks { 7 }
        let cluster = host.makeClusterMetrics(for: try ClusterID(name: "c1"))
        try await cluster.start()
        host.clusterRegistered()
        cluster.childRestarted("store")
        cluster.childGaveUp("kube")
        cluster.databaseError()
        cluster.databaseOpenFailed()
        cluster.setState(.degraded)
        var parsed = ParsedExposition(host.exposition(), includeHostCounters: true)
        #expect(parsed.value("hostapp_clusters_registered_total", [:]) == 1)
        #expect(parsed.value("hostapp_clusters_unregistered_total", [:]) == 0)
        #expect(parsed.value("hostapp_db_open_failures_total", [:]) == 1)
        #expect(parsed.value("hostapp_child_restarts_total", ["child": "store"]) == 1)
        #expect(parsed.value("hostapp_child_restarts_total", ["child": "rethink"]) == 0, "known children exist from the start")
        #expect(parsed.value("hostapp_child_give_ups_total", ["child": "kube"]) == 1)
        #expect(parsed.value("hostapp_cluster_db_errors_total", ["cluster_id": "c1"]) == 1)
        #expect(parsed.value("hostapp_cluster_state", ["cluster_id": "c1", "state": "degraded"]) == 1)
        #expect(parsed.value("hostapp_cluster_state", ["cluster_id": "c1", "state": "ready"]) == 0)
        #expect(parsed.value("hostapp_supervised_tasks", [:]) == 7)
        #expect((parsed.value("hostapp_process_open_fds", [:]) ?? 0) >= 3)
        #expect((parsed.value("hostapp_process_resident_memory_bytes", [:]) ?? 0) > 1_000_000)

        host.clusterUnregistered()
        cluster.unregisterAll()
        parsed = ParsedExposition(host.exposition(), includeHostCounters: true)
        #expect(parsed.samples(ofCluster: "c1").isEmpty)
        #expect(parsed.value("hostapp_child_restarts_total", ["child": "store"]) == 1, "host-wide counters outlive the cluster")
        #expect(parsed.value("hostapp_clusters_unregistered_total", [:]) == 1)

        let promtool = try #require(locatePromtool(), "promtool not found: run scripts/install-test-tools.sh")
        let result = try await runProcess(promtool, ["check", "metrics"], input: host.exposition())
        #expect(result.exitCode == 0 && result.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(result.output)")
    }

    @Test func aClusterCannotClaimAHostFamily() async throws {
        let host = HostMetrics()
        let cluster = host.makeClusterMetrics(for: try ClusterID(name: "c1"))
        let before = host.rejectedRegistrations
        cluster.counter("hostapp_child_restarts_total", help: "Child restarts after failures, all clusters, by child (kept after unregistration).", labels: [])
            .increment()
        cluster.gauge("hostapp_process_open_fds", help: "File descriptors open in the daemon process.", labels: []).set(Int64(1))
        #expect(host.rejectedRegistrations == before + 2)
        #expect(ParsedExposition(host.exposition(), includeHostCounters: true).samples(ofCluster: "c1").isEmpty)
    }
}
