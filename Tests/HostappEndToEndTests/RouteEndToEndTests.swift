import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetSimulators
import TestSupport
import Testing

/// API routes through the built `hostapp serve`: one cluster whose server refuses direct clients
/// falls back to a supervised `kubectl proxy`, a second on a healthy server stays direct; the
/// route series are per cluster and vanish with it; kubectl dies with the daemon, on unregister,
/// on graceful shutdown and when the daemon is SIGKILLed (PR_SET_PDEATHSIG through setpriv).
@Suite("hostapp API routes end to end", .serialized)
struct RouteEndToEndTests {
    typealias E = SubsystemsEndToEndTests

    /// The kubectl of the KubeSim referee tests ($KUBECTL), else the daemon's PATH lookup.
    static var settings: JSONValue {
        guard let kubectl = ProcessInfo.processInfo.environment["KUBECTL"], !kubectl.isEmpty else { return [:] }
        return ["route.kubectl_path": .string(kubectl)]
    }

    static func isAlive(_ pid: Int32) -> Bool { ProcessResources.isRunning(pid: pid) }

    static func probe(_ client: ControlClient, _ cluster: String) async throws -> JSONValue {
        try await E.call(client, "p-\(cluster)-\(UUID().uuidString.prefix(4))", ["op": "route.probe", "cluster": .string(cluster)])
    }

    @Test("two clusters, two routes, no shared decision; kubectl gone after unregister, shutdown and SIGKILL of the daemon")
    func twoClustersTwoRoutesAndNoOrphanedKubectl() async throws {
        var refusingOptions = KubeSimOptions()
        refusingOptions.requireForwardedFor = true
        try await KubeSim.withRunning(options: refusingOptions) { refusing, refusingEndpoint in
            try await KubeSim.withRunning { healthy, healthyEndpoint in
                let dir = TemporaryDirectory("e2e-routes")
                defer { dir.remove() }
                try refusing.writeKubeconfig(to: dir.path + "/a.kubeconfig", endpoint: refusingEndpoint)
                try healthy.writeKubeconfig(to: dir.path + "/b.kubeconfig", endpoint: healthyEndpoint)

                // Graceful: unregister and host shutdown.
                do {
                    let daemon = try HostappProcess(stateDirectory: dir.path + "/state", extra: ["--metrics-addr", "127.0.0.1:0"])
                    defer { daemon.terminate() }
                    let ready = try await daemon.waitUntilReady()
                    let metricsPort = try #require(Int(ready["metrics_port"]?.stringValue ?? ""))
                    let client = try await daemon.client()
                    for name in ["a", "b"] {
                        _ = try await E.call(
                            client, "r\(name)",
                            [
                                "op": "cluster.register", "cluster": .string(name), "kubeconfig": .string(dir.path + "/\(name).kubeconfig"),
                                "settings": Self.settings,
                            ])
                    }
                    let a = try await Self.probe(client, "a")
                    let b = try await Self.probe(client, "b")
                    #expect(a["route"] == "kubectl-proxy")
                    #expect(b["route"] == "direct")
                    #expect(b["kubectl_pid"] == .null)
                    let pid = Int32(try #require(a["kubectl_pid"]?.intValue))
                    #expect(Self.isAlive(pid))
                    // The kubectl proxy is a child of the daemon.
                    let parent = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8).split(separator: " ")[3]
                    #expect(String(parent) == daemon.pid)

                    try await eventually("route series per cluster") {
                        let text = try await httpGet(port: metricsPort, path: "/metrics").text
                        return text.contains("hostapp_cluster_route_current{cluster_id=\"a\",route=\"kubectl-proxy\"} 1")
                            && text.contains("hostapp_cluster_route_current{cluster_id=\"b\",route=\"direct\"} 1")
                            && text.contains("hostapp_cluster_route_fallbacks_total{cluster_id=\"a\"} 1")
                            && !text.contains("hostapp_cluster_route_fallbacks_total{cluster_id=\"b\"}")
                    }
                    let exposition = try await httpGet(port: metricsPort, path: "/metrics").text
                    for family in ["requests_total", "latency_seconds", "fallbacks_total", "current"] {
                        #expect(exposition.contains("hostapp_cluster_route_\(family){cluster_id=\"a\""))
                    }
                    try await promtoolCheck(exposition)
                    _ = try await E.call(client, "ua", ["op": "cluster.unregister", "cluster": "a"])
                    #expect(!Self.isAlive(pid))
                    let after = try await httpGet(port: metricsPort, path: "/metrics").text
                    #expect(!after.contains("hostapp_cluster_route_current{cluster_id=\"a\""))
                    #expect(after.contains("hostapp_cluster_route_current{cluster_id=\"b\",route=\"direct\"} 1"))

                    _ = try await E.call(
                        client, "ra2", ["op": "cluster.register", "cluster": "a", "kubeconfig": .string(dir.path + "/a.kubeconfig"), "settings": Self.settings])
                    let again = try await Self.probe(client, "a")
                    let second = Int32(try #require(again["kubectl_pid"]?.intValue))
                    await client.close()
                    daemon.terminate()
                    _ = try await daemon.waitForExit()
                    #expect(!Self.isAlive(second), "kubectl proxy (pid \(second)) must not outlive a graceful shutdown")
                    // Stopping is no verdict: no route failure is logged for the healthy cluster.
                    #expect(daemon.logRecords.contains { $0["event"] == "route_selected" && $0["cluster_id"] == "b" })
                    #expect(!daemon.logRecords.contains { $0["event"] == "route_failed" && $0["cluster_id"] == "b" })
                }

                // SIGKILL: nothing runs in the daemon to clean up; the kernel kills kubectl with it.
                let daemon = try HostappProcess(stateDirectory: dir.path + "/state")
                defer { daemon.terminate() }
                _ = try await daemon.waitUntilReady()
                let client = try await daemon.client()
                _ = try await E.call(
                    client, "ra3", ["op": "cluster.register", "cluster": "a", "kubeconfig": .string(dir.path + "/a.kubeconfig"), "settings": Self.settings])
                let restored = try await Self.probe(client, "a")
                #expect(restored["route"] == "kubectl-proxy")
                let pid = Int32(try #require(restored["kubectl_pid"]?.intValue))
                await client.close()
                kill(daemon.process.processIdentifier, SIGKILL)
                _ = try await daemon.waitForExit()
                try await eventually("kubectl proxy dies with a SIGKILLed daemon") { !Self.isAlive(pid) }
            }
        }
    }
}
