import GuildNetCore

extension ReQL {
    /// Parses the JSON form of the builder subset (used by the control protocol's `rethink.query` and
    /// `rethink.changes`).
    ///
    /// ## Form
    ///
    /// ```json
    /// {"db": "app", "table": "users",
    ///  "chain": [{"orderBy": {"index": "id", "desc": true}}, {"filter": {"age": 3}}, {"limit": 3}]}
    /// ```
    ///
    /// - `db` (string) starts at `r.db(db)`; `table` (string) starts at `r.table(table)`, inside `db`
    ///   when both are given. With neither, the query starts at the top level (`r`).
    /// - `chain` (array) lists steps applied in order. A step is an object with exactly one op key,
    ///   whose value is the op's argument, plus that op's option keys: `{"insert": [...], "conflict": "replace"}`.
    /// - Shorthands for a single step, applied before `chain`:
    ///   - the step's keys at the top level: `{"dbList": true}`, `{"dbCreate": "x"}`,
    ///     `{"db": "app", "table": "t", "getAll": [1, 2], "index": "by_x"}`;
    ///   - `"op"` and `"args"`: `{"db": "app", "table": "users", "op": "filter", "args": [{"age": 3}]}`.
    ///     `args` holds the positional arguments: the keys of `getAll` and the fields of `pluck`, the
    ///     only argument of every other op; omitted for ops without one. Options sit at the top level.
    ///
    /// ## Ops
    ///
    /// | op | applies to | argument | options | gives |
    /// |---|---|---|---|---|
    /// | `dbList` | top | `true` | | value |
    /// | `dbCreate`, `dbDrop` | top | name (string) | | value |
    /// | `tableList` | top, db | `true` | | value |
    /// | `tableCreate` | top, db | name | `primaryKey` (string) | value |
    /// | `tableDrop` | db | name | | value |
    /// | `indexCreate` | table | name | | value |
    /// | `get` | table | primary key (any JSON) | | row |
    /// | `getAll` | table | non-empty array of keys | `index` (string) | selection |
    /// | `insert` | table | object or array of objects | `conflict` (`error`, `replace`, `update`), `returnChanges` (bool) | value |
    /// | `update` | table, selection, row | object | | value |
    /// | `replace` | table, selection, row | object | | value |
    /// | `delete` | table, selection, row | `true` | | value |
    /// | `filter` | table, selection | object: rows whose fields equal these values | | selection |
    /// | `where` | table, selection | array of `[field, cmp, value]`, `cmp` one of `eq ne lt le gt ge`; all must hold | | selection |
    /// | `orderBy` | table, selection | a key or an array of keys; a key is `"field"`, `{"field": f, "desc": bool}` or `{"index": i, "desc": bool}` (at most one index key, tables only) | | selection |
    /// | `limit` | table, selection | integer ≥ 0 | | selection |
    /// | `pluck` | table, selection, row | field name or non-empty array of names | | same kind |
    /// | `count` | table, selection | `true` | | value |
    /// | `changes` | table, selection, row | `true` or `{"includeInitial": bool, "includeStates": bool, "includeTypes": bool, "squash": bool or seconds, "queueSize": integer ≥ 1}` | | changefeed |
    ///
    /// Nothing may follow a step that gives a value or a changefeed. As in RethinkDB, an index order
    /// applies to a table only (put it before `filter`).
    ///
    /// - Throws: ``HostError`` `.invalidField` naming the offending field (`chain[1].limit`, `table`, …)
    ///   and what was expected.
    public init(json: JSONValue) throws(HostError) {
        self = try ReQLJSONForm.parse(json)
    }

    /// `true` when this term is a changefeed (`….changes(…)`).
    public var isChangefeed: Bool { termType == .changes }
}

/// The parser behind ``ReQL/init(json:)``.
enum ReQLJSONForm {
    enum Kind: String {
        case top = "the top level"
        case db = "a database"
        case table = "a table"
        case selection = "a selection"
        case row = "a single row"
        case value = "a value"
        case feed = "a changefeed"
    }

