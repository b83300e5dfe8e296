import GuildNetCore
import GuildNetRethink

/// `pluck` on one value: strings keep a field, arrays list selectors, objects select nested fields.
enum ReqlPluck {
    static func pluck(_ value: JSONValue, _ selectors: [JSONValue]) -> JSONValue {
        guard case .object(let members) = value else { return value }
        var result: [String: JSONValue] = [:]
        for selector in selectors { apply(selector, members, into: &result) }
        return .object(result)
    }

    private static func apply(_ selector: JSONValue, _ members: [String: JSONValue], into result: inout [String: JSONValue]) {
        switch selector {
        case .string(let field):
            if let value = members[field] { result[field] = value }
        case .array(let nested):
            for inner in nested { apply(inner, members, into: &result) }
        case .object(let nested):
            for (field, inner) in nested {
                guard let value = members[field] else { continue }
                if inner == .bool(true) {
                    result[field] = value
                } else if case .array(let elements) = value {
                    result[field] = .array(elements.map { pluck($0, [inner]) })
                } else if case .object = value {
                    result[field] = pluck(value, [inner])
                }
            }
        default:
            break
        }
    }
}

/// One ordering of `order_by`: a field or a function, ascending or descending.
private struct Ordering {
    enum Key {
        case field(String)
        case function(ReqlFunction)
    }
    var key: Key
    var descending: Bool
}

extension RethinkData {
    mutating func evaluateSequence(
        _ type: RethinkWire.TermType, _ args: [ReqlTerm], _ optargs: [String: ReqlTerm], _ scope: ReqlScope
    ) throws -> ReqlValue {
        switch type {
        case .get:
            let table = try tableArgument(args[0], scope)
            let key = try datum(args[1], scope)
            return .single(ReqlSingle(table: table, key: key, doc: self.table(table)?[key]))
        case .getAll:
            return try getAll(args, optargs, scope)
        case .filter:
            return try filter(args, optargs, scope)
        case .orderBy:
            return try orderBy(args, optargs, scope)
        case .limit:
            var sequence = try self.sequence(try evaluate(args[0], scope))
            let count = try integer(args[1], scope)
            guard count >= 0 else { throw ReqlFailure.logic("LIMIT takes a non-negative argument (got \(count))") }
            sequence.rows = Array(sequence.rows.prefix(Int(clamping: count)))
            sequence.feed = nil
            return .sequence(sequence)
        case .count:
            return .datum(.int(Int64(try count(args, scope))))
        case .pluck:
            var selectors: [JSONValue] = []
            for arg in args.dropFirst() { selectors.append(try datum(arg, scope)) }
            let target = try evaluate(args[0], scope)
            switch target {
            case .datum(let value) where value.objectValue != nil:
                return .datum(ReqlPluck.pluck(value, selectors))
            case .single(let single):
                guard let doc = single.doc else { throw ReqlFailure.logic("Cannot perform pluck on a non-object non-sequence `null`.") }
                return .datum(ReqlPluck.pluck(doc, selectors))
            case .datum(let value) where value.arrayValue == nil:
                throw ReqlFailure.logic("Cannot perform pluck on a non-object non-sequence `\(value.jsonString)`.")
            default:
                var sequence = try self.sequence(target)
                for row in sequence.rows where row.objectValue == nil {
                    throw ReqlFailure.logic("Cannot perform pluck on a non-object non-sequence `\(row.jsonString)`.")
                }
                sequence.rows = sequence.rows.map { ReqlPluck.pluck($0, selectors) }
                sequence.table = nil
                sequence.feed?.ops.append(.pluck(selectors))
                return .sequence(sequence)
            }
        default:
            throw ReqlFailure.compile("Term \(type) is not a sequence term.")
        }
    }

    /// The first argument of `get`, `get_all`, `insert`…: it must be a table.
    mutating func tableArgument(_ term: ReqlTerm, _ scope: ReqlScope) throws -> ReqlTableRef {
        let value = try evaluate(term, scope)
        guard case .table(let table) = value else { throw ReqlFailure.expected("TABLE", found: value.typeName) }
        return table
    }

    private mutating func getAll(_ args: [ReqlTerm], _ optargs: [String: ReqlTerm], _ scope: ReqlScope) throws -> ReqlValue {
        let table = try tableArgument(args[0], scope)
        var keys: [JSONValue] = []
        for arg in args.dropFirst() { keys.append(try datum(arg, scope)) }
        let indexName = try optargs["index"].map { try string($0, scope) }
        var result: [JSONValue] = []
        if let indexName, indexName != table.primaryKey {
            guard let index = self.table(table)?.indexes[indexName] else { throw ReqlFailure.indexMissing(indexName, table) }
            let all = rows(of: table)
            for key in keys {
                for row in all where indexValues(row, index).contains(where: { ReqlDatum.equal($0, key) }) {
                    result.append(row)
                }
            }
        } else {
            let live = self.table(table)
            result = keys.compactMap { live?[$0] }
        }
        let feed = FeedSource(table: table, selector: .keys(keys, index: indexName))
        return .sequence(ReqlSequence(rows: result, table: table, isArray: false, feed: feed))
    }

    private mutating func filter(_ args: [ReqlTerm], _ optargs: [String: ReqlTerm], _ scope: ReqlScope) throws -> ReqlValue {
        var sequence = try self.sequence(try evaluate(args[0], scope))
        let predicate: FeedPredicate
        switch try evaluate(args[1], scope) {
        case .function(let function): predicate = .function(function)
        case .datum(let value): predicate = .literal(value)
        case let other: throw ReqlFailure.expected("FUNCTION", found: other.typeName)
        }
        var kept: [JSONValue] = []
        for row in sequence.rows where try predicateMatches(row, predicate, defaultTerm: optargs["default"], scope) {
            kept.append(row)
        }
        sequence.rows = kept
        sequence.feed?.ops.append(.filter(predicate))
        return .sequence(sequence)
    }

