import BenchSupport
import GuildNetCore

/// The clusters registered for the whole run, each on its own control connection: feeds with a
/// writer each, watches with a mutator, forwards with traffic, and DB and status requests, until
/// the load stops; then the delivery and watch checks, and `cluster.unregister`.
enum SteadyLoad {
    static func name(_ index: Int) -> String { "steady-\(index)" }

    static func tables(cluster index: Int, feeds: Int) -> [String] { (0..<feeds).map { "steady\(index)_f\($0)" } }

    /// Runs cluster number `index` from registration to unregistration; returns its feed verdict.
    static func run(index: Int, context: RunContext, clusters: ClusterDirectory) async throws -> FeedLedger.Verdict {
        let scenario = context.scenario
        return try await ControlConnection.with(socket: context.daemon.socket, recorder: context.recorder) { connection in
            let cluster = StressCluster(
                name: name(index), kube: context.fleet.kube(for: index), rethink: context.fleet.rethink(for: index),
                tables: tables(cluster: index, feeds: scenario.feeds), connection: connection, context: context,
                injectDefects: scenario.injectDefects && index == 0)
            do {
                try await cluster.register()
            } catch {
                context.fail("register_failed", "\(cluster.name): \(error)")
                context.steadyClusterReady()
                return FeedLedger.Verdict()
            }
            clusters.add(index: index, cluster)
            await cluster.createTables()
            for ledger in cluster.ledgers { await cluster.openFeed(ledger) }
            for watch in 0..<scenario.watches { await cluster.openWatch(watch) }
            for forward in 0..<scenario.forwards { await cluster.startForward(forward) }
            context.steadyClusterReady()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for ledger in cluster.ledgers { group.addTask { await writer(cluster, ledger, context) } }
                if scenario.watches > 0 { group.addTask { await mutator(cluster, context) } }
                if scenario.forwards > 0 { group.addTask { await traffic(cluster, context) } }
                group.addTask { await requests(cluster, context) }
                try await group.waitForAll()
            }
            let verdict = await cluster.checkFeeds(timeout: .seconds(60))
            await cluster.checkWatches(timeout: .seconds(60))
            if scenario.injectDefects && index == 0 {
                context.unregistered(cluster.name)  // a leak: the daemon keeps the cluster
            } else {
                await cluster.unregister()
            }
            clusters.remove(index: index)
            return verdict
        }
    }

    /// Inserts rows into the table until the load stops; reopens the feed if it ended (the
    /// killed RethinkSim lost its table).
    static func writer(_ cluster: StressCluster, _ ledger: FeedLedger, _ context: RunContext) async {
        var n = 0
        while !context.shouldStop {
            if ledger.latestFeedEnded {
                context.recorder.count("feeds_reopened")
                await cluster.createTable(ledger.table)
                if await !cluster.openFeed(ledger) {
                    await context.pause(.milliseconds(500))
                    continue
                }
            }
            await cluster.write(ledger, n)
            n += 1
            await context.pause(context.scenario.loadPause)
        }
    }

    static func mutator(_ cluster: StressCluster, _ context: RunContext) async {
        var step = 0
        while !context.shouldStop {
            await cluster.mutate(step: step)
            step += 1
            await context.pause(context.scenario.loadPause * 2)
        }
    }

    static func traffic(_ cluster: StressCluster, _ context: RunContext) async {
        var round = 0
        while !context.shouldStop {
            await cluster.forwardTraffic(round: round)
            round += 1
            await context.pause(context.scenario.loadPause * 2)
        }
    }

    /// DB writes and reads, and now and then a listing and the status ops.
    static func requests(_ cluster: StressCluster, _ context: RunContext) async {
        let connection = cluster.connection
        let name = cluster.cluster
        var n = 0
        while !context.shouldStop {
            let key = JSONValue.string("stress/k\(n % 20)")
            _ = try? await connection.call("db.put", ["cluster": name, "key": key, "value": .int(Int64(n))])
            _ = try? await connection.call("db.get", ["cluster": name, "key": key])
            if n % 10 == 0 {
                _ = try? await connection.call("db.list", ["cluster": name, "prefix": "stress/", "limit": 10])
                _ = try? await connection.call("k8s.list", ["cluster": name, "resource": "pods", "namespace": .string(cluster.namespace)])
                _ = try? await connection.call("cluster.status", ["cluster": name])
                _ = try? await connection.call("rethink.status", ["cluster": name])
                _ = try? await connection.call("forward.list", ["cluster": name])
                _ = try? await connection.call("cluster.list", [:])
            }
            n += 1
            await context.pause(context.scenario.loadPause)
        }
    }
}

/// The steady clusters open now, for the faults that need one (`db-locked`, `kill-sim`).
final class ClusterDirectory: Sendable {
    private let clusters = LockedValue<[Int: StressCluster]>([:])

    func add(index: Int, _ cluster: StressCluster) { clusters.withLock { $0[index] = cluster } }
    func remove(index: Int) { clusters.withLock { _ = $0.removeValue(forKey: index) } }
    var all: [(Int, StressCluster)] { clusters.withLock { $0.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } } }
}
