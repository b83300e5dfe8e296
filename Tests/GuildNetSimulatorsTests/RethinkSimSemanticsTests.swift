import Foundation
import GuildNetCore
import GuildNetSimulators
import TestSupport
import Testing

/// ReQL semantics and RethinkDB 2.4's results and messages, over a raw socket.
@Suite("RethinkSim semantics")
struct RethinkSimSemanticsTests {
    /// Runs `body` with a sim holding table `test.people` (5 rows) and an authenticated raw client.
    static func withPeople(_ body: @Sendable (RethinkSim, RethinkRawClient) async throws -> Void) async throws {
        try await RethinkSim.withRunning { sim, endpoint in
            try await sim.createTable("people", database: "test")
            try await sim.insert(
                [
                    ["id": 1, "name": "ada", "age": 36, "team": "a"],
                    ["id": 2, "name": "bob", "age": 25, "team": "b"],
                    ["id": 3, "name": "cy", "age": 41, "team": "a"],
                    ["id": 4, "name": "di", "age": 30],
                    ["id": 5, "name": "ed", "age": 25, "team": "b"],
                ], table: "people", database: "test")
            let client = try await RethinkRawClient.authenticated(port: endpoint.port)
            try await body(sim, client)
        }
    }

    static let people = Q.table("people")

    @Test("missing database and table are RUNTIME_ERROR OP_FAILED with RethinkDB's messages")
    func missingSchema() async throws {
        try await Self.withPeople { _, client in
            let noDatabase = try await client.start(1, Q.table("nope", "t"))
            #expect(noDatabase.responseType == 18)
            #expect(noDatabase["e"] == 4_100_000)
            #expect(noDatabase.errorMessage == "Database `nope` does not exist.")
            let noTable = try await client.start(2, Q.table("ghosts"))
            #expect(noTable["e"] == 4_100_000)
            #expect(noTable.errorMessage == "Table `test.ghosts` does not exist.")
            let viaGlobalDatabase = try await client.start(3, Q.table("people"), ["db": Q.db("elsewhere")])
            #expect(viaGlobalDatabase.errorMessage == "Database `elsewhere` does not exist.")
        }
    }

    @Test("db_create, table_create with primary_key, lists and drops, with their result objects and errors")
    func administration() async throws {
        try await Self.withPeople { sim, client in
            let created = try await client.start(1, [57, ["app"]])
            #expect(created.rows.first?["dbs_created"] == 1)
            #expect(try await client.start(2, [57, ["app"]]).errorMessage == "Database `app` already exists.")
            #expect(try await client.start(3, [57, ["bad name"]]).errorMessage == "Database name `bad name` invalid (Use A-Z, a-z, 0-9, _ and - only).")
            #expect(try await client.start(4, [59, []]).rows == [["app", "test"]])
            let table = try await client.start(5, [60, [Q.db("app"), "users"], ["primary_key": "name"]])
            #expect(table.rows.first?["tables_created"] == 1)
            #expect(table.rows.first?["config_changes"]?.arrayValue?.first?["new_val"]?["primary_key"] == "name")
            #expect(try await client.start(6, [60, ["users"]], ["db": Q.db("app")]).errorMessage == "Table `app.users` already exists.")
            #expect(try await client.start(7, [62, []], ["db": Q.db("app")]).rows == [["users"]])
            let inserted = try await client.start(8, Q.insert(Q.table("app", "users"), [["name": "zed"]]))
            #expect(inserted.rows.first?["inserted"] == 1)
            #expect(try await sim.documents(table: "users", database: "app") == [["name": "zed"]])
            #expect(try await client.start(9, [61, [Q.db("app"), "users"]]).rows.first?["tables_dropped"] == 1)
            let dropped = try await client.start(10, [58, ["app"]])
            #expect(dropped.rows.first?["dbs_dropped"] == 1)
            #expect(try await client.start(11, [58, ["app"]]).errorMessage == "Database `app` does not exist.")
        }
    }

