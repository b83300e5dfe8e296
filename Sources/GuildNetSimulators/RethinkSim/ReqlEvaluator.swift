import GuildNetCore
import GuildNetRethink

/// Term evaluation: dispatch, variables, functions, comparisons and coercions. Sequence, write,
/// administration and changefeed terms live in the other `ReqlEvaluator+…` files.
extension RethinkData {
    mutating func evaluate(_ term: ReqlTerm, _ scope: ReqlScope) throws -> ReqlValue {
        switch term {
        case .datum(let value):
            return .datum(value)
        case .object(let members):
            var object: [String: JSONValue] = [:]
            for (key, member) in members { object[key] = try datum(member, scope) }
            return .datum(.object(object))
        case .function(let params, let body):
            return .function(ReqlFunction(params: params, body: body, scope: scope))
        case .op(.wire(let type), let args, let optargs):
            return try evaluateWire(type, args, optargs, scope)
        case .op(.extra(let type), let args, let optargs):
            return try evaluateExtra(type, args, optargs, scope)
        }
    }

    private mutating func evaluateWire(
        _ type: RethinkWire.TermType, _ args: [ReqlTerm], _ optargs: [String: ReqlTerm], _ scope: ReqlScope
    ) throws -> ReqlValue {
        switch type {
        case .datum:
            return try evaluate(args[0], scope)
        case .makeArray:
            var elements: [JSONValue] = []
            for arg in args { elements.append(try datum(arg, scope)) }
            return .datum(.array(elements))
        case .makeObj:
            var object: [String: JSONValue] = [:]
            for (key, member) in optargs { object[key] = try datum(member, scope) }
            return .datum(.object(object))
        case .var:
            guard let id = try datum(args[0], scope).intValue, let value = scope.vars[id] else {
                throw ReqlFailure.logic("Variable is not in scope.")
            }
            return .datum(value)
        case .implicitVar:
            guard let value = scope.implicit else { throw ReqlFailure.logic("r.row is not defined in this context.") }
            return .datum(value)
        case .func:
            throw ReqlFailure.compile("Malformed FUNC term.")
        case .funcall:
            let callee = try evaluate(args[0], scope)
            guard case .function(let function) = callee else { throw ReqlFailure.expected("FUNCTION", found: callee.typeName) }
            var values: [JSONValue] = []
            for arg in args.dropFirst() { values.append(try datum(arg, scope)) }
            return .datum(try call(function, values))
        case .eq, .ne, .lt, .le, .gt, .ge:
            var values: [JSONValue] = []
            for arg in args { values.append(try datum(arg, scope)) }
            return .datum(.bool(Self.compareChain(type, values)))
        case .not:
            return .datum(.bool(!ReqlDatum.isTruthy(try datum(args[0], scope))))
        case .and, .or:
            var last: JSONValue = .bool(type == .and)
            for arg in args {
                last = try datum(arg, scope)
                if ReqlDatum.isTruthy(last) != (type == .and) { return .datum(last) }
            }
            return .datum(last)
        case .error:
            if args.isEmpty { throw ReqlFailure.logic("Empty ERROR term outside a default block.") }
            throw ReqlFailure.runtime(.user, try string(args[0], scope))
        case .asc, .desc:
            throw ReqlFailure.logic("\(type == .asc ? "ASC" : "DESC") may only be used as an argument to ORDER_BY.")
        case .getField:
            return try getField(try evaluate(args[0], scope), try string(args[1], scope))
        case .bracket:
            let target = try evaluate(args[0], scope)
            switch try datum(args[1], scope) {
            case .string(let field): return try getField(target, field)
            case let index where index.intValue != nil: return .datum(try nth(target, index.intValue ?? 0))
            case let other: throw ReqlFailure.expected("NUMBER or STRING", found: ReqlDatum.typeName(other))
            }
        case .db, .table, .dbCreate, .dbDrop, .dbList, .tableCreate, .tableDrop, .tableList, .indexCreate, .indexList, .wait:
            return try evaluateAdmin(type, args, optargs, scope)
        case .get, .getAll, .filter, .orderBy, .limit, .count, .pluck:
            return try evaluateSequence(type, args, optargs, scope)
        case .insert, .update, .replace, .delete:
            return try evaluateWrite(type, args, optargs, scope)
        case .changes:
            return try changesTerm(args, optargs, scope)
        }
    }

