import GuildNetCore
import GuildNetRethink
import GuildNetSimulators
import TestSupport
import Testing

/// Changefeeds through the connector: order, options, resume after a drop, cap, overflow, teardown.
@Suite struct RethinkChangefeedTests {
    static let table = ReQL.db("test").table("t")

    @Test func deliversInsertsUpdatesAndDeletesInOrder() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            try await RethinkHarness.withConnector(RethinkHarness.configuration(endpoint)) { r in
                let feed = try await r.subscribe(Self.table.changes())
                let events = Recorder<ChangefeedEvent>()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await record(feed, into: events) }
                    for id in 1...20 {
                        _ = try await r.run(Self.table.insert(["id": .int(Int64(id)), "v": 0]))
                    }
                    _ = try await r.run(Self.table.get(5).update(["v": 1]))
                    _ = try await r.run(Self.table.get(6).replace(["id": 6, "w": true]))
                    _ = try await r.run(Self.table.get(7).delete())
                    try await eventually("23 changes") { events.changes.count == 23 }
                    #expect(await r.unsubscribe(feed.id))
                    try await group.waitForAll()
                }
                var expected: [ChangefeedEvent] = (1...20).map { .change(old: nil, new: ["id": .int(Int64($0)), "v": 0]) }
                expected += [
                    .change(old: ["id": 5, "v": 0], new: ["id": 5, "v": 1]),
                    .change(old: ["id": 6, "v": 0], new: ["id": 6, "w": true]),
                    .change(old: ["id": 7, "v": 0], new: nil),
                    .ended(nil),
                ]
                #expect(events.all == expected)
                try await eventually("the server feed stopped") { await sim.activeChangefeeds == 0 }
                #expect(await r.changefeeds.activeCount == 0)
            }
        }
    }

    @Test func initialRowsAndStatesWhenAsked() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            try await sim.insert([["id": 1], ["id": 2]], table: "t", database: "test")
            try await RethinkHarness.withConnector(RethinkHarness.configuration(endpoint)) { r in
                let feed = try await r.subscribe(Self.table.changes(includeInitial: true, includeStates: true))
                let point = try await r.subscribe(Self.table.get(2).changes(includeInitial: true))
                let events = Recorder<ChangefeedEvent>()
                let pointEvents = Recorder<ChangefeedEvent>()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await record(feed, into: events) }
                    group.addTask { await record(point, into: pointEvents) }
                    try await eventually("initial rows") { events.all.count == 4 && pointEvents.all.count == 1 }
                    _ = try await r.run(Self.table.get(2).update(["x": 1]))
                    try await eventually("the update") { events.all.count == 5 && pointEvents.all.count == 2 }
                    await r.unsubscribe(feed.id)
                    await r.unsubscribe(point.id)
                    try await group.waitForAll()
                }
                #expect(
                    events.all == [
                        .state("initializing"), .change(old: nil, new: ["id": 1]), .change(old: nil, new: ["id": 2]), .state("ready"),
                        .change(old: ["id": 2], new: ["id": 2, "x": 1]), .ended(nil),
                    ])
                #expect(
                    pointEvents.all == [.change(old: nil, new: ["id": 2]), .change(old: ["id": 2], new: ["id": 2, "x": 1]), .ended(nil)])
            }
        }
    }

    /// The documented resume semantics: `.gap`, then the difference from the last seen state, then
    /// `.resumed`, then live changes. Writes made while the feed is disconnected are not lost.
    @Test func resumesAfterTheServerDropsTheConnection() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            try await sim.insert([["id": 1, "v": 0], ["id": 2, "v": 0], ["id": 3, "v": 0]], table: "t", database: "test")
            // The resolver is the gate that keeps the feed disconnected while the test writes.
            let gate = Gate()
            let address = RethinkHarness.address(endpoint)
            try await RethinkHarness.withConnector(
                RethinkHarness.configuration(nil),
                resolve: {
                    await gate.pass()
                    return address
                }
            ) { r in
                let feed = try await r.subscribe(Self.table.changes())
                let events = Recorder<ChangefeedEvent>()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await record(feed, into: events) }
                    _ = try await r.run(Self.table.get(1).update(["v": 1]))
                    try await eventually("the first change") { events.all.count == 1 }

                    await gate.close()
                    #expect(await sim.dropConnections() >= 1)
                    try await eventually("the gap") { events.all.count == 2 }
                    if case .gap(let reason) = events.all[1] {
                        #expect(reason.code == .rethinkConnectionLost)
                        #expect(reason.transient)
                    } else {
                        Issue.record("expected a gap, got \(events.all[1])")
                    }
                    try await eventually("the feed waits for the gate") { await gate.waiting > 0 }

                    // Changes while the feed is away, written on a connection of its own.
                    let writer = try await RethinkHarness.connect(endpoint)
                    _ = try await writer.run(Self.table.get(2).update(["v": 2]))
                    _ = try await writer.run(Self.table.get(3).delete())
                    _ = try await writer.run(Self.table.insert(["id": 4, "v": 4]))
                    await writer.close()

                    await gate.open()
                    try await eventually("resumed") { events.all.contains(.resumed) }
                    _ = try await r.run(Self.table.insert(["id": 5, "v": 5]))
                    try await eventually("the live change after the resume") { events.all.count == 7 }
                    await r.unsubscribe(feed.id)
                    try await group.waitForAll()
                }
                let all = events.all
                #expect(all.first == .change(old: ["id": 1, "v": 0], new: ["id": 1, "v": 1]))
                let reconciled = Array(all[2..<5])
                #expect(
                    reconciled == [
                        .change(old: ["id": 2, "v": 0], new: ["id": 2, "v": 2]), .change(old: nil, new: ["id": 4, "v": 4]),
                        .change(old: ["id": 3, "v": 0], new: nil),
                    ])
                #expect(Array(all[5...]) == [.resumed, .change(old: nil, new: ["id": 5, "v": 5]), .ended(nil)])

                // Applying every event reproduces the table.
                var state: [JSONValue: JSONValue] = [1: ["id": 1, "v": 0], 2: ["id": 2, "v": 0], 3: ["id": 3, "v": 0]]
                for case .change(let old, let new) in all {
                    if let old, let id = old["id"] { state[id] = nil }
                    if let new, let id = new["id"] { state[id] = new }
                }
                let rows = try await sim.documents(table: "t", database: "test")
                #expect(Set(state.values) == Set(rows))
                let statistics = await r.changefeeds.statistics()
                #expect(statistics.gaps == 1)
                #expect(statistics.resumes == 1)
            }
        }
    }

    /// RethinkDB's queue for a slow reader overflowed and it skipped changes: the feed says so
    /// (`.gap` with `rethink_feed_skipped`), re-subscribes and reconciles, so nothing is lost.
    @Test func resumesAfterTheServerSkipsChanges() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            try await RethinkHarness.withConnector(RethinkHarness.configuration(endpoint)) { r in
                let feed = try await r.subscribe(Self.table.changes(queueSize: 5))
                let events = Recorder<ChangefeedEvent>()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await record(feed, into: events) }
                    try await eventually("the feed's CONTINUE is held") { await sim.activeChangefeeds == 1 }
                    // While replies are stalled the feed cannot read: at most one change answers a
                    // CONTINUE the server already holds, five fill its queue, the rest are skipped.
                    await sim.stallReplies()
                    for id in 1...20 { try await sim.insert([["id": .int(Int64(id))]], table: "t", database: "test") }
                    await sim.releaseReplies()
                    try await eventually("resumed") { events.all.contains(.resumed) }
                    try await sim.insert([["id": 21]], table: "t", database: "test")
                    try await eventually("the live change") { events.all.last == .change(old: nil, new: ["id": 21]) }
                    await r.unsubscribe(feed.id)
                    try await group.waitForAll()
                }
                let all = events.all
                let gapAt = try #require(all.firstIndex { if case .gap = $0 { true } else { false } })
                guard case .gap(let reason) = all[gapAt] else { return }
                #expect(reason.code == .rethinkFeedSkipped)
                #expect(reason.transient)
                #expect(reason.message.contains("skipped"))
                // Before the gap only the change that answered the held CONTINUE (if the CONTINUE
                // reached the server before the stall); then the other rows as reconciled inserts,
                // `resumed`, and the live change: every row exactly once.
                let resumedAt = try #require(all.firstIndex(of: .resumed))
                #expect(gapAt <= 1)
                let beforeAndReconciled = Array(all[..<gapAt]) + Array(all[(gapAt + 1)..<resumedAt])
                let insertedIDs = beforeAndReconciled.compactMap { event -> Int64? in
                    guard case .change(nil, let new?) = event else { return nil }
                    return new["id"]?.intValue
                }
                #expect(beforeAndReconciled.count == 20)
                #expect(insertedIDs.sorted() == Array(1...20))
                #expect(Array(all[(resumedAt + 1)...]) == [.change(old: nil, new: ["id": 21]), .ended(nil)])
                let statistics = await r.changefeeds.statistics()
                #expect(statistics.gaps == 1)
                #expect(statistics.resumes == 1)
            }
        }
    }

    /// A cluster's feeds share an event budget: past it they are paced, every change still arrives
    /// in order, and the throttled turns are counted.
    @Test func eventBudgetPacesFeedsWithoutLosingChanges() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            // A feed pays for its changes 32 at a time; a burst of 4 cannot cover one payment, so
            // the feed must wait however slowly it is scheduled (no dependence on timing).
            let configuration = RethinkHarness.configuration(endpoint, feedEventsPerSecond: 200, feedBurst: 4)
            try await RethinkHarness.withConnector(configuration) { r in
                let feed = try await r.subscribe(Self.table.changes())
                let events = Recorder<ChangefeedEvent>()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await record(feed, into: events) }
                    _ = try await r.run(Self.table.insert(.array((1...100).map { ["id": .int(Int64($0))] })))
                    try await eventually("100 changes", timeout: .seconds(30)) { events.changes.count == 100 }
                    await r.unsubscribe(feed.id)
                    try await group.waitForAll()
                }
                #expect(events.changes == (1...100).map { .change(old: nil, new: ["id": .int(Int64($0))]) })
                let statistics = await r.changefeeds.statistics()
                #expect(statistics.eventsPerSecondLimit == 200)
                #expect(statistics.throttledTurns >= 1)
                #expect(statistics.dropped == 0)
            }
        }
    }

    @Test func feedCapPerConnector() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            try await RethinkHarness.withConnector(RethinkHarness.configuration(endpoint, maxFeeds: 2)) { r in
                // A subscription whose stream is dropped ends, so the test keeps them.
                let first = try await r.subscribe(Self.table.changes())
                let second = try await r.subscribe(Self.table.get(1).changes())
                let third = await RethinkHarness.hostError { _ = try await r.subscribe(Self.table.changes()) }
                #expect(third?.code == .rethinkFeedLimit)
                #expect(third?.transient == true)
                #expect(await sim.activeChangefeeds == 2)
                await r.unsubscribe(first.id)
                try await eventually("a slot is free") { await r.changefeeds.activeCount == 1 }
                let third2 = try await r.subscribe(Self.table.changes())
                #expect(await r.status().feeds.active == 2)
                #expect(await r.status().feeds.limit == 2)
                withExtendedLifetime((second, third2)) {}
            }
            try await eventually("every server feed stopped") { await sim.activeChangefeeds == 0 }
        }
    }

    @Test func overflowDropsTheOldestAndCounts() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            try await RethinkHarness.withConnector(RethinkHarness.configuration(endpoint, feedBufferLimit: 3)) { r in
                let feed = try await r.subscribe(Self.table.changes())
                _ = try await r.run(Self.table.insert(.array((1...10).map { ["id": .int(Int64($0))] })))
                try await eventually("7 dropped") { await r.changefeeds.statistics().dropped == 7 }
                #expect(await r.changefeeds.subscriptions().first?.dropped == 7)
                await r.unsubscribe(feed.id)
                try await eventually("the feed ended") { await r.changefeeds.activeCount == 0 }
                var received: [ChangefeedEvent] = []
                for await event in feed.events { received.append(event) }
                // The newest 3 were kept; `.ended` pushed out one more.
                #expect(received == [.change(old: nil, new: ["id": 9]), .change(old: nil, new: ["id": 10]), .ended(nil)])
                #expect(await r.changefeeds.statistics().dropped == 8)
            }
        }
    }

    @Test func overflowCanEndTheSubscription() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            let configuration = RethinkHarness.configuration(endpoint, feedBufferLimit: 2, overflow: .end)
            try await RethinkHarness.withConnector(configuration) { r in
                let feed = try await r.subscribe(Self.table.changes())
                _ = try await r.run(Self.table.insert(.array((1...5).map { ["id": .int(Int64($0))] })))
                var last: ChangefeedEvent?
                for await event in feed.events { last = event }
                guard case .ended(let error?) = last else {
                    Issue.record("expected .ended(error), got \(String(describing: last))")
                    return
                }
                #expect(error.code == .rethinkFeedLimit)
                try await eventually("feed gone") { await r.changefeeds.activeCount == 0 }
                try await eventually("server feed stopped") { await sim.activeChangefeeds == 0 }
            }
        }
    }

    @Test func subscriberDroppingItsStreamEndsTheFeed() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            try await RethinkHarness.withConnector(RethinkHarness.configuration(endpoint)) { r in
                do {
                    _ = try await r.subscribe(Self.table.changes())
                }
                try await eventually("feed gone") { await r.changefeeds.activeCount == 0 }
                try await eventually("server feed stopped") { await sim.activeChangefeeds == 0 }
            }
        }
    }

    @Test func missingTableAndDroppedTable() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            try await RethinkHarness.withConnector(RethinkHarness.configuration(endpoint)) { r in
                let missing = await RethinkHarness.hostError { _ = try await r.subscribe(ReQL.db("test").table("nope").changes()) }
                #expect(missing?.code == .rethinkSchemaMissing)
                let notFeed = await RethinkHarness.hostError { _ = try await r.subscribe(Self.table) }
                #expect(notFeed?.code == .invalidField)
                #expect(await r.changefeeds.activeCount == 0)

                let feed = try await r.subscribe(Self.table.changes())
                try await sim.dropTable("t", database: "test")
                var last: ChangefeedEvent?
                for await event in feed.events { last = event }
                guard case .ended(let error?) = last else {
                    Issue.record("expected .ended(error), got \(String(describing: last))")
                    return
                }
                #expect(error.code == .rethinkQueryError || error.code == .rethinkSchemaMissing)
            }
        }
    }

    /// Shutdown (cluster unregister) ends every feed and closes every connection.
    @Test func shutdownEndsFeedsAndClosesConnections() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            let connector = RethinkConnector(configuration: RethinkHarness.configuration(endpoint), logger: RethinkHarness.logger)
            let recorders = (0..<5).map { _ in Recorder<ChangefeedEvent>() }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await connector.run() }
                for recorder in recorders {
                    let feed = try await connector.subscribe(Self.table.changes())
                    group.addTask { await record(feed, into: recorder) }
                }
                #expect(await sim.activeChangefeeds == 5)
                #expect(RethinkHarness.clientSockets(toPort: endpoint.port) >= 1)
                await connector.shutdown()
                try await group.waitForAll()  // run() returned and every stream finished
            }
            for recorder in recorders { #expect(recorder.all == [.ended(nil)]) }
            #expect(await connector.changefeeds.activeCount == 0)
            #expect(RethinkHarness.clientSockets(toPort: endpoint.port) == 0)
            try await eventually("the sim saw the closes") { await sim.openConnections == 0 }
            try await eventually("the sim's feeds ended") { await sim.activeChangefeeds == 0 }
            let later = await RethinkHarness.hostError { _ = try await connector.subscribe(Self.table.changes()) }
            #expect(later?.code == .rethinkConnectionLost)
        }
    }

    /// Cancelling `run()` (the cluster's task group) ends the feeds too.
    @Test func cancellingRunEndsFeeds() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            let connector = RethinkConnector(configuration: RethinkHarness.configuration(endpoint), logger: RethinkHarness.logger)
            let events = Recorder<ChangefeedEvent>()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await connector.run() }
                let feed = try await connector.subscribe(Self.table.changes())
                try await withThrowingTaskGroup(of: Void.self) { readers in
                    readers.addTask { await record(feed, into: events) }
                    _ = try await connector.run(Self.table.insert(["id": 1]))
                    try await eventually("one change") { events.all.count == 1 }
                    group.cancelAll()
                    try await readers.waitForAll()
                }
                try? await group.waitForAll()
            }
            #expect(events.all == [.change(old: nil, new: ["id": 1]), .ended(nil)])
            try await eventually("server feed stopped") { await sim.activeChangefeeds == 0 }
            await connector.shutdown()
            #expect(RethinkHarness.clientSockets(toPort: endpoint.port) == 0)
        }
    }
}

/// A gate tasks pass while open and wait at while closed (no polling, no sleeps).
actor Gate {
    private var isOpen = true
    private var waiters: [CheckedContinuation<Void, Never>] = []

    var waiting: Int { waiters.count }

    func pass() async {
        guard !isOpen else { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func close() { isOpen = false }

    func open() {
        isOpen = true
        let released = waiters
        waiters.removeAll()
        for waiter in released { waiter.resume() }
    }
}
