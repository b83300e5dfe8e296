import Foundation
import GuildNetCore

/// The in-memory databases, evaluated against by queries. Writes are recorded in `changes` (and
/// dropped tables in `droppedTableIDs`) for the store to hand to changefeeds after each query.
struct RethinkData: Sendable {
    var databases: [String: RethinkDatabase] = [:]
    var changes: [RecordedChange] = []
    var droppedTableIDs: Set<String> = []
    /// The server name shown in table configurations.
    var serverName: String

    init(serverName: String) {
        self.serverName = serverName
        databases["test"] = RethinkDatabase(id: Self.makeID(), name: "test")
    }

    static func makeID() -> String { UUID().uuidString.lowercased() }

    /// The table `database.name`, or RethinkDB's OP_FAILED errors when it or its database is missing.
    func tableRef(_ database: String, _ name: String) throws(ReqlFailure) -> ReqlTableRef {
        guard let db = databases[database] else { throw .databaseMissing(database) }
        guard let table = db.tables[name] else { throw .tableMissing(database, name) }
        return table.ref
    }

    /// The live table behind `ref` (nil once it has been dropped).
    func table(_ ref: ReqlTableRef) -> RethinkTable? {
        guard let table = databases[ref.db]?.tables[ref.name], table.ref.id == ref.id else { return nil }
        return table
    }

    /// The table's rows in primary-key order.
    mutating func rows(of ref: ReqlTableRef) -> [JSONValue] {
        guard databases[ref.db]?.tables[ref.name]?.ref.id == ref.id else { return [] }
        return databases[ref.db]?.tables[ref.name]?.orderedDocs() ?? []
    }

    /// Stores `new` (nil deletes) and records the change for changefeeds.
    mutating func write(_ ref: ReqlTableRef, key: JSONValue, old: JSONValue?, new: JSONValue?) {
        guard databases[ref.db]?.tables[ref.name]?.ref.id == ref.id else { return }
        databases[ref.db]?.tables[ref.name]?.put(key, new)
        changes.append(RecordedChange(tableID: ref.id, key: key, old: old, new: new))
    }

    /// The values a row has in `index` (none when the row lacks them or the index function fails).
    mutating func indexValues(_ row: JSONValue, _ index: RethinkIndex) -> [JSONValue] {
        let value: JSONValue?
        if let function = index.function {
            value = try? call(function, [row])
        } else {
            value = row[index.name]
        }
        guard let value, value != .null else { return [] }
        if index.multi, case .array(let elements) = value { return elements }
        return [value]
    }
}
