import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetSimulators
import TestSupport
import Testing

/// `route.*` ops and the per-cluster route choice, over real sockets: KubeSim over TLS, the real
/// `kubectl proxy` of this machine, a test SOCKS5 with its own name map, and microsocks.
@Suite("API routes per cluster")
struct RouteOpsTests {
    /// Registers `name` with `kubeconfigText` (written 0600 under `directory`) and `settings`.
    static func register(
        _ client: ControlClient, _ name: String, kubeconfig text: String, directory: String, settings: [String: JSONValue] = [:]
    ) async throws {
        let path = directory + "/\(name).kubeconfig"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        var settings = settings
        // A generous probe deadline: a probe slowed by a loaded machine must not read as a failed route.
        if settings["route.probe_timeout_ms"] == nil { settings["route.probe_timeout_ms"] = 20_000 }
        // The kubectl the KubeSim referee tests use ($KUBECTL), else the daemon finds it on PATH.
        if let kubectl = ProcessInfo.processInfo.environment["KUBECTL"], !kubectl.isEmpty { settings["route.kubectl_path"] = .string(kubectl) }
        _ = try await call(
            client, "reg-\(name)",
            ["op": "cluster.register", "cluster": .string(name), "kubeconfig": .string(path), "settings": .object(settings)])
    }

    /// Forces an evaluation and returns `route.status`.
    static func probe(_ client: ControlClient, _ name: String) async throws -> JSONValue {
        try await call(client, "probe-\(name)-\(UUID().uuidString.prefix(4))", ["op": "route.probe", "cluster": .string(name)], timeout: .seconds(60))
    }

    /// Lists pods through the cluster's client (so through its chosen route).
    static func listPods(_ client: ControlClient, _ name: String) async throws -> [JSONValue] {
        let list = try await call(
            client, "list-\(name)-\(UUID().uuidString.prefix(4))", ["op": "k8s.list", "cluster": .string(name), "resource": "pods", "source": "api"])
        return list["items"]?.arrayValue ?? []
    }

    static func isAlive(_ pid: Int32) -> Bool {
        ProcessResources.isRunning(pid: pid)
    }

    static func simOptions(requireForwardedFor: Bool = false) -> KubeSimOptions {
        var options = KubeSimOptions()
        options.seedPods = 2
        options.requireForwardedFor = requireForwardedFor
        return options
    }

