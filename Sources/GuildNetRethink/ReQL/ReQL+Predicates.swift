import GuildNetCore

/// Field access, comparisons and boolean logic for `filter` predicates.
///
/// ```swift
/// table.filter { $0["age"] > 3 && $0["name"] == "x" }
/// table.filter(ReQL.row("a").eq(1))
/// ```
/// The comparison operators take a ``GuildNetCore/JSONValue`` on the right and build a term; to
/// compare two terms use the methods (``eq(_:)-(ReQL)``, ``lt(_:)-(ReQL)``, …).
extension ReQL {
    /// `r.row` (IMPLICIT_VAR); only meaningful inside ``filter(_:)-(ReQL)``, which binds it.
    public static var row: ReQL { ReQL(.implicitVar) }

    /// `r.row[field]`.
    public static func row(_ field: String) -> ReQL {
        row[field]
    }

    /// `value[field]` (BRACKET) → `[170,[value,field]]`.
    public subscript(field: String) -> ReQL {
        ReQL(.bracket, [self, .expr(.string(field))])
    }

    public func eq(_ other: JSONValue) -> ReQL { ReQL(.eq, [self, .expr(other)]) }
    public func eq(_ other: ReQL) -> ReQL { ReQL(.eq, [self, other]) }
    public func ne(_ other: JSONValue) -> ReQL { ReQL(.ne, [self, .expr(other)]) }
    public func ne(_ other: ReQL) -> ReQL { ReQL(.ne, [self, other]) }
    public func lt(_ other: JSONValue) -> ReQL { ReQL(.lt, [self, .expr(other)]) }
    public func lt(_ other: ReQL) -> ReQL { ReQL(.lt, [self, other]) }
    public func le(_ other: JSONValue) -> ReQL { ReQL(.le, [self, .expr(other)]) }
    public func le(_ other: ReQL) -> ReQL { ReQL(.le, [self, other]) }
    public func gt(_ other: JSONValue) -> ReQL { ReQL(.gt, [self, .expr(other)]) }
    public func gt(_ other: ReQL) -> ReQL { ReQL(.gt, [self, other]) }
    public func ge(_ other: JSONValue) -> ReQL { ReQL(.ge, [self, .expr(other)]) }
    public func ge(_ other: ReQL) -> ReQL { ReQL(.ge, [self, other]) }
    public func and(_ other: ReQL) -> ReQL { ReQL(.and, [self, other]) }
    public func or(_ other: ReQL) -> ReQL { ReQL(.or, [self, other]) }
    public func not() -> ReQL { ReQL(.not, [self]) }

    public static func == (lhs: ReQL, rhs: JSONValue) -> ReQL { lhs.eq(rhs) }
    public static func != (lhs: ReQL, rhs: JSONValue) -> ReQL { lhs.ne(rhs) }
    public static func < (lhs: ReQL, rhs: JSONValue) -> ReQL { lhs.lt(rhs) }
    public static func <= (lhs: ReQL, rhs: JSONValue) -> ReQL { lhs.le(rhs) }
    public static func > (lhs: ReQL, rhs: JSONValue) -> ReQL { lhs.gt(rhs) }
    public static func >= (lhs: ReQL, rhs: JSONValue) -> ReQL { lhs.ge(rhs) }
    public static func && (lhs: ReQL, rhs: ReQL) -> ReQL { lhs.and(rhs) }
    public static func || (lhs: ReQL, rhs: ReQL) -> ReQL { lhs.or(rhs) }
    public static prefix func ! (operand: ReQL) -> ReQL { operand.not() }

    // MARK: Functions

    /// Marks the parameter while the body is built; replaced by a fresh id afterwards.
    private static let placeholderVariable = Int64.min

    /// A one-parameter FUNC `[69,[[2,[id]],body]]`; `id` is one above every variable id the body
    /// already uses (1 when it uses none), so nested functions never capture each other's variable.
    static func function(_ body: (ReQL) -> ReQL) -> ReQL {
        let placeholder = ReQL(.var, [.expr(.int(placeholderVariable))])
        let built = body(placeholder)
        let id = max(built.maxVariableID(excluding: placeholderVariable), 0) + 1
        let resolved = built.replacing(placeholder, with: ReQL(.var, [.expr(.int(id))]))
        return ReQL(.func, [ReQL(.makeArray, [.expr(.int(id))]), resolved])
    }

    /// `predicate` as a function when it refers to ``row``, else unchanged.
    static func wrapImplicitVariable(_ predicate: ReQL) -> ReQL {
        guard predicate.containsImplicitVariable else { return predicate }
        return function { variable in predicate.replacing(ReQL(.implicitVar), with: variable) }
    }

    var containsImplicitVariable: Bool {
        guard case .term(let type, let args, let optargs) = node else { return false }
        if type == .implicitVar { return true }
        return args.contains { $0.containsImplicitVariable } || optargs.values.contains { $0.containsImplicitVariable }
    }

    /// The largest variable id used by a VAR or declared by a FUNC inside this term.
    func maxVariableID(excluding excluded: Int64) -> Int64 {
        guard case .term(let type, let args, let optargs) = node else { return 0 }
        var result: Int64 = 0
        var declared: [ReQL] = []
        if type == .var {
            declared = args
        } else if type == .func, let parameters = args.first, case .term(.makeArray, let ids, _) = parameters.node {
            declared = ids
        }
        for id in declared {
            if case .datum(.int(let value)) = id.node, value != excluded { result = max(result, value) }
        }
        for child in args + Array(optargs.values) {
            result = max(result, child.maxVariableID(excluding: excluded))
        }
        return result
    }

    func replacing(_ target: ReQL, with replacement: ReQL) -> ReQL {
        if self == target { return replacement }
        guard case .term(let type, let args, let optargs) = node else { return self }
        return ReQL(
            .term(
                type, args.map { $0.replacing(target, with: replacement) },
                optargs.mapValues { $0.replacing(target, with: replacement) }))
    }
}
