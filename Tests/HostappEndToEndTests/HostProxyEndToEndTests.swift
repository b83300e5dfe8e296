import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetSimulators
import NIOCore
import TestSupport
import Testing

/// The host proxy of the built `hostapp serve --proxy-addr`: the real kubectl, given the kubeconfig
/// `cluster.kubeconfig` wrote, lists, watches, applies, deletes and port-forwards through
/// `/clusters/{cluster}` against KubeSim; a wrong or missing token is refused before any cluster.
@Suite("hostapp host proxy end to end", .serialized)
struct HostProxyEndToEndTests {
    typealias E = SubsystemsEndToEndTests

    static var kubectl: URL {
        let explicit = ProcessInfo.processInfo.environment["KUBECTL"] ?? ""
        return URL(fileURLWithPath: explicit.isEmpty ? "/usr/bin/kubectl" : explicit)
    }

    /// A long-running kubectl whose output is collected as it arrives.
    final class RunningKubectl: Sendable {
        let process: Process
        private let collected = LockedValue<String>("")

        init(_ arguments: [String]) throws {
            process = Process()
            process.executableURL = HostProxyEndToEndTests.kubectl
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            process.standardInput = FileHandle.nullDevice
            let collected = self.collected
            PipeDrain.start(pipe.fileHandleForReading) { data in
                collected.withLock { $0 += String(decoding: data, as: UTF8.self) }
            }
            try process.runOrphanSafe()
        }

        var output: String { collected.withLock { $0 } }

        /// SIGKILL (never waitUntilExit on the cooperative pool).
        func kill() { _ = Foundation.kill(process.processIdentifier, SIGKILL) }
    }

