import Foundation
import GuildNetCore
import GuildNetSimulators
import TestSupport
import Testing

/// The real kubectl 1.32 `port-forward` against KubeSim's endpoint: over its default WebSocket
/// tunnel (SPDY/3.1 in binary messages) and over the `POST` SPDY/3.1 upgrade
/// (`KUBECTL_PORT_FORWARD_WEBSOCKETS=false`).
@Suite("kubectl port-forward referee", .serialized)
struct KubectlPortForwardRefereeTests {
    enum Transport: String, CaseIterable, Sendable {
        case webSocket
        case spdyPost

        var environment: [String] { self == .spdyPost ? ["KUBECTL_PORT_FORWARD_WEBSOCKETS=false"] : [] }
    }

    static func options(pods: Int = 2) -> KubeSimOptions {
        var options = KubeSimOptions()
        options.simulatedPods = pods
        return options
    }

    /// Runs `kubectl port-forward TARGET 0:REMOTE`, hands `body` the local port kubectl printed,
    /// then interrupts kubectl (SIGINT) and waits for it to exit, also when `body` fails.
    static func withPortForward<T: Sendable>(
        _ kubectl: Kubectl, transport: Transport, target: String, remote: Int,
        _ body: (Int) async throws -> T
    ) async throws -> (T, StreamingProcess) {
        let process = try kubectl.start(environment: transport.environment, arguments: ["port-forward", target, "0:\(remote)"])
        do {
            var local: Int?
            try await eventually("kubectl prints its forwarding line", timeout: .seconds(30)) {
                local = Self.forwardedPort(process.output, remote: remote)
                return local != nil || process.exitCode != nil
            }
            guard let local else { throw HostError(.internalError, "kubectl port-forward exited: \(process.output)") }
            let result = try await body(local)
            process.send(SIGINT)
            try await eventually("kubectl exits after SIGINT", timeout: .seconds(20)) { process.exitCode != nil }
            return (result, process)
        } catch {
            process.send(SIGKILL)
            try? await eventually("kubectl is reaped", timeout: .seconds(20)) { process.exitCode != nil }
            throw error
        }
    }

    /// The local port in `Forwarding from 127.0.0.1:<port> -> REMOTE`.
    static func forwardedPort(_ output: String, remote: Int) -> Int? {
        for line in output.split(separator: "\n") where line.hasPrefix("Forwarding from 127.0.0.1:") && line.hasSuffix(" -> \(remote)") {
            let rest = line.dropFirst("Forwarding from 127.0.0.1:".count)
            return Int(rest.prefix { $0.isNumber })
        }
        return nil
    }

    @Test("pod/<pod> 0:80: several HTTP requests at once reach the pod", arguments: Transport.allCases)
    func podHTTP(transport: Transport) async throws {
        try await KubeSim.withRunning(options: Self.options()) { sim, endpoint in
            let kubectl = try Kubectl(sim: sim, endpoint: endpoint)
            defer { kubectl.cleanUp() }
            let list = try await sim.list(.pods, namespace: "default")
            let pod = try #require(
                (list["items"]?.arrayValue ?? []).compactMap { $0["metadata"]?["name"]?.stringValue }.first { $0.hasPrefix("sim-") })
            let (answers, process) = try await Self.withPortForward(kubectl, transport: transport, target: "pod/\(pod)", remote: 80) { port in
                try await withThrowingTaskGroup(of: String.self) { group in
                    for index in 0..<4 { group.addTask { try await TCPExchange.httpGet(port: port, path: "/\(index)") } }
                    var answers: [String] = []
                    for try await answer in group { answers.append(answer) }
                    return answers
                }
            }
            #expect(answers.count == 4)
            for answer in answers {
                #expect(answer.hasPrefix("HTTP/1.1 200 OK"), "\(answer)")
                #expect(answer.hasSuffix("\r\n\r\n" + pod), "\(answer)")
            }
            #expect(process.exitCode == 0, "\(process.output)")
            #expect(!process.output.contains("error"), "\(process.output)")
            try await eventually("kubectl's tunnels closed") { await sim.openTunnelCount == 0 }
        }
    }

    @Test("svc/sim 0:8080: four 1 MiB echoes at once come back byte-exact", arguments: Transport.allCases)
    func serviceEcho(transport: Transport) async throws {
        try await KubeSim.withRunning(options: Self.options()) { sim, endpoint in
            let kubectl = try Kubectl(sim: sim, endpoint: endpoint)
            defer { kubectl.cleanUp() }
            let (results, process) = try await Self.withPortForward(kubectl, transport: transport, target: "svc/sim", remote: 8080) { port in
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    for seed in 0..<4 {
                        group.addTask {
                            let payload = TCPExchange.payload(1 << 20, seed: UInt64(seed))
                            let echoed = try await TCPExchange.roundTrip(port: port, send: payload)
                            return echoed == payload
                        }
                    }
                    var results: [Bool] = []
                    for try await result in group { results.append(result) }
                    return results
                }
            }
            #expect(results == [true, true, true, true])
            #expect(process.exitCode == 0, "\(process.output)")
            try await eventually("kubectl's tunnels closed") { await sim.openTunnelCount == 0 }
        }
    }

    @Test("a pod that is not Running: kubectl's own error, exit 1")
    func podNotRunning() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 1)) { sim, endpoint in
            let kubectl = try Kubectl(sim: sim, endpoint: endpoint)
            defer { kubectl.cleanUp() }
            _ = try await sim.create(.pods, ["metadata": ["name": "waiting"], "status": ["phase": "Pending"]])
            let result = try await kubectl.run("port-forward", "pod/waiting", "0:80")
            #expect(result.exitCode == 1, "\(result.output)")
            #expect(
                result.output.contains("error: unable to forward port because pod is not running. Current status=Pending"), "\(result.output)")
        }
    }

    @Test("a port nothing listens on: kubectl reports the kubelet's error", arguments: Transport.allCases)
    func unknownPort(transport: Transport) async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 1)) { sim, endpoint in
            let kubectl = try Kubectl(sim: sim, endpoint: endpoint)
            defer { kubectl.cleanUp() }
            let list = try await sim.list(.pods, namespace: "default")
            let pod = try #require(
                (list["items"]?.arrayValue ?? []).compactMap { $0["metadata"]?["name"]?.stringValue }.first { $0.hasPrefix("sim-") })
            let process = try kubectl.start(environment: transport.environment, arguments: ["port-forward", "pod/\(pod)", "0:81"])
            defer { process.send(SIGKILL) }
            var local: Int?
            try await eventually("the forwarding line", timeout: .seconds(30)) {
                local = Self.forwardedPort(process.output, remote: 81)
                return local != nil || process.exitCode != nil
            }
            let port = try #require(local, "\(process.output)")
            _ = try? await TCPExchange.roundTrip(port: port, send: Array("x".utf8))
            try await eventually("kubectl exits after the error", timeout: .seconds(30)) { process.exitCode != nil }
            #expect(process.exitCode == 1, "\(process.output)")
            #expect(process.output.contains("an error occurred forwarding \(port) -> 81: error forwarding port 81 to pod"), "\(process.output)")
            #expect(process.output.contains("connect: connection refused"), "\(process.output)")
        }
    }
}
