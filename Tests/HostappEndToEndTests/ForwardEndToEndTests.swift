import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetSimulators
import NIOCore
import TestSupport
import Testing

/// Port-forwards through the built `hostapp serve` and its control socket: two clusters on two
/// KubeSims, each with forwards. A service forward follows its pod when the pod is recreated;
/// stalling A's tunnels leaves B serving (round trips printed as JSON for docs/performance.md);
/// unregistering A closes A's listeners while B's keep serving, and the daemon's FD count returns
/// to its value before A existed.
@Suite("hostapp port-forwards end to end", .serialized)
struct ForwardEndToEndTests {
    typealias E = SubsystemsEndToEndTests

    static func forward(_ client: ControlClient, _ id: String, cluster: String, _ fields: [String: JSONValue]) async throws -> (String, Int) {
        var request = fields
        request["op"] = "forward.start"
        request["cluster"] = .string(cluster)
        let reply = try await E.call(client, id, request)
        return (try #require(reply["forward_id"]?.stringValue), Int(try #require(reply["local_port"]?.intValue)))
    }

    static func status(_ client: ControlClient, cluster: String, id: String) async throws -> JSONValue? {
        let list = try await E.call(client, "l-\(UUID().uuidString.prefix(6))", ["op": "forward.list", "cluster": .string(cluster)])
        return list["forwards"]?.arrayValue?.first { $0["forward_id"]?.stringValue == id }
    }

    static func simPod(_ sim: KubeSim) async throws -> String? {
        let items = try await sim.list(.pods, namespace: "default")["items"]?.arrayValue ?? []
        return items.first { $0["metadata"]?["labels"]?["app"] == "sim" }?["metadata"]?["name"]?.stringValue
    }

    /// Round-trip times of `count` echo exchanges through `port`, in microseconds, sorted.
    static func roundTrips(port: Int, count: Int) async throws -> [Int64] {
        var samples: [Int64] = []
        for index in 0..<count {
            let message = Array("rt-\(index)".utf8)
            let started = ContinuousClock.now
            let back = try await LoopbackTCP.exchange(port: port, send: message, expect: message.count)
            let elapsed = ContinuousClock.now - started
            #expect(back == message)
            samples.append(elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000)
        }
        return samples.sorted()
    }

    @Test("two clusters' forwards through hostapp serve: follow a recreated pod, isolate a stall, tear down without leaks")
    func twoClustersWithForwards() async throws {
        var simOptions = KubeSimOptions()
        simOptions.simulatedPods = 1
        let options = simOptions
        try await KubeSim.withRunning(options: options) { simA, endpointA in
            try await KubeSim.withRunning(options: options) { simB, endpointB in
                let dir = TemporaryDirectory("e2e-forward")
                defer { dir.remove() }
                try simA.writeKubeconfig(to: dir.path + "/a.kubeconfig", endpoint: endpointA)
                try simB.writeKubeconfig(to: dir.path + "/b.kubeconfig", endpoint: endpointB)
                let daemon = try HostappProcess(stateDirectory: dir.path + "/state", extra: ["--metrics-addr", "127.0.0.1:0"])
                defer { daemon.terminate() }
                let ready = try await daemon.waitUntilReady()
                let metricsPort = try #require(Int(ready["metrics_port"]?.stringValue ?? ""))
                let client = try await daemon.client()
                let settings: JSONValue = ["forward.health_interval_ms": 200]

                _ = try await E.call(
                    client, "rb", ["op": "cluster.register", "cluster": "b", "kubeconfig": .string(dir.path + "/b.kubeconfig"), "settings": settings])
                let (_, bPort) = try await Self.forward(client, "fb", cluster: "b", ["service": "sim", "remote_port": 8080])
                #expect(try await LoopbackTCP.exchange(port: bPort, send: [1, 2, 3], expect: 3) == [1, 2, 3])
                try await eventually("the daemon's descriptors settle", timeout: .seconds(60)) {
                    let first = ProcessResources.openFileCount(pid: daemon.pid)
                    _ = try await LoopbackTCP.exchange(port: bPort, send: [1], expect: 1)
                    return ProcessResources.openFileCount(pid: daemon.pid) == first
                }
                let baseline = ProcessResources.openFileCount(pid: daemon.pid)

                _ = try await E.call(
                    client, "ra", ["op": "cluster.register", "cluster": "a", "kubeconfig": .string(dir.path + "/a.kubeconfig"), "settings": settings])
                let (aID, aPort) = try await Self.forward(client, "fa", cluster: "a", ["service": "sim", "remote_port": 80])
                let (_, aEcho) = try await Self.forward(client, "fa2", cluster: "a", ["service": "sim", "remote_port": 8080])
                let firstPod = try #require(try await Self.simPod(simA))
                #expect(try await LoopbackTCP.httpGet(port: aPort) == firstPod)

                // The pod behind A's service is deleted; the ReplicaSet recreates it under a new name.
                _ = try await simA.delete(.pods, namespace: "default", name: firstPod)
                try await eventually("the pod is recreated") {
                    let pod = try await Self.simPod(simA)
                    return pod != nil && pod != firstPod
                }
                let secondPod = try #require(try await Self.simPod(simA))
                try await eventually("new connections reach the new pod", timeout: .seconds(20)) {
                    (try? await LoopbackTCP.httpGet(port: aPort, timeout: .seconds(5))) == secondPod
                }
                let aStatus = try #require(try await Self.status(client, cluster: "a", id: aID))
                #expect((aStatus["restarts"]?.intValue ?? 0) >= 1)
                #expect(aStatus["pod"]?.stringValue == secondPod)

                // The forwards' series, labelled per cluster, pass promtool.
                try await eventually("the forward series are published") {
                    let body = try await httpGet(port: metricsPort, path: "/metrics").text
                    return body.contains("hostapp_cluster_port_forwards_active{cluster_id=\"a\"} 2")
                        && body.contains("hostapp_cluster_port_forwards_active{cluster_id=\"b\"} 1")
                        && body.contains("hostapp_cluster_port_forward_restarts_total{cluster_id=\"a\"}")
                }
                let exposition = try await httpGet(port: metricsPort, path: "/metrics").text
                #expect(exposition.contains("hostapp_cluster_port_forward_bytes_total"))
                #expect(exposition.contains("hostapp_cluster_port_forward_connections_total{cluster_id=\"b\"}"))
                try await promtoolCheck(exposition)

                // A's API server stalls every tunnel; B's forward goes on.
                let quiet = try await Self.roundTrips(port: bPort, count: 200)
                await simA.stallTunnels()
                let stuck = try await LoopbackTCP.connect(port: aEcho)
                let stalled = try await stuck.executeThenClose { _, outbound in
                    try await outbound.write(ByteBuffer(bytes: [1, 2, 3]))
                    return try await Self.roundTrips(port: bPort, count: 200)
                }
                print(
                    JSONValue.object([
                        "measure": "forward_isolation", "b_p50_us_quiet": .int(quiet[quiet.count / 2]),
                        "b_p50_us_while_a_stalled": .int(stalled[stalled.count / 2]), "samples": 200,
                    ]).jsonString)

                // Unregistering A closes A's listeners; B keeps serving; the FDs return to the baseline.
                _ = try await E.call(client, "ua", ["op": "cluster.unregister", "cluster": "a"])
                await simA.releaseTunnels()
                #expect(await LoopbackTCP.isRefused(port: aPort))
                #expect(await LoopbackTCP.isRefused(port: aEcho))
                #expect(try await LoopbackTCP.exchange(port: bPort, send: [4, 5, 6], expect: 3) == [4, 5, 6])
                try await eventually("the daemon's FD count is back to its value before A existed", timeout: .seconds(20)) {
                    ProcessResources.openFileCount(pid: daemon.pid) <= baseline
                }
                let after = try await httpGet(port: metricsPort, path: "/metrics").text
                #expect(!after.contains("cluster_id=\"a\""))
                try await promtoolCheck(after)
                await client.close()
            }
        }
    }
}