    @Test("kubectl get -A, get -w, apply, delete and port-forward through /clusters/{id}; a wrong or missing token gets 401")
    func kubectlThroughTheHostProxy() async throws {
        var options = KubeSimOptions()
        options.simulatedPods = 1
        let simOptions = options
        try await KubeSim.withRunning(options: simOptions) { sim, endpoint in
            let dir = TemporaryDirectory("e2e-proxy")
            defer { dir.remove() }
            try sim.writeKubeconfig(to: dir.path + "/sim.kubeconfig", endpoint: endpoint)
            let daemon = try HostappProcess(stateDirectory: dir.path + "/state", extra: ["--proxy-addr", "127.0.0.1:0"])
            defer { daemon.terminate() }
            let ready = try await daemon.waitUntilReady()
            #expect(ready["proxy_port"] != nil)
            let client = try await daemon.client()
            // No route re-evaluation (a probe is a request to the sim) while the 401s are counted below.
            _ = try await E.call(
                client, "r",
                [
                    "op": "cluster.register", "cluster": "sim", "kubeconfig": .string(dir.path + "/sim.kubeconfig"),
                    "settings": ["route.probe_interval_ms": 3_600_000],
                ])
            let kubeconfig = dir.path + "/proxy.kubeconfig"
            let written = try await E.call(client, "k", ["op": "cluster.kubeconfig", "cluster": "sim", "path": .string(kubeconfig)])
            #expect(written["server"]?.stringValue?.hasSuffix("/clusters/sim") == true)
            let mode = try #require(try FileManager.default.attributesOfItem(atPath: kubeconfig)[.posixPermissions] as? Int)
            #expect(mode == 0o600)
            let tokenMode = try #require(
                try FileManager.default.attributesOfItem(atPath: dir.path + "/state/proxy-token")[.posixPermissions] as? Int)
            #expect(tokenMode == 0o600)
            let base = ["--kubeconfig", kubeconfig, "--request-timeout", "20s"]

            // get pods -A
            let pods = try await runProcess(Self.kubectl, base + ["get", "pods", "-A", "-o", "name"])
            #expect(pods.exitCode == 0, "\(pods.output)")
            #expect(pods.output.contains("pod/sim-"))

            // get -w sees a later change as it happens (the chunked stream is relayed as it arrives).
            let watchesBefore = await sim.openWatchCount
            let watch = try RunningKubectl(base.dropLast(2) + ["get", "configmaps", "-w", "-o", "name"])
            defer { watch.kill() }
            try await eventually("the watch is open") { await sim.openWatchCount > watchesBefore }

            // apply, then delete.
            let manifest = dir.path + "/cm.yaml"
            try "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: through-proxy\ndata:\n  a: b\n".write(
                toFile: manifest, atomically: true, encoding: .utf8)
            let applied = try await runProcess(Self.kubectl, base + ["apply", "-f", manifest])
            #expect(applied.exitCode == 0, "\(applied.output)")
            try await eventually("the watch saw the applied ConfigMap") { watch.output.contains("configmap/through-proxy") }
            let stored = try await sim.get(.configmaps, namespace: "default", name: "through-proxy")
            #expect(stored["data"]?["a"] == "b")
            let deleted = try await runProcess(Self.kubectl, base + ["delete", "configmap", "through-proxy"])
            #expect(deleted.exitCode == 0, "\(deleted.output)")

            // port-forward: the upgrade passes through as raw bytes.
            let podName = try #require(pods.output.split(separator: "\n").first { $0.hasPrefix("pod/sim-") }).dropFirst(4)
            let forward = try RunningKubectl(base + ["port-forward", "pod/\(podName)", ":8080"])
            defer { forward.kill() }
            var localPort = 0
            try await eventually("kubectl port-forward listens", timeout: .seconds(20)) {
                guard let line = forward.output.split(separator: "\n").first(where: { $0.contains("Forwarding from 127.0.0.1:") }),
                    let range = line.range(of: "127.0.0.1:"), let port = Int(line[range.upperBound...].prefix { $0.isNumber })
                else { return false }
                localPort = port
                return true
            }
            #expect(try await LoopbackTCP.exchange(port: localPort, send: Array("via host proxy".utf8), expect: 14) == Array("via host proxy".utf8))

            // A wrong or a missing token: 401, and nothing reaches the cluster.
            watch.kill()
            forward.kill()
            // The proxy cancels a relayed watch once kubectl's side ends: the sim notices a closed
            // watch at its next write, so each attempt writes a ConfigMap.
            var pokes = 0
            try await eventually("the relayed watch ended with kubectl's", timeout: .seconds(20)) {
                pokes += 1
                _ = try await sim.create(.configmaps, ["metadata": ["name": .string("poke-\(pokes)")]])
                return await sim.openWatchCount == watchesBefore
            }
            let before = await sim.requestCount
            let text = try String(contentsOfFile: kubeconfig, encoding: .utf8)
            let token = try #require(text.split(separator: "\n").first { $0.contains("token:") })
            let wrong = dir.path + "/wrong.kubeconfig"
            try text.replacingOccurrences(of: String(token), with: "    token: \"wrong\"").write(toFile: wrong, atomically: true, encoding: .utf8)
            let missing = dir.path + "/missing.kubeconfig"
            try text.replacingOccurrences(of: String(token), with: "").replacingOccurrences(of: "  user:\n", with: "  user: {}\n").write(
                toFile: missing, atomically: true, encoding: .utf8)
            for path in [wrong, missing] {
                let refused = try await runProcess(Self.kubectl, ["--kubeconfig", path, "get", "pods"])
                #expect(refused.exitCode != 0)
                // kubectl reports the 401, or (without any credential) asks for a user name, which it only does after a 401.
                #expect(
                    refused.output.contains("Unauthorized") || refused.output.contains("unauthorized") || refused.output.contains("Please enter Username"),
                    "\(refused.output)")
            }
            // Rotating the token refuses the old one.
            _ = try await E.call(client, "rot", ["op": "proxy.rotate_token"])
            let stale = try await runProcess(Self.kubectl, base + ["get", "pods"])
            #expect(stale.exitCode != 0)
            let after = await sim.requestCount
            #expect(after == before, "requests with a wrong, missing or stale token reached the cluster")
            await client.close()
        }
    }
}
