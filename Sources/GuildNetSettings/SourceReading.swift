import Foundation
import GuildNetCore
import GuildNetStateDirectory

/// What one of GuildNet's files says, as settings: normalized values, plus a warning for every
/// field that is not a setting (kept visible, never dropped silently). Values are never logged.
public struct SourceReading: Sendable, Equatable {
    /// The file read.
    public var path: String
    /// Normalized settings (``SettingsSchema``); empty strings and zero values are "not set".
    public var values: [String: JSONValue]
    /// One line per field that was not mapped to a setting.
    public var warnings: [String]

    public init(path: String, values: [String: JSONValue] = [:], warnings: [String] = []) {
        self.path = path
        self.values = values
        self.warnings = warnings
    }
}

/// Errors and positions for GuildNet's files: every error names the file, the line and the field.
enum SourceText {
    /// `config_invalid` naming `path`, `line` and `field`; `problem` never quotes a secret value.
    static func error(_ path: String, line: Int, field: String?, _ problem: String) -> HostError {
        var message = "\(path) line \(line)"
        if let field { message += ", field \(field)" }
        return HostError(.configInvalid, message + ": " + problem + "; nothing was changed")
    }

    /// The 1-based line of byte `offset`.
    static func line(ofByte offset: Int, in bytes: [UInt8]) -> Int {
        var line = 1
        for byte in bytes.prefix(max(0, offset)) where byte == UInt8(ascii: "\n") { line += 1 }
        return line
    }

    /// The line where `"name"` first appears as an object member after `section` (when given), else 1.
    static func line(ofField name: String, after section: String? = nil, in bytes: [UInt8]) -> Int {
        let text = String(decoding: bytes, as: UTF8.self)
        var searchStart = text.startIndex
        if let section, let found = memberRange(section, in: text, from: searchStart) { searchStart = found.upperBound }
        guard let found = memberRange(name, in: text, from: searchStart) else { return 1 }
        return text[..<found.lowerBound].reduce(1) { $1 == "\n" ? $0 + 1 : $0 }
    }

    /// The range of `"name"` followed by optional whitespace and `:`.
    private static func memberRange(_ name: String, in text: String, from start: String.Index) -> Range<String.Index>? {
        var from = start
        while let range = text.range(of: "\"\(name)\"", range: from..<text.endIndex) {
            let rest = text[range.upperBound...].drop(while: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
            if rest.first == ":" { return range }
            from = range.upperBound
        }
        return nil
    }

    /// Reads a whole file; a missing or unreadable file is `config_invalid` naming it.
    static func read(_ path: String, what: String) throws(HostError) -> [UInt8] {
        let bytes: [UInt8]?
        do throws(FileFailure) {
            bytes = try AtomicFile.read(path)
        } catch {
            throw HostError(.configInvalid, "cannot read \(what) \(path): \(error.reason)")
        }
        guard let bytes else { throw HostError(.configInvalid, "cannot read \(what) \(path): no such file") }
        return bytes
    }

    /// Parses `bytes` as one JSON object; a syntax error names its line.
    static func object(_ bytes: [UInt8], path: String) throws(HostError) -> [String: JSONValue] {
        let document: JSONValue
        do throws(JSONParser.Error) {
            document = try JSONParser.parse(bytes)
        } catch {
            throw Self.error(path, line: line(ofByte: error.offset, in: bytes), field: nil, "not valid JSON (\(error.reason))")
        }
        guard case .object(let top) = document else {
            throw Self.error(path, line: 1, field: nil, "the top level must be a JSON object, not \(document.typeName)")
        }
        return top
    }

    /// Whether a GuildNet value means "not set": Go writes empty strings and zero values for unset fields.
    static func isUnset(_ value: JSONValue) -> Bool {
        switch value {
        case .null: true
        case .string(let text): text.trimmingSpaces.isEmpty
        default: false
        }
    }

    /// Normalizes `value` for `key`, or throws naming the file, line and field.
    static func normalize(
        _ value: JSONValue, key: String, path: String, field: String, section: String?, bytes: [UInt8]
    ) throws(HostError) -> JSONValue {
        do throws(HostError) {
            return try SettingsSchema.normalize(value, forKey: key)
        } catch {
            throw Self.error(path, line: line(ofField: field, after: section, in: bytes), field: section.map { "\($0).\(field)" } ?? field, error.message)
        }
    }
}
