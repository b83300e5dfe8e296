import Foundation
import GuildNetCore
import GuildNetSimulators
import NIOCore
import NIOWebSocket
import TestSupport
import Testing

/// KubeSim's `pods/{name}/portforward` over real TLS with a `v4.channel.k8s.io` client.
@Suite("KubeSim port-forward endpoint")
struct KubeSimPortForwardTests {
    static func options(pods: Int = 2) -> KubeSimOptions {
        var options = KubeSimOptions()
        options.simulatedPods = pods
        return options
    }

    static func simPods(_ sim: KubeSim) async throws -> [String] {
        let list = try await sim.list(.pods, namespace: "default")
        return (list["items"]?.arrayValue ?? []).compactMap { $0["metadata"]?["name"]?.stringValue }.filter { $0.hasPrefix("sim-") }
    }

    static func path(_ pod: String, ports: String) -> String {
        "/api/v1/namespaces/default/pods/\(pod)/portforward?ports=\(ports)"
    }

    /// Writes `frames`, then reads until the server closes (or `until` holds).
    static func exchange(
        _ channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, send frames: [WebSocketFrame],
        until done: @escaping @Sendable (ChannelMessages) -> Bool = { $0.closed }
    ) async throws -> ChannelMessages {
        try await channel.executeThenClose { inbound, outbound in
            try await withThrowingTaskGroup(of: ChannelMessages?.self) { group in
                group.addTask {
                    for frame in frames { try await outbound.write(frame) }
                    return nil
                }
                group.addTask {
                    var messages = ChannelMessages()
                    do {
                        for try await frame in inbound {
                            messages.add(frame)
                            if done(messages) || messages.closed { break }
                        }
                    } catch {
                        messages.closed = true
                    }
                    return messages
                }
                var result = ChannelMessages()
                while let next = try await group.next() {
                    if let next { result = next }
                }
                return result
            }
        }
    }

    static func upgraded(_ outcome: PortForwardWebSocketClient.Outcome) throws -> (NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, String?) {
        switch outcome {
        case .upgraded(let channel, let subprotocol): return (channel, subprotocol)
        case .refused(let status, let body): throw HostError(.internalError, "not upgraded: \(status) \(body)")
        }
    }

