import BenchSupport
import GuildNetCore
import GuildNetSimulators

/// One cluster the run registers (steady or churned): its simulators, its namespace, and the
/// feeds, watches and forwards it opened on its control connection.
final class StressCluster: Sendable {
    let name: String
    let kube: SimulatorFleet.Kube
    let rethink: SimulatorFleet.Rethink
    /// The KubeSim namespace its watches observe and its mutator changes.
    let namespace: String
    let connection: ControlConnection
    let context: RunContext
    let ledgers: [FeedLedger]
    private let state = LockedValue(State())

    private struct State {
        var mirrors: [(sub: String, mirror: WatchMirror)] = []
        var feedSubs: [String] = []
        /// (local port, echo) of each forward.
        var forwards: [(Int, Bool)] = []
        var ended: Set<String> = []
    }

    init(
        name: String, kube: SimulatorFleet.Kube, rethink: SimulatorFleet.Rethink, tables: [String], connection: ControlConnection, context: RunContext,
        injectDefects: Bool = false
    ) {
        self.name = name
        self.kube = kube
        self.rethink = rethink
        self.namespace = "ns-" + name
        self.connection = connection
        self.context = context
        ledgers = tables.enumerated().map { FeedLedger(table: $1, ignoreFirstChange: injectDefects && $0 == 0) }
    }

    var cluster: JSONValue { .string(name) }
    var mirrors: [WatchMirror] { state.withLock { $0.mirrors.map(\.mirror) } }
    var forwards: [(Int, Bool)] { state.withLock { $0.forwards } }
    var subscriptions: [String] { state.withLock { $0.mirrors.map(\.sub) + $0.feedSubs } }

