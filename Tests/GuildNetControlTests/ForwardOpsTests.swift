import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetSimulators
import NIOCore
import NIOPosix
import TestSupport
import Testing

/// `forward.*` ops over a real control socket: real listeners on 127.0.0.1, real WebSocket
/// tunnels to KubeSim over TLS, real loopback pod backends behind it.
@Suite("port-forward ops over the control socket")
struct ForwardOpsTests {
    /// A KubeSim with `pods` simulated pods (HTTP on 80 answering the pod name, echo on 8080) and
    /// a host on a socket with the cluster `name` registered against it.
    static func withForwardCluster<T: Sendable>(
        _ name: String = "pf", pods: Int = 2, settings: [String: JSONValue] = ["forward.health_interval_ms": 200],
        logs: LogCapture = LogCapture(), _ body: @Sendable (KubeSim, ControlClient, String) async throws -> T
    ) async throws -> T {
        var options = KubeSimOptions()
        options.simulatedPods = pods
        return try await KubeSim.withRunning(options: options) { sim, endpoint in
            try await withHostOnSocket(logs: logs) { _, client, directory in
                let kubeconfig = directory + "/\(name).kubeconfig"
                try sim.writeKubeconfig(to: kubeconfig, endpoint: endpoint)
                let registered = try await call(
                    client, "reg-\(name)",
                    ["op": "cluster.register", "cluster": .string(name), "kubeconfig": .string(kubeconfig), "settings": .object(settings)])
                #expect(registered["state"] == "ready")
                return try await body(sim, client, directory)
            }
        }
    }

    /// The simulated pods' names, sorted.
    static func simPods(_ sim: KubeSim) async throws -> [String] {
        let list = try await sim.list(.pods, namespace: "default")
        return (list["items"]?.arrayValue ?? []).compactMap { pod -> String? in
            guard pod["metadata"]?["labels"]?["app"] == "sim" else { return nil }
            return pod["metadata"]?["name"]?.stringValue
        }.sorted()
    }

