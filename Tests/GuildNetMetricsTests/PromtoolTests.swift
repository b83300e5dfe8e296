import Foundation
import GuildNetCore
import GuildNetMetrics
import TestSupport
import Testing

/// `promtool check metrics` is the referee for the exposition format (exit 0: valid and lint-clean).
@Suite("promtool referee")
struct PromtoolTests {
    @Test func promtoolAcceptsPopulatedExposition() async throws {
        let promtool = try #require(
            locatePromtool(),
            "promtool not found (looked at $PROMTOOL and <package root>/.tools/bin/promtool): run scripts/install-test-tools.sh"
        )

        let host = HostMetrics()
        host.setClustersActive(2)
        let clusters = [
            host.makeClusterMetrics(for: try ClusterID(name: "prod-eu")),
            host.makeClusterMetrics(for: try ClusterID(name: "Staging US/east")),
        ]
        for cluster in clusters {
            try await cluster.start()
            for event in LifecycleEvent.allCases { cluster.lifecycle(event) }
            for child in ["store", "settings", "metrics"] { cluster.registerChild(child) }
            cluster.childRestarted("store")
            cluster.setDatabaseOpen(true)
            cluster.counter("hostapp_cluster_forward_bytes_total", help: "Bytes forwarded through port-forwards.", labels: [("direction", "in")])
                .increment(by: Int64(1024))
            cluster.gauge("hostapp_cluster_route_healthy", help: "Whether a route strategy is healthy (1) or not (0).", labels: [("strategy", "direct")])
                .set(Int64(1))
            // A label value that needs escaping.
            cluster.counter("hostapp_cluster_errors_total", help: "Errors by message.", labels: [("message", "quote \" backslash \\ newline \n end")])
                .increment()
        }
        // A destroyed cluster leaves no trace, and the rest still passes.
        let destroyed = host.makeClusterMetrics(for: try ClusterID(name: "gone"))
        destroyed.lifecycle(.destroy)
        destroyed.registerChild("kube")
        destroyed.unregisterAll()

        let exposition = host.exposition()
        let result = try await runProcess(promtool, ["check", "metrics"], input: exposition)
        #expect(
            result.exitCode == 0,
            "promtool check metrics exited \(result.exitCode): \(result.output)\n--- exposition ---\n\(String(decoding: exposition, as: UTF8.self))"
        )
        #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "promtool said: \(result.output)")
    }

    @Test func promtoolRejectsBrokenExposition() async throws {
        // Guards the referee itself: a duplicated family must fail, or the test above proves nothing.
        let promtool = try #require(locatePromtool(), "promtool not found: run scripts/install-test-tools.sh")
        let host = HostMetrics()
        var broken = host.exposition()
        broken += host.exposition()
        let result = try await runProcess(promtool, ["check", "metrics"], input: broken)
        #expect(result.exitCode != 0)
    }
}
