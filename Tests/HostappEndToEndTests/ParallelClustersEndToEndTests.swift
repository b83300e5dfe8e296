import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetSimulators
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Three clusters, each on its own KubeSim and RethinkSim, driven at the same time through one
/// built `hostapp serve`, each over its own control connection: writes, watches, changefeeds,
/// forwards and routes. Asserts isolation (each `local.db`, read with the sqlite3 CLI, holds only its
/// cluster's keys; forwards reach their own cluster's pod on distinct ports; every cluster series
/// carries a registered cluster_id with that cluster's own values), that stalling one cluster's
/// servers leaves the others' operations succeeding, that SIGTERM mid-load exits 0 with no child
/// process left and the state-directory lock released, and that a restart brings the same clusters
/// back with their data. With `HOSTAPP_E2E_KUBECONFIGS=a:b` it runs against those real clusters
/// instead, without the phases that need simulators (RethinkDB, forwards, fault injection).
@Suite("hostapp runs clusters in parallel", .serialized)
struct ParallelClustersEndToEndTests {
    typealias E = SubsystemsEndToEndTests
    typealias Target = ParallelClusterTarget

    /// One cluster's open control connection with its live watch (and feed and forwards, simulated).
    struct Session: Sendable {
        let target: Target
        let client: ControlClient
        let watch: String
        let feed: String?
        let forwardPorts: [Int]
        var name: String { target.name }
        var cluster: JSONValue { .string(target.name) }
    }

    static func key(_ cluster: String, _ suffix: String) -> String { "\(cluster)/\(suffix)" }

    /// Waits for the watch event `type` of the pod `pod`; every event on the way must be this cluster's.
    static func awaitPod(_ session: Session, _ pod: String) async throws {
        while true {
            let event = try await E.next(session.client, sub: session.watch)
            #expect(event["cluster"] == session.cluster, "\(event.jsonString)")
            if event["type"] == "ADDED", event["object"]?["metadata"]?["name"] == .string(pod) { return }
            if event["type"] == "END" { throw TestFailure("\(session.name)'s watch ended: \(event.jsonString)") }
        }
    }

    /// Registers the cluster and opens everything on its own connection: keys, a pod watch, a
    /// changefeed (seeing one event each), `index + 1` forwards and a route decision.
    static func open(_ target: Target, daemon: HostappProcess) async throws -> Session {
        let client = try await daemon.client()
        let cluster = JSONValue.string(target.name)
        _ = try await E.call(
            client, "r", ["op": "cluster.register", "cluster": cluster, "kubeconfig": .string(target.kubeconfig), "settings": target.settings])
        for index in 0..<5 {
            _ = try await E.call(
                client, "p\(index)",
                ["op": "db.put", "cluster": cluster, "key": .string(key(target.name, "key-\(index)")), "value": .string("\(target.name)-value-\(index)")])
        }
        let route = try await E.call(client, "route", ["op": "route.probe", "cluster": cluster])
        #expect(target.isExpected(route: route), "\(target.name): \(route.jsonString)")
        let watch = try #require(
            try await E.call(client, "w", ["op": "k8s.watch", "cluster": cluster, "resource": "pods", "namespace": "default"])["sub"]?.stringValue)
        while try await E.next(client, sub: watch)["type"] != "SYNCED" {}
        guard let kube = target.kube, let rethink = target.rethink else {
            return Session(target: target, client: client, watch: watch, feed: nil, forwardPorts: [])
        }

