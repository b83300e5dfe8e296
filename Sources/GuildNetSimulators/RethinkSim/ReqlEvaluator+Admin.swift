import GuildNetCore
import GuildNetRethink

/// Databases, tables and indexes: `db`, `table`, `db_create`/`db_drop`/`db_list`,
/// `table_create`/`table_drop`/`table_list`, `index_create`/`index_list`/`index_drop`/`index_status`/`index_wait`, `wait`.
extension RethinkData {
    mutating func evaluateAdmin(
        _ type: RethinkWire.TermType, _ args: [ReqlTerm], _ optargs: [String: ReqlTerm], _ scope: ReqlScope
    ) throws -> ReqlValue {
        switch type {
        case .db:
            let name = try string(args[0], scope)
            try Self.validate(name, kind: "Database")
            return .database(name)
        case .table:
            let (database, name) = try databaseAndName(args, scope)
            try Self.validate(name, kind: "Table")
            return .table(try tableRef(database, name))
        case .dbCreate:
            return .datum(try createDatabase(try string(args[0], scope)))
        case .dbDrop:
            return .datum(try dropDatabase(try string(args[0], scope)))
        case .dbList:
            return .datum(.array(databases.keys.sorted().map { .string($0) }))
        case .tableCreate:
            let (database, name) = try databaseAndName(args, scope)
            let primaryKey = try optargs["primary_key"].map { try string($0, scope) } ?? "id"
            return .datum(try createTable(name, database: database, primaryKey: primaryKey))
        case .tableDrop:
            let (database, name) = try databaseAndName(args, scope)
            return .datum(try dropTable(name, database: database))
        case .tableList:
            let database = try args.first.map { try databaseArgument($0, scope) } ?? scope.defaultDatabase
            guard let db = databases[database] else { throw ReqlFailure.databaseMissing(database) }
            return .datum(.array(db.tables.keys.sorted().map { .string($0) }))
        case .indexCreate:
            let table = try tableArgument(args[0], scope)
            let name = try string(args[1], scope)
            var function: ReqlFunction?
            if args.count == 3 {
                let value = try evaluate(args[2], scope)
                guard case .function(let indexFunction) = value else { throw ReqlFailure.expected("FUNCTION", found: value.typeName) }
                function = indexFunction
            }
            let multi = try optionalBool(optargs["multi"], scope) ?? false
            return .datum(try createIndex(name, table: table, function: function, multi: multi))
        case .indexList:
            let table = try tableArgument(args[0], scope)
            return .datum(.array((self.table(table)?.indexes.keys.sorted() ?? []).map { .string($0) }))
        case .wait:
            if let target = args.first {
                let value = try evaluate(target, scope)
                switch value {
                case .table: return .datum(["ready": 1])
                case .database(let name):
                    guard let db = databases[name] else { throw ReqlFailure.databaseMissing(name) }
                    return .datum(["ready": .int(Int64(db.tables.count))])
                default: throw ReqlFailure.expected("TABLE", found: value.typeName)
                }
            }
            return .datum(["ready": .int(Int64(databases.values.reduce(0) { $0 + $1.tables.count }))])
        default:
            throw ReqlFailure.compile("Term \(type) is not an administration term.")
        }
    }

    mutating func evaluateIndexExtra(_ type: ReqlExtraTerm, _ args: [ReqlTerm], _ scope: ReqlScope) throws -> ReqlValue {
        let table = try tableArgument(args[0], scope)
        var names: [String] = []
        for arg in args.dropFirst() { names.append(try string(arg, scope)) }
        let indexes = self.table(table)?.indexes ?? [:]
        for name in names where indexes[name] == nil { throw ReqlFailure.indexMissing(name, table) }
        if type == .indexDrop {
            databases[table.db]?.tables[table.name]?.indexes[names[0]] = nil
            return .datum(["dropped": 1])
        }
        let selected = names.isEmpty ? indexes.keys.sorted() : names
        return .datum(
            .array(
                selected.compactMap { name in
                    indexes[name].map { index in
                        ["index": .string(name), "ready": true, "multi": .bool(index.multi), "geo": false, "outdated": false]
                    }
                }))
    }

    // MARK: - Operations shared with RethinkSim's direct API