    static func microsocksPath() throws -> String {
        try #require(
            ["/usr/bin/microsocks", "/usr/local/bin/microsocks"].first { FileManager.default.isExecutableFile(atPath: $0) },
            "microsocks is missing: run scripts/install-test-tools.sh")
    }

    @Test("(a) a healthy API server is reached directly; the decision is logged with the cluster and a reason")
    func directWhenHealthy() async throws {
        let logs = LogCapture()
        try await KubeSim.withRunning(options: Self.simOptions()) { sim, endpoint in
            try await withHostOnSocket(logs: logs) { _, client, directory in
                try await Self.register(client, "a", kubeconfig: sim.kubeconfig(endpoint: endpoint), directory: directory)
                let status = try await Self.probe(client, "a")
                #expect(status["strategy"] == "auto")
                #expect(status["route"] == "direct")
                #expect(status["routes"]?["direct"]?["state"] == "healthy")
                #expect(status["routes"]?["kubectl-proxy"]?["state"] == "unknown")
                #expect(status["kubectl_pid"] == .null)
                #expect(try await Self.listPods(client, "a").count == 2)
                try await eventually("the choice is logged") {
                    logs.all.contains { $0.contains("event=route_selected") && $0.contains("cluster_id=a") && $0.contains("reason=") }
                }
            }
        }
    }

    /// Regression: once the first interval had passed, the evaluation loop's wakeup stream was
    /// finished by the cancelled sleep race, and the loop probed back to back (about 300 probes a
    /// second, each a new TLS connection, with the daemon's RSS growing by MiBs a second).
    @Test("routes are evaluated once per probe interval, never back to back")
    func evaluationsFollowTheInterval() async throws {
        try await KubeSim.withRunning(options: Self.simOptions()) { sim, endpoint in
            try await withHostOnSocket { _, client, directory in
                let clock = ContinuousClock()
                let registered = clock.now
                try await Self.register(
                    client, "iv", kubeconfig: sim.kubeconfig(endpoint: endpoint), directory: directory,
                    settings: ["route.probe_interval_ms": 100])
                func evaluations() async throws -> Int {
                    let status = try await call(client, "st-\(UUID().uuidString.prefix(4))", ["op": "route.status", "cluster": "iv"])
                    return Int(status["evaluations"]?.intValue ?? -1)
                }
                try await eventually("five interval evaluations", timeout: .seconds(60)) { try await evaluations() >= 5 }
                let count = try await evaluations()
                let elapsed = registered.duration(to: clock.now)
                // One at start, then at most one per 100 ms slept (sleeps never end early).
                let bound = 1 + Int(elapsed / .milliseconds(100))
                #expect(count <= bound, "\(count) evaluations in \(elapsed)")
            }
        }
    }

    @Test("(b) a server that refuses our client directly is reached through a supervised kubectl proxy; unregister leaves no process, listener or file")
    func kubectlProxyWhenDirectRefused() async throws {
        let logs = LogCapture()
        try await KubeSim.withRunning(options: Self.simOptions(requireForwardedFor: true)) { sim, endpoint in
            try await withHostOnSocket(logs: logs) { _, client, directory in
                let baseline = ProcessResources.openFileCount()
                try await Self.register(client, "b", kubeconfig: sim.kubeconfig(endpoint: endpoint), directory: directory)
                let status = try await Self.probe(client, "b")
                #expect(status["route"] == "kubectl-proxy")
                #expect(status["routes"]?["direct"]?["state"] == "failed")
                #expect(
                    status["routes"]?["direct"]?["last_error"]?.stringValue?.contains("403") == true
                        || status["routes"]?["direct"]?["last_error"]?.stringValue?.contains("forbidden") == true)
                #expect(status["routes"]?["kubectl-proxy"]?["state"] == "healthy")
                #expect(status["last_switch"]?["route"] == "kubectl-proxy")
                let pid = Int32(try #require(status["kubectl_pid"]?.intValue))
                let port = Int(try #require(status["kubectl_port"]?.intValue))
                #expect(Self.isAlive(pid))
                // The cluster's own requests go through kubectl proxy now.
                #expect(try await Self.listPods(client, "b").count == 2)
                #expect(logs.all.contains { $0.contains("event=route_fallback") && $0.contains("cluster_id=b") && $0.contains("route=kubectl-proxy") })
                // kubectl's kubeconfig holds credentials: private to the daemon's user.
                let stateKubeconfig = directory + "/state/clusters/b/kubectl-proxy.kubeconfig"
                let mode = try #require(try FileManager.default.attributesOfItem(atPath: stateKubeconfig)[.posixPermissions] as? Int)
                #expect(mode & 0o077 == 0)

                // kubectl dying is noticed and it is restarted (capped backoff) on a new port; the client
                // follows it at once (a restart triggers an evaluation).
                kill(pid, SIGKILL)
                var restarted: (pid: Int32, port: Int)?
                try await eventually("kubectl proxy restarted", timeout: .seconds(20)) {
                    let now = try await call(client, "st-\(UUID().uuidString.prefix(4))", ["op": "route.status", "cluster": "b"])
                    guard let newPID = now["kubectl_pid"]?.intValue, Int32(newPID) != pid, let newPort = now["kubectl_port"]?.intValue else { return false }
                    restarted = (Int32(newPID), Int(newPort))
                    return true
                }
                let current = try #require(restarted)
                #expect(logs.all.contains { $0.contains("event=route_kubectl_restart") && $0.contains("cluster_id=b") })
                try await eventually("the client follows kubectl to its new port") {
                    (try? await Self.listPods(client, "b").count) == 2
                }
                #expect(try await Self.probe(client, "b")["route"] == "kubectl-proxy")
                #expect(await LoopbackTCP.isRefused(port: port))

                _ = try await call(client, "unreg", ["op": "cluster.unregister", "cluster": "b"])
                #expect(!Self.isAlive(pid))
                #expect(!Self.isAlive(current.pid), "kubectl proxy (pid \(current.pid)) must be killed and reaped on unregister")
                #expect(await LoopbackTCP.isRefused(port: current.port))
                #expect(!FileManager.default.fileExists(atPath: stateKubeconfig))
                try await eventually("the descriptor count is back to its baseline", timeout: .seconds(20)) {
                    ProcessResources.openFileCount() <= baseline
                }
            }
        }
    }

    @Test("(c) an API server name only the SOCKS5 proxy resolves is reached over the tailnet route, the name sent unresolved")
    func tailnetWhenOnlyTheProxyResolves() async throws {
        try await KubeSim.withRunning(options: Self.simOptions()) { sim, endpoint in
            let magicName = "kubesim.tailnet-test.ts.net"
            try await TestSOCKS5Server.withRunning(names: [magicName: "127.0.0.1"]) { socks in
                try await withHostOnSocket { _, client, directory in
                    let text = sim.kubeconfig(endpoint: endpoint).replacingOccurrences(
                        of: "    server: \(JSONValue.string(endpoint.url).jsonString)",
                        with: "    server: \"https://\(magicName):\(endpoint.port)\"\n    tls-server-name: localhost")
                    #expect(text.contains(magicName))
                    try await Self.register(
                        client, "c", kubeconfig: text, directory: directory,
                        settings: ["route.socks5_address": .string("127.0.0.1:\(socks.port)"), "route.probe_timeout_ms": 20_000])
                    let status = try await Self.probe(client, "c")
                    #expect(status["route"] == "tailnet")
                    #expect(status["routes"]?["direct"]?["state"] == "failed")
                    #expect(status["routes"]?["kubectl-proxy"]?["state"] == "failed")
                    #expect(status["routes"]?["tailnet"]?["state"] == "healthy")
                    #expect(socks.requestedNames.contains(magicName))
                    #expect(try await Self.listPods(client, "c").count == 2)
                    // kubectl is stopped once the tailnet route is chosen.
                    #expect(status["kubectl_pid"] == .null)
                }
            }
        }
    }

    @Test("(d) microsocks with username/password carries the tailnet route (RFC 1929); a wrong password fails it")
    func tailnetThroughMicrosocksWithPassword() async throws {
        let logs = LogCapture()
        let socksPort = try await ForwardOpsTests.freePort()
        let proxy = Process()
        proxy.executableURL = URL(fileURLWithPath: try Self.microsocksPath())
        proxy.arguments = ["-i", "127.0.0.1", "-p", String(socksPort), "-u", "route-user", "-P", "route-pass"]
        proxy.standardOutput = FileHandle.nullDevice
        proxy.standardError = FileHandle.nullDevice
        try proxy.runOrphanSafe()
        // SIGKILL (see ForwardOpsTests: never waitUntilExit on the cooperative pool).
        defer { kill(proxy.processIdentifier, SIGKILL) }
        try await eventually("microsocks listens") { await !LoopbackTCP.isRefused(port: socksPort) }

        try await KubeSim.withRunning(options: Self.simOptions()) { sim, endpoint in
            try await withHostOnSocket(logs: logs) { _, client, directory in
                // A host name, so microsocks gets ATYP domain and resolves it itself.
                let text = sim.kubeconfig(endpoint: endpoint).replacingOccurrences(of: "https://127.0.0.1:", with: "https://localhost:")
                try await Self.register(
                    client, "d", kubeconfig: text, directory: directory,
                    settings: [
                        "route.strategy": "tailnet", "route.socks5_address": .string("127.0.0.1:\(socksPort)"),
                        "route.socks5_username": "route-user", "route.socks5_password": "wrong-pass",
                    ])
                let refused = try await Self.probe(client, "d")
                #expect(refused["route"] == .null)
                #expect(refused["state"] == "failed")

                _ = try await call(client, "set", ["op": "settings.set", "cluster": "d", "settings": ["route.socks5_password": "route-pass"]])
                // The settings change rebuilds the route's relay in the background: a probe racing it
                // may still meet the old relay, so probe until the new password is in use.
                var status: JSONValue = .null
                try await eventually("the tailnet route is healthy with the new password", timeout: .seconds(60)) {
                    status = try await Self.probe(client, "d")
                    return status["route"] == "tailnet"
                }
                #expect(status["route"] == "tailnet")
                #expect(status["routes"]?["tailnet"]?["state"] == "healthy")
                #expect(try await Self.listPods(client, "d").count == 2)
                #expect(ProcessResources.tcpConnections(toPort: socksPort) >= 1)
                // The password never shows, in replies or logs.
                #expect(!status.jsonString.contains("route-pass"))
                #expect(!logs.all.contains { $0.contains("route-pass") || $0.contains("wrong-pass") })
                let shown = try await call(client, "show", ["op": "settings.get", "cluster": "d", "key": "route.socks5_password"])
                #expect(!shown.jsonString.contains("route-pass"))
            }
        }
    }

    @Test("(e) a pinned route that fails is reported failed; no other route is tried")
    func pinnedFailingRouteHasNoFallback() async throws {
        try await KubeSim.withRunning(options: Self.simOptions(requireForwardedFor: true)) { sim, endpoint in
            try await withHostOnSocket { _, client, directory in
                try await Self.register(
                    client, "e", kubeconfig: sim.kubeconfig(endpoint: endpoint), directory: directory, settings: ["route.strategy": "direct"])
                let pinned = try await Self.probe(client, "e")
                #expect(pinned["strategy"] == "direct")
                #expect(pinned["route"] == .null)
                #expect(pinned["state"] == "failed")
                #expect(pinned["reason"]?.stringValue?.contains("pinned route direct failed") == true)
                #expect(pinned["routes"]?["kubectl-proxy"]?["state"] == "unknown")
                #expect(pinned["kubectl_pid"] == .null)
                // The cluster's requests keep going to the pinned route (and fail), never elsewhere.
                let refused = try await callFailing(client, "list", ["op": "k8s.list", "cluster": "e", "resource": "pods", "source": "api"])
                #expect(refused["code"] == "k8s_forbidden")

                // Auto: kubectl proxy is chosen.
                let auto = try await call(client, "auto", ["op": "route.set", "cluster": "e", "strategy": "auto"], timeout: .seconds(60))
                #expect(auto["route"] == "kubectl-proxy")
                #expect(try await Self.listPods(client, "e").count == 2)
                // Pinned again (route.set saves it in the cluster's settings): kubectl is stopped, the route fails.
                let set = try await call(client, "set", ["op": "route.set", "cluster": "e", "strategy": "direct"], timeout: .seconds(60))
                #expect(set["route"] == .null)
                #expect(set["state"] == "failed")
                #expect(set["kubectl_pid"] == .null)
                let settings = try await call(client, "get", ["op": "settings.get", "cluster": "e", "key": "route.strategy"])
                #expect(settings.jsonString.contains("direct"))
                let bad = try await callFailing(client, "bad", ["op": "route.set", "cluster": "e", "strategy": "socks"])
                #expect(bad["code"] == "invalid_field")
            }
        }
    }

    @Test("regression: the original host's shared 127.0.0.1:8001 kubectl-proxy fallback never leaks to another cluster")
    func sharedKubectlProxy8001FallbackNeverLeaks() async throws {
        try await KubeSim.withRunning(options: Self.simOptions(requireForwardedFor: true)) { refusing, refusingEndpoint in
            try await KubeSim.withRunning(options: Self.simOptions()) { healthy, healthyEndpoint in
                try await withHostOnSocket { _, client, directory in
                    try await Self.register(client, "falls-back", kubeconfig: refusing.kubeconfig(endpoint: refusingEndpoint), directory: directory)
                    try await Self.register(client, "direct", kubeconfig: healthy.kubeconfig(endpoint: healthyEndpoint), directory: directory)
                    async let first = Self.probe(client, "falls-back")
                    async let second = Self.probe(client, "direct")
                    let (a, b) = try await (first, second)
                    #expect(a["route"] == "kubectl-proxy")
                    #expect(b["route"] == "direct")
                    #expect(b["kubectl_pid"] == .null)
                    #expect(b["routes"]?["kubectl-proxy"]?["state"] == "unknown")
                    #expect(a["kubectl_port"] != .int(8001))
                    // Re-evaluating the healthy cluster after the other fell back changes nothing for it.
                    let again = try await Self.probe(client, "direct")
                    #expect(again["route"] == "direct")
                    #expect(again["last_switch"]?["route"] == "direct")
                    #expect(try await Self.listPods(client, "falls-back").count == 2)
                    #expect(try await Self.listPods(client, "direct").count == 2)
                    // Each cluster's route series carry only its own decision.
                    let statusA = try await call(client, "sa", ["op": "cluster.status", "cluster": "falls-back"])
                    let statusB = try await call(client, "sb", ["op": "cluster.status", "cluster": "direct"])
                    let kubeA = statusA["children"]?.arrayValue?.first { $0["id"] == "kube" }
                    let kubeB = statusB["children"]?.arrayValue?.first { $0["id"] == "kube" }
                    #expect(kubeA?["details"]?["route"] == "kubectl-proxy")
                    #expect(kubeB?["details"]?["route"] == "direct")
                }
            }
        }
    }
}

