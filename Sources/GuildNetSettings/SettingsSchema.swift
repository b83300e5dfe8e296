import GuildNetCore

/// Known settings keys, their types, defaults and docs, plus the key syntax every key must follow.
///
/// Unknown keys are allowed when they match the key syntax; their values are kept as given.
public enum SettingsSchema {
    /// Documentation of one known key.
    public struct KeyInfo: Sendable, Equatable {
        public var key: String
        /// Human-readable type: `string`, `boolean`, `integer`, `array of strings`, …
        public var type: String
        /// The `default`-layer value, when the key has one.
        public var defaultValue: JSONValue?
        public var summary: String

        public init(key: String, type: String, defaultValue: JSONValue?, summary: String) {
            self.key = key
            self.type = type
            self.defaultValue = defaultValue
            self.summary = summary
        }
    }

    /// Longest accepted key, in characters.
    public static let maxKeyLength = 128

    /// The strategies `route.strategy` accepts.
    public static let routeStrategies = ["auto", "direct", "kubectl-proxy", "tailnet"]

    enum ValueType: Sendable {
        case string
        case bool
        case integer(ClosedRange<Int64>)
        case choice([String])
        case stringArray
        case hostPort

        var name: String {
            switch self {
            case .string: "string"
            case .bool: "boolean"
            case .integer(let range): "integer \(range.lowerBound)–\(range.upperBound)"
            case .choice(let choices): "string, one of " + choices.joined(separator: "|")
            case .stringArray: "array of strings"
            case .hostPort: "string host:port"
            }
        }

        /// What an error message says the key expects.
        var expectation: String {
            switch self {
            case .string: "a string"
            case .bool: "a boolean (true or false)"
            case .integer(let range): "an integer between \(range.lowerBound) and \(range.upperBound)"
            case .choice(let choices): "one of " + choices.joined(separator: ", ")
            case .stringArray: "an array of strings (or a comma-separated string)"
            case .hostPort: "a \"host:port\" string with a port between 1 and 65535"
            }
        }

        /// Whether raw CLI/env text for this type is taken as a string rather than parsed as JSON.
        var takesRawText: Bool {
            switch self {
            case .string, .hostPort: true
            case .bool, .integer, .choice, .stringArray: false
            }
        }
    }

    struct Entry: Sendable {
        var type: ValueType
        var defaultValue: JSONValue?
        var summary: String
    }

    private static let portRange: ClosedRange<Int64> = 1...65535

