import GuildNetCore

/// Known settings keys (each a ``SettingKey`` with its type, default and docs), the key syntax, and
/// the rules for keys outside the schema.
///
/// Settings are strict: a key that is not known is refused with `invalid_setting`, naming the
/// closest known key, unless it is under ``customPrefix``, where free-form keys live (values kept
/// as given). Secrecy is declared per known key; a custom key is secret when its name says so
/// (``GuildNetCore/SecretKeys``).
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

    /// One known key, type-erased (see ``SettingKey``).
    struct Entry: Sendable {
        var name: String
        var type: ValueType
        var defaultValue: JSONValue?
        var summary: String
        var secret = false
    }

    /// The prefix of free-form keys.
    public static let customPrefix = "custom."

    private static let portRange: ClosedRange<Int64> = 1...65535

    static let entries: [String: Entry] = Dictionary(allKeys.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })

    /// Whether `key` holds a credential: declared for known keys, by its words for custom keys.
    public static func isSecret(_ key: String) -> Bool {
        if let entry = entries[key] { return entry.secret }
        return SecretKeys.isSecret(key)
    }

    /// `value`, or the redaction placeholder when `key` is secret.
    public static func redact(_ value: JSONValue, forKey key: String) -> JSONValue {
        isSecret(key) ? SecretKeys.redacted : value
    }

    /// Whether settings may hold `key`: a known key, or a free-form key under ``customPrefix``.
    public static func isAllowed(_ key: String) -> Bool {
        entries[key] != nil || (key.hasPrefix(customPrefix) && (try? validateKey(key)) != nil)
    }

    /// Refuses a key that is neither known nor custom, suggesting the closest known key.
    static func requireKnown(_ key: String) throws(HostError) {
        guard entries[key] == nil, !key.hasPrefix(customPrefix) else { return }
        var message = "unknown setting \(String(reflecting: key))"
        if let suggestion = closestKnownKey(to: key) {
            message += "; did you mean \(String(reflecting: suggestion))?"
        }
        message += " Free-form keys go under \"\(customPrefix)\" (docs/operations.md, Settings)."
        throw HostError(.invalidSetting, message)
    }

    /// The known key nearest to `key` by edit distance, when it is near enough to be a typo.
    static func closestKnownKey(to key: String) -> String? {
        let typed = Array(key.lowercased())
        var best: (key: String, distance: Int)?
        for candidate in entries.keys.sorted() {
            let distance = editDistance(typed, Array(candidate))
            if distance < (best?.distance ?? Int.max) { best = (candidate, distance) }
        }
        guard let best, best.distance <= max(2, best.key.count / 3) else { return nil }
        return best.key
    }

    /// Levenshtein distance (insertions, deletions, substitutions).
    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        var previous = Array(0...b.count)
        for (i, ca) in a.enumerated() {
            var current = [i + 1] + [Int](repeating: 0, count: b.count)
            for (j, cb) in b.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (ca == cb ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }

    /// The `default` layer: every known key that has a default.
    public static let defaults: [String: JSONValue] = entries.compactMapValues(\.defaultValue)

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
    /// (`"true"` → `true`, `"5"` → `5`, `"a,b"` → `["a","b"]` for arrays); custom keys keep their value.
    /// `null` is always accepted (it means "unset").
    /// - Throws: ``HostError`` with ``ErrorCode/invalidSetting`` naming the key and the expected type,
    ///   or an unknown key and the closest known one; the message never quotes a secret value.
    public static func normalize(_ value: JSONValue, forKey key: String) throws(HostError) -> JSONValue {
        try validateKey(key)
        try requireKnown(key)
        if value == .null { return .null }
        guard let entry = entries[key] else { return value }
        if let normalized = coerce(value, to: entry.type) { return normalized }
        var message = "setting \(String(reflecting: key)) expects \(entry.type.expectation); got \(value.typeName)"
        if !entry.secret {
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
        try requireKnown(key)
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
