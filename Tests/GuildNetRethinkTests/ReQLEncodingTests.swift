import GuildNetCore
import Testing

@testable import GuildNetRethink

@Suite struct ReQLEncodingTests {
    static let t = ReQL.table("t")

    /// The encodings observed from the official Python driver (protocols.md §5), byte for byte.
    @Test(arguments: [
        (t, #"[15,["t"]]"#),
        (t.getAll(1, 2, index: "by_x"), #"[78,[[15,["t"]],1,2],{"index":"by_x"}]"#),
        (t.filter { $0["a"] == 1 }, #"[39,[[15,["t"]],[69,[[2,[1]],[17,[[170,[[10,[1]],"a"]],1]]]]]]"#),
        (
            t.insert([["id": 1, "tags": ["x"]]], conflict: .replace),
            #"[56,[[15,["t"]],[2,[{"id":1,"tags":[2,["x"]]}]]],{"conflict":"replace"}]"#
        ),
        (t.orderBy(index: .desc("id")).limit(3), #"[71,[[41,[[15,["t"]]],{"index":[74,["id"]]}],3]]"#),
        (
            t.changes(includeInitial: true, includeStates: true, includeTypes: true, squash: .enabled(true)),
            #"[152,[[15,["t"]]],{"include_initial":true,"include_states":true,"include_types":true,"squash":true}]"#
        ),
    ])
    func matchesObservedEncodings(term: ReQL, expected: String) {
        #expect(term.wire.jsonString == expected)
    }

    /// Every other builder term, encoded as the Python driver encodes it.
    @Test(arguments: [
        (ReQL.db("app"), #"[14,["app"]]"#),
        (ReQL.db("app").table("users"), #"[15,[[14,["app"]],"users"]]"#),
        (t.get(1), #"[16,[[15,["t"]],1]]"#),
        (t.get("k"), #"[16,[[15,["t"]],"k"]]"#),
        (t.getAll(["a"]), #"[78,[[15,["t"]],"a"]]"#),
        (t.filter(["a": 1, "tags": ["x", "y"]]), #"[39,[[15,["t"]],{"a":1,"tags":[2,["x","y"]]}]]"#),
        (t.filter(ReQL.row("a").eq(1)), #"[39,[[15,["t"]],[69,[[2,[1]],[17,[[170,[[10,[1]],"a"]],1]]]]]]"#),
        (
            t.filter { $0["a"] > 1 && $0["b"] == "x" },
            #"[39,[[15,["t"]],[69,[[2,[1]],[67,[[21,[[170,[[10,[1]],"a"]],1]],[17,[[170,[[10,[1]],"b"]],"x"]]]]]]]]"#
        ),
        (
            t.filter { !($0["a"] != 1) || $0["b"] <= 2 },
            #"[39,[[15,["t"]],[69,[[2,[1]],[66,[[23,[[18,[[170,[[10,[1]],"a"]],1]]]],[20,[[170,[[10,[1]],"b"]],2]]]]]]]]"#
        ),
        (t.filter { $0["a"] < 1 }, #"[39,[[15,["t"]],[69,[[2,[1]],[19,[[170,[[10,[1]],"a"]],1]]]]]]"#),
        (t.filter { $0["a"] >= 1 }, #"[39,[[15,["t"]],[69,[[2,[1]],[22,[[170,[[10,[1]],"a"]],1]]]]]]"#),
        (t.insert(["id": 1]), #"[56,[[15,["t"]],{"id":1}]]"#),
        (t.insert(["id": 1], conflict: .update, returnChanges: true), #"[56,[[15,["t"]],{"id":1}],{"conflict":"update","return_changes":true}]"#),
        (t.get(1).update(["a": 2]), #"[53,[[16,[[15,["t"]],1]],{"a":2}]]"#),
        (t.get(1).replace(["id": 1, "b": [1, [2]]]), #"[55,[[16,[[15,["t"]],1]],{"b":[2,[1,[2,[2]]]],"id":1}]]"#),
        (t.delete(), #"[54,[[15,["t"]]]]"#),
        (t.get(1).changes(), #"[152,[[16,[[15,["t"]],1]]]]"#),
        (t.changes(squash: .seconds(0.5)), #"[152,[[15,["t"]]],{"squash":0.5}]"#),
        (t.changes(queueSize: 50), #"[152,[[15,["t"]]],{"changefeed_queue_size":50}]"#),
        (ReQL.dbCreate("x"), #"[57,["x"]]"#),
        (ReQL.dbDrop("x"), #"[58,["x"]]"#),
        (ReQL.dbList(), #"[59,[]]"#),
        (ReQL.tableCreate("t"), #"[60,["t"]]"#),
        (ReQL.db("app").tableCreate("t", primaryKey: "k"), #"[60,[[14,["app"]],"t"],{"primary_key":"k"}]"#),
        (ReQL.db("app").tableDrop("t"), #"[61,[[14,["app"]],"t"]]"#),
        (ReQL.db("app").tableList(), #"[62,[[14,["app"]]]]"#),
        (ReQL.tableList(), #"[62,[]]"#),
        (t.indexCreate("by_x"), #"[75,[[15,["t"]],"by_x"]]"#),
        (t.orderBy(.asc("a"), .desc("b")), #"[41,[[15,["t"]],"a",[74,["b"]]]]"#),
        (t.orderBy(index: .asc("id")), #"[41,[[15,["t"]]],{"index":"id"}]"#),
        (t.limit(0), #"[71,[[15,["t"]],0]]"#),
        (t.count(), #"[43,[[15,["t"]]]]"#),
        (t.pluck("a", "b"), #"[33,[[15,["t"]],"a","b"]]"#),
        (ReQL.expr([1, ["a": [true]]]), #"[2,[1,{"a":[2,[true]]}]]"#),
    ])
    func encodesBuilderTerms(term: ReQL, expected: String) {
        #expect(term.wire.jsonString == expected)
        #expect(term.description == expected)
    }

    @Test func startQueryCarriesGlobalOptargs() {
        let plain = RethinkConnection.startQuery(Self.t, db: nil, noreply: false)
        #expect(plain.jsonString == #"[1,[15,["t"]],{}]"#)
        let withDB = RethinkConnection.startQuery(Self.t, db: "app", noreply: true)
        #expect(withDB.jsonString == #"[1,[15,["t"]],{"db":[14,["app"]],"noreply":true}]"#)
    }

    @Test func nestedFunctionsGetDistinctVariables() {
        let inner = ReQL.table("u").filter { $0["x"] == 1 }.count()
        let outer = Self.t.filter { _ in inner.gt(0) }
        // The inner function uses variable 1, so the outer one takes 2.
        #expect(
            outer.wire.jsonString
                == #"[39,[[15,["t"]],[69,[[2,[2]],[21,[[43,[[39,[[15,["u"]],[69,[[2,[1]],[17,[[170,[[10,[1]],"x"]],1]]]]]]]],0]]]]]]"#
        )
    }

    @Test func predicateWithoutRowIsNotWrapped() {
        #expect(Self.t.filter(ReQL.expr(true)).wire.jsonString == #"[39,[[15,["t"]],true]]"#)
    }

    @Test func changesOptargsCanBeForced() {
        let term = Self.t.changes(includeTypes: true)
        let forced = term.settingOptarg("include_initial", true).settingOptarg("include_states", true)
        #expect(forced.wire.jsonString == #"[152,[[15,["t"]]],{"include_initial":true,"include_states":true,"include_types":true}]"#)
        #expect(forced.isChangefeed)
        #expect(term.optargDatum("include_types") == .bool(true))
        #expect(term.optargDatum("include_initial") == nil)
        #expect(!Self.t.isChangefeed)
    }
}