    static let entries: [String: Entry] = [
        // The Go GuildNet cluster-settings fields.
        "name": Entry(type: .string, defaultValue: nil, summary: "Display name of the cluster."),
        "namespace": Entry(type: .string, defaultValue: "default", summary: "Default Kubernetes namespace for workloads."),
        "api_proxy_url": Entry(type: .string, defaultValue: nil, summary: "URL of an API proxy used to reach the cluster."),
        "api_proxy_force_http": Entry(
            type: .bool, defaultValue: false, summary: "Talk plain HTTP to the API proxy."),
        "disable_api_proxy": Entry(type: .bool, defaultValue: false, summary: "Never use the API proxy."),
        "prefer_pod_proxy": Entry(
            type: .bool, defaultValue: false, summary: "Prefer the API server's pod proxy over direct pod access."),
        "use_port_forward": Entry(
            type: .bool, defaultValue: false, summary: "Reach in-cluster services through port-forwards."),
        "ts_login_server": Entry(type: .string, defaultValue: nil, summary: "Tailscale/Headscale login server URL."),
        "ts_routes": Entry(type: .stringArray, defaultValue: nil, summary: "Subnet routes (CIDRs) reached over the tailnet."),
        // Routing.
        "route.strategy": Entry(
            type: .choice(routeStrategies), defaultValue: "auto",
            summary: "Pins the API route strategy; auto tries direct, kubectl-proxy, then tailnet."),
        // RethinkDB connector.
        "rethinkdb.address": Entry(
            type: .hostPort, defaultValue: nil, summary: "Explicit RethinkDB address; skips service discovery."),
        "rethinkdb.user": Entry(type: .string, defaultValue: "admin", summary: "RethinkDB user."),
        "rethinkdb.password": Entry(type: .string, defaultValue: nil, summary: "RethinkDB password (secret)."),
        "rethinkdb.service": Entry(
            type: .string, defaultValue: "rethinkdb", summary: "Kubernetes service name used to discover RethinkDB."),
        "rethinkdb.namespace": Entry(
            type: .string, defaultValue: nil, summary: "Namespace of the RethinkDB service (defaults to `namespace`)."),
        "rethinkdb.port": Entry(type: .integer(portRange), defaultValue: 28015, summary: "RethinkDB driver port."),
        "rethinkdb.pool_size": Entry(
            type: .integer(1...64), defaultValue: 4, summary: "Most connections the cluster's RethinkDB connector opens."),
        "rethinkdb.max_feeds": Entry(
            type: .integer(1...1024), defaultValue: 32, summary: "Most concurrent changefeeds of the cluster."),
        "rethinkdb.feed_events_per_second": Entry(
            type: .integer(0...10_000_000), defaultValue: 10_000,
            summary: "Changefeed events per second the cluster's feeds may deliver together; 0 is unlimited."),
        "rethinkdb.feed_burst": Entry(
            type: .integer(1...10_000_000), defaultValue: 1_000,
            summary: "Changefeed events that may pass at once above rethinkdb.feed_events_per_second."),
        "rethinkdb.feed_batch_rows": Entry(
            type: .integer(1...100_000), defaultValue: 32,
            summary: "Most rows per changefeed response (max_batch_rows); small batches keep other clusters' latency low."),
        "rethinkdb.connect_timeout_seconds": Entry(
            type: .integer(1...300), defaultValue: 5, summary: "Connect and handshake timeout of one RethinkDB connection."),
        // Kubernetes client.
        "kube.qps": Entry(type: .integer(1...100_000), defaultValue: 50, summary: "Sustained Kubernetes API requests per second."),
        "kube.burst": Entry(type: .integer(1...100_000), defaultValue: 100, summary: "Kubernetes API request burst above kube.qps."),
        "kube.request_timeout_seconds": Entry(
            type: .integer(1...3600), defaultValue: 30, summary: "Timeout of one Kubernetes API request (not of watches)."),
    ]

    /// The `default` layer: every known key that has a default.
    public static var defaults: [String: JSONValue] {
        entries.compactMapValues(\.defaultValue)
    }

    /// Every known key, sorted by key.
    public static var known: [KeyInfo] {
        entries.keys.sorted().compactMap { key in
            entries[key].map { KeyInfo(key: key, type: $0.type.name, defaultValue: $0.defaultValue, summary: $0.summary) }
        }
    }

