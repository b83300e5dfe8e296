import GuildNetCore

/// The core (group "", version v1) resources KubeSim simulates.
public enum KubeResource: String, Sendable, CaseIterable, Hashable {
    case namespaces, pods, services, endpoints, configmaps

    public var kind: String {
        switch self {
        case .namespaces: "Namespace"
        case .pods: "Pod"
        case .services: "Service"
        case .endpoints: "Endpoints"
        case .configmaps: "ConfigMap"
        }
    }

    public var singular: String {
        switch self {
        case .namespaces: "namespace"
        case .pods: "pod"
        case .services: "service"
        case .endpoints: "endpoints"
        case .configmaps: "configmap"
        }
    }

    public var namespaced: Bool { self != .namespaces }

    public var shortNames: [String] {
        switch self {
        case .namespaces: ["ns"]
        case .pods: ["po"]
        case .services: ["svc"]
        case .endpoints: ["ep"]
        case .configmaps: ["cm"]
        }
    }

    static let verbs: [String] = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
}

/// A Kubernetes API error, rendered as a `Status` object whose `code` is also the HTTP status.
public struct KubeStatusError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Int
    public var reason: String
    public var message: String
    public var name: String?
    public var kind: String?
    public var retryAfterSeconds: Int?

    public init(code: Int, reason: String, message: String, name: String? = nil, kind: String? = nil, retryAfterSeconds: Int? = nil) {
        self.code = code
        self.reason = reason
        self.message = message
        self.name = name
        self.kind = kind
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { "\(code) \(reason): \(message)" }

    public var status: JSONValue {
        var details: [String: JSONValue] = [:]
        if let name { details["name"] = .string(name) }
        if let kind { details["kind"] = .string(kind) }
        if let retryAfterSeconds { details["retryAfterSeconds"] = .int(Int64(retryAfterSeconds)) }
        var object: [String: JSONValue] = [
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": .object([:]),
            "status": "Failure",
            "message": .string(message),
            "reason": .string(reason),
            "code": .int(Int64(code)),
        ]
        if !details.isEmpty { object["details"] = .object(details) }
        return .object(object)
    }

    static func notFound(_ resource: KubeResource, _ name: String) -> KubeStatusError {
        KubeStatusError(code: 404, reason: "NotFound", message: "\(resource.rawValue) \"\(name)\" not found", name: name, kind: resource.rawValue)
    }
    static func alreadyExists(_ resource: KubeResource, _ name: String) -> KubeStatusError {
        KubeStatusError(code: 409, reason: "AlreadyExists", message: "\(resource.rawValue) \"\(name)\" already exists", name: name, kind: resource.rawValue)
    }
    static func conflict(_ resource: KubeResource, _ name: String) -> KubeStatusError {
        KubeStatusError(
            code: 409, reason: "Conflict",
            message:
                "Operation cannot be fulfilled on \(resource.rawValue) \"\(name)\": the object has been modified; please apply your changes to the latest version and try again",
            name: name, kind: resource.rawValue)
    }
    static func badRequest(_ message: String) -> KubeStatusError {
        KubeStatusError(code: 400, reason: "BadRequest", message: message)
    }
    static func invalid(_ resource: KubeResource, _ name: String, _ message: String) -> KubeStatusError {
        KubeStatusError(code: 422, reason: "Invalid", message: "\(resource.kind) \"\(name)\" is invalid: \(message)", name: name, kind: resource.kind)
    }
    static func expired(_ message: String) -> KubeStatusError {
        KubeStatusError(code: 410, reason: "Expired", message: message)
    }
}

extension JSONValue {
    /// The value at a dotted path of object keys (`metadata.name`), or nil.
    func value(atPath path: some StringProtocol) -> JSONValue? {
        var current: JSONValue? = self
        for key in path.split(separator: ".") {
            current = current?[String(key)]
        }
        return current
    }

    /// Sets `value` under `key` of the object at `path` (objects are created as needed).
    mutating func setValue(_ value: JSONValue?, path: [String]) {
        guard let first = path.first else {
            if let value { self = value }
            return
        }
        var object = objectValue ?? [:]
        var child = object[first] ?? .object([:])
        if path.count == 1 {
            object[first] = value
        } else {
            child.setValue(value, path: Array(path.dropFirst()))
            object[first] = child
        }
        self = .object(object)
    }
}

/// RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, everything else replaces
/// (keys starting with `$` are ignored). Strategic merge patches go to ``StrategicMergePatch``.
func mergePatch(_ target: JSONValue, _ patch: JSONValue) -> JSONValue {
    guard case .object(let patchObject) = patch else { return patch }
    var result = target.objectValue ?? [:]
    for (key, value) in patchObject {
        if key.hasPrefix("$") { continue }
        if value.isNull {
            result[key] = nil
        } else {
            result[key] = mergePatch(result[key] ?? .null, value)
        }
    }
    return .object(result)
}

/// A parsed `labelSelector` (equality-based: `k=v`, `k==v`, `k!=v`, `k`, `!k`) or `fieldSelector` (`path=v`, `path!=v`).
struct KubeSelector: Sendable {
    enum Term: Sendable {
        case equals(String, String)
        case notEquals(String, String)
        case exists(String)
        case notExists(String)
    }
    var terms: [Term] = []
    let isField: Bool

    init(_ text: String?, isField: Bool) throws {
        self.isField = isField
        guard let text, !text.isEmpty else { return }
        for raw in text.split(separator: ",") {
            let term = raw.trimmingCharacters(in: .whitespaces)
            if term.isEmpty { continue }
            if let range = term.range(of: "!=") {
                terms.append(.notEquals(String(term[..<range.lowerBound]), String(term[range.upperBound...])))
            } else if let range = term.range(of: "==") {
                terms.append(.equals(String(term[..<range.lowerBound]), String(term[range.upperBound...])))
            } else if let range = term.range(of: "=") {
                terms.append(.equals(String(term[..<range.lowerBound]), String(term[range.upperBound...])))
            } else if term.contains(" ") || term.contains("(") {
                throw KubeStatusError.badRequest("unsupported selector: \(term)")
            } else if term.hasPrefix("!") {
                terms.append(.notExists(String(term.dropFirst())))
            } else {
                terms.append(.exists(term))
            }
        }
    }

    private func lookup(_ key: String, in object: JSONValue) -> String? {
        if isField {
            guard let value = object.value(atPath: key) else { return key.hasPrefix("metadata.namespace") ? "" : nil }
            switch value {
            case .string(let s): return s
            case .int(let i): return String(i)
            case .bool(let b): return String(b)
            default: return nil
            }
        }
        return object["metadata"]?["labels"]?[key]?.stringValue
    }

    func matches(_ object: JSONValue) -> Bool {
        for term in terms {
            switch term {
            case .equals(let key, let value): if lookup(key, in: object) != value { return false }
            case .notEquals(let key, let value): if lookup(key, in: object) == value { return false }
            case .exists(let key): if lookup(key, in: object) == nil { return false }
            case .notExists(let key): if lookup(key, in: object) != nil { return false }
            }
        }
        return true
    }
}
