import GuildNetCore

/// The `settings.json` format of a cluster's settings layer: `{"version":1,"settings":{…}}`,
/// mode 0600. The one codec of that file: the daemon reads and writes it through
/// `GuildNetSettings.SettingsFile`, the migration merges legacy values into it.
///
/// The codec checks the document's shape only; each value is validated against the settings
/// schema by `GuildNetSettings`.
public enum SettingsDocument {
    /// Current format version.
    public static let version: Int64 = 1

    /// Why a document was refused (without quoting its contents, which may hold credentials).
    public struct Problem: Error, Sendable, Equatable {
        public var reason: String
    }

    /// The stored settings of a document.
    /// - Throws: ``Problem`` for anything but a version-1 document with a `settings` object.
    public static func decode(_ bytes: [UInt8]) throws(Problem) -> [String: JSONValue] {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            throw Problem(reason: "not valid JSON (\(error.reason) at byte \(error.offset))")
        }
        guard case .object(let top) = document else {
            throw Problem(reason: "the top level is \(document.typeName), not an object")
        }
        for name in top.keys.sorted() where name != "version" && name != "settings" {
            throw Problem(reason: "unknown top-level key \(String(reflecting: name))")
        }
        if let stored = top["version"], stored.intValue != version {
            throw Problem(reason: "unsupported version \(String(stored.jsonString.prefix(20))) (expected \(version))")
        }
        guard let section = top["settings"], section != .null else { return [:] }
        guard case .object(let values) = section else {
            throw Problem(reason: "\"settings\" is \(section.typeName), not an object")
        }
        return values
    }

    /// The document for `values`: pretty JSON with sorted keys, ending in a newline.
    public static func encode(_ values: [String: JSONValue]) -> [UInt8] {
        var out: [UInt8] = []
        JSONValue.object(["version": .int(version), "settings": .object(values)]).writePretty(into: &out, indent: 0)
        out.append(UInt8(ascii: "\n"))
        return out
    }
}

extension JSONValue {
    /// Two-space indented JSON with sorted keys (the layout of files people read).
    fileprivate func writePretty(into out: inout [UInt8], indent: Int) {
        func newline(_ level: Int) {
            out.append(UInt8(ascii: "\n"))
            out.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: level * 2))
        }
        switch self {
        case .object(let fields) where !fields.isEmpty:
            out.append(UInt8(ascii: "{"))
            for (index, key) in fields.keys.sorted().enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                newline(indent + 1)
                JSONValue.string(key).write(into: &out)
                out.append(contentsOf: Array(" : ".utf8))
                fields[key]?.writePretty(into: &out, indent: indent + 1)
            }
            newline(indent)
            out.append(UInt8(ascii: "}"))
        case .array(let elements) where !elements.isEmpty:
            out.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                newline(indent + 1)
                element.writePretty(into: &out, indent: indent + 1)
            }
            newline(indent)
            out.append(UInt8(ascii: "]"))
        default:
            write(into: &out)
        }
    }
}