    struct Current {
        var term: ReQL?
        var kind: Kind
    }

    struct OpSpec {
        var accepts: Set<Kind>
        var options: Set<String> = []
        /// How `"args"` maps to the argument: the whole array, its only element, or nothing (`true`).
        var arity: Arity = .one
    }

    enum Arity { case none, one, list }

    static let ops: [String: OpSpec] = [
        "dbList": OpSpec(accepts: [.top], arity: .none),
        "dbCreate": OpSpec(accepts: [.top]),
        "dbDrop": OpSpec(accepts: [.top]),
        "tableList": OpSpec(accepts: [.top, .db], arity: .none),
        "tableCreate": OpSpec(accepts: [.top, .db], options: ["primaryKey"]),
        "tableDrop": OpSpec(accepts: [.db]),
        "indexCreate": OpSpec(accepts: [.table]),
        "get": OpSpec(accepts: [.table]),
        "getAll": OpSpec(accepts: [.table], options: ["index"], arity: .list),
        "insert": OpSpec(accepts: [.table], options: ["conflict", "returnChanges"]),
        "update": OpSpec(accepts: [.table, .selection, .row]),
        "replace": OpSpec(accepts: [.table, .selection, .row]),
        "delete": OpSpec(accepts: [.table, .selection, .row], arity: .none),
        "filter": OpSpec(accepts: [.table, .selection]),
        "where": OpSpec(accepts: [.table, .selection]),
        "orderBy": OpSpec(accepts: [.table, .selection]),
        "limit": OpSpec(accepts: [.table, .selection]),
        "pluck": OpSpec(accepts: [.table, .selection, .row], arity: .list),
        "count": OpSpec(accepts: [.table, .selection], arity: .none),
        "changes": OpSpec(accepts: [.table, .selection, .row], arity: .none),
    ]

    static let rootKeys: Set<String> = ["db", "table", "chain", "op", "args"]

    static func parse(_ json: JSONValue) throws(HostError) -> ReQL {
        guard let root = json.objectValue else { throw invalid("query", "must be an object, got \(json.typeName)") }
        var current = Current(term: nil, kind: .top)
        if let db = root["db"] {
            guard let name = db.stringValue, !name.isEmpty else { throw invalid("db", "must be a non-empty string") }
            current = Current(term: .db(name), kind: .db)
        }
        if let table = root["table"] {
            guard let name = table.stringValue, !name.isEmpty else { throw invalid("table", "must be a non-empty string") }
            current = Current(term: current.term.map { $0.table(name) } ?? .table(name), kind: .table)
        }

        // The top-level single step: `"op"`/`"args"` or an op key among the root keys.
        let extra = root.filter { !rootKeys.contains($0.key) }
        if let op = root["op"] {
            guard let name = op.stringValue, let spec = ops[name] else {
                throw invalid("op", "must be one of \(ops.keys.sorted().joined(separator: ", "))")
            }
            let argument = try shorthandArgument(root["args"], spec: spec, op: name)
            var step = extra
            step[name] = argument
            current = try apply(step: step, to: current, path: "")
        } else if root["args"] != nil {
            throw invalid("args", "is only allowed with \"op\"")
        } else if !extra.isEmpty {
            current = try apply(step: extra, to: current, path: "")
        }

        if let chain = root["chain"] {
            guard let steps = chain.arrayValue else { throw invalid("chain", "must be an array of steps") }
            for (index, step) in steps.enumerated() {
                let path = "chain[\(index)]"
                guard let object = step.objectValue else { throw invalid(path, "must be an object with one op key") }
                current = try apply(step: object, to: current, path: path + ".")
            }
        }
        guard let term = current.term, current.kind != .db else {
            throw invalid("query", "selects \(current.kind.rawValue) but runs nothing; add a step (e.g. \"chain\")")
        }
        return term
    }