    static func forward(
        _ client: ControlClient, _ id: String, cluster: String = "pf", _ fields: [String: JSONValue]
    ) async throws -> (
        id: String, port: Int
    ) {
        var request = fields
        request["op"] = "forward.start"
        request["cluster"] = .string(cluster)
        let reply = try await call(client, id, request)
        let forwardID = try #require(reply["forward_id"]?.stringValue)
        let port = Int(try #require(reply["local_port"]?.intValue))
        #expect(reply["local_address"] == "127.0.0.1")
        #expect(port > 0)
        return (forwardID, port)
    }

    static func listed(_ client: ControlClient, cluster: String = "pf", id: String) async throws -> JSONValue? {
        let list = try await call(client, "list-\(UUID().uuidString.prefix(6))", ["op": "forward.list", "cluster": .string(cluster)])
        return list["forwards"]?.arrayValue?.first { $0["forward_id"]?.stringValue == id }
    }

    @Test("pod and service forwards carry HTTP and a 1 MiB echo byte-exact; the same request returns the same forward")
    func podAndServiceForwards() async throws {
        try await Self.withForwardCluster { sim, client, _ in
            let pods = try await Self.simPods(sim)
            let pod = try #require(pods.first)
            let web = try await Self.forward(client, "f1", ["pod": .string(pod), "remote_port": 80])
            #expect(try await LoopbackTCP.httpGet(port: web.port) == pod)

            let echo = try await Self.forward(client, "f2", ["service": "sim", "remote_port": 8080])
            var payload = [UInt8](repeating: 0, count: 1 << 20)
            for index in payload.indices { payload[index] = UInt8(truncatingIfNeeded: index &* 31 &+ index >> 9) }
            let back = try await LoopbackTCP.exchange(port: echo.port, send: payload, expect: payload.count)
            #expect(back == payload)

            // Several connections at once, each through its own tunnel.
            try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<8 { group.addTask { try await LoopbackTCP.httpGet(port: web.port) } }
                for try await body in group { #expect(body == pod) }
            }

            let again = try await Self.forward(client, "f3", ["pod": .string(pod), "remote_port": 80])
            #expect(again.id == web.id)
            #expect(again.port == web.port)

            try await eventually("both forwards active") {
                let a = try await Self.listed(client, id: web.id)
                let b = try await Self.listed(client, id: echo.id)
                return a?["state"] == "active" && b?["state"] == "active"
            }
            let echoStatus = try #require(try await Self.listed(client, id: echo.id))
            #expect((echoStatus["bytes_out"]?.intValue ?? 0) >= Int64(payload.count))
            #expect((echoStatus["bytes_in"]?.intValue ?? 0) >= Int64(payload.count))
            #expect(echoStatus["service"] == "sim")
            #expect(pods.contains(echoStatus["pod"]?.stringValue ?? ""))
            let webStatus = try #require(try await Self.listed(client, id: web.id))
            #expect(webStatus["connections_total"]?.intValue == 9)
            try await eventually("no connection left open") {
                try await Self.listed(client, id: web.id)?["connections_open"]?.intValue == 0
            }

            // cluster.status's summary agrees with forward.list (polled: on a loaded machine a
            // forward's state is refreshed a moment after its last connection closed).
            var forwards: JSONValue = .null
            try await eventually("cluster.status counts both forwards active") {
                let status = try await call(client, "s", ["op": "cluster.status", "cluster": "pf"])
                forwards = status["children"]?.arrayValue?.first { $0["id"] == "forwards" } ?? .null
                return forwards["details"]?["by_state"]?["active"] == 2
            }
            #expect(forwards["details"]?["forwards"] == 2)
            #expect(forwards["details"]?["by_state"]?["active"] == 2)

            let stopped = try await call(client, "x", ["op": "forward.stop", "cluster": "pf", "forward_id": .string(web.id)])
            #expect(stopped["stopped"] == true)
            #expect(await LoopbackTCP.isRefused(port: web.port))
            #expect(try await LoopbackTCP.exchange(port: echo.port, send: [7], expect: 1) == [7])
        }
    }

    @Test("a service forward follows its pod when the pod is deleted and recreated; restarts are counted")
    func serviceForwardFollowsPod() async throws {
        try await Self.withForwardCluster(pods: 1) { sim, client, _ in
            let forward = try await Self.forward(client, "f", ["service": "sim", "remote_port": 80])
            let first = try await LoopbackTCP.httpGet(port: forward.port)
            #expect(try await Self.simPods(sim) == [first])
            _ = try await sim.delete(.pods, namespace: "default", name: first)
            try await eventually("the ReplicaSet recreated the pod") {
                let pods = try await Self.simPods(sim)
                return pods.count == 1 && pods != [first]
            }
            let replacement = try #require(try await Self.simPods(sim).first)
            try await eventually("new connections reach the new pod", timeout: .seconds(20)) {
                (try? await LoopbackTCP.httpGet(port: forward.port, timeout: .seconds(5))) == replacement
            }
            let status = try #require(try await Self.listed(client, id: forward.id))
            #expect(status["pod"]?.stringValue == replacement)
            #expect((status["restarts"]?.intValue ?? 0) >= 1)
            try await eventually("the forward is active again") { try await Self.listed(client, id: forward.id)?["state"] == "active" }
        }
    }

    @Test("a pod forward reports pod_gone when its pod is deleted, and stops listening")
    func podForwardReportsPodGone() async throws {
        let logs = LogCapture()
        try await Self.withForwardCluster(pods: 1, logs: logs) { sim, client, _ in
            let pod = try #require(try await Self.simPods(sim).first)
            let forward = try await Self.forward(client, "f", ["pod": .string(pod), "remote_port": 8080])
            #expect(try await LoopbackTCP.exchange(port: forward.port, send: Array("ping".utf8), expect: 4) == Array("ping".utf8))
            _ = try await sim.delete(.pods, namespace: "default", name: pod)
            try await eventually("the forward failed with pod_gone", timeout: .seconds(20)) {
                let status = try await Self.listed(client, id: forward.id)
                return status?["state"] == "failed" && status?["last_error"]?["code"] == "pod_gone"
            }
            // The state turns `failed` first; the listener closes as the forward's task ends, just after.
            try await eventually("the failed forward stopped listening") { await LoopbackTCP.isRefused(port: forward.port) }
            #expect(logs.all.contains { $0.contains("event=forward_failed") && $0.contains("ERROR") && $0.contains("code=pod_gone") })
            // Asking again replaces the failed forward (never a duplicate); the pod is gone, so it fails clearly.
            let again = try await callFailing(
                client, "again", ["op": "forward.start", "cluster": "pf", "pod": .string(pod), "remote_port": 8080])
            #expect(again["code"] == "k8s_not_found")
        }
    }

    @Test("bad requests get clear typed errors and leave the forwards that work alone")
    func badRequests() async throws {
        try await Self.withForwardCluster { sim, client, _ in
            let pod = try #require(try await Self.simPods(sim).first)
            let good = try await Self.forward(client, "good", ["pod": .string(pod), "remote_port": 80])

            func code(_ id: String, _ fields: [String: JSONValue]) async throws -> String? {
                var request = fields
                request["op"] = "forward.start"
                return try await callFailing(client, id, request)["code"]?.stringValue
            }
            #expect(try await code("c1", ["cluster": "nope", "pod": .string(pod), "remote_port": 80]) == "cluster_not_found")
            #expect(try await code("c2", ["cluster": "pf", "pod": "no-such-pod", "remote_port": 80]) == "k8s_not_found")
            #expect(try await code("c3", ["cluster": "pf", "service": "no-such-service", "remote_port": 80]) == "k8s_not_found")
            #expect(try await code("c4", ["cluster": "pf", "pod": .string(pod), "remote_port": 0]) == "invalid_field")
            #expect(try await code("c5", ["cluster": "pf", "pod": .string(pod), "remote_port": 70_000]) == "invalid_field")
            #expect(try await code("c6", ["cluster": "pf", "pod": .string(pod), "service": "sim", "remote_port": 80]) == "invalid_field")
            #expect(try await code("c7", ["cluster": "pf", "remote_port": 80]) == "invalid_field")
            #expect(try await code("c8", ["cluster": "pf", "pod": .string(pod)]) == "missing_field")
            #expect(try await code("c9", ["cluster": "pf", "service": "sim", "remote_port": 9999]) == "invalid_field")

            var pending = KubeOpsTests.pod("pending").objectValue ?? [:]
            pending["status"] = ["phase": "Pending"]
            _ = try await sim.create(.pods, namespace: "default", .object(pending))
            #expect(try await code("c10", ["cluster": "pf", "pod": "pending", "remote_port": 80]) == "pod_not_running")

            // The local port of another forward, and one held by another listener on the host.
            #expect(
                try await code("c11", ["cluster": "pf", "service": "sim", "remote_port": 80, "local_port": .int(Int64(good.port))])
                    == "forward_port_in_use")
            let other = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
            let taken = try #require(other.localAddress?.port)
            #expect(
                try await code("c12", ["cluster": "pf", "service": "sim", "remote_port": 80, "local_port": .int(Int64(taken))])
                    == "forward_port_in_use")
            try await other.close()

            let unknownStop = try await callFailing(client, "c13", ["op": "forward.stop", "cluster": "pf", "forward_id": "nope"])
            #expect(unknownStop["code"] == "forward_not_found")

            #expect(try await LoopbackTCP.httpGet(port: good.port) == pod)
            let list = try await call(client, "l", ["op": "forward.list", "cluster": "pf"])
            #expect(list["forwards"]?.arrayValue?.count == 1)
        }
    }

    @Test("1,000 connections opened and closed, and a client that never sends, leak no FD, tunnel or task")
    func manyConnectionsLeakNothing() async throws {
        try await Self.withForwardCluster(pods: 1) { sim, client, _ in
            let forward = try await Self.forward(client, "f", ["service": "sim", "remote_port": 8080])
            _ = try await LoopbackTCP.exchange(port: forward.port, send: [1], expect: 1)
            let baseline = ProcessResources.openFileCount()
            let silent = try await LoopbackTCP.connect(port: forward.port)
            try await silent.executeThenClose { _, _ in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<8 {
                        group.addTask {
                            for round in 0..<125 {
                                let message = Array("\(worker)-\(round)".utf8)
                                let back = try await LoopbackTCP.exchange(port: forward.port, send: message, expect: message.count)
                                #expect(back == message)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                let status = try #require(try await Self.listed(client, id: forward.id))
                #expect((status["connections_total"]?.intValue ?? 0) >= 1_002)
                try await eventually("only the silent connection stays open") {
                    try await Self.listed(client, id: forward.id)?["connections_open"]?.intValue == 1
                }
            }
            try await eventually("no tunnel left at the API server") { await sim.openTunnelCount == 0 }
            try await eventually("the descriptor count is back to the baseline", timeout: .seconds(20)) {
                ProcessResources.openFileCount() <= baseline
            }
            #expect(try await Self.listed(client, id: forward.id)?["state"] != "failed")
        }
    }
}

extension ForwardOpsTests {
    @Test("cluster A's stalled tunnels leave B's forward serving; unregistering A closes A's listeners and returns the FDs")
    func isolationAndTeardown() async throws {
        var simOptions = KubeSimOptions()
        simOptions.simulatedPods = 1
        let options = simOptions
        try await KubeSim.withRunning(options: options) { simA, endpointA in
            try await KubeSim.withRunning(options: options) { simB, endpointB in
                try await withHostOnSocket { _, client, directory in
                    try simB.writeKubeconfig(to: directory + "/b.kubeconfig", endpoint: endpointB)
                    _ = try await call(client, "rb", ["op": "cluster.register", "cluster": "b", "kubeconfig": .string(directory + "/b.kubeconfig")])
                    let b = try await Self.forward(client, "fb", cluster: "b", ["service": "sim", "remote_port": 8080])
                    #expect(try await LoopbackTCP.exchange(port: b.port, send: [1, 2, 3], expect: 3) == [1, 2, 3])
                    let baseline = ProcessResources.openFileCount()

                    try simA.writeKubeconfig(to: directory + "/a.kubeconfig", endpoint: endpointA)
                    _ = try await call(client, "ra", ["op": "cluster.register", "cluster": "a", "kubeconfig": .string(directory + "/a.kubeconfig")])
                    let a1 = try await Self.forward(client, "fa1", cluster: "a", ["service": "sim", "remote_port": 8080])
                    let a2 = try await Self.forward(client, "fa2", cluster: "a", ["service": "sim", "remote_port": 80])
                    #expect(try await LoopbackTCP.exchange(port: a1.port, send: [9], expect: 1) == [9])
                    #expect(a1.port != b.port && a2.port != b.port)

                    // A's API server stalls every tunnel: a connection through A hangs, B's go on.
                    await simA.stallTunnels()
                    let stuck = try await LoopbackTCP.connect(port: a1.port)
                    try await stuck.executeThenClose { _, outbound in
                        try await outbound.write(ByteBuffer(bytes: [1, 2, 3]))
                        for round in 0..<20 {
                            let message = Array("b-\(round)".utf8)
                            #expect(try await LoopbackTCP.exchange(port: b.port, send: message, expect: message.count) == message)
                        }
                        let unregistered = try await call(client, "ua", ["op": "cluster.unregister", "cluster": "a"])
                        #expect(unregistered["state"] == "stopped")
                    }
                    await simA.releaseTunnels()
                    #expect(await LoopbackTCP.isRefused(port: a1.port))
                    #expect(await LoopbackTCP.isRefused(port: a2.port))
                    #expect(try await LoopbackTCP.exchange(port: b.port, send: [4, 5], expect: 2) == [4, 5])
                    try await eventually("A's tunnels are closed at its API server") { await simA.openTunnelCount == 0 }
                    try await eventually("the descriptor count is back to where it was before A existed", timeout: .seconds(20)) {
                        ProcessResources.openFileCount() <= baseline
                    }
                }
            }
        }
    }
}

extension ForwardOpsTests {
    @Test("a kubeconfig proxy-url (SOCKS5, microsocks) carries the tunnels, as it carries the cluster's requests")
    func forwardThroughSOCKS5() async throws {
        let microsocks = try #require(
            ["/usr/bin/microsocks", "/usr/local/bin/microsocks"].first { FileManager.default.isExecutableFile(atPath: $0) },
            "microsocks is missing: run scripts/install-test-tools.sh")
        let socksPort = try await Self.freePort()
        let proxy = Process()
        proxy.executableURL = URL(fileURLWithPath: microsocks)
        proxy.arguments = ["-i", "127.0.0.1", "-p", String(socksPort)]
        proxy.standardOutput = FileHandle.nullDevice
        proxy.standardError = FileHandle.nullDevice
        try proxy.runOrphanSafe()
        // SIGKILL ends microsocks (it does not always stop on SIGTERM); never `waitUntilExit()` here (it spins a run loop on a thread of
        // the cooperative pool and can hang the test).
        defer { kill(proxy.processIdentifier, SIGKILL) }
        try await eventually("microsocks listens") { await !LoopbackTCP.isRefused(port: socksPort) }

        var options = KubeSimOptions()
        options.simulatedPods = 1
        try await KubeSim.withRunning(options: options) { sim, endpoint in
            try await withHostOnSocket { _, client, directory in
                let text = sim.kubeconfig(endpoint: endpoint).replacingOccurrences(
                    of: "    certificate-authority-data:", with: "    proxy-url: socks5://127.0.0.1:\(socksPort)\n    certificate-authority-data:")
                let kubeconfig = directory + "/proxied.kubeconfig"
                try text.write(toFile: kubeconfig, atomically: true, encoding: .utf8)
                _ = try await call(client, "r", ["op": "cluster.register", "cluster": "pf", "kubeconfig": .string(kubeconfig)])
                let forward = try await Self.forward(client, "f", ["service": "sim", "remote_port": 8080])
                let held = try await LoopbackTCP.connect(port: forward.port)
                try await held.executeThenClose { inbound, outbound in
                    try await outbound.write(ByteBuffer(bytes: Array("via socks".utf8)))
                    var iterator = inbound.makeAsyncIterator()
                    var echoed: [UInt8] = []
                    while echoed.count < 9, let buffer = try await iterator.next() { echoed += buffer.readableBytesView }
                    #expect(echoed == Array("via socks".utf8))
                    // The tunnel of this connection is a connection of ours to the proxy, not to the sim.
                    #expect(ProcessResources.tcpConnections(toPort: socksPort) >= 1)
                }
            }
        }
    }

    /// A port nothing listens on right now.
    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(channel.localAddress?.port)
        try await channel.close()
        return port
    }
}