    /// `cluster.register` with the KubeSim's kubeconfig and the RethinkSim's address; creates the
    /// namespace in the KubeSim.
    func register() async throws {
        do {
            _ = try await kube.sim.create(.namespaces, namespace: "", ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(namespace)]])
        } catch let error as KubeStatusError where error.code == 409 {}
        try await connection.call(
            "cluster.register",
            [
                "cluster": cluster, "kubeconfig": .string(kube.kubeconfig),
                "settings": ["rethinkdb.address": .string(rethink.address), "forward.health_interval_ms": 1000],
            ], timeout: .seconds(120))
        context.registered(name)
    }

    /// `cluster.unregister`, retried while it fails transiently; every subscription then ends
    /// with its final event (a missing one is a failure).
    func unregister() async {
        for attempt in 0..<10 {
            do {
                try await connection.call("cluster.unregister", ["cluster": cluster], timeout: .seconds(120))
                break
            } catch let error as OpError where error.code == "cluster_not_found" {
                break
            } catch {
                if attempt == 9 { context.fail("unregister_failed", "\(name): \(error)") }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
        context.unregistered(name)
        let subs = subscriptions
        do {
            try await Bench.waitFor("final events of \(name)'s subscriptions", timeout: .seconds(30), interval: .milliseconds(20)) {
                let ended = self.state.withLock { $0.ended }
                return subs.allSatisfy { ended.contains($0) }
            }
        } catch {
            let ended = state.withLock { $0.ended }
            context.fail("missing_final_event", "\(name): no final event on \(subs.filter { !ended.contains($0) })")
        }
        for sub in subs { connection.dropHandler(sub: sub) }
    }

    private func markEnded(_ event: JSONValue) {
        let type = event["type"]?.stringValue
        guard type == "END" || type == "end", let sub = event["sub"]?.stringValue else { return }
        state.withLock { _ = $0.ended.insert(sub) }
    }

    // MARK: Feeds

    /// Creates the feed tables through the daemon (retrying while RethinkDB is unreachable).
    func createTables() async {
        for ledger in ledgers { await createTable(ledger.table) }
    }

    func createTable(_ table: String) async {
        for _ in 0..<100 {
            do {
                try await connection.call(
                    "rethink.query", ["cluster": cluster, "query": ["db": "test", "tableCreate": .string(table)]], label: "rethink.tableCreate",
                    expected: { $0.message.contains("already exists") })
                return
            } catch let error as OpError where error.message.contains("already exists") {
                return
            } catch {
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    /// Opens a changefeed on `ledger`'s table; false when the daemon refused.
    @discardableResult
    func openFeed(_ ledger: FeedLedger) async -> Bool {
        let context = self.context
        do {
            let result = try await connection.call(
                "rethink.changes", ["cluster": cluster, "query": ["db": "test", "table": .string(ledger.table), "changes": true]],
                onEvent: { [weak self] event in
                    guard let sub = event["sub"]?.stringValue else { return }
                    context.recorder.count("feed_events")
                    ledger.event(sub: sub, event)
                    self?.markEnded(event)
                })
            guard let sub = result["sub"]?.stringValue else { return false }
            ledger.opened(sub: sub, at: Bench.nowNanos())
            state.withLock { $0.feedSubs.append(sub) }
            return true
        } catch {
            return false
        }
    }

    /// Inserts row number `n` into `ledger`'s table through the daemon; records it when acknowledged.
    func write(_ ledger: FeedLedger, _ n: Int) async {
        let id = "\(ledger.table)-\(n)"
        let started = Bench.nowNanos()
        do {
            let result = try await connection.call(
                "rethink.query",
                ["cluster": cluster, "query": ["db": "test", "table": .string(ledger.table), "insert": [["id": .string(id), "n": .int(Int64(n))]]]],
                label: "rethink.insert")
            if result["result"]?["inserted"]?.intValue == 1 {
                ledger.acknowledged(id: id, startedAt: started)
                context.recorder.count("rows_acknowledged")
            }
        } catch {}
    }

    // MARK: Watches

    /// Opens watch number `index`: pods for even numbers, configmaps for odd ones, in the namespace.
    @discardableResult
    func openWatch(_ index: Int) async -> WatchMirror? {
        let resource: KubeResource = index % 2 == 0 ? .pods : .configmaps
        let mirror = WatchMirror(resource: resource, namespace: namespace)
        let context = self.context
        do {
            let result = try await connection.call(
                "k8s.watch", ["cluster": cluster, "resource": .string(resource.rawValue), "namespace": .string(namespace)],
                onEvent: { [weak self] event in
                    context.recorder.count("watch_events")
                    mirror.event(event)
                    self?.markEnded(event)
                })
            guard let sub = result["sub"]?.stringValue else { return nil }
            state.withLock { $0.mirrors.append((sub, mirror)) }
            return mirror
        } catch {
            return nil
        }
    }

    /// Creates, changes or deletes one of a few pods and configmaps in the namespace, on the KubeSim.
    func mutate(step: Int) async {
        let resource: KubeResource = step % 2 == 0 ? .pods : .configmaps
        let objectName = "obj-\((step / 2) % 6)"
        do {
            switch (step / 12) % 3 {
            case 0:
                var object: JSONValue = [
                    "apiVersion": "v1", "kind": .string(resource.kind), "metadata": ["name": .string(objectName), "namespace": .string(namespace)],
                ]
                if resource == .pods {
                    object = object.merging(["spec": ["containers": [["name": "c", "image": "stress"]]]])
                } else {
                    object = object.merging(["data": ["step": .string(String(step))]])
                }
                _ = try await kube.sim.create(resource, namespace: namespace, object)
            case 1:
                _ = try await kube.sim.patch(resource, namespace: namespace, name: objectName, ["metadata": ["labels": ["step": .string(String(step))]]])
            default:
                _ = try await kube.sim.delete(resource, namespace: namespace, name: objectName)
            }
            context.recorder.count("kube_mutations")
        } catch {
            // 404 / 409: the object was not in the state this step expected; the watch still must match.
        }
    }

    /// Waits until every open watch matches the KubeSim's objects; a mismatch is a failure.
    func checkWatches(timeout: Duration) async {
        for mirror in mirrors {
            if let reason = mirror.endReason {
                context.fail("watch_ended", "\(name) \(mirror.resource.rawValue) watch ended early: \(reason)")
                continue
            }
            do {
                try await Bench.waitFor("\(name)'s \(mirror.resource.rawValue) watch to match the server", timeout: timeout, interval: .milliseconds(50)) {
                    try await mirror.matches(kube.sim)
                }
            } catch {
                let server = (try? await WatchMirror.serverState(kube.sim, mirror.resource, namespace: namespace)) ?? [:]
                context.fail(
                    "watch_mismatch",
                    "\(name) \(mirror.resource.rawValue): watch \(mirror.objects.sorted { $0.key < $1.key }) server \(server.sorted { $0.key < $1.key })")
            }
        }
    }

    /// Waits until every acknowledged row reached its feeds (or a gap covers it); lost rows are failures.
    func checkFeeds(timeout: Duration) async -> FeedLedger.Verdict {
        _ = try? await Bench.waitFor("\(name)'s feeds to deliver", timeout: timeout, interval: .milliseconds(50)) {
            ledgers.allSatisfy { $0.verdict().lost == 0 }
        }
        var total = FeedLedger.Verdict()
        for ledger in ledgers {
            let verdict = ledger.verdict()
            if verdict.lost > 0 { context.fail("lost_rows", "\(name): \(verdict.lost) rows never delivered, e.g. \(verdict.lostSamples)") }
            total.add(verdict)
        }
        return total
    }

    // MARK: Forwards

    /// Starts forward number `index` (service `sim` port 80, its echo port 8080, then the pod's).
    @discardableResult
    func startForward(_ index: Int) async -> Bool {
        var fields: [String: JSONValue] = ["cluster": cluster, "namespace": "default", "remote_port": index % 2 == 0 ? 80 : 8080]
        if index < 2 {
            fields["service"] = "sim"
        } else {
            let pods = (try? await kube.sim.list(.pods, namespace: "default")["items"]?.arrayValue) ?? []
            guard let pod = pods.first(where: { $0["metadata"]?["labels"]?["app"] == "sim" })?["metadata"]?["name"] else { return false }
            fields["pod"] = pod
        }
        do {
            let result = try await connection.call("forward.start", fields, timeout: .seconds(60))
            guard let port = result["local_port"]?.intValue else { return false }
            state.withLock { $0.forwards.append((Int(port), index % 2 == 1)) }
            return true
        } catch {
            return false
        }
    }

    /// One request through each forward: an HTTP GET (the pod answers its name) or an echo.
    func forwardTraffic(round: Int) async {
        for (port, echo) in forwards {
            let started = Bench.nowNanos()
            var ok = false
            if echo {
                ok = (try? await LoopbackHTTP.echo(port: port, message: Array("\(name)-\(round)".utf8))) == true
            } else {
                ok = ((try? await LoopbackHTTP.get(port: port, path: "/")) ?? "").isEmpty == false
            }
            context.recorder.record("forward.traffic", nanos: Bench.nowNanos() - started, error: ok ? nil : "forward_traffic_failed")
        }
    }
}

extension JSONValue {
    /// This object with `other`'s members added.
    func merging(_ other: JSONValue) -> JSONValue {
        guard var members = objectValue, let extra = other.objectValue else { return self }
        for (key, value) in extra { members[key] = value }
        return .object(members)
    }
}