    mutating func createDatabase(_ name: String) throws(ReqlFailure) -> JSONValue {
        try Self.validate(name, kind: "Database")
        guard databases[name] == nil else { throw .opFailed("Database `\(name)` already exists.") }
        let database = RethinkDatabase(id: Self.makeID(), name: name)
        databases[name] = database
        return ["dbs_created": 1, "config_changes": [["old_val": nil, "new_val": ["id": .string(database.id), "name": .string(name)]]]]
    }

    mutating func dropDatabase(_ name: String) throws(ReqlFailure) -> JSONValue {
        try Self.validate(name, kind: "Database")
        guard let database = databases.removeValue(forKey: name) else { throw .databaseMissing(name) }
        for table in database.tables.values { droppedTableIDs.insert(table.ref.id) }
        return [
            "dbs_dropped": 1, "tables_dropped": .int(Int64(database.tables.count)),
            "config_changes": [["old_val": ["id": .string(database.id), "name": .string(name)], "new_val": nil]],
        ]
    }

    mutating func createTable(_ name: String, database: String, primaryKey: String) throws(ReqlFailure) -> JSONValue {
        try Self.validate(name, kind: "Table")
        guard databases[database] != nil else { throw .databaseMissing(database) }
        guard databases[database]?.tables[name] == nil else { throw .opFailed("Table `\(database).\(name)` already exists.") }
        let ref = ReqlTableRef(db: database, name: name, id: Self.makeID(), primaryKey: primaryKey)
        databases[database]?.tables[name] = RethinkTable(ref: ref)
        return ["tables_created": 1, "config_changes": [["old_val": nil, "new_val": configuration(of: ref, indexes: [])]]]
    }

    mutating func dropTable(_ name: String, database: String) throws(ReqlFailure) -> JSONValue {
        try Self.validate(name, kind: "Table")
        guard databases[database] != nil else { throw .databaseMissing(database) }
        guard let table = databases[database]?.tables.removeValue(forKey: name) else { throw .tableMissing(database, name) }
        droppedTableIDs.insert(table.ref.id)
        return [
            "tables_dropped": 1,
            "config_changes": [["old_val": configuration(of: table.ref, indexes: table.indexes.keys.sorted()), "new_val": nil]],
        ]
    }

    mutating func createIndex(_ name: String, table: ReqlTableRef, function: ReqlFunction?, multi: Bool) throws(ReqlFailure) -> JSONValue {
        guard self.table(table) != nil else { throw .tableMissing(table.db, table.name) }
        guard name != table.primaryKey else { throw .opFailed("Index name conflict: `\(name)` is the name of the primary key.") }
        guard self.table(table)?.indexes[name] == nil else {
            throw .opFailed("Index `\(name)` already exists on table `\(table.db).\(table.name)`.")
        }
        databases[table.db]?.tables[table.name]?.indexes[name] = RethinkIndex(name: name, function: function, multi: multi)
        return ["created": 1]
    }

    // MARK: - Helpers

    private func configuration(of table: ReqlTableRef, indexes: [String]) -> JSONValue {
        [
            "db": .string(table.db), "durability": "hard", "id": .string(table.id), "indexes": .array(indexes.map { .string($0) }),
            "name": .string(table.name), "primary_key": .string(table.primaryKey), "write_acks": "majority", "write_hook": nil,
            "shards": [["primary_replica": .string(serverName), "replicas": [.string(serverName)], "nonvoting_replicas": []]],
        ]
    }

    /// `[db,] name` arguments of `table`, `table_create`, `table_drop`.
    private mutating func databaseAndName(_ args: [ReqlTerm], _ scope: ReqlScope) throws -> (String, String) {
        if args.count == 2 {
            return (try databaseArgument(args[0], scope), try string(args[1], scope))
        }
        return (scope.defaultDatabase, try string(args[0], scope))
    }

    private mutating func databaseArgument(_ term: ReqlTerm, _ scope: ReqlScope) throws -> String {
        let value = try evaluate(term, scope)
        guard case .database(let name) = value else { throw ReqlFailure.expected("DATABASE", found: value.typeName) }
        return name
    }

    /// RethinkDB's name rule: `A-Z`, `a-z`, `0-9`, `_` and `-`.
    static func validate(_ name: String, kind: String) throws(ReqlFailure) {
        let valid =
            !name.isEmpty
            && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F || byte == 0x2D
            }
        guard valid else { throw .logic("\(kind) name `\(name)` invalid (Use A-Z, a-z, 0-9, _ and - only).") }
    }
}
