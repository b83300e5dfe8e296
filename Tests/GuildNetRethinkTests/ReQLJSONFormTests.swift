import GuildNetCore
import GuildNetRethink
import Testing

@Suite struct ReQLJSONFormTests {
    static let users = ReQL.db("app").table("users")

    static func parse(_ text: String) throws -> ReQL {
        try ReQL(json: try JSONParser.parse(text))
    }

    @Test(arguments: [
        (#"{"db":"app","table":"users","op":"filter","args":[{"age":3}]}"#, users.filter(["age": 3])),
        (
            #"{"db":"app","table":"users","chain":[{"orderBy":{"index":"id","desc":true}},{"filter":{"a":1}},{"limit":3}]}"#,
            users.orderBy(index: .desc("id")).filter(["a": 1]).limit(3)
        ),
        (#"{"dbList":true}"#, ReQL.dbList()),
        (#"{"op":"dbList"}"#, ReQL.dbList()),
        (#"{"dbCreate":"x"}"#, ReQL.dbCreate("x")),
        (#"{"dbDrop":"x"}"#, ReQL.dbDrop("x")),
        (#"{"tableList":true}"#, ReQL.tableList()),
        (#"{"db":"app","tableList":true}"#, ReQL.db("app").tableList()),
        (#"{"db":"app","tableCreate":"t","primaryKey":"k"}"#, ReQL.db("app").tableCreate("t", primaryKey: "k")),
        (#"{"db":"app","chain":[{"tableCreate":"t"}]}"#, ReQL.db("app").tableCreate("t")),
        (#"{"db":"app","tableDrop":"t"}"#, ReQL.db("app").tableDrop("t")),
        (#"{"table":"t"}"#, ReQL.table("t")),
        (#"{"db":"app","table":"users"}"#, users),
        (#"{"db":"app","table":"users","indexCreate":"by_x"}"#, users.indexCreate("by_x")),
        (#"{"db":"app","table":"users","get":7}"#, users.get(7)),
        (#"{"db":"app","table":"users","getAll":[1,2],"index":"by_x"}"#, users.getAll(1, 2, index: "by_x")),
        (#"{"db":"app","table":"users","op":"getAll","args":[1,2],"index":"by_x"}"#, users.getAll(1, 2, index: "by_x")),
        (
            #"{"db":"app","table":"users","insert":[{"id":1,"tags":["x"]}],"conflict":"replace"}"#,
            users.insert([["id": 1, "tags": ["x"]]], conflict: .replace)
        ),
        (#"{"db":"app","table":"users","chain":[{"get":1},{"update":{"a":2}}]}"#, users.get(1).update(["a": 2])),
        (#"{"db":"app","table":"users","chain":[{"get":1},{"replace":{"id":1}}]}"#, users.get(1).replace(["id": 1])),
        (#"{"db":"app","table":"users","chain":[{"filter":{"a":1}},{"delete":true}]}"#, users.filter(["a": 1]).delete()),
        (
            #"{"db":"app","table":"users","where":[["age","gt",3],["name","eq","x"]]}"#,
            users.filter { $0["age"] > 3 && $0["name"] == "x" }
        ),
        (#"{"db":"app","table":"users","orderBy":["a",{"field":"b","desc":true}]}"#, users.orderBy(.asc("a"), .desc("b"))),
        (#"{"db":"app","table":"users","orderBy":"a"}"#, users.orderBy(.asc("a"))),
        (#"{"db":"app","table":"users","chain":[{"pluck":["a","b"]},{"count":true}]}"#, users.pluck("a", "b").count()),
        (#"{"db":"app","table":"users","pluck":"a"}"#, users.pluck("a")),
        (#"{"db":"app","table":"users","changes":true}"#, users.changes()),
        (
            #"{"db":"app","table":"users","changes":{"includeInitial":true,"includeStates":false,"includeTypes":true,"squash":0.5}}"#,
            users.changes(includeInitial: true, includeStates: false, includeTypes: true, squash: .seconds(0.5))
        ),
        (#"{"db":"app","table":"users","chain":[{"get":1},{"changes":{"squash":true}}]}"#, users.get(1).changes(squash: .enabled(true))),
        (#"{"db":"app","table":"users","changes":{"queueSize":500}}"#, users.changes(queueSize: 500)),
    ])
    func parsesTheDocumentedForm(text: String, expected: ReQL) throws {
        let parsed = try Self.parse(text)
        #expect(parsed.wire == expected.wire, "\(text) → \(parsed)")
    }

    /// Each invalid query names what is wrong.
    @Test(arguments: [
        (#"[1]"#, "query must be an object"),
        (#"{}"#, "query selects the top level but runs nothing"),
        (#"{"db":"app"}"#, "query selects a database but runs nothing"),
        (#"{"db":3,"table":"t"}"#, "db must be a non-empty string"),
        (#"{"table":""}"#, "table must be a non-empty string"),
        (#"{"table":"t","chain":{}}"#, "chain must be an array"),
        (#"{"table":"t","chain":[3]}"#, "chain[0] must be an object"),
        (#"{"table":"t","chain":[{"frobnicate":1}]}"#, "chain[0] must hold exactly one op (found none)"),
        (#"{"table":"t","chain":[{"limit":1,"count":true}]}"#, "chain[0] must hold exactly one op (found count, limit)"),
        (#"{"table":"t","chain":[{"limit":"x"}]}"#, "chain[0].limit must be a non-negative integer, got string"),
        (#"{"table":"t","chain":[{"limit":-1}]}"#, "chain[0].limit must be a non-negative integer"),
        (#"{"table":"t","chain":[{"limit":1,"index":"x"}]}"#, "chain[0].index is not an option of limit"),
        (#"{"table":"t","chain":[{"count":true},{"limit":1}]}"#, "chain[1].limit cannot follow a value"),
        (#"{"table":"t","chain":[{"changes":true},{"limit":1}]}"#, "chain[1].limit cannot follow a changefeed"),
        (#"{"db":"app","get":1}"#, "get cannot follow a database"),
        (#"{"dbCreate":""}"#, "dbCreate must be a non-empty name"),
        (#"{"table":"t","dbList":true}"#, "dbList cannot follow a table"),
        (#"{"table":"t","insert":[1]}"#, "insert must be an object or an array of objects"),
        (#"{"table":"t","insert":{},"conflict":"merge"}"#, "conflict must be one of error, replace, update"),
        (#"{"table":"t","getAll":[]}"#, "getAll must be a non-empty array of keys"),
        (#"{"table":"t","where":[["a","like",1]]}"#, "where[0] comparison must be one of"),
        (#"{"table":"t","where":[["a",1]]}"#, "where[0] must be [field, cmp, value]"),
        (#"{"table":"t","chain":[{"filter":{}},{"orderBy":{"index":"id"}}]}"#, "chain[1].orderBy an index order needs a table"),
        (#"{"table":"t","orderBy":{"index":"a","field":"b"}}"#, "orderBy must have exactly one of"),
        (#"{"table":"t","orderBy":{"idx":"a"}}"#, "orderBy.idx is not a key of an order"),
        (#"{"table":"t","changes":{"squash":"yes"}}"#, "changes.squash must be a boolean or a non-negative number"),
        (#"{"table":"t","changes":{"initial":true}}"#, "changes.initial is not an option of changes"),
        (#"{"table":"t","changes":{"queueSize":0}}"#, "changes.queueSize must be an integer ≥ 1"),
        (#"{"table":"t","op":"nope"}"#, "op must be one of"),
        (#"{"table":"t","op":"get","args":[1,2]}"#, "args must hold exactly one argument for get"),
        (#"{"table":"t","args":[1]}"#, "args is only allowed with \"op\""),
        (#"{"table":"t","op":"count","args":[1]}"#, "args must be empty for count"),
        (#"{"table":"t","update":[1]}"#, "update must be an object, got array"),
        (#"{"table":"t","pluck":[]}"#, "pluck must be a field name or a non-empty array"),
        (#"{"table":"t","delete":false}"#, "delete must be true"),
    ])
    func rejectsWithANamedField(text: String, fragment: String) throws {
        do {
            let term = try Self.parse(text)
            Issue.record("\(text) parsed as \(term)")
        } catch let error as HostError {
            #expect(error.code == .invalidField)
            #expect(error.message.contains(fragment), "\(error.message)")
            #expect(error.message.hasPrefix("rethink query: "))
        }
    }
}