extension ForwardOpsTests {
    @Test("a refused upgrade fails that connection with the server's reason; a pod deleted mid-transfer ends its connection, the next reaches the new pod")
    func refusedUpgradeAndPodDeletedMidTransfer() async throws {
        try await Self.withForwardCluster(pods: 1) { sim, client, _ in
            let forward = try await Self.forward(client, "f", ["service": "sim", "remote_port": 8080])
            #expect(try await LoopbackTCP.exchange(port: forward.port, send: [1], expect: 1) == [1])

            await sim.refusePortForwardUpgrades(true)
            // The local connection is closed at once: the client reads EOF, not a hang.
            #expect(try await LoopbackTCP.exchange(port: forward.port, send: [2]).isEmpty)
            try await eventually("the failure and its reason are visible") {
                let status = try await Self.listed(client, id: forward.id)
                return status?["last_error"]?["message"]?.stringValue?.contains("upgrade") == true
            }
            await sim.refusePortForwardUpgrades(false)
            #expect(try await LoopbackTCP.exchange(port: forward.port, send: [3], expect: 1) == [3])

            // A transfer in progress when its pod is deleted ends (EOF); the next connection reaches the replacement.
            let first = try #require(try await Self.simPods(sim).first)
            try await withDeadline(.seconds(30), "a transfer whose pod is deleted ends") {
                let held = try await LoopbackTCP.connect(port: forward.port)
                try await held.executeThenClose { inbound, outbound in
                    try await outbound.write(ByteBuffer(bytes: [4]))
                    var iterator = inbound.makeAsyncIterator()
                    #expect(try await iterator.next().map { Array($0.readableBytesView) } == [4])
                    _ = try await sim.delete(.pods, namespace: "default", name: first)
                    while try await iterator.next() != nil {}
                }
            }
            try await eventually("a new connection reaches the new pod", timeout: .seconds(20)) {
                (try? await LoopbackTCP.exchange(port: forward.port, send: [5], expect: 1, timeout: .seconds(5))) == [5]
            }
            let status = try #require(try await Self.listed(client, id: forward.id))
            #expect(status["pod"]?.stringValue != first)
        }
    }
}
