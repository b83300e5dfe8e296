import Foundation
import GuildNetCore
import GuildNetSimulators
import TestSupport
import Testing

/// Query protocol over a raw socket: paging, tokens, changefeeds, STOP, faults and hostile input.
@Suite("RethinkSim protocol")
struct RethinkSimProtocolTests {
    static func options(batchSize: Int = 1000) -> RethinkSimOptions {
        var options = RethinkSimOptions()
        options.batchSize = batchSize
        return options
    }

    static func seed(_ sim: RethinkSim, count: Int, table: String = "items") async throws {
        try await sim.createTable(table, database: "test")
        try await sim.insert((0..<count).map { ["id": .int(Int64($0)), "n": .int(Int64($0 % 3))] }, table: table, database: "test")
    }

    @Test("a stream pages with SUCCESS_PARTIAL until SUCCESS_SEQUENCE; a CONTINUE after the end gets CLIENT_ERROR and the connection lives")
    func pagingSmallBatches() async throws {
        try await RethinkSim.withRunning(options: Self.options(batchSize: 3)) { sim, endpoint in
            try await Self.seed(sim, count: 10)
            let client = try await RethinkRawClient.authenticated(port: endpoint.port)
            var pages: [[JSONValue]] = []
            var response = try await client.start(1, Q.table("items"))
            pages.append(response.rows)
            #expect(response.responseType == 3)
            #expect(response["n"] == [])
            while response.responseType == 3 {
                response = try await client.run(1, [2])
                pages.append(response.rows)
            }
            #expect(response.responseType == 2)
            #expect(pages.map(\.count) == [3, 3, 3, 1])
            #expect(pages.flatMap { $0 }.compactMap { $0["id"]?.intValue } == Array(0..<10))
            let late = try await client.run(1, [2])
            #expect(late.responseType == 16)
            #expect(late.errorMessage == "Token 1 not in stream cache.")
            #expect(late["e"] == nil)
            #expect(try await client.run(2, [5]).responseType == 5)
        }
    }