    /// Key syntax: 1–128 chars, dot-separated non-empty components of `[A-Za-z0-9_-]`.
    /// - Throws: ``HostError`` with ``ErrorCode/invalidSetting``.
    public static func validateKey(_ key: String) throws(HostError) {
        let bytes = Array(key.utf8)
        guard !bytes.isEmpty else {
            throw HostError(.invalidSetting, "setting key is empty")
        }
        guard key.count <= maxKeyLength else {
            throw HostError(
                .invalidSetting,
                "setting key \(String(reflecting: String(key.prefix(32))))… is \(key.count) characters long; the limit is \(maxKeyLength)")
        }
        var componentLength = 0
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                guard componentLength > 0 else { throw emptyComponent(key) }
                componentLength = 0
            } else if isKeyByte(byte) {
                componentLength += 1
            } else {
                throw HostError(
                    .invalidSetting,
                    "setting key \(String(reflecting: key)) is invalid: use dot-separated components of letters, digits, '_' and '-'")
            }
        }
        guard componentLength > 0 else { throw emptyComponent(key) }
    }

    private static func emptyComponent(_ key: String) -> HostError {
        HostError(.invalidSetting, "setting key \(String(reflecting: key)) has an empty component")
    }

    private static func isKeyByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
    }

    /// Validates and coerces `value` for `key`. Known keys are type-checked, with coercion from strings
    /// (`"true"` → `true`, `"5"` → `5`, `"a,b"` → `["a","b"]` for arrays); unknown keys keep their value.
    /// `null` is always accepted (it means "unset").
    /// - Throws: ``HostError`` with ``ErrorCode/invalidSetting`` naming the key and the expected type;
    ///   the message never quotes the value of a secret key.
    public static func normalize(_ value: JSONValue, forKey key: String) throws(HostError) -> JSONValue {
        try validateKey(key)
        if value == .null { return .null }
        guard let entry = entries[key] else { return value }
        if let normalized = coerce(value, to: entry.type) { return normalized }
        var message = "setting \(String(reflecting: key)) expects \(entry.type.expectation); got \(value.typeName)"
        if !SecretKeys.isSecret(key) {
            message += " " + SettingsJSON.compact(value)
        }
        throw HostError(.invalidSetting, message)
    }

    /// Turns raw text from `--set`, the environment or an env file into a value for `key`.
    ///
    /// Text is parsed as JSON when it parses (`true`, `5`, `{"a":1}`), otherwise kept as a string —
    /// except for known string-typed keys, whose text is kept exactly (so a password `1e3` stays
    /// `"1e3"`) unless it is a JSON string literal. The result is then ``normalize(_:forKey:)``d.
    public static func parse(text: String, forKey key: String) throws(HostError) -> JSONValue {
        try validateKey(key)
        if let entry = entries[key], entry.type.takesRawText {
            if case .string(let decoded)? = SettingsJSON.parse(text) {
                return try normalize(.string(decoded), forKey: key)
            }
            return try normalize(.string(text), forKey: key)
        }
        return try normalize(SettingsJSON.parse(text) ?? .string(text), forKey: key)
    }

    // MARK: Coercion

    // In these helpers `nil` means "cannot coerce". Avoid `cond ? value : nil`: JSONValue is
    // ExpressibleByNilLiteral, so that `nil` would silently become `JSONValue.null`.
    private static func coerce(_ value: JSONValue, to type: ValueType) -> JSONValue? {
        switch type {
        case .string:
            return value.stringValue.map(JSONValue.string)
        case .bool:
            return coerceBool(value)
        case .integer(let range):
            let number: Int64?
            if case .string(let text) = value {
                number = Int64(text.trimmingSpaces)
            } else {
                number = value.intValue
            }
            guard let number, range.contains(number) else { return nil }
            return .int(number)
        case .choice(let choices):
            guard let text = value.stringValue else { return nil }
            let candidate = text.trimmingSpaces.lowercased()
            guard choices.contains(candidate) else { return nil }
            return .string(candidate)
        case .stringArray:
            return coerceStringArray(value)
        case .hostPort:
            guard let text = value.stringValue else { return nil }
            let candidate = text.trimmingSpaces
            guard isHostPort(candidate) else { return nil }
            return .string(candidate)
        }
    }

    private static func coerceBool(_ value: JSONValue) -> JSONValue? {
        switch value {
        case .bool:
            return value
        case .int(0):
            return .bool(false)
        case .int(1):
            return .bool(true)
        case .string(let text):
            switch text.trimmingSpaces.lowercased() {
            case "true", "1", "yes", "on": return .bool(true)
            case "false", "0", "no", "off": return .bool(false)
            default: return nil
            }
        default:
            return nil
        }
    }

    private static func coerceStringArray(_ value: JSONValue) -> JSONValue? {
        switch value {
        case .array(let elements):
            guard elements.allSatisfy({ $0.stringValue != nil }) else { return nil }
            return value
        case .string(let text):
            let body = text.trimmingSpaces
            if body.hasPrefix("[") {
                guard let parsed = SettingsJSON.parse(body), case .array = parsed else { return nil }
                return coerceStringArray(parsed)
            }
            let parts = body.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
            return .array(parts.map(JSONValue.string))
        default:
            return nil
        }
    }

    /// `host:port` or `[ipv6]:port`, port 1–65535, host non-empty without whitespace.
    static func isHostPort(_ text: String) -> Bool {
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return false }
            let afterClose = text.index(after: close)
            guard afterClose < text.endIndex, text[afterClose] == ":" else { return false }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(after: afterClose)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return false }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
            if host.contains(":") { return false }
        }
        guard !host.isEmpty, !host.contains(where: \.isWhitespace) else { return false }
        guard !port.isEmpty, port.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int64(port), portRange.contains(number) else { return false }
        return true
    }
}
