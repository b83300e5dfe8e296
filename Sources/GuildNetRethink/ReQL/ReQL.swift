import GuildNetCore

/// A ReQL term: an immutable value that encodes to RethinkDB's JSON wire form.
///
/// Terms encode as `[type,[args…],{optargs}]` (optargs omitted when empty). Datums are JSON literals,
/// except arrays, which must be `[2,[…]]` (MAKE_ARRAY), also inside objects. Build terms with the
/// static entry points (``db(_:)``, ``table(_:)``, ``dbList()``, …) and chain the methods of
/// `ReQL+Builders.swift`; ``wire`` is what goes into a START query.
public struct ReQL: Sendable, Hashable, CustomStringConvertible {
    indirect enum Node: Sendable, Hashable {
        case datum(JSONValue)
        case term(RethinkWire.TermType, [ReQL], [String: ReQL])
    }

    let node: Node

    init(_ node: Node) {
        self.node = node
    }

    init(_ type: RethinkWire.TermType, _ args: [ReQL] = [], _ optargs: [String: ReQL] = [:]) {
        node = .term(type, args, optargs)
    }

    /// A literal value (a datum). Arrays, also nested inside objects, are encoded as MAKE_ARRAY.
    public static func expr(_ value: JSONValue) -> ReQL {
        ReQL(.datum(value))
    }

    /// The term type, or `nil` for a datum.
    public var termType: RethinkWire.TermType? {
        if case .term(let type, _, _) = node { type } else { nil }
    }

    /// The wire encoding of this term.
    public var wire: JSONValue {
        switch node {
        case .datum(let value):
            return Self.encodeDatum(value)
        case .term(let type, let args, let optargs):
            var parts: [JSONValue] = [.int(type.rawValue), .array(args.map(\.wire))]
            if !optargs.isEmpty {
                parts.append(.object(optargs.mapValues(\.wire)))
            }
            return .array(parts)
        }
    }

    /// The compact wire JSON (keys sorted).
    public var description: String { wire.jsonString }

    static func encodeDatum(_ value: JSONValue) -> JSONValue {
        switch value {
        case .array(let elements):
            return .array([.int(RethinkWire.TermType.makeArray.rawValue), .array(elements.map(encodeDatum))])
        case .object(let members):
            return .object(members.mapValues(encodeDatum))
        default:
            return value
        }
    }

    /// The same term with `changes` optargs replaced (used by the changefeed resume logic).
    func settingOptarg(_ key: String, _ value: JSONValue) -> ReQL {
        guard case .term(let type, let args, var optargs) = node else { return self }
        optargs[key] = .expr(value)
        return ReQL(.term(type, args, optargs))
    }

    /// The literal value of an optarg, if it was given as a datum.
    func optargDatum(_ key: String) -> JSONValue? {
        guard case .term(_, _, let optargs) = node, let value = optargs[key], case .datum(let datum) = value.node else {
            return nil
        }
        return datum
    }
}
