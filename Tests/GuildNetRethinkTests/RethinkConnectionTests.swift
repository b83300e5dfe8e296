import GuildNetCore
import GuildNetRethink
import GuildNetSimulators
import TestSupport
import Testing

/// The wire client against RethinkSim over loopback.
@Suite struct RethinkConnectionTests {
    @Test func handshakeWithTheRightPassword() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions(users: ["admin": "good-pw", "ops": "x"])) { _, endpoint in
            let connection = try await RethinkHarness.connect(endpoint, password: "good-pw")
            #expect(connection.isOpen)
            #expect(connection.serverVersion == "2.4.4")
            let info = try await connection.serverInfo(timeout: .seconds(5))
            #expect(info["name"]?.stringValue != nil)
            #expect(info["id"]?.stringValue != nil)
            let other = try await RethinkHarness.connect(endpoint, user: "ops", password: "x")
            #expect(try await other.run(ReQL.dbList()).arrayValue?.contains("test") == true)
            await other.close()
            await connection.close()
            #expect(!connection.isOpen)
        }
    }

    @Test func wrongPasswordUnknownUserAndRefusalAreAuthFailures() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions(users: ["admin": "good-pw"])) { sim, endpoint in
            let wrong = await RethinkHarness.hostError { _ = try await RethinkHarness.connect(endpoint, password: "bad-pw-123") }
            #expect(wrong?.code == .rethinkAuthFailed)
            #expect(wrong?.transient == false)
            #expect(wrong?.message.contains("bad-pw-123") == false)
            #expect(wrong?.message.contains("good-pw") == false)

            let unknown = await RethinkHarness.hostError { _ = try await RethinkHarness.connect(endpoint, user: "nobody", password: "x") }
            #expect(unknown?.code == .rethinkAuthFailed)

            await sim.setRefuseAuthentication(true)
            let refused = await RethinkHarness.hostError { _ = try await RethinkHarness.connect(endpoint, password: "good-pw") }
            #expect(refused?.code == .rethinkAuthFailed)
            await sim.setRefuseAuthentication(false)
            try await eventually("the failed handshakes' sockets are closed") {
                RethinkHarness.clientSockets(toPort: endpoint.port) == 0
            }
        }
    }

    @Test func unreachableServers() async throws {
        let reserved = try RethinkHarness.closedPort()
        let port = reserved.port
        defer { withExtendedLifetime(reserved) {} }
        let options = RethinkConnection.Options(connectTimeout: .seconds(2))
        let refused = await RethinkHarness.hostError {
            _ = try await RethinkConnection.connect(
                to: RethinkAddress(host: "127.0.0.1", port: port), user: "admin", password: "", options: options, logger: RethinkHarness.logger)
        }
        #expect(refused?.code == .rethinkUnreachable)
        #expect(refused?.transient == true)
        #expect(refused?.message.contains("127.0.0.1:\(port)") == true)

        let unresolvable = await RethinkHarness.hostError {
            _ = try await RethinkConnection.connect(
                to: RethinkAddress(host: "no-such-host.invalid", port: 28015), user: "admin", password: "", options: options, logger: RethinkHarness.logger)
        }
        #expect(unresolvable?.code == .rethinkUnreachable)
        #expect(unresolvable?.transient == true)
    }

    @Test func multiplexesConcurrentQueriesByToken() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await sim.createTable("items", database: "test")
            try await sim.insert((0..<200).map { ["id": .int(Int64($0)), "v": .string("item-\($0)")] }, table: "items", database: "test")
            let connection = try await RethinkHarness.connect(endpoint)
            let table = ReQL.db("test").table("items")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for id in 0..<200 {
                    group.addTask {
                        // A generous timeout: this checks multiplexing, not latency, and the full suite
                        // runs hundreds of tests at once on two cores.
                        let row = try await connection.run(table.get(.int(Int64(id))), timeout: .seconds(60))
                        #expect(row["v"] == .string("item-\(id)"))
                    }
                }
                try await group.waitForAll()
            }
            #expect(connection.pendingQueries == 0)
            await connection.close()
        }
    }

    @Test func cursorPagesThroughManyRows() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions(batchSize: 100)) { sim, endpoint in
            try await sim.createTable("big", database: "test")
            try await sim.insert((0..<2500).map { ["id": .int(Int64($0))] }, table: "big", database: "test")
            let connection = try await RethinkHarness.connect(endpoint)
            let cursor = try await connection.cursor(ReQL.table("big"), db: "test", timeout: .seconds(10))
            #expect(!cursor.isFeed)
            var ids = Set<Int64>()
            for try await row in cursor {
                if let id = row["id"]?.intValue { ids.insert(id) }
            }
            #expect(ids.count == 2500)
            #expect(cursor.batchesReceived == 25)
            // max_batch_rows asks the server for smaller batches (never larger than its own).
            let small = try await connection.cursor(ReQL.table("big"), db: "test", timeout: .seconds(10), maxBatchRows: 64)
            #expect(try await small.collect().count == 2500)
            #expect(small.batchesReceived == 40)
            let large = try await connection.cursor(ReQL.table("big"), db: "test", timeout: .seconds(10), maxBatchRows: 5_000)
            #expect(try await large.collect().count == 2500)
            #expect(large.batchesReceived == 25)
            // run() collects the same sequence; a row cap stops it.
            #expect(try await connection.run(ReQL.table("big"), db: "test").arrayValue?.count == 2500)
            let capped = await RethinkHarness.hostError { _ = try await connection.run(ReQL.table("big"), db: "test", maxRows: 150) }
            #expect(capped?.code == .rethinkQueryError)
            // The connection is still fine after the stopped cursor.
            #expect(try await connection.run(ReQL.table("big").count(), db: "test") == 2500)
            await connection.close()
        }
    }

    @Test func cursorDroppedOrCancelledEarlySendsStop() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            let connection = try await RethinkHarness.connect(endpoint)
            let feed = ReQL.db("test").table("t").changes()

            // close()
            let closed = try await connection.cursor(feed)
            #expect(closed.isFeed)
            try await eventually("one feed") { await sim.activeChangefeeds == 1 }
            closed.close()
            try await eventually("STOP after close()") { await sim.activeChangefeeds == 0 }

            // The consuming task is cancelled while it waits for a change (long poll).
            try await withThrowingTaskGroup(of: Void.self) { group in
                let cursor = try await connection.cursor(feed)
                group.addTask {
                    for try await _ in cursor {}
                }
                try await eventually("one feed") { await sim.activeChangefeeds == 1 }
                group.cancelAll()
                _ = try? await group.next()
            }
            try await eventually("STOP after cancellation") { await sim.activeChangefeeds == 0 }

            // Dropped: the last reference goes away.
            do {
                _ = try await connection.cursor(feed)
            }
            try await eventually("STOP after the cursor was dropped") { await sim.activeChangefeeds == 0 }
            #expect(try await connection.run(ReQL.dbList()).arrayValue != nil)
            await connection.close()
        }
    }

    @Test func connectionLossFailsEveryPendingQuery() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            let connection = try await RethinkHarness.connect(endpoint)
            await sim.stallReplies()
            let failures = Recorder<HostError>()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<5 {
                    group.addTask {
                        if let error = await RethinkHarness.hostError({ _ = try await connection.run(ReQL.dbList()) }) {
                            failures.append(error)
                        }
                    }
                }
                try await eventually("5 pending queries") { connection.pendingQueries == 5 }
                #expect(await sim.dropConnections() == 1)
                try await group.waitForAll()
            }
            await sim.releaseReplies()
            #expect(failures.all.count == 5)
            #expect(failures.all.allSatisfy { $0.code == .rethinkConnectionLost && $0.transient })
            #expect(!connection.isOpen)
            let later = await RethinkHarness.hostError { _ = try await connection.run(ReQL.dbList()) }
            #expect(later?.code == .rethinkConnectionLost)
            try await eventually("socket freed") { RethinkHarness.clientSockets(toPort: endpoint.port) == 0 }
        }
    }

    @Test func queryTimeoutLeavesTheConnectionUsable() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            let connection = try await RethinkHarness.connect(endpoint)
            await sim.stallReplies()
            let timedOut = await RethinkHarness.hostError { _ = try await connection.run(ReQL.dbList(), timeout: .milliseconds(100)) }
            #expect(timedOut?.code == .timeout)
            #expect(timedOut?.transient == true)
            #expect(connection.pendingQueries == 0)
            await sim.releaseReplies()
            // The late answer to the timed-out query is dropped; new queries work.
            #expect(try await connection.run(ReQL.dbList(), timeout: .seconds(5)).arrayValue?.contains("test") == true)
            await connection.close()
        }
    }

    @Test func oversizedResponseIsAProtocolError() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            try await sim.insert([["id": 1, "blob": .string(String(repeating: "x", count: 4096))]], table: "t", database: "test")
            let options = RethinkConnection.Options(connectTimeout: RethinkHarness.connectTimeout, maxResponseBytes: 1024)
            let connection = try await RethinkHarness.connect(endpoint, options: options)
            let error = await RethinkHarness.hostError { _ = try await connection.run(ReQL.db("test").table("t").get(1)) }
            #expect(error?.code == .rethinkProtocolError)
            #expect(!connection.isOpen)
            try await eventually("socket freed") { RethinkHarness.clientSockets(toPort: endpoint.port) == 0 }
        }
    }

    @Test func closeFreesTheSocket() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            let connections = try await withThrowingTaskGroup(of: RethinkConnection.self) { group in
                for _ in 0..<3 { group.addTask { try await RethinkHarness.connect(endpoint) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(RethinkHarness.connectionsToSim(onPort: endpoint.port) == 3)
            try await eventually("sim sees 3") { await sim.openConnections == 3 }
            for connection in connections { await connection.close() }
            #expect(RethinkHarness.clientSockets(toPort: endpoint.port) == 0)
            try await eventually("sim sees none") { await sim.openConnections == 0 }
        }
    }

    @Test func noreplyQueriesAndNoreplyWait() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            let connection = try await RethinkHarness.connect(endpoint)
            for id in 0..<10 {
                try await connection.runNoreply(ReQL.table("t").insert(["id": .int(Int64(id))]), db: "test")
            }
            try await connection.noreplyWait(timeout: .seconds(5))
            #expect(try await connection.run(ReQL.table("t").count(), db: "test") == 10)
            await connection.close()
        }
    }

    /// The error-classification table, live.
    @Test func classifiesServerErrors() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            let connection = try await RethinkHarness.connect(endpoint)
            let cases: [(ReQL, ErrorCode, String)] = [
                (ReQL.db("nope").table("t"), .rethinkSchemaMissing, "Database `nope` does not exist."),
                (ReQL.db("test").table("nope"), .rethinkSchemaMissing, "Table `test.nope` does not exist."),
                (ReQL.dbCreate("test"), .rethinkQueryError, "Database `test` already exists."),
                (ReQL.db("test").table("t").limit(-1), .rethinkQueryError, ""),
                (ReQL.db("test").table("t").orderBy(index: .asc("nope")), .rethinkQueryError, "Index `nope` was not found on table `test.t`."),
            ]
            for (term, code, message) in cases {
                let error = await RethinkHarness.hostError { _ = try await connection.run(term, timeout: .seconds(5)) }
                #expect(error?.code == code, "\(term)")
                #expect(error?.transient == false)
                if !message.isEmpty { #expect(error?.message == message) }
            }
            // Errors do not harm the connection.
            #expect(try await connection.run(ReQL.db("test").table("t").count()) == 0)
            await connection.close()
        }
    }
}
