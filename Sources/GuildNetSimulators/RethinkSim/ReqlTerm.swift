import GuildNetCore
import GuildNetRethink

/// Term numbers RethinkSim evaluates beyond the shared builder subset of ``RethinkWire/TermType``
/// (numbers from rethinkdb `ql2.proto`).
enum ReqlExtraTerm: Int64, Sendable, CaseIterable {
    case add = 24
    case sub = 25
    case mul = 26
    case div = 27
    case hasFields = 32
    case nth = 45
    case indexDrop = 76
    case `default` = 92
    case indexStatus = 139
    case indexWait = 140
}

/// A term operation: one of the shared wire numbers or an extra one.
enum ReqlOp: Sendable, Hashable, CustomStringConvertible {
    case wire(RethinkWire.TermType)
    case extra(ReqlExtraTerm)

    init?(rawValue: Int64) {
        if let known = RethinkWire.TermType(rawValue: rawValue) {
            self = .wire(known)
        } else if let extra = ReqlExtraTerm(rawValue: rawValue) {
            self = .extra(extra)
        } else {
            return nil
        }
    }

    var description: String {
        switch self {
        case .wire(let type): "\(type)".uppercased()
        case .extra(let type): "\(type)".uppercased()
        }
    }
}

/// A compiled ReQL term.
indirect enum ReqlTerm: Sendable {
    /// A literal value (arrays and objects already folded when all their parts are literals).
    case datum(JSONValue)
    /// A literal object whose values are terms (`{"a": r.row["b"]}`).
    case object([String: ReqlTerm])
    /// `[type, [args], {optargs}]`.
    case op(ReqlOp, [ReqlTerm], [String: ReqlTerm])
    /// `FUNC`: parameter variable ids and body.
    case function(params: [Int64], body: ReqlTerm)
}

/// Turns query JSON into ``ReqlTerm``s, checking term types, arity, optional arguments and variable
/// scopes; every problem is a `COMPILE_ERROR`, found before anything is evaluated (as RethinkDB does).
struct ReqlCompiler {
    private var functionScopes: [[Int64]] = []

    /// Compiles a query's root term.
    static func compile(_ json: JSONValue) throws(ReqlFailure) -> ReqlTerm {
        var compiler = ReqlCompiler()
        return try compiler.compile(json, depth: 0)
    }

    /// Deepest term nesting accepted (the JSON parser already bounds nesting; this guards folding).
    static let maxDepth = 256

    private mutating func compile(_ json: JSONValue, depth: Int) throws(ReqlFailure) -> ReqlTerm {
        guard depth < Self.maxDepth else { throw .compile("Query nesting too deep.") }
        switch json {
        case .null, .bool, .int, .double, .string:
            return .datum(ReqlDatum.normalize(json))
        case .object(let members):
            var terms: [String: ReqlTerm] = [:]
            var literal: [String: JSONValue] = [:]
            var allLiteral = true
            for (key, value) in members {
                let term = try compile(value, depth: depth + 1)
                terms[key] = term
                if case .datum(let datum) = term { literal[key] = datum } else { allLiteral = false }
            }
            return allLiteral ? .datum(.object(literal)) : .object(terms)
        case .array(let parts):
            return try compileTerm(parts, depth: depth)
        }
    }

    private mutating func compileTerm(_ parts: [JSONValue], depth: Int) throws(ReqlFailure) -> ReqlTerm {
        guard let first = parts.first, let rawType = first.intValue else {
            throw .compile("Expected a term of the form [type, [arguments], {optional arguments}] but found \(JSONValue.array(parts).jsonString).")
        }
        guard parts.count <= 3 else { throw .compile("Term \(rawType) has more than three elements.") }
        let rawArgs: [JSONValue]
        if parts.count > 1 {
            guard case .array(let values) = parts[1] else {
                throw .compile("Expected an array of arguments for term \(rawType) but found \(ReqlDatum.typeName(parts[1])).")
            }
            rawArgs = values
        } else {
            rawArgs = []
        }
        var rawOptargs: [String: JSONValue] = [:]
        if parts.count > 2 {
            guard case .object(let values) = parts[2] else {
                throw .compile("Expected an object of optional arguments for term \(rawType) but found \(ReqlDatum.typeName(parts[2])).")
            }
            rawOptargs = values
        }
        if rawType == RethinkWire.TermType.datum.rawValue {
            guard rawArgs.count == 1, rawOptargs.isEmpty else { throw .compile("Expected 1 argument but found \(rawArgs.count).") }
            return .datum(ReqlDatum.normalize(rawArgs[0]))
        }
        guard let op = ReqlOp(rawValue: rawType) else {
            throw .compile("RethinkSim does not support term type \(rawType) (see the supported subset in RethinkSim's documentation).")
        }
        if op == .wire(.func) { return try compileFunction(rawArgs, rawOptargs, depth: depth) }
        let signature = Self.signature(op)
        try Self.checkArity(rawArgs.count, signature.min, signature.max)
        for name in rawOptargs.keys where op != .wire(.makeObj) && !signature.optargs.contains(name) {
            throw .compile("Unrecognized optional argument `\(name)`.")
        }
        switch op {
        case .wire(.var):
            guard let id = rawArgs[0].intValue else { throw .compile("Variable ids must be numbers.") }
            guard functionScopes.contains(where: { $0.contains(id) }) else {
                throw .compile("Variable \(id) is not in scope.")
            }
            return .op(op, [.datum(.int(id))], [:])
        case .wire(.implicitVar):
            guard let innermost = functionScopes.last, innermost.count == 1 else {
                throw .compile("r.row is not defined in this context.")
            }
            return .op(op, [], [:])
        default:
            break
        }
        var args: [ReqlTerm] = []
        args.reserveCapacity(rawArgs.count)
        for arg in rawArgs { args.append(try compile(arg, depth: depth + 1)) }
        var optargs: [String: ReqlTerm] = [:]
        for (name, value) in rawOptargs { optargs[name] = try compile(value, depth: depth + 1) }
        if op == .wire(.makeArray), optargs.isEmpty {
            var literal: [JSONValue] = []
            for arg in args {
                guard case .datum(let value) = arg else { return .op(op, args, optargs) }
                literal.append(value)
            }
            return .datum(.array(literal))
        }
        return .op(op, args, optargs)
    }

