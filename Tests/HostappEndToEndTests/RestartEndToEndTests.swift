import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetSimulators
import TestSupport
import Testing

/// The built `hostapp` binary while its servers restart: KubeSim's restart rebuilds the API server's
/// watch cache (watches from before it get 410), RethinkSim's closes every connection and answers
/// `OP_FAILED` "primary replica … not available" until its tables are ready. A pod watch and a
/// changefeed must see every write made after the restart, with the informer cache and the table
/// state right, and never end. Prints the time from the restart to the first event after it.
@Suite("hostapp across server restarts", .serialized)
struct RestartEndToEndTests {
    typealias E = SubsystemsEndToEndTests

    /// A daemon with one cluster; `settings` as in `cluster.register`.
    static func withDaemon<T: Sendable>(
        kubeconfig: String? = nil, settings: [String: JSONValue] = [:],
        _ body: @Sendable (ControlClient, HostappProcess) async throws -> T
    ) async throws -> T {
        let dir = TemporaryDirectory("e2e-restart")
        defer { dir.remove() }
        let daemon = try HostappProcess(stateDirectory: dir.path + "/state", extra: ["--log-level", "debug"])
        defer { daemon.terminate() }
        _ = try await daemon.waitUntilReady()
        let client = try await daemon.client()
        var register: [String: JSONValue] = ["op": "cluster.register", "cluster": "restarts", "settings": .object(settings)]
        if let kubeconfig { register["kubeconfig"] = .string(kubeconfig) }
        _ = try await E.call(client, "r", register)
        let result = try await body(client, daemon)
        await client.close()
        return result
    }

    /// Reads events of `sub` until `done` says so; fails on an end event.
    static func read(
        _ client: ControlClient, sub: String, until done: (JSONValue) -> Bool
    ) async throws -> [JSONValue] {
        var seen: [JSONValue] = []
        while true {
            let event = try await E.next(client, sub: sub)
            seen.append(event)
            if event["type"] == "END" || event["type"] == "end" {
                throw TestFailure("\(sub) ended: \(event.jsonString)")
            }
            if done(event) { return seen }
        }
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    /// One JSON line with a measured recovery, for docs/performance.md.
    static func report(_ fields: [String: JSONValue]) {
        var line = fields
        line["measure"] = "restart_recovery"
        print(JSONValue.object(line).jsonString)
    }

    // MARK: - Kubernetes

    static func pod(_ name: String) -> JSONValue {
        ["metadata": ["name": .string(name), "namespace": "default"], "spec": ["containers": [["name": "c", "image": "i"]]]]
    }

    /// The pod names in the daemon's informer cache equal KubeSim's.
    static func cacheMatches(_ client: ControlClient, _ kube: KubeSim) async throws -> Bool {
        let cached = try await E.call(client, "l", ["op": "k8s.list", "cluster": "restarts", "resource": "pods", "namespace": "default", "source": "cache"])
        let server = try await kube.list(.pods, namespace: "default")
        func names(_ items: JSONValue?) -> [String: String] {
            var result: [String: String] = [:]
            for item in items?.arrayValue ?? [] {
                if let name = item["metadata"]?["name"]?.stringValue { result[name] = item["metadata"]?["resourceVersion"]?.stringValue ?? "" }
            }
            return result
        }
        return names(cached["items"]) == names(server["items"])
    }

    /// Writes to another resource, so the global RV passes the pod watch's (as events and leases do).
    static func otherWrites(_ kube: KubeSim, _ tag: String) async throws {
        for index in 0..<3 {
            _ = try await kube.create(.configmaps, ["metadata": ["name": .string("cm-\(tag)-\(index)")]])
        }
    }

    @Test func podWatchSurvivesAnAPIServerRestart() async throws {
        var options = KubeSimOptions()
        options.bookmarkInterval = .seconds(3600)
        try await KubeSim.withRunning(options: options) { kube, endpoint in
            let dir = TemporaryDirectory("e2e-kube-restart")
            defer { dir.remove() }
            let kubeconfig = dir.path + "/sim.kubeconfig"
            try kube.writeKubeconfig(to: kubeconfig, endpoint: endpoint)
            try await Self.withDaemon(kubeconfig: kubeconfig) { client, daemon in
                let watch = try #require(
                    try await E.call(client, "w", ["op": "k8s.watch", "cluster": "restarts", "resource": "pods", "namespace": "default"])["sub"]?.stringValue)
                _ = try await Self.read(client, sub: watch) { $0["type"] == "SYNCED" }
                _ = try await kube.create(.pods, Self.pod("before"))
                _ = try await Self.read(client, sub: watch) { $0["object"]?["metadata"]?["name"] == "before" }
                try await Self.otherWrites(kube, "a")

                let clock = ContinuousClock()
                let restartedAt = clock.now
                await kube.restart()
                _ = try await kube.create(.pods, Self.pod("after"))
                let events = try await Self.read(client, sub: watch) { $0["object"]?["metadata"]?["name"] == "after" }
                let recovery = clock.now - restartedAt
                #expect(events.last?["type"] == "ADDED")
                try await eventually("the informer cache equals the API server") { try await Self.cacheMatches(client, kube) }
                _ = try await kube.create(.pods, Self.pod("live"))
                _ = try await Self.read(client, sub: watch) { $0["object"]?["metadata"]?["name"] == "live" }
                let status = try await E.call(client, "s", ["op": "cluster.status", "cluster": "restarts"])
                #expect(status.jsonString.contains("\"relists\":1"), "\(status.jsonString)")
                let relists = daemon.logRecords.filter { $0["message"] == "informer listed" }
                #expect(relists.last?["requested_rv"] == "", "the relist after the watch's 410 is a consistent read")
                Self.report(["kind": "kube", "restart_to_first_event_ms": .int(Self.milliseconds(recovery))])
            }
        }
    }

