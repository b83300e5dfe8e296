import BenchSupport
import GuildNetCore

/// One register/unregister cycle under load, on a connection of its own: register, a table with
/// a feed and a few rows, a watch that must see a created pod, a forward with one echo, DB keys;
/// every row delivered, the watch matching the server; then `cluster.unregister` and each
/// subscription's final event.
enum ChurnCycle {
    static let rows = 5

    static func run(cycle: Int, name: String, context: RunContext) async throws -> FeedLedger.Verdict {
        try await ControlConnection.with(socket: context.daemon.socket, recorder: context.recorder) { connection in
            // Churned clusters use the in-process RethinkSims only (the killed one loses its tables).
            let cluster = StressCluster(
                name: name, kube: context.fleet.kube(for: cycle), rethink: context.fleet.rethinks[cycle % context.fleet.rethinks.count],
                tables: ["churn_\(name.replacingOccurrences(of: "-", with: "_"))"], connection: connection, context: context)
            do {
                try await cluster.register()
            } catch {
                // A registration that timed out may still complete: unregister to be sure.
                await cluster.unregister()
                return FeedLedger.Verdict()
            }
            await cluster.createTables()
            let scenario = context.scenario
            if scenario.feeds > 0, let ledger = cluster.ledgers.first, await cluster.openFeed(ledger) {
                for n in 0..<rows { await cluster.write(ledger, n) }
            }
            if scenario.watches > 0, let mirror = await cluster.openWatch(0) {
                _ = try? await Bench.waitFor("\(name)'s watch to sync", timeout: .seconds(30), interval: .milliseconds(20)) { mirror.synced }
                await cluster.mutate(step: 0)
            }
            if scenario.forwards > 0, await cluster.startForward(1) {
                await cluster.forwardTraffic(round: cycle)
            }
            for n in 0..<3 {
                _ = try? await connection.call("db.put", ["cluster": cluster.cluster, "key": .string("churn/\(n)"), "value": .int(Int64(n))])
            }
            _ = try? await connection.call("db.get", ["cluster": cluster.cluster, "key": "churn/0"])
            let verdict = await cluster.checkFeeds(timeout: .seconds(60))
            await cluster.checkWatches(timeout: .seconds(60))
            await cluster.unregister()
            return verdict
        }
    }
}