    static func shorthandArgument(_ args: JSONValue?, spec: OpSpec, op: String) throws(HostError) -> JSONValue {
        guard let args else {
            if spec.arity == .none { return .bool(true) }
            throw invalid("args", "is required for \(op)")
        }
        guard let list = args.arrayValue else { throw invalid("args", "must be an array") }
        switch spec.arity {
        case .none:
            guard list.isEmpty else { throw invalid("args", "must be empty for \(op)") }
            return .bool(true)
        case .list:
            return .array(list)
        case .one:
            guard list.count == 1, let only = list.first else { throw invalid("args", "must hold exactly one argument for \(op)") }
            return only
        }
    }

    static func apply(step: [String: JSONValue], to current: Current, path: String) throws(HostError) -> Current {
        let named = step.keys.filter { ops[$0] != nil }.sorted()
        guard named.count == 1, let op = named.first, let spec = ops[op], let argument = step[op] else {
            let found = named.isEmpty ? "none" : named.joined(separator: ", ")
            let field = path.isEmpty ? "query" : String(path.dropLast())
            throw invalid(field, "must hold exactly one op (found \(found)); ops: \(ops.keys.sorted().joined(separator: ", "))")
        }
        for key in step.keys where key != op && !spec.options.contains(key) {
            throw invalid(path + key, "is not an option of \(op)" + optionsHint(spec))
        }
        guard spec.accepts.contains(current.kind) else {
            throw invalid(path + op, "cannot follow \(current.kind.rawValue)")
        }
        return try build(op: op, argument: argument, options: step, on: current, path: path + op)
    }

    private static func optionsHint(_ spec: OpSpec) -> String {
        spec.options.isEmpty ? " (it has none)" : " (options: \(spec.options.sorted().joined(separator: ", ")))"
    }

    static func build(
        op: String, argument: JSONValue, options: [String: JSONValue], on current: Current, path: String
    )
        throws(HostError) -> Current
    {
        let term = current.term
        switch op {
        case "dbList":
            try expectTrue(argument, path)
            return Current(term: .dbList(), kind: .value)
        case "dbCreate":
            return Current(term: .dbCreate(try name(argument, path)), kind: .value)
        case "dbDrop":
            return Current(term: .dbDrop(try name(argument, path)), kind: .value)
        case "tableList":
            try expectTrue(argument, path)
            return Current(term: term.map { $0.tableList() } ?? .tableList(), kind: .value)
        case "tableCreate":
            let table = try name(argument, path)
            let primaryKey = try optionalString(options["primaryKey"], path: "\(path.dropLast(op.count))primaryKey")
            let created = term.map { $0.tableCreate(table, primaryKey: primaryKey) } ?? .tableCreate(table, primaryKey: primaryKey)
            return Current(term: created, kind: .value)
        case "tableDrop":
            return Current(term: try require(term, path).tableDrop(try name(argument, path)), kind: .value)
        case "indexCreate":
            return Current(term: try require(term, path).indexCreate(try name(argument, path)), kind: .value)
        case "get":
            return Current(term: try require(term, path).get(argument), kind: .row)
        case "getAll":
            guard let keys = argument.arrayValue, !keys.isEmpty else { throw invalid(path, "must be a non-empty array of keys") }
            let index = try optionalString(options["index"], path: "\(path.dropLast(op.count))index")
            return Current(term: try require(term, path).getAll(keys, index: index), kind: .selection)
        case "insert":
            guard argument.objectValue != nil || argument.arrayValue?.allSatisfy({ $0.objectValue != nil }) == true else {
                throw invalid(path, "must be an object or an array of objects")
            }
            let prefix = String(path.dropLast(op.count))
            var conflict: ReQL.Conflict?
            if let value = options["conflict"] {
                guard let raw = value.stringValue, let parsed = ReQL.Conflict(rawValue: raw) else {
                    throw invalid(prefix + "conflict", "must be one of error, replace, update")
                }
                conflict = parsed
            }
            let returnChanges = try optionalBool(options["returnChanges"], path: prefix + "returnChanges")
            return Current(
                term: try require(term, path).insert(argument, conflict: conflict, returnChanges: returnChanges), kind: .value)
        case "update":
            return Current(term: try require(term, path).update(try object(argument, path)), kind: .value)
        case "replace":
            return Current(term: try require(term, path).replace(try object(argument, path)), kind: .value)
        case "delete":
            try expectTrue(argument, path)
            return Current(term: try require(term, path).delete(), kind: .value)
        case "filter":
            guard let predicate = argument.objectValue else { throw invalid(path, "must be an object of field values") }
            return Current(term: try require(term, path).filter(predicate), kind: .selection)
        case "where":
            return Current(term: try require(term, path).filter(try comparisons(argument, path)), kind: .selection)
        case "orderBy":
            return Current(term: try orderBy(argument, on: current, path: path), kind: .selection)
        case "limit":
            guard let count = argument.intValue, count >= 0, count <= Int64(Int32.max) else {
                throw invalid(path, "must be a non-negative integer, got \(argument.typeName)")
            }
            return Current(term: try require(term, path).limit(Int(count)), kind: .selection)
        case "pluck":
            let fields: [JSONValue] = argument.arrayValue ?? [argument]
            let names = fields.compactMap(\.stringValue)
            guard !names.isEmpty, names.count == fields.count else {
                throw invalid(path, "must be a field name or a non-empty array of field names")
            }
            return Current(term: try require(term, path).pluck(names), kind: current.kind == .row ? .value : .selection)
        case "count":
            try expectTrue(argument, path)
            return Current(term: try require(term, path).count(), kind: .value)
        case "changes":
            return Current(term: try changes(argument, on: try require(term, path), path: path), kind: .feed)
        default:
            throw invalid(path, "is not a known op")
        }
    }