    private mutating func evaluateExtra(
        _ type: ReqlExtraTerm, _ args: [ReqlTerm], _ optargs: [String: ReqlTerm], _ scope: ReqlScope
    ) throws -> ReqlValue {
        switch type {
        case .add, .sub, .mul, .div:
            var values: [JSONValue] = []
            for arg in args { values.append(try datum(arg, scope)) }
            return .datum(try Self.arithmetic(type, values))
        case .hasFields:
            var fields: [String] = []
            for arg in args.dropFirst() { fields.append(try string(arg, scope)) }
            let target = try evaluate(args[0], scope)
            func has(_ row: JSONValue) -> Bool { fields.allSatisfy { (row[$0] ?? .null) != .null } }
            if case .datum(let value) = target, case .object = value { return .datum(.bool(has(value))) }
            if case .single(let single) = target { return .datum(.bool(single.doc.map(has) ?? false)) }
            var sequence = try self.sequence(target)
            sequence.rows = sequence.rows.filter(has)
            sequence.feed = nil
            return .sequence(sequence)
        case .nth:
            guard let index = try datum(args[1], scope).intValue else { throw ReqlFailure.expected("NUMBER", found: "STRING") }
            return .datum(try nth(try evaluate(args[0], scope), index))
        case .default:
            do {
                let value = try datum(args[0], scope)
                if value != .null { return .datum(value) }
            } catch let failure as ReqlFailure where failure.responseType == .runtimeError && failure.errorType == .nonExistence {
                // fall through to the default
            }
            return .datum(try datum(args[1], scope))
        case .indexDrop, .indexStatus, .indexWait:
            return try evaluateIndexExtra(type, args, scope)
        }
    }

    // MARK: - Functions and coercions

    /// Calls a function with datum arguments; a one-parameter function also binds `r.row`.
    mutating func call(_ function: ReqlFunction, _ arguments: [JSONValue]) throws -> JSONValue {
        guard function.params.count == arguments.count else {
            throw ReqlFailure.logic(
                "Expected function with \(arguments.count) argument\(arguments.count == 1 ? "" : "s") but found function with \(function.params.count) argument\(function.params.count == 1 ? "" : "s")."
            )
        }
        var scope = function.scope
        for (param, argument) in zip(function.params, arguments) { scope.vars[param] = argument }
        scope.implicit = arguments.count == 1 ? arguments[0] : nil
        return try datum(function.body, scope)
    }

    /// Evaluates to a datum (a `get` is its row or null, a sequence its rows).
    mutating func datum(_ term: ReqlTerm, _ scope: ReqlScope) throws -> JSONValue {
        try asDatum(try evaluate(term, scope))
    }

    mutating func asDatum(_ value: ReqlValue) throws -> JSONValue {
        switch value {
        case .datum(let datum): return datum
        case .single(let single): return single.doc ?? .null
        case .sequence(let sequence): return .array(sequence.rows)
        case .table(let table): return .array(rows(of: table))
        default: throw ReqlFailure.expected("DATUM", found: value.typeName)
        }
    }

    mutating func string(_ term: ReqlTerm, _ scope: ReqlScope) throws -> String {
        let value = try datum(term, scope)
        guard case .string(let text) = value else { throw ReqlFailure.expected("STRING", found: ReqlDatum.typeName(value)) }
        return text
    }

    mutating func integer(_ term: ReqlTerm, _ scope: ReqlScope) throws -> Int64 {
        let value = try datum(term, scope)
        guard let number = value.intValue else {
            if case .double(let number) = value { throw ReqlFailure.logic("Number not an integer: \(number)") }
            throw ReqlFailure.expected("NUMBER", found: ReqlDatum.typeName(value))
        }
        return number
    }

