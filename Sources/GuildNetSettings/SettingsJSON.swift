import Foundation
import GuildNetCore

/// JSON parsing and rendering of setting values (the settings file itself is `SettingsDocument`).
enum SettingsJSON {
    /// Parses `bytes` as one JSON value (any type at top level), or `nil` when it is not JSON.
    ///
    /// Decoder errors are deliberately dropped: their descriptions can quote the input, which may hold
    /// credentials.
    static func parse(_ bytes: [UInt8]) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    static func parse(_ text: String) -> JSONValue? {
        parse(Array(text.utf8))
    }

    /// Compact JSON with sorted keys, for error messages about non-secret values.
    static func compact(_ value: JSONValue, limit: Int = 80) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return value.typeName }
        let text = String(decoding: data, as: UTF8.self)
        return text.count > limit ? String(text.prefix(limit)) + "…" : text
    }
}