    static func comparisons(_ argument: JSONValue, _ path: String) throws(HostError) -> ReQL {
        guard let list = argument.arrayValue, !list.isEmpty else {
            throw invalid(path, "must be a non-empty array of [field, cmp, value]")
        }
        var predicate: ReQL?
        for (index, entry) in list.enumerated() {
            guard let triple = entry.arrayValue, triple.count == 3, let field = triple[0].stringValue,
                let cmp = triple[1].stringValue
            else { throw invalid("\(path)[\(index)]", "must be [field, cmp, value]") }
            let lhs = ReQL.row(field)
            let value = triple[2]
            let comparison: ReQL
            switch cmp {
            case "eq": comparison = lhs.eq(value)
            case "ne": comparison = lhs.ne(value)
            case "lt": comparison = lhs.lt(value)
            case "le": comparison = lhs.le(value)
            case "gt": comparison = lhs.gt(value)
            case "ge": comparison = lhs.ge(value)
            default: throw invalid("\(path)[\(index)]", "comparison must be one of eq, ne, lt, le, gt, ge, got \"\(cmp)\"")
            }
            predicate = predicate.map { $0.and(comparison) } ?? comparison
        }
        guard let predicate else { throw invalid(path, "must not be empty") }
        return predicate
    }

    static func orderBy(_ argument: JSONValue, on current: Current, path: String) throws(HostError) -> ReQL {
        let entries = argument.arrayValue ?? [argument]
        guard !entries.isEmpty else { throw invalid(path, "must name at least one key") }
        var keys: [ReQL.OrderKey] = []
        var index: ReQL.OrderKey?
        for (position, entry) in entries.enumerated() {
            let entryPath = argument.arrayValue == nil ? path : "\(path)[\(position)]"
            if let field = entry.stringValue {
                keys.append(.asc(field))
                continue
            }
            guard let object = entry.objectValue else {
                throw invalid(entryPath, "must be a field name or {\"field\"|\"index\": name, \"desc\": bool}")
            }
            for key in object.keys where !["field", "index", "desc"].contains(key) {
                throw invalid("\(entryPath).\(key)", "is not a key of an order (field, index, desc)")
            }
            let desc = try optionalBool(object["desc"], path: "\(entryPath).desc") ?? false
            switch (object["field"]?.stringValue, object["index"]?.stringValue) {
            case (let field?, nil):
                keys.append(desc ? .desc(field) : .asc(field))
            case (nil, let name?):
                guard index == nil else { throw invalid(entryPath, "only one index key is allowed") }
                guard current.kind == .table else { throw invalid(entryPath, "an index order needs a table, not \(current.kind.rawValue)") }
                index = desc ? .desc(name) : .asc(name)
            default:
                throw invalid(entryPath, "must have exactly one of \"field\" or \"index\" (a string)")
            }
        }
        return try require(current.term, path).orderBy(keys, index: index)
    }

