import GuildNetCore

/// A table as the evaluator sees it. `id` tells a table from a later one with the same name.
struct ReqlTableRef: Sendable, Hashable {
    var db: String
    var name: String
    var id: String
    var primaryKey: String
}

/// Variables visible to a term: function parameters, `r.row`, and the query's default database.
struct ReqlScope: Sendable {
    var vars: [Int64: JSONValue] = [:]
    var implicit: JSONValue?
    var defaultDatabase: String
}

/// A function value with the scope it was created in.
struct ReqlFunction: Sendable {
    var params: [Int64]
    var body: ReqlTerm
    var scope: ReqlScope
}

/// A sequence: a stream (answered in batches) or an array (answered as one atom). `table` is set
/// while the rows are still a selection of that table (writable); `feed` while `changes` may follow.
struct ReqlSequence: Sendable {
    var rows: [JSONValue]
    var table: ReqlTableRef?
    var isArray: Bool
    var feed: FeedSource?
}

/// The result of `get`: one (possibly missing) row of a table.
struct ReqlSingle: Sendable {
    var table: ReqlTableRef
    var key: JSONValue
    var doc: JSONValue?
}

/// Every kind of value a term evaluates to.
enum ReqlValue: Sendable {
    case datum(JSONValue)
    case database(String)
    case table(ReqlTableRef)
    case single(ReqlSingle)
    case sequence(ReqlSequence)
    case function(ReqlFunction)
    case feed(FeedRequest)

    /// RethinkDB's name of the value's type, for `Expected type X but found Y.`.
    var typeName: String {
        switch self {
        case .datum(let value): ReqlDatum.typeName(value)
        case .database: "DATABASE"
        case .table: "TABLE"
        case .single: "SELECTION<OBJECT>"
        case .sequence(let sequence):
            switch (sequence.isArray, sequence.table != nil) {
            case (true, true): "SELECTION<ARRAY>"
            case (true, false): "ARRAY"
            case (false, true): "SELECTION<STREAM>"
            case (false, false): "STREAM"
            }
        case .function: "FUNCTION"
        case .feed: "STREAM"
        }
    }
}