    private mutating func compileFunction(
        _ rawArgs: [JSONValue], _ rawOptargs: [String: JSONValue], depth: Int
    ) throws(ReqlFailure) -> ReqlTerm {
        try Self.checkArity(rawArgs.count, 2, 2)
        if let name = rawOptargs.keys.first { throw .compile("Unrecognized optional argument `\(name)`.") }
        guard case .datum(.array(let ids)) = try compile(rawArgs[0], depth: depth + 1) else {
            throw .compile("Expected an array of variable ids as the first argument of FUNC.")
        }
        var params: [Int64] = []
        for id in ids {
            guard let number = id.intValue else { throw .compile("Variable ids must be numbers.") }
            params.append(number)
        }
        functionScopes.append(params)
        defer { functionScopes.removeLast() }
        let body = try compile(rawArgs[1], depth: depth + 1)
        return .function(params: params, body: body)
    }

    private static func checkArity(_ count: Int, _ min: Int, _ max: Int?) throws(ReqlFailure) {
        if let max, min == max, count != min {
            throw .compile("Expected \(min) argument\(min == 1 ? "" : "s") but found \(count).")
        }
        if let max, count < min || count > max {
            throw .compile("Expected between \(min) and \(max) arguments but found \(count).")
        }
        if count < min {
            throw .compile("Expected \(min) or more argument\(min == 1 ? "" : "s") but found \(count).")
        }
    }

    /// Argument counts and optional arguments RethinkDB accepts for each supported term.
    static func signature(_ op: ReqlOp) -> (min: Int, max: Int?, optargs: Set<String>) {
        let writeOptions: Set<String> = ["durability", "return_changes", "non_atomic", "ignore_write_hook"]
        switch op {
        case .wire(let type):
            switch type {
            case .datum, .makeObj: return (0, 0, [])
            case .makeArray, .and, .or: return (0, nil, [])
            case .var, .db, .not, .asc, .desc, .dbCreate, .dbDrop, .indexList: return (1, 1, [])
            case .implicitVar, .dbList: return (0, 0, [])
            case .error: return (0, 1, [])
            case .table: return (1, 2, ["read_mode", "identifier_format", "use_outdated"])
            case .get: return (2, 2, [])
            case .getAll: return (1, nil, ["index"])
            case .eq, .ne, .lt, .le, .gt, .ge: return (1, nil, [])
            case .getField, .bracket: return (2, 2, [])
            case .pluck: return (1, nil, [])
            case .filter: return (2, 2, ["default"])
            case .orderBy: return (1, nil, ["index"])
            case .count: return (1, 2, [])
            case .update, .replace: return (2, 2, writeOptions)
            case .delete: return (1, 1, writeOptions)
            case .insert: return (2, 2, writeOptions.union(["conflict"]))
            case .tableCreate: return (1, 2, ["primary_key", "shards", "replicas", "nonvoting_replicas", "primary_replica_tag", "durability"])
            case .tableDrop: return (1, 2, [])
            case .tableList: return (0, 1, [])
            case .funcall: return (1, nil, [])
            case .func: return (2, 2, [])
            case .limit: return (2, 2, [])
            case .indexCreate: return (2, 3, ["multi", "geo"])
            case .changes:
                return (1, 1, ["squash", "changefeed_queue_size", "include_initial", "include_states", "include_offsets", "include_types"])
            case .wait: return (0, 1, ["wait_for", "timeout"])
            }
        case .extra(let type):
            switch type {
            case .add, .sub, .mul, .div: return (1, nil, [])
            case .hasFields: return (1, nil, [])
            case .nth, .indexDrop, .default: return (2, 2, [])
            case .indexStatus, .indexWait: return (1, nil, [])
            }
        }
    }
}