    static func changes(_ argument: JSONValue, on term: ReQL, path: String) throws(HostError) -> ReQL {
        if argument == .bool(true) { return term.changes() }
        guard let options = argument.objectValue else { throw invalid(path, "must be true or an object of options") }
        let known: Set<String> = ["includeInitial", "includeStates", "includeTypes", "squash", "queueSize"]
        for key in options.keys where !known.contains(key) {
            throw invalid("\(path).\(key)", "is not an option of changes (\(known.sorted().joined(separator: ", ")))")
        }
        var squash: ReQL.Squash?
        switch options["squash"] {
        case nil: squash = nil
        case .bool(let value)?: squash = .enabled(value)
        case let value? where value.doubleValue.map({ $0 >= 0 }) == true: squash = .seconds(value.doubleValue ?? 0)
        default: throw invalid("\(path).squash", "must be a boolean or a non-negative number of seconds")
        }
        var queueSize: Int?
        if let value = options["queueSize"] {
            guard let size = value.intValue, size >= 1, size <= Int64(Int32.max) else {
                throw invalid("\(path).queueSize", "must be an integer ≥ 1")
            }
            queueSize = Int(size)
        }
        return term.changes(
            includeInitial: try optionalBool(options["includeInitial"], path: "\(path).includeInitial"),
            includeStates: try optionalBool(options["includeStates"], path: "\(path).includeStates"),
            includeTypes: try optionalBool(options["includeTypes"], path: "\(path).includeTypes"),
            squash: squash, queueSize: queueSize)
    }

    // MARK: Helpers

    static func invalid(_ field: String, _ problem: String) -> HostError {
        HostError(.invalidField, "rethink query: \(field) \(problem)")
    }

    static func require(_ term: ReQL?, _ path: String) throws(HostError) -> ReQL {
        guard let term else { throw invalid(path, "needs a database or table first") }
        return term
    }

    static func expectTrue(_ argument: JSONValue, _ path: String) throws(HostError) {
        guard argument == .bool(true) || argument == .object([:]) else { throw invalid(path, "must be true") }
    }

    static func name(_ argument: JSONValue, _ path: String) throws(HostError) -> String {
        guard let name = argument.stringValue, !name.isEmpty else { throw invalid(path, "must be a non-empty name") }
        return name
    }

    static func object(_ argument: JSONValue, _ path: String) throws(HostError) -> JSONValue {
        guard argument.objectValue != nil else { throw invalid(path, "must be an object, got \(argument.typeName)") }
        return argument
    }

    static func optionalString(_ value: JSONValue?, path: String) throws(HostError) -> String? {
        guard let value else { return nil }
        guard let string = value.stringValue, !string.isEmpty else { throw invalid(path, "must be a non-empty string") }
        return string
    }

    static func optionalBool(_ value: JSONValue?, path: String) throws(HostError) -> Bool? {
        guard let value else { return nil }
        guard let bool = value.boolValue else { throw invalid(path, "must be a boolean") }
        return bool
    }
}