    @Test("2500 rows page as 1000, 1000, 500 with the default batch size")
    func pagingDefaultBatches() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { sim, endpoint in
            try await Self.seed(sim, count: 2500)
            let client = try await RethinkRawClient.authenticated(port: endpoint.port)
            var sizes: [Int] = []
            var response = try await client.start(7, Q.table("items"))
            sizes.append(response.rows.count)
            while response.responseType == 3 {
                response = try await client.run(7, [2])
                sizes.append(response.rows.count)
            }
            #expect(sizes == [1000, 1000, 500])
            #expect(try await client.start(8, [43, [Q.table("items")]]).rows == [2500])
        }
    }

    @Test("concurrent queries on one connection are answered by token, a held feed CONTINUE does not block others")
    func multiplexing() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { sim, endpoint in
            try await Self.seed(sim, count: 3)
            let client = try await RethinkRawClient.authenticated(port: endpoint.port)
            #expect(try await client.start(1, Q.changes(Q.table("items"))).responseType == 3)
            try await client.sendQuery(1, [2])
            try await client.sendQuery(2, [1, Q.get(Q.table("items"), 2), [:]])
            try await client.sendQuery(3, [1, [43, [Q.table("items")]], [:]])
            try await client.sendQuery(4, [1, Q.insert(Q.table("items"), [["id": 9]]), [:]])
            var answered: [UInt64: JSONValue] = [:]
            while answered.count < 4 {
                guard let (token, response) = try await client.readResponse() else { throw TestFailure("closed") }
                #expect(answered[token] == nil, "token \(token) answered twice")
                answered[token] = response
            }
            #expect(answered[2]?.rows.first?["id"] == 2)
            #expect(answered[3]?.rows == [3])
            #expect(answered[4]?.rows.first?["inserted"] == 1)
            #expect(answered[1]?.rows == [["old_val": nil, "new_val": ["id": 9]]])
            #expect(answered[1]?["n"] == [1])
        }
    }

    @Test("a changefeed delivers inserts, updates and deletes from another connection in order")
    func changefeedOrder() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { sim, endpoint in
            try await sim.createTable("events", database: "test")
            let watcher = try await RethinkRawClient.authenticated(port: endpoint.port)
            let writer = try await RethinkRawClient.authenticated(port: endpoint.port)
            let first = try await watcher.start(1, Q.changes(Q.table("events"), ["include_types": true]))
            #expect(first.responseType == 3)
            #expect(first.rows.isEmpty)
            let table = Q.table("events")
            _ = try await writer.start(1, Q.insert(table, [["id": "a", "v": 1]]))
            _ = try await writer.start(2, [53, [Q.get(table, "a"), ["v": 2]]])
            _ = try await writer.start(3, [54, [Q.get(table, "a")]])
            _ = try await writer.start(4, Q.insert(table, [["id": "b"], ["id": "c"]]))
            var received: [JSONValue] = []
            while received.count < 5 {
                let batch = try await watcher.run(1, [2])
                #expect(batch.responseType == 3)
                received += batch.rows
            }
            #expect(
                received == [
                    ["type": "add", "old_val": nil, "new_val": ["id": "a", "v": 1]],
                    ["type": "change", "old_val": ["id": "a", "v": 1], "new_val": ["id": "a", "v": 2]],
                    ["type": "remove", "old_val": ["id": "a", "v": 2], "new_val": nil],
                    ["type": "add", "old_val": nil, "new_val": ["id": "b"]],
                    ["type": "add", "old_val": nil, "new_val": ["id": "c"]],
                ])
        }
    }

    @Test("a full feed queue discards the earliest changes and reports how many; max_batch_rows bounds each batch")
    func queueOverflowAndBatchRows() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            let client = try await RethinkRawClient.authenticated(port: endpoint.port)
            let first = try await client.start(1, Q.changes(Q.table("t"), ["changefeed_queue_size": 3]), ["max_batch_rows": 2])
            #expect(first.rows.isEmpty)
            // No CONTINUE is held, so the ten changes queue: the queue keeps the newest three.
            for id in 1...10 { try await sim.insert([["id": .int(Int64(id))]], table: "t", database: "test") }
            let next = try await client.run(1, [2])
            #expect(next.rows == [["error": "Changefeed cache over array size limit, skipped 7 elements."], ["old_val": nil, "new_val": ["id": 8]]])
            #expect(try await client.run(1, [2]).rows == [["old_val": nil, "new_val": ["id": 9]], ["old_val": nil, "new_val": ["id": 10]]])
        }
    }

    @Test("include_initial and include_states start with the current rows between states; get().changes() is an ATOM_FEED")
    func initialRowsAndStates() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { sim, endpoint in
            try await Self.seed(sim, count: 2)
            let client = try await RethinkRawClient.authenticated(port: endpoint.port)
            let feed = try await client.start(1, Q.changes(Q.table("items"), ["include_initial": true, "include_states": true]))
            #expect(feed["n"] == [1, 5])
            #expect(
                feed.rows == [
                    ["state": "initializing"], ["new_val": ["id": 0, "n": 0]], ["new_val": ["id": 1, "n": 1]], ["state": "ready"],
                ])
            let point = try await client.start(2, Q.changes(Q.get(Q.table("items"), 1), ["include_initial": true]))
            #expect(point["n"] == [2])
            #expect(point.rows == [["new_val": ["id": 1, "n": 1]]])
            try await sim.insert([["id": 1, "n": 5]], table: "items", database: "test")
            let change = try await client.run(2, [2])
            #expect(change.rows == [["old_val": ["id": 1, "n": 1], "new_val": ["id": 1, "n": 5]]])
            let filtered = try await client.start(3, Q.changes([39, [Q.table("items"), Q.field("n", 21, 3)]]))
            #expect(filtered.rows.isEmpty)
            try await sim.insert([["id": 0, "n": 7]], table: "items", database: "test")
            #expect(try await client.run(3, [2]).rows == [["old_val": nil, "new_val": ["id": 0, "n": 7]]])
        }
    }

    @Test("STOP answers the held CONTINUE and the STOP with empty SUCCESS_SEQUENCE and ends the feed")
    func stopFeed() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            let client = try await RethinkRawClient.authenticated(port: endpoint.port)
            _ = try await client.start(5, Q.changes(Q.table("t")))
            #expect(await sim.activeChangefeeds == 1)
            try await client.sendQuery(5, [2])
            try await client.sendQuery(5, [3])
            for _ in 0..<2 {
                let response = try await client.readResponse()
                #expect(response?.token == 5)
                #expect(response?.response == ["t": 2, "r": [], "n": []])
            }
            #expect(await sim.activeChangefeeds == 0)
            #expect(try await client.run(5, [3]).errorMessage == "Token 5 not in stream cache.")
            #expect(try await client.run(6, [4]) == ["t": 4, "r": []])
        }
    }

    @Test("dropping the table ends its feeds with RUNTIME_ERROR OP_FAILED")
    func tableDropEndsFeed() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            let client = try await RethinkRawClient.authenticated(port: endpoint.port)
            _ = try await client.start(1, Q.changes(Q.table("t")))
            try await client.sendQuery(1, [2])
            let other = try await RethinkRawClient.authenticated(port: endpoint.port)
            let dropped = try await other.start(1, [61, ["t"]])
            #expect(dropped.rows.first?["tables_dropped"] == 1)
            let ended = try await client.readResponse()
            #expect(ended?.token == 1)
            #expect(ended?.response.responseType == 18)
            #expect(ended?.response["e"] == 4_100_000)
            #expect(ended?.response.errorMessage == "Changefeed aborted (table unavailable).")
            try await eventually("feed gone") { await sim.activeChangefeeds == 0 }
        }
    }

    @Test("a closed connection ends its feeds")
    func closingEndsFeeds() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            let client = try await RethinkRawClient.authenticated(port: endpoint.port)
            _ = try await client.start(1, Q.changes(Q.table("t")))
            _ = try await client.start(2, Q.changes(Q.get(Q.table("t"), 1)))
            #expect(await sim.activeChangefeeds == 2)
            client.close()
            try await eventually("feeds gone") { await sim.activeChangefeeds == 0 }
            try await eventually("connection gone") { await sim.openConnections == 0 }
        }
    }

    @Test("noreply queries are not answered; NOREPLY_WAIT answers WAIT_COMPLETE after them")
    func noreply() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            let client = try await RethinkRawClient.authenticated(port: endpoint.port)
            try await client.sendQuery(1, [1, Q.insert(Q.table("t"), [["id": 1]]), ["noreply": true]])
            try await client.sendQuery(2, [1, [12, ["boom"]], ["noreply": true]])
            #expect(try await client.run(3, [4]) == ["t": 4, "r": []])
            #expect(try await sim.documents(table: "t", database: "test") == [["id": 1]])
        }
    }

    @Test("dropConnections closes every client socket and reports how many")
    func dropConnections() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { sim, endpoint in
            let first = try await RethinkRawClient.authenticated(port: endpoint.port)
            let second = try await RethinkRawClient.authenticated(port: endpoint.port)
            try await eventually("two connections") { await sim.openConnections == 2 }
            #expect(await sim.dropConnections() == 2)
            #expect(try await first.isClosedByServer())
            #expect(try await second.isClosedByServer())
            try await eventually("no connections") { await sim.openConnections == 0 }
            let again = try await RethinkRawClient.authenticated(port: endpoint.port)
            #expect(try await again.run(1, [5]).responseType == 5)
        }
    }

    @Test("stalled queries are held unevaluated and unanswered until released, then answered in order")
    func stallAndRelease() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { sim, endpoint in
            try await sim.createTable("t", database: "test")
            let client = try await RethinkRawClient.authenticated(port: endpoint.port)
            await sim.stallReplies()
            try await client.sendQuery(1, [1, Q.insert(Q.table("t"), [["id": 1]]), [:]])
            try await client.sendQuery(2, [1, [43, [Q.table("t")]], [:]])
            try await eventually("queries held") { await sim.stalledQueryCount == 2 }
            #expect(try await client.hasNoPendingData())
            #expect(try await sim.documents(table: "t", database: "test").isEmpty)
            await sim.releaseReplies()
            let inserted = try await client.readResponse()
            #expect(inserted?.token == 1)
            #expect(inserted?.response.rows.first?["inserted"] == 1)
            let counted = try await client.readResponse()
            #expect(counted?.token == 2)
            #expect(counted?.response.rows == [1])
            #expect(await sim.stalledQueryCount == 0)
        }
    }

    @Test("hostile input gets an error or a close, never a crash; the server keeps serving")
    func hostileInput() async throws {
        try await RethinkSim.withRunning(options: Self.options()) { sim, endpoint in
            let client = try await RethinkRawClient.authenticated(port: endpoint.port)
            try await client.sendFrame(1, Array("{[garbage".utf8))
            #expect(try await client.readResponse()?.response == ["t": 16, "r": ["Client is buggy (failed to deserialize query)."], "b": []])
            #expect(try await client.run(2, [99]).responseType == 16)
            #expect(try await client.run(3, ["x"]).responseType == 16)
            #expect(try await client.run(4, [1]).responseType == 16)
            #expect(try await client.start(5, [999, []]).responseType == 17)
            #expect(try await client.start(6, [15, 7]).responseType == 17)
            #expect(try await client.start(7, [15, ["t"], ["bogus_option": 1]]).errorMessage == "Unrecognized optional argument `bogus_option`.")
            let deep = String(repeating: "[2,[", count: 200) + String(repeating: "]]", count: 200)
            try await client.sendFrame(8, Array("[1,\(deep),{}]".utf8))
            #expect(try await client.readResponse()?.response.responseType == 16)
            #expect(try await client.run(9, [5]).responseType == 5)

            try await client.sendFrame(10, [], announcedLength: 200 * 1024 * 1024)
            let oversized = try await client.readResponse()
            #expect(oversized?.token == 10)
            #expect(oversized?.response.errorMessage == "Query size (209715200) greater than maximum (134217727).")
            #expect(try await client.isClosedByServer())

            let garbage = try await RethinkRawClient.connect(port: endpoint.port)
            try await garbage.send((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            #expect(try await garbage.isClosedByServer())

            let healthy = try await RethinkRawClient.authenticated(port: endpoint.port)
            #expect(try await healthy.run(1, [5]).responseType == 5)
            #expect(await sim.openConnections >= 1)
        }
    }
}
