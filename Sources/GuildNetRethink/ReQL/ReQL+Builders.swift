import GuildNetCore

/// The builder subset: databases, tables, selections, writes, changefeeds and administration.
/// Encodings follow the official Python driver (docs: shared protocols.md §5).
extension ReQL {
    // MARK: Top level

    /// `r.db(name)` → `[14,[name]]`.
    public static func db(_ name: String) -> ReQL {
        ReQL(.db, [.expr(.string(name))])
    }

    /// `r.table(name)` in the connection's default database → `[15,[name]]`.
    public static func table(_ name: String) -> ReQL {
        ReQL(.table, [.expr(.string(name))])
    }

    /// `r.db_list()` → `[59,[]]`.
    public static func dbList() -> ReQL {
        ReQL(.dbList)
    }

    /// `r.db_create(name)` → `[57,[name]]`.
    public static func dbCreate(_ name: String) -> ReQL {
        ReQL(.dbCreate, [.expr(.string(name))])
    }

    /// `r.db_drop(name)` → `[58,[name]]`.
    public static func dbDrop(_ name: String) -> ReQL {
        ReQL(.dbDrop, [.expr(.string(name))])
    }

    /// `r.table_create(name)` in the default database.
    public static func tableCreate(_ name: String, primaryKey: String? = nil) -> ReQL {
        ReQL(.tableCreate, [.expr(.string(name))], primaryKeyOptargs(primaryKey))
    }

    /// `r.table_list()` of the default database.
    public static func tableList() -> ReQL {
        ReQL(.tableList)
    }

    // MARK: On a database

    /// `db.table(name)` → `[15,[db,name]]`.
    public func table(_ name: String) -> ReQL {
        ReQL(.table, [self, .expr(.string(name))])
    }

    /// `db.table_create(name, primary_key=…)` → `[60,[db,name],{"primary_key":…}]`.
    public func tableCreate(_ name: String, primaryKey: String? = nil) -> ReQL {
        ReQL(.tableCreate, [self, .expr(.string(name))], Self.primaryKeyOptargs(primaryKey))
    }

    /// `db.table_drop(name)`.
    public func tableDrop(_ name: String) -> ReQL {
        ReQL(.tableDrop, [self, .expr(.string(name))])
    }

    /// `db.table_list()` → `[62,[db]]`.
    public func tableList() -> ReQL {
        ReQL(.tableList, [self])
    }

    // MARK: On a table

    /// `table.get(key)` → `[16,[table,key]]`.
    public func get(_ key: JSONValue) -> ReQL {
        ReQL(.get, [self, .expr(key)])
    }

    /// `table.get_all(k1, k2, index=…)` → `[78,[table,k1,k2],{"index":…}]`.
    public func getAll(_ keys: [JSONValue], index: String? = nil) -> ReQL {
        var optargs: [String: ReQL] = [:]
        if let index { optargs["index"] = .expr(.string(index)) }
        return ReQL(.getAll, [self] + keys.map { .expr($0) }, optargs)
    }

    /// `table.get_all(k1, k2, index=…)`.
    public func getAll(_ keys: JSONValue..., index: String? = nil) -> ReQL {
        getAll(keys, index: index)
    }

    /// `table.index_create(name)` → `[75,[table,name]]` (an index on the field of the same name).
    public func indexCreate(_ name: String) -> ReQL {
        ReQL(.indexCreate, [self, .expr(.string(name))])
    }

    /// What `insert` does when a document with the same primary key exists.
    public enum Conflict: String, Sendable, CaseIterable {
        case error, replace, update
    }

    /// `table.insert(docs, conflict=…)`; `documents` is one object or an array of objects.
    public func insert(_ documents: JSONValue, conflict: Conflict? = nil, returnChanges: Bool? = nil) -> ReQL {
        var optargs: [String: ReQL] = [:]
        if let conflict { optargs["conflict"] = .expr(.string(conflict.rawValue)) }
        if let returnChanges { optargs["return_changes"] = .expr(.bool(returnChanges)) }
        return ReQL(.insert, [self, .expr(documents)], optargs)
    }

    // MARK: On a selection or sequence

    /// `selection.update(patch)` → `[53,[selection,patch]]`.
    public func update(_ patch: JSONValue) -> ReQL {
        ReQL(.update, [self, .expr(patch)])
    }

    /// `selection.replace(document)` → `[55,[selection,document]]`.
    public func replace(_ document: JSONValue) -> ReQL {
        ReQL(.replace, [self, .expr(document)])
    }

