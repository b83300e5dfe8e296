import Foundation
import GuildNetCore
import TestSupport
import Testing

@Suite("metrics end to end")
struct MetricsEndToEndTests {
    @Test("GET /metrics labels every cluster series, drops an unregistered cluster's, and passes promtool")
    func metricsEndpoint() async throws {
        let dir = TemporaryDirectory("me")
        defer { dir.remove() }
        let daemon = try HostappProcess(stateDirectory: dir.path, extra: ["--metrics-addr", "127.0.0.1:0"])
        defer { daemon.terminate() }
        let ready = try await daemon.waitUntilReady()
        let port = try #require(Int(ready["metrics_port"]?.stringValue ?? ""))
        _ = try await daemon.request(["op": "cluster.register", "cluster": "m1"])
        _ = try await daemon.request(["op": "cluster.register", "cluster": "Other Cluster"])
        var reply = try await httpGet(port: port, path: "/metrics")
        var body = reply.text
        #expect(reply.status == 200)
        #expect(body.contains("hostapp_clusters_active 2"))
        #expect(body.contains("hostapp_cluster_db_open{cluster_id=\"m1\"} 1"))
        #expect(
            body.contains("hostapp_cluster_lifecycle_events_total{cluster_id=\"m1\",event=\"ready\"} 1")
                || body.contains("hostapp_cluster_lifecycle_events_total{event=\"ready\",cluster_id=\"m1\"} 1"), "\(body)")
        #expect(body.contains("hostapp_cluster_child_restarts_total"))
        for line in body.split(separator: "\n") where line.hasPrefix("hostapp_cluster_") {
            #expect(line.contains("cluster_id=\""), "\(line)")
        }
        try await promtoolCheck(body)
        _ = try await daemon.request(["op": "cluster.unregister", "cluster": "m1"])
        reply = try await httpGet(port: port, path: "/metrics")
        body = reply.text
        #expect(!body.contains("cluster_id=\"m1\""), "\(body)")
        #expect(body.contains("hostapp_clusters_active 1"))
        try await promtoolCheck(body)
        #expect(try await httpGet(port: port, path: "/other").status == 404)
    }
}

/// `promtool check metrics` on an exposition; fails the test with promtool's output when rejected.
func promtoolCheck(_ exposition: String) async throws {
    guard let promtool = locatePromtool() else {
        throw TestFailure("promtool not found; run scripts/install-test-tools.sh")
    }
    let result = try await runProcess(promtool, ["check", "metrics"], input: Array(exposition.utf8))
    guard result.exitCode == 0 else {
        throw TestFailure("promtool check metrics exited \(result.exitCode): \(result.output)")
    }
}
