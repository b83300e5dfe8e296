import GuildNetCore
import GuildNetRethink
import GuildNetSimulators
import TestSupport
import Testing

/// Every builder term against RethinkSim, through a connector (the JSON form for half of them).
@Suite struct ReQLLiveTests {
    @Test func everyBuilderTerm() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { _, endpoint in
            try await RethinkHarness.withConnector(RethinkHarness.configuration(endpoint)) { r in
                // Administration
                #expect(try await r.run(.dbCreate("app"))["dbs_created"] == 1)
                #expect(try await r.run(.dbList()).arrayValue?.contains("app") == true)
                let app = ReQL.db("app")
                #expect(try await r.run(app.tableCreate("users"))["tables_created"] == 1)
                #expect(try await r.run(app.tableCreate("codes", primaryKey: "code"))["tables_created"] == 1)
                #expect(Set(try await r.run(app.tableList()).arrayValue ?? []) == ["users", "codes"])
                #expect(try await r.run(ReQL.tableList(), db: "app").arrayValue?.count == 2)
                let users = app.table("users")
                #expect(try await r.run(users.indexCreate("age"))["created"] == 1)

                // Writes
                let people: JSONValue = [
                    ["id": 1, "name": "ann", "age": 31, "tags": ["a"]], ["id": 2, "name": "bob", "age": 25, "tags": []],
                    ["id": 3, "name": "cy", "age": 31], ["id": 4, "name": "di", "age": 40],
                ]
                #expect(try await r.run(users.insert(people))["inserted"] == 4)
                let duplicate = await RethinkHarness.hostError { _ = try await r.run(users.insert(["id": 1])) }
                #expect(duplicate == nil)  // a conflict is reported in the result, not as an error
                #expect(try await r.run(users.insert(["id": 1], conflict: .error))["errors"] == 1)
                #expect(try await r.run(users.insert(["id": 4, "name": "dee", "age": 41], conflict: .replace))["replaced"] == 1)
                #expect(try await r.run(users.insert(["id": 4, "city": "x"], conflict: .update))["replaced"] == 1)
                #expect(try await r.run(app.table("codes").insert(["code": "k1"]))["inserted"] == 1)
                #expect(try await r.run(app.table("codes").get("k1")) == ["code": "k1"])

                // Reads
                #expect(try await r.run(users.get(4)) == ["id": 4, "name": "dee", "age": 41, "city": "x"])
                #expect(try await r.run(users.get(99)) == .null)
                let byAge = try await r.run(users.getAll(31, index: "age").orderBy(.asc("id")))
                #expect(byAge.arrayValue?.compactMap { $0["id"] } == [1, 3])
                #expect(try await r.run(users.getAll(2, 3).count()) == 2)
                #expect(try await r.run(users.filter(["age": 31]).count()) == 2)
                #expect(try await r.run(users.filter(["tags": ["a"]]).count()) == 1)
                #expect(try await r.run(users.filter { $0["age"] > 30 && $0["name"] != "cy" }.count()) == 2)
                #expect(try await r.run(users.filter(ReQL.row("age").le(25)).pluck("name")) == [["name": "bob"]])
                let ordered = try await r.run(users.orderBy(index: .desc("id")).limit(3))
                #expect(ordered.arrayValue?.compactMap { $0["id"] } == [4, 3, 2])
                let byField = try await r.run(users.orderBy(.desc("age"), .asc("id")).pluck("id"))
                #expect(byField == [["id": 4], ["id": 1], ["id": 3], ["id": 2]])
                #expect(try await r.run(users.count()) == 4)
                #expect(try await r.run(users.get(1).pluck("name")) == ["name": "ann"])

                // Updates and deletes
                #expect(try await r.run(users.get(2).update(["age": 26]))["replaced"] == 1)
                #expect(try await r.run(users.filter(["age": 31]).update(["senior": true]))["replaced"] == 2)
                #expect(try await r.run(users.get(3).replace(["id": 3, "name": "cyd"]))["replaced"] == 1)
                #expect(try await r.run(users.get(3)) == ["id": 3, "name": "cyd"])
                #expect(try await r.run(users.get(2).delete())["deleted"] == 1)
                #expect(try await r.run(users.filter { $0["age"] >= 40 }.delete())["deleted"] == 1)
                #expect(try await r.run(users.count()) == 2)

                // Drops
                #expect(try await r.run(app.tableDrop("codes"))["tables_dropped"] == 1)
                #expect(try await r.run(.dbDrop("app"))["dbs_dropped"] == 1)
            }
        }
    }

    /// The JSON form runs the same terms.
    @Test func jsonFormAgainstTheSimulator() async throws {
        try await RethinkSim.withRunning(options: RethinkHarness.simOptions()) { _, endpoint in
            try await RethinkHarness.withConnector(RethinkHarness.configuration(endpoint)) { r in
                func run(_ text: String) async throws -> JSONValue {
                    try await r.run(try ReQL(json: try JSONParser.parse(text)))
                }
                let r1 = try await run(#"{"dbCreate":"app"}"#)
                #expect(r1["dbs_created"] == 1)
                let r2 = try await run(#"{"db":"app","tableCreate":"users"}"#)
                #expect(r2["tables_created"] == 1)
                let r3 = try await run(#"{"db":"app","table":"users","indexCreate":"age"}"#)
                #expect(r3["created"] == 1)
                let insert = #"{"db":"app","table":"users","insert":[{"id":1,"age":3},{"id":2,"age":5},{"id":3,"age":3}]}"#
                let r4 = try await run(insert)
                #expect(r4["inserted"] == 3)
                let r5 = try await run(#"{"db":"app","table":"users","op":"filter","args":[{"age":3}],"chain":[{"count":true}]}"#)
                #expect(r5 == 2)
                let chain = #"{"db":"app","table":"users","chain":[{"orderBy":{"index":"id","desc":true}},{"limit":2},{"pluck":"id"}]}"#
                let r6 = try await run(chain)
                #expect(r6 == [["id": 3], ["id": 2]])
                let ordered = #"{"db":"app","table":"users","chain":[{"orderBy":{"index":"id","desc":true}},{"filter":{"age":3}},{"pluck":"id"}]}"#
                let r6b = try await run(ordered)
                #expect(r6b == [["id": 3], ["id": 1]])
                let r7 = try await run(#"{"db":"app","table":"users","where":[["age","gt",3]],"chain":[{"pluck":["id"]}]}"#)
                #expect(r7 == [["id": 2]])
                let r8 = try await run(#"{"db":"app","table":"users","getAll":[3],"index":"age","chain":[{"count":true}]}"#)
                #expect(r8 == 2)
                let r9 = try await run(#"{"db":"app","table":"users","chain":[{"get":1},{"update":{"age":4}}]}"#)
                #expect(r9["replaced"] == 1)
                let r10 = try await run(#"{"db":"app","table":"users","chain":[{"get":2},{"delete":true}]}"#)
                #expect(r10["deleted"] == 1)
                let r11 = try await run(#"{"dbList":true}"#).arrayValue?.contains("app")
                #expect(r11 == true)
                let r12 = try await run(#"{"db":"app","tableList":true}"#)
                #expect(r12 == ["users"])
            }
        }
    }
}