    /// RethinkDB's `filter` call: an object result matches field by field, anything else by truthiness;
    /// a missing field counts as `default` (false unless given).
    mutating func predicateMatches(
        _ row: JSONValue, _ predicate: FeedPredicate, defaultTerm: ReqlTerm?, _ scope: ReqlScope
    ) throws -> Bool {
        do {
            let result: JSONValue
            switch predicate {
            case .function(let function): result = try call(function, [row])
            case .literal(let value): result = value
            }
            if case .object(let wanted) = result {
                for (field, value) in wanted {
                    guard let actual = row[field] else {
                        throw ReqlFailure.nonExistence("No attribute `\(field)` in object.")
                    }
                    if !ReqlDatum.equal(actual, value) { return false }
                }
                return true
            }
            return ReqlDatum.isTruthy(result)
        } catch let failure as ReqlFailure where failure.responseType == .runtimeError && failure.errorType == .nonExistence {
            guard let defaultTerm else { return false }
            let fallback = try evaluate(defaultTerm, scope)
            if case .function(let function) = fallback {
                return ReqlDatum.isTruthy(try call(function, [.string(failure.message)]))
            }
            return ReqlDatum.isTruthy(try asDatum(fallback))
        }
    }

    private mutating func count(_ args: [ReqlTerm], _ scope: ReqlScope) throws -> Int {
        let target = try evaluate(args[0], scope)
        if case .datum(.string(let text)) = target, args.count == 1 { return text.count }
        if case .datum(.object(let members)) = target, args.count == 1 { return members.count }
        let rows = try sequence(target).rows
        guard args.count == 2 else { return rows.count }
        switch try evaluate(args[1], scope) {
        case .function(let function):
            var matches = 0
            for row in rows where ReqlDatum.isTruthy(try call(function, [row])) { matches += 1 }
            return matches
        case let value:
            let wanted = try asDatum(value)
            return rows.filter { ReqlDatum.equal($0, wanted) }.count
        }
    }

    private mutating func ordering(_ term: ReqlTerm, _ scope: ReqlScope) throws -> Ordering {
        var descending = false
        var inner = term
        if case .op(.wire(let direction), let args, _) = term, direction == .asc || direction == .desc {
            descending = direction == .desc
            inner = args[0]
        }
        switch try evaluate(inner, scope) {
        case .datum(.string(let field)): return Ordering(key: .field(field), descending: descending)
        case .function(let function): return Ordering(key: .function(function), descending: descending)
        case let other: throw ReqlFailure.expected("STRING or FUNCTION", found: other.typeName)
        }
    }

    private mutating func orderBy(_ args: [ReqlTerm], _ optargs: [String: ReqlTerm], _ scope: ReqlScope) throws -> ReqlValue {
        let source = try evaluate(args[0], scope)
        var orderings: [Ordering] = []
        for arg in args.dropFirst() { orderings.append(try ordering(arg, scope)) }
        guard !orderings.isEmpty || optargs["index"] != nil else {
            throw ReqlFailure.logic("Must specify something to order by.")
        }
        var rows: [JSONValue]
        var keyed: [(keys: [JSONValue?], row: JSONValue)] = []
        var descendingFlags = orderings.map(\.descending)
        let isIndexed = optargs["index"] != nil
        if let indexTerm = optargs["index"] {
            guard case .table(let table) = source else {
                throw ReqlFailure.logic("Indexed order_by can only be performed on a TABLE or TABLE_SLICE.")
            }
            let indexOrdering = try ordering(indexTerm, scope)
            guard case .field(let indexName) = indexOrdering.key else {
                throw ReqlFailure.expected("STRING", found: "FUNCTION")
            }
            descendingFlags.insert(indexOrdering.descending, at: 0)
            rows = self.rows(of: table)
            if indexName == table.primaryKey {
                for row in rows { keyed.append(([row[indexName]], row)) }
            } else {
                guard let index = self.table(table)?.indexes[indexName] else { throw ReqlFailure.indexMissing(indexName, table) }
                for row in rows {
                    for value in indexValues(row, index) { keyed.append(([value], row)) }
                }
            }
        } else {
            rows = try sequence(source).rows
            keyed = rows.map { ([], $0) }
        }
        for position in keyed.indices {
            for ordering in orderings {
                let row = keyed[position].row
                switch ordering.key {
                case .field(let field): keyed[position].keys.append(row[field])
                case .function(let function): keyed[position].keys.append(try call(function, [row]))
                }
            }
        }
        let flags = descendingFlags
        // Ties keep their (primary-key) order: the offset is the last sort key.
        let sorted = keyed.enumerated().sorted { left, right in
            for (index, descending) in flags.enumerated() {
                let order = Self.compareOptional(left.element.keys[index], right.element.keys[index])
                if order != 0 { return descending ? order > 0 : order < 0 }
            }
            return left.offset < right.offset
        }
        keyed = sorted.map(\.element)
        var result = try isIndexed ? ReqlSequence(rows: [], table: nil, isArray: false, feed: nil) : sequence(source)
        if case .table(let table) = source { result.table = table }
        result.rows = keyed.map(\.row)
        result.isArray = !isIndexed
        result.feed = nil
        return .sequence(result)
    }

    /// Missing values sort before everything.
    private static func compareOptional(_ a: JSONValue?, _ b: JSONValue?) -> Int {
        switch (a, b) {
        case (nil, nil): 0
        case (nil, _): -1
        case (_, nil): 1
        case (let x?, let y?): ReqlDatum.compare(x, y)
        }
    }
}