    @Test func podWatchSurvivesAFlappingAPIServer() async throws {
        var options = KubeSimOptions()
        options.bookmarkInterval = .seconds(3600)
        try await KubeSim.withRunning(options: options) { kube, endpoint in
            let dir = TemporaryDirectory("e2e-kube-flap")
            defer { dir.remove() }
            let kubeconfig = dir.path + "/sim.kubeconfig"
            try kube.writeKubeconfig(to: kubeconfig, endpoint: endpoint)
            try await Self.withDaemon(kubeconfig: kubeconfig) { client, _ in
                let watch = try #require(
                    try await E.call(client, "w", ["op": "k8s.watch", "cluster": "restarts", "resource": "pods", "namespace": "default"])["sub"]?.stringValue)
                _ = try await Self.read(client, sub: watch) { $0["type"] == "SYNCED" }
                _ = try await kube.create(.pods, Self.pod("victim"))
                _ = try await Self.read(client, sub: watch) { $0["object"]?["metadata"]?["name"] == "victim" }
                // Three restarts within a few seconds, each once the daemon reacted to the one before
                // (it sent a request since), with writes before and after each.
                for round in 0..<3 {
                    try await Self.otherWrites(kube, "r\(round)")
                    let requests = await kube.requestCount
                    await kube.restart()
                    _ = try await kube.create(.pods, Self.pod("flap-\(round)"))
                    try await eventually("the daemon sent a request after restart \(round)") { await kube.requestCount > requests }
                }
                try await kube.delete(.pods, name: "victim")
                var seen: Set<String> = []
                _ = try await Self.read(client, sub: watch) { event in
                    if let name = event["object"]?["metadata"]?["name"]?.stringValue { seen.insert("\(event["type"]?.stringValue ?? "") \(name)") }
                    return seen.isSuperset(of: ["ADDED flap-0", "ADDED flap-1", "ADDED flap-2", "DELETED victim"])
                }
                try await eventually("the informer cache equals the API server") { try await Self.cacheMatches(client, kube) }
            }
        }
    }

    // MARK: - RethinkDB

    static func rethinkSettings(_ endpoint: RethinkSimEndpoint) -> [String: JSONValue] {
        [
            "rethinkdb.address": .string("\(endpoint.host):\(endpoint.port)"), "rethinkdb.user": "app",
            "rethinkdb.password": .string(E.rethinkPassword),
        ]
    }

    static func rethinkOptions(unavailableFor: Duration) -> RethinkSimOptions {
        var options = RethinkSimOptions()
        options.users = ["admin": "", "app": E.rethinkPassword]
        options.restartUnavailableFor = unavailableFor
        return options
    }

    /// The ids of the table read through the daemon (a one-shot query) equal RethinkSim's.
    static func tableMatches(_ client: ControlClient, _ rethink: RethinkSim) async throws -> Bool {
        let result = try await E.call(client, "q", ["op": "rethink.query", "cluster": "restarts", "query": ["table": "jobs"]])
        let daemonIDs = Set((result["result"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue })
        let simIDs = Set(try await rethink.documents(table: "jobs", database: "test").compactMap { $0["id"]?.stringValue })
        return daemonIDs == simIDs
    }

    static func changedID(_ event: JSONValue) -> String? {
        event["type"] == "change" ? event["new_val"]?["id"]?.stringValue : nil
    }

    @Test func changefeedWaitsOutUnavailableTablesAfterARestart() async throws {
        let window: Duration = .seconds(2)
        try await RethinkSim.withRunning(options: Self.rethinkOptions(unavailableFor: window)) { rethink, endpoint in
            try await rethink.createTable("jobs", database: "test")
            try await Self.withDaemon(settings: Self.rethinkSettings(endpoint)) { client, _ in
                let feed = try #require(
                    try await E.call(client, "f", ["op": "rethink.changes", "cluster": "restarts", "query": ["table": "jobs", "changes": true]])["sub"]?
                        .stringValue)
                try await eventually("the feed is open") { await rethink.activeChangefeeds == 1 }
                try await rethink.insert([["id": "before"]], table: "jobs", database: "test")
                _ = try await Self.read(client, sub: feed) { Self.changedID($0) == "before" }

                let clock = ContinuousClock()
                let restartedAt = clock.now
                await rethink.restart()
                // A one-shot query meanwhile fails with the transient availability code.
                let reply = try JSONParser.parse(
                    try await client.request(
                        #"{"id":"q1","op":"rethink.query","cluster":"restarts","query":{"table":"jobs"}}"#, id: "q1", timeout: .seconds(30)))
                #expect(reply["ok"] == false)
                #expect(reply["error"]?["code"] == "rethink_unavailable", "\(reply.jsonString)")
                #expect(reply["error"]?["transient"] == true)
                try await rethink.insert([["id": "after"]], table: "jobs", database: "test")

                var firstAfterRestart: Duration?
                let events = try await Self.read(client, sub: feed) { event in
                    if event["type"] != "gap" && firstAfterRestart == nil { firstAfterRestart = clock.now - restartedAt }
                    return event["type"] == "resumed"
                }
                let types = events.compactMap { $0["type"]?.stringValue }
                #expect(types.first == "gap")
                #expect(events.contains { Self.changedID($0) == "after" }, "\(events)")
                #expect(!types.contains("end"))
                let status = try await E.call(client, "st", ["op": "rethink.status", "cluster": "restarts"])
                #expect((status["feed_unavailable_retries"]?.intValue ?? 0) >= 1, "\(status.jsonString)")
                #expect(status["feeds_waiting_for_table"] == 0)
                #expect(status["feeds_resubscribing"] == 0)
                #expect(status["feeds_active"] == 1)
                try await eventually("the table read through the daemon equals RethinkSim's") { try await Self.tableMatches(client, rethink) }
                try await rethink.insert([["id": "live"]], table: "jobs", database: "test")
                _ = try await Self.read(client, sub: feed) { Self.changedID($0) == "live" }
                let first = firstAfterRestart ?? .zero
                Self.report([
                    "kind": "rethink", "unavailable_window_ms": .int(Self.milliseconds(window)),
                    "restart_to_first_event_ms": .int(Self.milliseconds(first)),
                    "ready_to_first_event_ms": .int(Self.milliseconds(first - window)),
                ])
            }
        }
    }

    @Test func changefeedSurvivesAFlappingServer() async throws {
        // The window is long enough for the daemon's retry to land inside it on a loaded machine (with
        // 500 ms, a retry delayed past the window resumed without a refusal and the test waited forever).
        try await RethinkSim.withRunning(options: Self.rethinkOptions(unavailableFor: .seconds(2))) { rethink, endpoint in
            try await rethink.createTable("jobs", database: "test")
            try await Self.withDaemon(settings: Self.rethinkSettings(endpoint)) { client, _ in
                let feed = try #require(
                    try await E.call(client, "f", ["op": "rethink.changes", "cluster": "restarts", "query": ["table": "jobs", "changes": true]])["sub"]?
                        .stringValue)
                try await eventually("the feed is open") { await rethink.activeChangefeeds == 1 }
                try await rethink.insert([["id": "doomed"]], table: "jobs", database: "test")
                _ = try await Self.read(client, sub: feed) { Self.changedID($0) == "doomed" }
                // Three restarts, each once the daemon's feed was refused by the one before.
                for round in 0..<3 {
                    let status = try await E.call(client, "s\(round)", ["op": "rethink.status", "cluster": "restarts"])
                    let refusals = status["feed_unavailable_retries"]?.intValue ?? 0
                    await rethink.restart()
                    try await rethink.insert([["id": .string("flap-\(round)")]], table: "jobs", database: "test")
                    try await eventually("the feed was refused after restart \(round)", timeout: .seconds(30)) {
                        let now = try await E.call(client, "p\(round)", ["op": "rethink.status", "cluster": "restarts"])
                        return (now["feed_unavailable_retries"]?.intValue ?? 0) > refusals
                    }
                }
                try await rethink.insert([["id": "doomed", "gone": true]], table: "jobs", database: "test")
                var seen: Set<String> = []
                _ = try await Self.read(client, sub: feed) { event in
                    if let id = Self.changedID(event) { seen.insert(id) }
                    return seen.isSuperset(of: ["flap-0", "flap-1", "flap-2"]) && event["type"] == "resumed"
                }
                try await eventually("the table read through the daemon equals RethinkSim's") { try await Self.tableMatches(client, rethink) }
                let status = try await E.call(client, "st", ["op": "rethink.status", "cluster": "restarts"])
                #expect(status["feeds_active"] == 1)
                #expect(status["feeds_resubscribing"] == 0)
            }
        }
    }
}