        let feed = try #require(
            try await E.call(client, "f", ["op": "rethink.changes", "cluster": cluster, "query": ["table": "jobs", "changes": true]])["sub"]?.stringValue)
        try await eventually("\(target.name)'s feed is open") { await rethink.activeChangefeeds == 1 }
        var ports: [Int] = []
        let pod = try #require(try await ForwardEndToEndTests.simPod(kube))
        // Distinct forwards (the same one asked twice is returned, not duplicated): the service's
        // HTTP port (answers the pod's name), the pod's, the service's echo port.
        let kinds: [JSONValue] = [["service": "sim", "remote_port": 80], ["pod": .string(pod), "remote_port": 80], ["service": "sim", "remote_port": 8080]]
        for index in 0...target.index {
            let (_, port) = try await ForwardEndToEndTests.forward(client, "fw\(index)", cluster: target.name, kinds[index].objectValue ?? [:])
            #expect(try await Self.reaches(port: port, echo: index == 2, pod: pod, cluster: target.name), "\(target.name)'s forward reaches its own pod")
            ports.append(port)
        }
        let session = Session(target: target, client: client, watch: watch, feed: feed, forwardPorts: ports)
        try await Self.writeAndObserve(session, round: 0)
        return session
    }

    /// One round of work on a simulated cluster: a key, a pod seen on the watch, a row written
    /// through the daemon and seen on the feed, a listing, and a request through each forward.
    static func writeAndObserve(_ session: Session, round: Int) async throws {
        let cluster = session.cluster
        let name = session.name
        _ = try await E.call(
            session.client, "k\(round)", ["op": "db.put", "cluster": cluster, "key": .string(key(name, "round-\(round)")), "value": .int(Int64(round))])
        guard let kube = session.target.kube, let feed = session.feed else { return }
        let pod = "\(name)-pod-\(round)"
        _ = try await kube.create(
            .pods, namespace: "default",
            [
                "apiVersion": "v1", "kind": "Pod", "metadata": ["name": .string(pod), "namespace": "default"],
                "spec": ["containers": [["name": "c", "image": "i"]]],
            ])
        try await awaitPod(session, pod)
        let job = "\(name)-job-\(round)"
        _ = try await E.call(
            session.client, "i\(round)",
            ["op": "rethink.query", "cluster": cluster, "query": ["table": "jobs", "insert": [["id": .string(job), "cluster": cluster]]]])
        // A faulted server may have cost the feed its connection: gap and resumed come first then.
        var change = try await E.next(session.client, sub: feed)
        while change["type"] != "change" {
            #expect(change["type"] != "end", "\(name)'s feed ended: \(change.jsonString)")
            change = try await E.next(session.client, sub: feed)
        }
        #expect(change["cluster"] == cluster)
        #expect(change["new_val"]?["id"] == .string(job), "\(change.jsonString)")
        let pods = try await E.call(session.client, "l\(round)", ["op": "k8s.list", "cluster": cluster, "resource": "pods", "namespace": "default"])
        #expect(pods["items"]?.arrayValue?.contains { $0["metadata"]?["name"] == .string(pod) } == true)
        let simPod = try await ForwardEndToEndTests.simPod(kube)
        for (index, port) in session.forwardPorts.enumerated() {
            // A forward restarted by its health check (a faulted server) serves again once it is back.
            try await eventually("\(name)'s forward on \(port) reaches its own pod", timeout: .seconds(30)) {
                guard let simPod else { return false }
                return (try? await Self.reaches(port: port, echo: index == 2, pod: simPod, cluster: name)) == true
            }
        }
    }

    /// Whether the forward on `port` reaches this cluster's simulated pod: its HTTP port answers the
    /// pod's name, its echo port echoes the cluster's name.
    static func reaches(port: Int, echo: Bool, pod: String, cluster: String) async throws -> Bool {
        guard echo else { return try await LoopbackTCP.httpGet(port: port, timeout: .seconds(5)) == pod }
        let message = Array(cluster.utf8)
        return try await LoopbackTCP.exchange(port: port, send: message, expect: message.count, timeout: .seconds(30)) == message
    }

    /// Every `hostapp_cluster_` line names a registered cluster; each cluster's own series hold its values.
    static func checkMetrics(port: Int, sessions: [Session]) async throws {
        let names = Set(sessions.map(\.name))
        try await eventually("every cluster's series are published", timeout: .seconds(20)) {
            let body = try await httpGet(port: port, path: "/metrics").text
            return sessions.allSatisfy { session in
                body.contains("hostapp_cluster_db_open{cluster_id=\"\(session.name)\"} 1")
                    && (!session.target.isSimulated
                        || body.contains("hostapp_cluster_port_forwards_active{cluster_id=\"\(session.name)\"} \(session.forwardPorts.count)")
                            && body.contains("hostapp_cluster_rethink_changefeeds_active{cluster_id=\"\(session.name)\"} 1"))
            }
        }
        let body = try await httpGet(port: port, path: "/metrics").text
        var seen: Set<String> = []
        for line in body.split(separator: "\n") where line.hasPrefix("hostapp_cluster_") {
            let label = line.firstRange(of: "cluster_id=\"").map { line[$0.upperBound...].prefix { $0 != "\"" } }
            let cluster = label.map(String.init) ?? ""
            #expect(names.contains(cluster), "a cluster series without a registered cluster_id: \(line)")
            seen.insert(cluster)
        }
        #expect(seen == names)
        try await promtoolCheck(body)
    }

    @Test("three clusters at once: isolated, one faulted while the others work, SIGTERM mid-load, restored after restart")
    func threeClustersInParallel() async throws {
        let dir = TemporaryDirectory("e2e-parallel")
        defer { dir.remove() }
        if let real = Target.realKubeconfigs {
            print(
                "HOSTAPP_E2E_KUBECONFIGS: \(real.count) real clusters; the RethinkDB, port-forward and fault-injection phases need the simulators and are skipped"
            )
        }
        try await Target.withTargets(count: 3, directory: dir.path) { targets in
            try await Self.run(targets, state: dir.path + "/state")
        }
    }

    static func run(_ targets: [Target], state: String) async throws {
        _ = try locateSqlite3()  // fails the test up front when the CLI is missing
        // One connection to a KubeSim before the concurrent phase: once, the Swift runtime crashed
        // the test process (null metadata in swift_checkMetadataState) instantiating KubeSim's
        // server pipeline types on several NIO threads at once for the very first connections.
        if let first = targets.first, first.isSimulated {
            let kubectl = ProcessInfo.processInfo.environment["KUBECTL"].flatMap { $0.isEmpty ? nil : $0 } ?? "kubectl"
            _ = try await runProcess(URL(fileURLWithPath: "/usr/bin/env"), [kubectl, "--kubeconfig", first.kubeconfig, "get", "--raw", "/version"])
        }
        let daemon = try HostappProcess(stateDirectory: state, extra: ["--metrics-addr", "127.0.0.1:0"])
        defer { daemon.terminate() }
        let ready = try await daemon.waitUntilReady()
        let metricsPort = try #require(Int(ready["metrics_port"]?.stringValue ?? ""))

        // All clusters registered and exercised at the same time, each over its own connection.
        let sessions = try await withThrowingTaskGroup(of: Session.self) { group in
            for target in targets { group.addTask { try await Self.open(target, daemon: daemon) } }
            var sessions: [Session] = []
            for try await session in group { sessions.append(session) }
            return sessions.sorted { $0.target.index < $1.target.index }
        }
        let allPorts = sessions.flatMap(\.forwardPorts)
        #expect(Set(allPorts).count == allPorts.count, "forward ports collide: \(allPorts)")
        for session in sessions {
            let listed = try await E.call(session.client, "fl", ["op": "forward.list", "cluster": session.cluster])
            let ports = Set((listed["forwards"]?.arrayValue ?? []).compactMap { $0["local_port"]?.intValue.map(Int.init) })
            #expect(ports == Set(session.forwardPorts), "\(session.name) lists only its own forwards")
        }
        try await Self.checkMetrics(port: metricsPort, sessions: sessions)

        if sessions.count > 1, sessions.allSatisfy(\.target.isSimulated) {
            try await Self.faultOne(sessions, daemon: daemon)
        }
        let (children, acknowledged) = try await Self.terminateUnderLoad(sessions, daemon: daemon)
        if targets.contains(where: { $0.expectedRoute == "kubectl-proxy" }) {
            #expect(!children.isEmpty, "the kubectl proxy of the refusing cluster runs as the daemon's child")
        }
        #expect(children.allSatisfy { !ProcessResources.isRunning(pid: $0) }, "children of the daemon outlived it: \(children)")

        // Isolation on disk: each local.db holds its own cluster's keys and nobody else's.
        for session in sessions {
            let keys = try await sqliteKeys(database: state + "/clusters/\(session.name)/local.db")
            #expect(keys.contains(Self.key(session.name, "key-0")), "\(session.name): \(keys)")
            // Every write acknowledged before SIGTERM is on disk.
            let written = acknowledged[session.name] ?? 0
            #expect(written > 0 && keys.contains(Self.key(session.name, "load-\(written - 1)")), "\(session.name) acknowledged \(written) writes")
            for other in sessions where other.name != session.name {
                #expect(!keys.contains { $0.hasPrefix(other.name + "/") }, "\(other.name)'s keys in \(session.name)'s local.db")
            }
            #expect(keys.allSatisfy { $0.hasPrefix(session.name + "/") }, "\(session.name): \(keys)")
        }

        // The lock is released: a second daemon starts on the same state directory, and the same
        // clusters come back with their data.
        let restarted = try await RestoreEndToEndTests.withDaemon(state) { client, _ in
            try await eventually("the same clusters restored and ready", timeout: .seconds(60)) {
                let listed = try await RestoreEndToEndTests.listed(client)
                return Set(listed.keys) == Set(sessions.map(\.name)) && listed.values.allSatisfy { $0 == "ready" }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for session in sessions { group.addTask { try await Self.expectRestored(session.target, state: state) } }
                try await group.waitForAll()
            }
        }
        let logs = (daemon.logLines + restarted).joined(separator: "\n")
        #expect(!logs.contains(Target.rethinkPassword), "the RethinkDB password reached the daemon's logs")
        for target in targets {
            if let kube = target.kube { #expect(!logs.contains(kube.options.token), "\(target.name)'s API token reached the logs") }
        }
    }

    /// A restored cluster's key, pods and rows, over a connection of its own.
    static func expectRestored(_ target: Target, state: String) async throws {
        let client = try await ControlClient.connect(path: state + "/hostapp.sock")
        let cluster = JSONValue.string(target.name)
        // A restored cluster probes its routes as it starts; until that first decision its requests go direct.
        try await eventually("\(target.name)'s route decided again", timeout: .seconds(30)) {
            target.isExpected(route: try await E.call(client, "rs-\(UUID().uuidString.prefix(4))", ["op": "route.status", "cluster": cluster]))
        }
        let value = try await E.call(client, "g", ["op": "db.get", "cluster": cluster, "key": .string(key(target.name, "key-0"))])
        #expect(value["value"] == .string("\(target.name)-value-0"))
        let pods = try await E.call(client, "k", ["op": "k8s.list", "cluster": cluster, "resource": "pods", "namespace": "default"])
        #expect(pods["items"]?.arrayValue != nil)
        if target.isSimulated {
            #expect(pods["items"]?.arrayValue?.contains { $0["metadata"]?["name"] == .string("\(target.name)-pod-0") } == true)
            let rows = try await E.call(client, "q", ["op": "rethink.query", "cluster": cluster, "query": ["table": "jobs"]])
            let ids = (rows["result"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
            #expect(ids.contains("\(target.name)-job-0"))
            #expect(ids.allSatisfy { $0.hasPrefix(target.name + "-") }, "\(target.name)'s RethinkDB holds only its rows: \(ids)")
        }
        await client.close()
    }
}