    @Test("setup: N simulated pods, Service and Endpoints sim, backends on loopback")
    func simulatedPods() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 3)) { sim, _ in
            let pods = try await Self.simPods(sim)
            #expect(pods.count == 3)
            for pod in pods {
                #expect(pod.count == 9, "\(pod)")
                let object = try await sim.get(.pods, name: pod)
                #expect(object["metadata"]?["labels"]?["app"]?.stringValue == "sim")
                #expect(object["metadata"]?["ownerReferences"]?.arrayValue?.first?["kind"]?.stringValue == "ReplicaSet")
                #expect(object["status"]?["phase"]?.stringValue == "Running")
                #expect(await sim.backendPort(pod: pod, containerPort: 80) != nil)
                #expect(await sim.backendPort(pod: pod, containerPort: 8080) != nil)
                #expect(await sim.backendPort(pod: pod, containerPort: 81) == nil)
            }
            let service = try await sim.get(.services, name: "sim")
            #expect(service["spec"]?["selector"]?["app"]?.stringValue == "sim")
            #expect(service["spec"]?["ports"]?.arrayValue?.count == 2)
            let endpoints = try await sim.get(.endpoints, name: "sim")
            let names = (endpoints["subsets"]?.arrayValue?.first?["addresses"]?.arrayValue ?? []).compactMap {
                $0["targetRef"]?["name"]?.stringValue
            }
            #expect(Set(names) == Set(pods))
            // The direct loopback peer answers like the tunnel will.
            let port = try #require(await sim.backendPort(pod: pods[0], containerPort: 80))
            let answer = try await TCPExchange.httpGet(port: port)
            #expect(answer.hasPrefix("HTTP/1.1 200 OK"), "\(answer)")
            #expect(answer.hasSuffix(pods[0]), "\(answer)")
        }
    }

    @Test("v4: HTTP on container port 80 answers with the pod's name; v4 chosen over v5; port prefixes first")
    func httpThroughTunnel() async throws {
        try await KubeSim.withRunning(options: Self.options()) { sim, endpoint in
            let pod = try #require(try await Self.simPods(sim).first)
            let (channel, subprotocol) = try Self.upgraded(
                try await PortForwardWebSocketClient.open(sim: sim, endpoint: endpoint, path: Self.path(pod, ports: "80")))
            #expect(subprotocol == "v4.channel.k8s.io")
            let request = Array("GET /anything HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)
            let messages = try await Self.exchange(channel, send: [PortForwardWebSocketClient.frame(channel: 0, request)])
            #expect(messages.firstMessages[0] == [80, 0])
            #expect(messages.firstMessages[1] == [80, 0])
            let text = String(decoding: messages.byChannel[0] ?? [], as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 200 OK"), "\(text)")
            #expect(text.hasSuffix("\r\n\r\n" + pod), "\(text)")
            #expect(messages.byChannel[1] == nil)
            #expect(messages.closed)
        }
    }

    @Test("v4: 1 MiB through the echo port comes back byte-exact")
    func echoOneMiB() async throws {
        try await KubeSim.withRunning(options: Self.options()) { sim, endpoint in
            let pod = try #require(try await Self.simPods(sim).last)
            let (channel, _) = try Self.upgraded(
                try await PortForwardWebSocketClient.open(
                    sim: sim, endpoint: endpoint, path: Self.path(pod, ports: "8080"), protocols: "v4.channel.k8s.io"))
            let payload = TCPExchange.payload(1 << 20, seed: 7)
            var frames: [WebSocketFrame] = []
            var offset = 0
            while offset < payload.count {
                let end = min(payload.count, offset + 30_000)
                frames.append(PortForwardWebSocketClient.frame(channel: 0, Array(payload[offset..<end])))
                offset = end
            }
            let messages = try await Self.exchange(channel, send: frames) { ($0.byChannel[0]?.count ?? 0) >= payload.count }
            #expect(messages.firstMessages[0] == [0x90, 0x1F])
            #expect(messages.byChannel[0]?.count == payload.count)
            #expect(messages.byChannel[0] == payload)
            try await eventually("the tunnel closed") { await sim.openTunnelCount == 0 }
        }
    }

    @Test("unknown pod: 404 Status; wrong token: 401; not-Running pod: 400 naming the phase")
    func refusals() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 1)) { sim, endpoint in
            guard
                case .refused(let status, let body) = try await PortForwardWebSocketClient.open(
                    sim: sim, endpoint: endpoint, path: Self.path("nope", ports: "80"))
            else {
                Issue.record("an unknown pod was upgraded")
                return
            }
            #expect(status == 404)
            #expect(body.contains("pods \\\"nope\\\" not found"), "\(body)")

            let pod = try #require(try await Self.simPods(sim).first)
            guard
                case .refused(let unauthorized, _) = try await PortForwardWebSocketClient.open(
                    sim: sim, endpoint: endpoint, path: Self.path(pod, ports: "80"), token: "wrong")
            else {
                Issue.record("a wrong token was upgraded")
                return
            }
            #expect(unauthorized == 401)

            _ = try await sim.create(.pods, ["metadata": ["name": "waiting"], "status": ["phase": "Pending"]])
            guard
                case .refused(let pending, let pendingBody) = try await PortForwardWebSocketClient.open(
                    sim: sim, endpoint: endpoint, path: Self.path("waiting", ports: "80"))
            else {
                Issue.record("a Pending pod was upgraded")
                return
            }
            #expect(pending == 400)
            #expect(pendingBody.contains("not running"), "\(pendingBody)")
            #expect(pendingBody.contains("Pending"), "\(pendingBody)")

            guard
                case .refused(let noPorts, _) = try await PortForwardWebSocketClient.open(
                    sim: sim, endpoint: endpoint, path: "/api/v1/namespaces/default/pods/\(pod)/portforward")
            else {
                Issue.record("a v4 upgrade without ports was upgraded")
                return
            }
            #expect(noPorts == 400)
        }
    }

    @Test("a port nothing listens on: the kubelet's error text on the error channel, then close")
    func unknownPort() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 1)) { sim, endpoint in
            let pod = try #require(try await Self.simPods(sim).first)
            let (channel, _) = try Self.upgraded(
                try await PortForwardWebSocketClient.open(sim: sim, endpoint: endpoint, path: Self.path(pod, ports: "81")))
            let messages = try await Self.exchange(channel, send: [])
            #expect(messages.firstMessages[0] == [81, 0])
            #expect(messages.firstMessages[1] == [81, 0])
            let text = String(decoding: messages.byChannel[1] ?? [], as: UTF8.self)
            #expect(text.contains("error forwarding port 81 to pod"), "\(text)")
            #expect(text.contains("connect: connection refused"), "\(text)")
            #expect(messages.closed)
        }
    }

    @Test("refused upgrades get a 500 Status until the fault is lifted")
    func refusedUpgrade() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 1)) { sim, endpoint in
            let pod = try #require(try await Self.simPods(sim).first)
            await sim.refusePortForwardUpgrades(true)
            guard
                case .refused(let status, let body) = try await PortForwardWebSocketClient.open(
                    sim: sim, endpoint: endpoint, path: Self.path(pod, ports: "80"))
            else {
                Issue.record("upgraded while refusing")
                return
            }
            #expect(status == 500)
            #expect(body.contains("unable to upgrade connection"), "\(body)")
            await sim.refusePortForwardUpgrades(false)
            let (channel, _) = try Self.upgraded(
                try await PortForwardWebSocketClient.open(sim: sim, endpoint: endpoint, path: Self.path(pod, ports: "80")))
            let request = Array("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)
            let messages = try await Self.exchange(channel, send: [PortForwardWebSocketClient.frame(channel: 0, request)])
            #expect(String(decoding: messages.byChannel[0] ?? [], as: UTF8.self).hasSuffix(pod))
        }
    }

    @Test("cutTunnels closes open tunnels; stalled tunnels relay again once released")
    func cutAndStall() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 1)) { sim, endpoint in
            let pod = try #require(try await Self.simPods(sim).first)
            let (channel, _) = try Self.upgraded(
                try await PortForwardWebSocketClient.open(sim: sim, endpoint: endpoint, path: Self.path(pod, ports: "8080")))
            try await channel.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                var messages = ChannelMessages()
                // Stalled: the echo only arrives after the release.
                await sim.stallTunnels()
                try await outbound.write(PortForwardWebSocketClient.frame(channel: 0, Array("ping".utf8)))
                while messages.firstMessages.count < 2, let frame = try await iterator.next() { messages.add(frame) }
                try await eventually("one tunnel open") { await sim.openTunnelCount == 1 }
                #expect(messages.byChannel[0] == nil)
                await sim.releaseTunnels()
                while (messages.byChannel[0]?.count ?? 0) < 4, let frame = try await iterator.next() { messages.add(frame) }
                #expect(messages.byChannel[0] == Array("ping".utf8))
                #expect(await sim.cutTunnels() == 1)
                do {
                    while let frame = try await iterator.next() { messages.add(frame) }
                } catch {}
            }
            try await eventually("the tunnel is gone") { await sim.openTunnelCount == 0 }
        }
    }

    @Test("restart() cuts port-forward tunnels like every other connection")
    func restartCutsTunnels() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 1)) { sim, endpoint in
            let pod = try #require(try await Self.simPods(sim).first)
            let (channel, _) = try Self.upgraded(
                try await PortForwardWebSocketClient.open(sim: sim, endpoint: endpoint, path: Self.path(pod, ports: "8080")))
            try await channel.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                var messages = ChannelMessages()
                try await outbound.write(PortForwardWebSocketClient.frame(channel: 0, Array("x".utf8)))
                while messages.byChannel[0] == nil, let frame = try await iterator.next() { messages.add(frame) }
                #expect(await sim.openPortForwardConnectionCount == 1)
                await sim.restart()
                do {
                    while try await iterator.next() != nil {}
                } catch {}
            }
            try await eventually("the tunnel is gone") {
                let tunnels = await sim.openTunnelCount
                let connections = await sim.openPortForwardConnectionCount
                return tunnels == 0 && connections == 0
            }
        }
    }

    @Test("deleting a pod cuts its tunnels; the ReplicaSet replaces it under a new name in Endpoints")
    func deletedPodReplaced() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 2)) { sim, endpoint in
            let pods = try await Self.simPods(sim)
            let victim = try #require(pods.first)
            let victimPort = try #require(await sim.backendPort(pod: victim, containerPort: 8080))
            let (channel, _) = try Self.upgraded(
                try await PortForwardWebSocketClient.open(sim: sim, endpoint: endpoint, path: Self.path(victim, ports: "8080")))
            let messages = try await channel.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                var messages = ChannelMessages()
                try await outbound.write(PortForwardWebSocketClient.frame(channel: 0, Array("hello".utf8)))
                while (messages.byChannel[0]?.count ?? 0) < 5, let frame = try await iterator.next() { messages.add(frame) }
                try await sim.delete(.pods, name: victim)
                do {
                    while let frame = try await iterator.next() {
                        messages.add(frame)
                        if messages.closed { break }
                    }
                } catch {
                    messages.closed = true
                }
                return messages
            }
            #expect(messages.byChannel[0] == Array("hello".utf8))
            #expect(messages.closed)
            #expect(await sim.backendPort(pod: victim, containerPort: 8080) == nil)
            try await eventually("a replacement pod in Endpoints") {
                let endpoints = try await sim.get(.endpoints, name: "sim")
                let names = (endpoints["subsets"]?.arrayValue?.first?["addresses"]?.arrayValue ?? []).compactMap {
                    $0["targetRef"]?["name"]?.stringValue
                }
                return names.count == 2 && !names.contains(victim)
            }
            let now = try await Self.simPods(sim)
            #expect(now.count == 2 && !now.contains(victim))
            #expect(ProcessResources.tcpConnections(withPort: victimPort) == 0)
        }
    }

    @Test("after the sim stops: no tunnel, no backend listener, no connection to a backend")
    func noLeaks() async throws {
        let sim = try await KubeSim(options: Self.options(pods: 2))
        let ports = try await sim.serving { sim, endpoint -> [Int] in
            var ports: [Int] = []
            for pod in try await Self.simPods(sim) {
                for containerPort in [80, 8080] {
                    if let port = await sim.backendPort(pod: pod, containerPort: containerPort) { ports.append(port) }
                }
            }
            let pod = try #require(try await Self.simPods(sim).first)
            // Leave a tunnel open when the sim stops.
            let (channel, _) = try Self.upgraded(
                try await PortForwardWebSocketClient.open(sim: sim, endpoint: endpoint, path: Self.path(pod, ports: "8080")))
            try await channel.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                var messages = ChannelMessages()
                try await outbound.write(PortForwardWebSocketClient.frame(channel: 0, Array("x".utf8)))
                while messages.byChannel[0] == nil, let frame = try await iterator.next() { messages.add(frame) }
                try await eventually("one tunnel open") { await sim.openTunnelCount == 1 }
                await sim.stop()
                do {
                    while try await iterator.next() != nil {}
                } catch {}
            }
            return ports
        }
        #expect(ports.count == 4)
        #expect(await sim.openTunnelCount == 0)
        #expect(await sim.backendListenerCount == 0)
        try await eventually("no backend socket left") {
            let listening = Set(ProcessResources.listeningSockets())
            return ports.allSatisfy { port in
                !listening.contains("tcp:\(port)") && ProcessResources.tcpConnections(withPort: port) == 0
            }
        }
    }

    @Test("SPDY POST upgrade: 101 with kubectl's headers; garbled frames close that connection, the sim serves on")
    func hostileSPDY() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 1)) { sim, endpoint in
            let pod = try #require(try await Self.simPods(sim).first)
            let request =
                "POST /api/v1/namespaces/default/pods/\(pod)/portforward HTTP/1.1\r\nHost: \(endpoint.host)\r\n"
                + "Authorization: Bearer \(sim.options.token)\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                + "X-Stream-Protocol-Version: portforward.k8s.io\r\nContent-Length: 0\r\n\r\n"
            let garbage: [[UInt8]] = [
                // SPDY version 2.
                [0x80, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0A, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
                // A SYN_STREAM whose header block is not zlib.
                [0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0E, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4],
                // A frame announcing 16 MiB.
                [0x00, 0x00, 0x00, 0x01, 0x00, 0xFF, 0xFF, 0xFF],
            ]
            for bytes in garbage {
                let (head, closed) = try await RawTLSClient.exchange(sim: sim, endpoint: endpoint, request: request, afterResponse: bytes)
                #expect(head.hasPrefix("HTTP/1.1 101"), "\(head)")
                #expect(head.lowercased().contains("x-stream-protocol-version: portforward.k8s.io"), "\(head)")
                #expect(head.lowercased().contains("upgrade: spdy/3.1"), "\(head)")
                #expect(closed)
            }
            try await eventually("no tunnel connection left") { await sim.openPortForwardConnectionCount == 0 }
            // Still serving.
            #expect(try await Self.simPods(sim).count == 1)
        }
    }
}