    /// `selection.delete()` → `[54,[selection]]`.
    public func delete() -> ReQL {
        ReQL(.delete, [self])
    }

    /// `sequence.filter(object)`: rows whose fields equal the object's (`[39,[seq,{…}]]`).
    public func filter(_ predicate: [String: JSONValue]) -> ReQL {
        ReQL(.filter, [self, .expr(.object(predicate))])
    }

    /// `sequence.filter(predicate)` where the predicate uses ``row(_:)``; it is wrapped into a
    /// one-argument function (`[69,[[2,[n]],body]]`) with ``row`` bound to the variable.
    public func filter(_ predicate: ReQL) -> ReQL {
        ReQL(.filter, [self, Self.wrapImplicitVariable(predicate)])
    }

    /// `sequence.filter(lambda d: …)`: `.filter { $0["a"] == 1 }`.
    public func filter(_ predicate: (ReQL) -> ReQL) -> ReQL {
        ReQL(.filter, [self, Self.function(predicate)])
    }

    /// A sort key of ``orderBy(_:index:)``.
    public enum OrderKey: Sendable, Hashable {
        case asc(String)
        case desc(String)

        var term: ReQL {
            switch self {
            case .asc(let field): .expr(.string(field))
            case .desc(let field): ReQL(.desc, [.expr(.string(field))])
            }
        }
    }

    /// `sequence.order_by(keys…, index=…)` → `[41,[seq,keys…],{"index":…}]`; ascending keys are plain
    /// field names, descending ones `[74,[field]]`.
    public func orderBy(_ keys: [OrderKey], index: OrderKey? = nil) -> ReQL {
        var optargs: [String: ReQL] = [:]
        if let index { optargs["index"] = index.term }
        return ReQL(.orderBy, [self] + keys.map(\.term), optargs)
    }

    /// `sequence.order_by(keys…, index=…)`.
    public func orderBy(_ keys: OrderKey..., index: OrderKey? = nil) -> ReQL {
        orderBy(keys, index: index)
    }

    /// `sequence.limit(n)` → `[71,[seq,n]]`.
    public func limit(_ count: Int) -> ReQL {
        ReQL(.limit, [self, .expr(.int(Int64(count)))])
    }

    /// `sequence.count()` → `[43,[seq]]`.
    public func count() -> ReQL {
        ReQL(.count, [self])
    }

    /// `sequence.pluck(fields…)` → `[33,[seq,fields…]]`.
    public func pluck(_ fields: [String]) -> ReQL {
        ReQL(.pluck, [self] + fields.map { .expr(.string($0)) })
    }

    /// `sequence.pluck(fields…)`.
    public func pluck(_ fields: String...) -> ReQL {
        pluck(fields)
    }

    /// `squash` of ``changes(includeInitial:includeStates:includeTypes:squash:)``.
    public enum Squash: Sendable, Hashable {
        case enabled(Bool)
        /// Coalesce changes over this many seconds.
        case seconds(Double)

        var datum: JSONValue {
            switch self {
            case .enabled(let value): .bool(value)
            case .seconds(let value): .double(value)
            }
        }
    }

    /// `selection.changes(include_initial=…, include_states=…, include_types=…, squash=…,
    /// changefeed_queue_size=…)` → `[152,[selection],{…}]` (only the options given are sent).
    /// `queueSize` caps the changes the server holds for a slow reader (RethinkDB's default 100,000);
    /// past it the server skips changes and says so in the feed.
    public func changes(
        includeInitial: Bool? = nil, includeStates: Bool? = nil, includeTypes: Bool? = nil, squash: Squash? = nil,
        queueSize: Int? = nil
    ) -> ReQL {
        var optargs: [String: ReQL] = [:]
        if let includeInitial { optargs["include_initial"] = .expr(.bool(includeInitial)) }
        if let includeStates { optargs["include_states"] = .expr(.bool(includeStates)) }
        if let includeTypes { optargs["include_types"] = .expr(.bool(includeTypes)) }
        if let squash { optargs["squash"] = .expr(squash.datum) }
        if let queueSize { optargs["changefeed_queue_size"] = .expr(.int(Int64(queueSize))) }
        return ReQL(.changes, [self], optargs)
    }

    private static func primaryKeyOptargs(_ primaryKey: String?) -> [String: ReQL] {
        guard let primaryKey else { return [:] }
        return ["primary_key": .expr(.string(primaryKey))]
    }
}