extension RouteOpsTests {
    @Test("a route change moves the cluster's client: a watch on the old route ends with route_changed, a new one watches through the new route")
    func routeChangeRestartsWatchesThroughTheNewRoute() async throws {
        try await KubeSim.withRunning(options: Self.simOptions()) { sim, endpoint in
            try await withHostOnSocket { _, client, directory in
                try await Self.register(client, "w", kubeconfig: sim.kubeconfig(endpoint: endpoint), directory: directory)
                #expect(try await Self.probe(client, "w")["route"] == "direct")
                let watch = try await call(client, "w1", ["op": "k8s.watch", "cluster": "w", "resource": "pods", "namespace": "default"])
                let sub = try #require(watch["sub"]?.stringValue)
                while try await nextEvent(client, sub: sub)["type"] != "SYNCED" {}

                let moved = try await call(client, "pin", ["op": "route.set", "cluster": "w", "strategy": "kubectl-proxy"], timeout: .seconds(60))
                #expect(moved["route"] == "kubectl-proxy")
                let final = try await nextEvent(client, sub: sub)
                #expect(final["type"] == "END")
                #expect(final["reason"]?["code"] == "route_changed")

                let again = try await call(client, "w2", ["op": "k8s.watch", "cluster": "w", "resource": "pods", "namespace": "default"])
                let second = try #require(again["sub"]?.stringValue)
                while try await nextEvent(client, sub: second)["type"] != "SYNCED" {}
                _ = try await sim.create(.pods, namespace: "default", KubeOpsTests.pod("after-route-change"))
                let added = try await nextEvent(client, sub: second)
                #expect(added["type"] == "ADDED")
                #expect(added["object"]?["metadata"]?["name"] == "after-route-change")
                // The new watch is a connection of kubectl's, not ours, to the API server.
                let status = try await call(client, "rs", ["op": "route.status", "cluster": "w"])
                let kubectlPort = Int(try #require(status["kubectl_port"]?.intValue))
                #expect(ProcessResources.tcpConnections(toPort: kubectlPort) >= 1)
            }
        }
    }
}