    mutating func optionalBool(_ term: ReqlTerm?, _ scope: ReqlScope) throws -> Bool? {
        guard let term else { return nil }
        let value = try datum(term, scope)
        guard case .bool(let flag) = value else { throw ReqlFailure.expected("BOOL", found: ReqlDatum.typeName(value)) }
        return flag
    }

    /// A value used as a sequence: tables, selections, streams and arrays.
    mutating func sequence(_ value: ReqlValue) throws -> ReqlSequence {
        switch value {
        case .table(let table):
            return ReqlSequence(rows: rows(of: table), table: table, isArray: false, feed: FeedSource(table: table, selector: .all))
        case .sequence(let sequence):
            return sequence
        case .datum(.array(let elements)):
            return ReqlSequence(rows: elements, table: nil, isArray: true, feed: nil)
        default:
            throw ReqlFailure.expected("SEQUENCE", found: value.typeName)
        }
    }

    private mutating func getField(_ target: ReqlValue, _ field: String) throws -> ReqlValue {
        switch target {
        case .datum(.object(let members)):
            guard let value = members[field] else {
                throw ReqlFailure.nonExistence("No attribute `\(field)` in object:\n\(ReqlDatum.pretty(.object(members)))")
            }
            return .datum(value)
        case .single(let single):
            guard let doc = single.doc else {
                throw ReqlFailure.logic("Cannot perform get_field on a non-object non-sequence `null`.")
            }
            return try getField(.datum(doc), field)
        case .datum(let other) where other.arrayValue == nil:
            throw ReqlFailure.logic("Cannot perform get_field on a non-object non-sequence `\(other.jsonString)`.")
        default:
            var sequence = try self.sequence(target)
            sequence.rows = sequence.rows.compactMap { $0[field] }
            sequence.table = nil
            sequence.feed = nil
            return .sequence(sequence)
        }
    }

    private mutating func nth(_ target: ReqlValue, _ index: Int64) throws -> JSONValue {
        let rows = try sequence(target).rows
        let position = index < 0 ? Int64(rows.count) + index : index
        guard position >= 0, position < rows.count else {
            throw ReqlFailure.nonExistence("Index out of bounds: \(index)")
        }
        return rows[Int(position)]
    }

    static func compareChain(_ type: RethinkWire.TermType, _ values: [JSONValue]) -> Bool {
        if type == .ne {
            return !compareChain(.eq, values)
        }
        for (left, right) in zip(values, values.dropFirst()) {
            let order = ReqlDatum.compare(left, right)
            let holds: Bool
            switch type {
            case .eq: holds = order == 0
            case .lt: holds = order < 0
            case .le: holds = order <= 0
            case .gt: holds = order > 0
            default: holds = order >= 0
            }
            if !holds { return false }
        }
        return true
    }

    static func arithmetic(_ type: ReqlExtraTerm, _ values: [JSONValue]) throws -> JSONValue {
        guard var result = values.first else { return .int(0) }
        for value in values.dropFirst() {
            switch (type, result, value) {
            case (.add, .string(let left), .string(let right)):
                result = .string(left + right)
            case (.add, .array(let left), .array(let right)):
                result = .array(left + right)
            default:
                guard let left = result.doubleValue, let right = value.doubleValue else {
                    let culprit = result.doubleValue == nil ? result : value
                    throw ReqlFailure.expected("NUMBER", found: ReqlDatum.typeName(culprit))
                }
                switch type {
                case .add: result = ReqlDatum.normalize(.double(left + right))
                case .sub: result = ReqlDatum.normalize(.double(left - right))
                case .mul: result = ReqlDatum.normalize(.double(left * right))
                default:
                    guard right != 0 else { throw ReqlFailure.logic("Cannot divide by zero.") }
                    result = ReqlDatum.normalize(.double(left / right))
                }
            }
        }
        return result
    }
}