    @Test("insert: generated keys, conflict error/replace/update, first_error and return_changes")
    func insertSemantics() async throws {
        try await Self.withPeople { _, client in
            let generated = try await client.start(1, Q.insert(Self.people, [["name": "new"]]))
            #expect(generated.rows.first?["inserted"] == 1)
            #expect(generated.rows.first?["generated_keys"]?.arrayValue?.count == 1)
            let duplicate = try await client.start(2, Q.insert(Self.people, [["id": 1, "name": "x"]]))
            #expect(duplicate.rows.first?["errors"] == 1)
            #expect(duplicate.rows.first?["inserted"] == 0)
            #expect(duplicate.rows.first?["first_error"]?.stringValue?.hasPrefix("Duplicate primary key `id`:\n{\n\t\"age\":\t36,") == true)
            let replaced = try await client.start(3, Q.insert(Self.people, [["id": 2, "name": "bobby"]], ["conflict": "replace"]))
            #expect(replaced.rows.first == ["deleted": 0, "errors": 0, "inserted": 0, "replaced": 1, "skipped": 0, "unchanged": 0])
            let updated = try await client.start(4, Q.insert(Self.people, [["id": 3, "age": 42]], ["conflict": "update", "return_changes": true]))
            #expect(updated.rows.first?["replaced"] == 1)
            #expect(
                updated.rows.first?["changes"] == [
                    [
                        "old_val": ["id": 3, "name": "cy", "age": 41, "team": "a"], "new_val": ["id": 3, "name": "cy", "age": 42, "team": "a"],
                    ]
                ])
            #expect(try await client.start(5, Q.get(Self.people, 2)).rows == [["id": 2, "name": "bobby"]])
            #expect(try await client.start(6, Q.get(Self.people, 99)).rows == [nil])
        }
    }

    @Test("update, replace and delete on a get, a filter and a table report replaced/unchanged/skipped/deleted")
    func writeSemantics() async throws {
        try await Self.withPeople { sim, client in
            let one = try await client.start(1, [53, [Q.get(Self.people, 1), ["age": 37]]])
            #expect(one.rows.first?["replaced"] == 1)
            let same = try await client.start(2, [53, [Q.get(Self.people, 1), ["age": 37]]])
            #expect(same.rows.first?["unchanged"] == 1)
            let missing = try await client.start(3, [53, [Q.get(Self.people, 99), ["age": 1]]])
            #expect(missing.rows.first?["skipped"] == 1)
            let bump = [69, [[2, [1]], ["age": [24, [[170, [[13, []], "age"]], 1]]]]] as JSONValue
            let teamA = try await client.start(4, [53, [[39, [Self.people, ["team": "a"]]], bump]])
            #expect(teamA.rows.first?["replaced"] == 2)
            let keyChange = try await client.start(5, [53, [Q.get(Self.people, 2), ["id": 20]]])
            #expect(keyChange.rows.first?["errors"] == 1)
            #expect(keyChange.rows.first?["first_error"]?.stringValue?.hasPrefix("Primary key `id` cannot be changed") == true)
            let replaced = try await client.start(6, [55, [Q.get(Self.people, 4), ["id": 4, "name": "dee"]]])
            #expect(replaced.rows.first?["replaced"] == 1)
            let noKey = try await client.start(7, [55, [Q.get(Self.people, 4), ["name": "dee"]]])
            #expect(noKey.rows.first?["first_error"]?.stringValue?.hasPrefix("Inserted object must have primary key `id`:") == true)
            let deleted = try await client.start(8, [54, [[39, [Self.people, Q.field("age", 17, 25)]]]])
            #expect(deleted.rows.first?["deleted"] == 2)
            #expect(try await client.start(9, [54, [Q.get(Self.people, 99)]]).rows.first?["skipped"] == 1)
            let remaining = try await sim.documents(table: "people", database: "test")
            #expect(
                remaining == [
                    ["id": 1, "name": "ada", "age": 38, "team": "a"], ["id": 3, "name": "cy", "age": 42, "team": "a"], ["id": 4, "name": "dee"],
                ])
            #expect(try await client.start(10, [54, [Self.people]]).rows.first?["deleted"] == 3)
        }
    }

    @Test("filter (function, object, default), order_by (fields, desc, index), limit, count, pluck, get_all (secondary index)")
    func readSemantics() async throws {
        try await Self.withPeople { _, client in
            let adults = try await client.start(1, [39, [Self.people, Q.field("age", 21, 30)]])
            #expect(adults.responseType == 2)
            #expect(adults.rows.compactMap { $0["id"]?.intValue } == [1, 3])
            let teamB = try await client.start(2, [39, [Self.people, ["team": "b"]]])
            #expect(teamB.rows.compactMap { $0["id"]?.intValue } == [2, 5])
            let withDefault = try await client.start(3, [39, [Self.people, Q.field("team", 17, "x")], ["default": true]])
            #expect(withDefault.rows.compactMap { $0["id"]?.intValue } == [4])
            let ordered = try await client.start(4, [41, [Self.people, "age", [74, ["name"]]]])
            #expect(ordered.responseType == 1, "order_by without an index is an array atom")
            #expect(ordered.rows.first?.arrayValue?.compactMap { $0["id"]?.intValue } == [5, 2, 4, 1, 3])
            let topTwo = try await client.start(5, [71, [[41, [Self.people], ["index": [74, ["id"]]]], 2]])
            #expect(topTwo.responseType == 2)
            #expect(topTwo.rows.compactMap { $0["id"]?.intValue } == [5, 4])
            #expect(try await client.start(6, [43, [Self.people]]).rows == [5])
            #expect(try await client.start(7, [43, [[39, [Self.people, ["age": 25]]]]]).rows == [2])
            let plucked = try await client.start(8, [33, [[71, [Self.people, 2]], "name", "missing"]])
            #expect(plucked.rows == [["name": "ada"], ["name": "bob"]])
            #expect(try await client.start(9, [75, [Self.people, "team"]]).rows == [["created": 1]])
            #expect(try await client.start(10, [77, [Self.people]]).rows == [["team"]])
            let byTeam = try await client.start(11, [78, [Self.people, "a"], ["index": "team"]])
            #expect(byTeam.rows.compactMap { $0["id"]?.intValue } == [1, 3])
            let byKeys = try await client.start(12, [78, [Self.people, 5, 2, 42]])
            #expect(byKeys.rows.compactMap { $0["id"]?.intValue } == [5, 2])
            let indexedOrder = try await client.start(13, [41, [Self.people], ["index": "team"]])
            #expect(indexedOrder.rows.compactMap { $0["id"]?.intValue } == [1, 3, 2, 5])
            let noIndex = try await client.start(14, [78, [Self.people, "a"], ["index": "nope"]])
            #expect(noIndex.errorMessage == "Index `nope` was not found on table `test.people`.")
            #expect(try await client.start(15, [170, [Q.get(Self.people, 1), "name"]]).rows == ["ada"])
            let noField = try await client.start(16, [170, [Q.get(Self.people, 4), "team"]])
            #expect(noField["e"] == 3_100_000)
            #expect(noField.errorMessage?.hasPrefix("No attribute `team` in object:") == true)
            #expect(try await client.start(17, [67, [[21, [3, 2]], [66, [false, [17, [1, 1, 1]]]]]]).rows == [true])
            #expect(try await client.start(18, [23, [[19, [1, 2]]]]).rows == [false])
        }
    }

    @Test("compile errors: unknown terms, wrong arity, unbound variables")
    func compileErrors() async throws {
        try await Self.withPeople { _, client in
            let unknown = try await client.start(1, [9999, []])
            #expect(unknown.responseType == 17)
            #expect(unknown["e"] == nil)
            let arity = try await client.start(2, [16, [Self.people]])
            #expect(arity.responseType == 17)
            #expect(arity.errorMessage == "Expected 2 arguments but found 1.")
            #expect(try await client.start(3, [10, [7]]).responseType == 17)
            let userError = try await client.start(4, [12, ["custom failure"]])
            #expect(userError.responseType == 18)
            #expect(userError["e"] == 5_000_000)
            #expect(userError.errorMessage == "custom failure")
        }
    }
}
