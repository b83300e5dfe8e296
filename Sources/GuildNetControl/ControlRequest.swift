import GuildNetCore

/// One parsed control request: `{"id":…,"op":"…", …fields}`.
public struct ControlRequest: Sendable {
    /// The client's id, echoed in the reply (a string or an integer; `null` when absent).
    public var id: JSONValue
    public var op: String
    public var params: ControlParams

    /// Parses one line. On failure returns the error together with whatever id could be read, so
    /// the error reply still carries it.
    public static func parse(_ line: [UInt8]) -> Result<ControlRequest, ControlRequestError> {
        let value: JSONValue
        do {
            value = try JSONParser.parse(line)
        } catch {
            return .failure(ControlRequestError(id: .null, error: HostError(.invalidJSON, "request is not valid JSON: \(error)")))
        }
        guard case .object(var fields) = value else {
            return .failure(ControlRequestError(id: .null, error: HostError(.invalidRequest, "a request must be a JSON object, got \(value.typeName)")))
        }
        let id = fields.removeValue(forKey: "id") ?? .null
        switch id {
        case .null, .string, .int: break
        default:
            return .failure(ControlRequestError(id: .null, error: HostError(.invalidField, "field \"id\" must be a string or an integer, got \(id.typeName)")))
        }
        guard let opValue = fields.removeValue(forKey: "op") else {
            return .failure(ControlRequestError(id: id, error: HostError(.missingField, "missing field \"op\"")))
        }
        guard case .string(let op) = opValue else {
            return .failure(ControlRequestError(id: id, error: HostError(.invalidField, "field \"op\" must be a string, got \(opValue.typeName)")))
        }
        return .success(ControlRequest(id: id, op: op, params: ControlParams(op: op, fields: fields)))
    }
}

public struct ControlRequestError: Error, Sendable {
    public var id: JSONValue
    public var error: HostError
}

/// The fields of a request other than `id` and `op`, with typed accessors that produce the
/// protocol's `missing_field` / `invalid_field` errors.
public struct ControlParams: Sendable {
    public let op: String
    public let fields: [String: JSONValue]

    public init(op: String, fields: [String: JSONValue]) {
        self.op = op
        self.fields = fields
    }

    /// Rejects fields the op does not define (catches typos such as `clsuter`).
    public func allowOnly(_ allowed: Set<String>) throws(HostError) {
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            let guess = Spelling.closest(to: unknown, among: allowed).map { "did you mean \(String(reflecting: $0))? " } ?? ""
            let list = allowed.isEmpty ? "it takes no fields" : "its fields: " + allowed.sorted().joined(separator: ", ")
            throw HostError(.invalidField, "op \(op) has no field \(String(reflecting: unknown)); \(guess)\(list)")
        }
    }

    public func value(_ name: String) throws(HostError) -> JSONValue {
        guard let value = fields[name] else { throw HostError(.missingField, "op \(op) needs field \"\(name)\"") }
        return value
    }

    public func string(_ name: String) throws(HostError) -> String {
        let value = try value(name)
        guard case .string(let string) = value else { throw mistyped(name, "a string", value) }
        return string
    }

    public func optionalString(_ name: String) throws(HostError) -> String? {
        guard let value = fields[name], value != .null else { return nil }
        guard case .string(let string) = value else { throw mistyped(name, "a string", value) }
        return string
    }

    public func optionalBool(_ name: String) throws(HostError) -> Bool? {
        guard let value = fields[name], value != .null else { return nil }
        guard case .bool(let bool) = value else { throw mistyped(name, "a boolean", value) }
        return bool
    }

    public func optionalInt(_ name: String, in range: ClosedRange<Int64>) throws(HostError) -> Int64? {
        guard let value = fields[name], value != .null else { return nil }
        guard let int = value.intValue else { throw mistyped(name, "an integer", value) }
        guard range.contains(int) else {
            throw HostError(.invalidField, "field \"\(name)\" must be between \(range.lowerBound) and \(range.upperBound), got \(int)")
        }
        return int
    }

    public func optionalObject(_ name: String) throws(HostError) -> [String: JSONValue]? {
        guard let value = fields[name], value != .null else { return nil }
        guard case .object(let object) = value else { throw mistyped(name, "an object", value) }
        return object
    }

    private func mistyped(_ name: String, _ expected: String, _ value: JSONValue) -> HostError {
        // A string holding broken JSON is usually a JSON value a shell or a client failed to send
        // as JSON (`settings={"namespace":apps}`): say why it did not parse.
        if case .string(let text) = value, let first = text.first(where: { !$0.isWhitespace }), first == "{" || first == "[" {
            do {
                _ = try JSONParser.parse(Array(text.utf8))
            } catch {
                return HostError(
                    .invalidField,
                    "field \"\(name)\" must be \(expected), got a string that looks like JSON but does not parse: \(error); send it as JSON (from a shell, quote it whole: '\(name)={\"key\":\"value\"}')"
                )
            }
        }
        return HostError(.invalidField, "field \"\(name)\" must be \(expected), got \(value.typeName)")
    }
}
