import GuildNetCore

/// A secondary index: a field name, or a function of the row; `multi` indexes every array element.
struct RethinkIndex: Sendable {
    var name: String
    var function: ReqlFunction?
    var multi: Bool
}

/// One table's rows (by primary key) and indexes. Rows come out in primary-key order, as from a
/// single-shard RethinkDB table.
struct RethinkTable: Sendable {
    var ref: ReqlTableRef
    private(set) var docs: [JSONValue: JSONValue] = [:]
    var indexes: [String: RethinkIndex] = [:]
    private var sortedKeys: [JSONValue]?

    init(ref: ReqlTableRef) {
        self.ref = ref
    }

    subscript(key: JSONValue) -> JSONValue? { docs[key] }

    var count: Int { docs.count }

    /// Stores (or with `nil`, removes) the row with primary key `key`.
    mutating func put(_ key: JSONValue, _ doc: JSONValue?) {
        if let doc {
            if docs.updateValue(doc, forKey: key) == nil { sortedKeys = nil }
        } else if docs.removeValue(forKey: key) != nil {
            sortedKeys = nil
        }
    }

    /// All rows in primary-key order.
    mutating func orderedDocs() -> [JSONValue] {
        if sortedKeys == nil {
            sortedKeys = docs.keys.sorted { ReqlDatum.compare($0, $1) < 0 }
        }
        return (sortedKeys ?? []).compactMap { docs[$0] }
    }
}

/// A database: its tables by name.
struct RethinkDatabase: Sendable {
    var id: String
    var name: String
    var tables: [String: RethinkTable] = [:]
}

/// A row change made by a query, fed to changefeeds once the query is done.
struct RecordedChange: Sendable {
    var tableID: String
    var key: JSONValue
    var old: JSONValue?
    var new: JSONValue?
}
