import Foundation
import GuildNetCore
import GuildNetSimulators
import TestSupport
import Testing

/// Wire semantics over HTTPS (paging, watch replay, 410, bookmarks, faults), read through
/// `kubectl get --raw` so the client is the real one.
@Suite("KubeSim over HTTPS", .serialized)
struct KubeSimHTTPSTests {

    static func options(pods: Int = 0, bookmarkInterval: Duration = .seconds(5)) -> KubeSimOptions {
        var options = KubeSimOptions()
        options.seedPods = pods
        options.bookmarkInterval = bookmarkInterval
        return options
    }

    /// Parses newline-delimited watch events.
    static func events(_ text: String) throws -> [JSONValue] {
        try text.split(separator: "\n").filter { $0.hasPrefix("{") }.map { try JSONParser.parse(String($0)) }
    }

    @Test("list paging with limit and continue")
    func paging() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 5)) { sim, endpoint in
            let kubectl = try Kubectl(sim: sim, endpoint: endpoint)
            defer { kubectl.cleanUp() }
            let first = try await kubectl.run("get", "--raw", "/api/v1/namespaces/default/pods?limit=2")
            #expect(first.exitCode == 0, "\(first.output)")
            let page1 = try JSONParser.parse(first.output)
            #expect(page1["kind"]?.stringValue == "PodList")
            #expect(page1["items"]?.arrayValue?.count == 2)
            #expect(page1["metadata"]?["remainingItemCount"]?.intValue == 3)
            let token = try #require(page1["metadata"]?["continue"]?.stringValue)
            let second = try await kubectl.run("get", "--raw", "/api/v1/namespaces/default/pods?limit=10&continue=\(token)")
            let page2 = try JSONParser.parse(second.output)
            #expect(page2["items"]?.arrayValue?.compactMap { $0["metadata"]?["name"]?.stringValue } == ["seed-pod-00002", "seed-pod-00003", "seed-pod-00004"])
            #expect(page2["metadata"]?["continue"] == nil)
        }
    }

    @Test("watch replays from a resourceVersion, with bookmarks, and ends after timeoutSeconds")
    func watchReplayAndBookmarks() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 1, bookmarkInterval: .milliseconds(200))) { sim, endpoint in
            let kubectl = try Kubectl(sim: sim, endpoint: endpoint)
            defer { kubectl.cleanUp() }
            let from = await sim.resourceVersion
            _ = try await sim.create(.pods, ["metadata": ["name": "w1"]])
            _ = try await sim.patch(.pods, name: "w1", ["metadata": ["labels": ["a": "b"]]])
            _ = try await sim.delete(.pods, name: "w1")
            let result = try await kubectl.run(
                "get", "--raw", "/api/v1/namespaces/default/pods?watch=true&resourceVersion=\(from)&allowWatchBookmarks=true&timeoutSeconds=1")
            #expect(result.exitCode == 0, "\(result.output)")
            let events = try Self.events(result.output)
            let types = events.compactMap { $0["type"]?.stringValue }
            #expect(Array(types.prefix(3)) == ["ADDED", "MODIFIED", "DELETED"], "\(result.output)")
            #expect(types.contains("BOOKMARK"), "\(result.output)")
            let rvs = events.prefix(3).compactMap { $0["object"]?["metadata"]?["resourceVersion"]?.stringValue.flatMap { Int64($0) } }
            #expect(rvs == [from + 1, from + 2, from + 3])
            #expect(await sim.openWatchCount == 0)
        }
    }

    @Test("a watch from a compacted resourceVersion gets one ERROR 410 Expired event")
    func watchExpired() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 2)) { sim, endpoint in
            let kubectl = try Kubectl(sim: sim, endpoint: endpoint)
            defer { kubectl.cleanUp() }
            let old = await sim.resourceVersion - 1
            _ = try await sim.create(.pods, ["metadata": ["name": "x"]])
            await sim.compactHistory()
            let result = try await kubectl.run("get", "--raw", "/api/v1/pods?watch=1&resourceVersion=\(old)&timeoutSeconds=5")
            let events = try Self.events(result.output)
            #expect(events.count == 1, "\(result.output)")
            #expect(events.first?["type"]?.stringValue == "ERROR")
            #expect(events.first?["object"]?["code"]?.intValue == 410)
            #expect(events.first?["object"]?["reason"]?.stringValue == "Expired")
        }
    }

    @Test("429 with Retry-After is retried by kubectl; 500 is reported")
    func injectedFailures() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 1)) { sim, endpoint in
            let kubectl = try Kubectl(sim: sim, endpoint: endpoint)
            defer { kubectl.cleanUp() }
            // Warm the dispatcher's /version cache so the failures hit kubectl itself.
            _ = try await kubectl.run("get", "--raw", "/version")
            await sim.failNextRequests(2, status: 429, retryAfterSeconds: 1)
            let clock = ContinuousClock()
            let started = clock.now
            let retried = try await kubectl.run("get", "--raw", "/api/v1/namespaces/default/pods/seed-pod-00000")
            #expect(retried.exitCode == 0, "\(retried.output)")
            #expect(clock.now - started >= .seconds(2))

            // No Retry-After: client-go does not retry a 500.
            await sim.failNextRequests(1, status: 500)
            let failed = try await kubectl.run("get", "--raw", "/api/v1/namespaces/default/pods/seed-pod-00000")
            #expect(failed.exitCode == 1, "\(failed.output)")
            #expect(failed.output.contains("InternalError") || failed.output.contains("injected failure"), "\(failed.output)")
        }
    }

    @Test("stalled replies wait until released")
    func stall() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 1)) { sim, endpoint in
            let kubectl = try Kubectl(sim: sim, endpoint: endpoint)
            defer { kubectl.cleanUp() }
            await sim.stallReplies()
            let process = try kubectl.start("get", "--raw", "/api/v1/namespaces/default/pods/seed-pod-00000")
            defer { process.stop() }
            try await eventually("a stalled request", timeout: .seconds(20)) { await sim.stalledRequestCount >= 1 }
            #expect(process.exitCode == nil)
            await sim.releaseReplies()
            try await eventually("kubectl finishes", timeout: .seconds(20)) { process.exitCode != nil }
            #expect(process.exitCode == 0, "\(process.output)")
            #expect(process.output.contains("seed-pod-00000"))
        }
    }

    @Test("cutting watch streams and restart drop open watches")
    func cutAndRestart() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 1)) { sim, endpoint in
            let kubectl = try Kubectl(sim: sim, endpoint: endpoint)
            defer { kubectl.cleanUp() }
            let rv = await sim.resourceVersion
            let first = try kubectl.start("get", "--raw", "/api/v1/pods?watch=true&resourceVersion=\(rv)&timeoutSeconds=60")
            defer { first.stop() }
            try await eventually("watch open", timeout: .seconds(20)) { await sim.openWatchCount == 1 }
            #expect(await sim.cutWatchStreams() == 1)
            try await eventually("kubectl sees the cut", timeout: .seconds(20)) { first.exitCode != nil }
            #expect(await sim.openWatchCount == 0)

            let second = try kubectl.start("get", "--raw", "/api/v1/pods?watch=true&resourceVersion=\(rv)&timeoutSeconds=60")
            defer { second.stop() }
            try await eventually("watch open again", timeout: .seconds(20)) { await sim.openWatchCount == 1 }
            await sim.restart()
            try await eventually("kubectl sees the restart", timeout: .seconds(20)) { second.exitCode != nil }
            try await eventually("no open connections", timeout: .seconds(20)) { await sim.openConnectionCount == 0 }
            // State survives a restart.
            let after = try await kubectl.run("get", "pod", "seed-pod-00000", "-o", "name")
            #expect(after.output.contains("pod/seed-pod-00000"), "\(after.output)")
        }
    }

    @Test("slow drip delays each watch event")
    func drip() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 3)) { sim, endpoint in
            let kubectl = try Kubectl(sim: sim, endpoint: endpoint)
            defer { kubectl.cleanUp() }
            await sim.setDripDelay(.milliseconds(300))
            let clock = ContinuousClock()
            let started = clock.now
            let result = try await kubectl.run("get", "--raw", "/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=2")
            #expect(try Self.events(result.output).count == 3, "\(result.output)")
            #expect(clock.now - started >= .milliseconds(900))
        }
    }

    static var hostappBinary: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("hostapp").path
    }

    @Test("hostapp sim kube writes a 0600 kubeconfig, prints its address and serves kubectl")
    func simCommand() async throws {
        let dir = TemporaryDirectory("kubesim")
        defer { dir.remove() }
        let kubeconfig = dir.appending("kubeconfig")
        let process = try StreamingProcess(
            URL(fileURLWithPath: Self.hostappBinary), ["sim", "kube", "--kubeconfig-out", kubeconfig, "--pods", "2"])
        defer { process.stop() }
        try await eventually("the listening line", timeout: .seconds(30)) { process.output.contains("KubeSim listening on https://127.0.0.1:") }
        let line = process.output.split(separator: "\n").first { $0.hasPrefix("KubeSim listening on") }
        #expect(line != nil && process.output.split(separator: "\n").count == 1, "\(process.output)")
        let attributes = try FileManager.default.attributesOfItem(atPath: kubeconfig)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let result = try await runProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["HOME=\(dir.path)", "KUBECONFIG=", try Kubectl.executable(), "--kubeconfig", kubeconfig, "get", "pods", "-o", "name"], input: [])
        #expect(result.exitCode == 0, "\(result.output)")
        // --pods creates the simulated ReplicaSet's pods (sim-xxxxx), backed by loopback servers.
        #expect(result.output.split(separator: "\n").filter { $0.hasPrefix("pod/sim-") }.count == 2, "\(result.output)")
        process.stop()
        try await eventually("hostapp exits on SIGTERM", timeout: .seconds(20)) { process.exitCode != nil }
        #expect(process.exitCode == 0, "\(process.output)")
        // A clean stop logs nothing (once it logged Hummingbird's CancellationError and "Already closed").
        #expect(process.output.split(separator: "\n").count == 1, "\(process.output)")
    }
}
