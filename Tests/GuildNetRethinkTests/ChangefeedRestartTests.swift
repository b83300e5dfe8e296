import GuildNetCore
import GuildNetRethink
import GuildNetSimulators
import TestSupport
import Testing

/// A restarted RethinkDB server: connections accepted at once, tables refusing with `OP_FAILED`
/// until ready. Feeds wait it out and resume; one-shot queries fail with the transient code.
@Suite struct ChangefeedRestartTests {
    static let table = ReQL.db("test").table("t")

    @Test func feedWaitsForTheTableAfterARestartAndResumes() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            try await sim.insert([["id": 1, "v": 0], ["id": 2, "v": 0]], table: "t", database: "test")
            try await RethinkHarness.withConnector(RethinkHarness.configuration(endpoint)) { r in
                let feed = try await r.subscribe(Self.table.changes())
                let events = Recorder<ChangefeedEvent>()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await record(feed, into: events) }
                    try await eventually("the feed is open") { await sim.activeChangefeeds == 1 }
                    // Tables stay unavailable until the test says so (no wall-clock window).
                    await sim.restart(unavailableFor: .seconds(600))
                    try await eventually("the feed waits for its table") {
                        let statistics = await r.changefeeds.statistics()
                        return statistics.waitingForTable == 1 && statistics.unavailableRetries >= 2
                    }
                    let oneShot = await RethinkHarness.hostError { _ = try await r.run(Self.table.count()) }
                    #expect(oneShot?.code == .rethinkUnavailable)
                    #expect(oneShot?.transient == true)
                    #expect(oneShot?.message.contains("primary replica for shard") == true)
                    let status = await r.status()
                    #expect(status.lastError?.code == .rethinkUnavailable)
                    #expect(status.json["feeds_waiting_for_table"] == 1)
                    #expect(status.json["feeds_resubscribing"] == 1)
                    // Changes while the table is not ready: they arrive through reconciliation.
                    try await sim.insert([["id": 2, "v": 1], ["id": 3, "v": 0]], table: "t", database: "test")
                    await sim.makeTablesAvailable()
                    try await eventually("resumed") { events.all.contains(.resumed) }
                    _ = try await r.run(Self.table.get(1).delete())
                    try await eventually("the live change") { events.all.last == .change(old: ["id": 1, "v": 0], new: nil) }
                    await r.unsubscribe(feed.id)
                    try await group.waitForAll()
                }
                let all = events.all
                guard case .gap(let reason)? = all.first else {
                    Issue.record("expected a gap first: \(all)")
                    return
                }
                #expect(reason.code == .rethinkConnectionLost)
                let resumedAt = try #require(all.firstIndex(of: .resumed))
                let reconciled = Array(all[1..<resumedAt])
                #expect(reconciled.count == 2)
                #expect(reconciled.contains(.change(old: ["id": 2, "v": 0], new: ["id": 2, "v": 1])))
                #expect(reconciled.contains(.change(old: nil, new: ["id": 3, "v": 0])))
                #expect(!all.contains { if case .ended(let error?) = $0 { error.code == .rethinkUnavailable } else { false } })
                #expect(all.last == .ended(nil))
                let statistics = await r.changefeeds.statistics()
                #expect(statistics.waitingForTable == 0 && statistics.resubscribing == 0)
                #expect(statistics.resumes == 1)
            }
        }
    }
}
