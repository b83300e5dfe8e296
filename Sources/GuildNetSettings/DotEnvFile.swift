import Foundation
import GuildNetCore

/// A `.env` file in the dotenv syntax GuildNet's scripts write and read (`source .env`):
///
/// - blank lines and `#` comment lines are skipped; an `export ` prefix is allowed;
/// - `NAME=VALUE`, `NAME` a shell identifier; a later line for the same name wins;
/// - `'single quoted'` values are literal; `"double quoted"` values understand `\"`, `\\`, `\n`,
///   `\$` and expand variables; unquoted values end at ` #` (an inline comment), are trimmed and
///   expand variables;
/// - `${NAME}`, `${NAME:-default}`, `${NAME-default}` and `$NAME` expand from the lines above, then
///   from `environment` (unknown names are empty), so the result depends only on the inputs.
///
/// Values are never quoted in errors (they may be credentials).
public struct DotEnvFile: Sendable, Equatable {
    /// One assignment and the line it came from.
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var value: String
        public var line: Int
    }

    /// Assignments in file order (a name may repeat; ``variables`` keeps the last).
    public var entries: [Entry]

    /// Name → value, the last assignment of each name winning.
    public var variables: [String: String] {
        var out: [String: String] = [:]
        for entry in entries { out[entry.name] = entry.value }
        return out
    }

    /// Parses `contents`; `path` is for messages.
    /// - Throws: ``HostError`` `config_invalid` naming the file, the line and the variable.
    public static func parse(_ contents: String, path: String, environment: [String: String] = [:]) throws(HostError) -> DotEnvFile {
        var entries: [Entry] = []
        var known: [String: String] = [:]
        var lineNumber = 0
        for rawLine in contents.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            var line = Substring(String(rawLine).trimmingSpaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") || line.hasPrefix("export\t") {
                line = Substring(String(line.dropFirst("export".count)).trimmingSpaces)
            }
            guard let equals = line.firstIndex(of: "=") else {
                throw SourceText.error(path, line: lineNumber, field: nil, "expected NAME=VALUE")
            }
            let name = String(line[..<equals]).trimmingSpaces
            guard isName(name) else {
                throw SourceText.error(path, line: lineNumber, field: nil, "invalid variable name (use letters, digits and _)")
            }
            let lookup: (String) -> String? = { known[$0] ?? environment[$0] }
            let value: String
            do throws(ValueProblem) {
                value = try parseValue(line[line.index(after: equals)...], lookup: lookup)
            } catch {
                throw SourceText.error(path, line: lineNumber, field: name, error.reason)
            }
            known[name] = value
            entries.append(Entry(name: name, value: value, line: lineNumber))
        }
        return DotEnvFile(entries: entries)
    }

    struct ValueProblem: Error {
        var reason: String
    }

    private static func parseValue(_ raw: Substring, lookup: (String) -> String?) throws(ValueProblem) -> String {
        let text = raw.drop(while: { $0 == " " || $0 == "\t" })
        guard let first = text.first else { return "" }
        if first == "'" {
            let body = text.dropFirst()
            guard let close = body.firstIndex(of: "'") else { throw ValueProblem(reason: "unterminated single quote") }
            try requireOnlyComment(body[body.index(after: close)...])
            return String(body[..<close])
        }
        if first == "\"" {
            var out = ""
            var index = text.index(after: text.startIndex)
            while index < text.endIndex {
                let char = text[index]
                if char == "\"" {
                    try requireOnlyComment(text[text.index(after: index)...])
                    return out
                }
                if char == "\\", text.index(after: index) < text.endIndex {
                    let next = text[text.index(after: index)]
                    switch next {
                    case "n": out.append("\n")
                    case "\"", "\\", "$": out.append(next)
                    default:
                        out.append("\\")
                        out.append(next)
                    }
                    index = text.index(index, offsetBy: 2)
                    continue
                }
                if char == "$" {
                    let (expanded, rest) = try expand(text[index...], lookup: lookup)
                    out += expanded
                    index = rest
                    continue
                }
                out.append(char)
                index = text.index(after: index)
            }
            throw ValueProblem(reason: "unterminated double quote")
        }
        // Unquoted: an inline comment starts at a `#` preceded by whitespace.
        var body = text[...]
        var previous: Character = " "
        for index in text.indices {
            if text[index] == "#" && (previous == " " || previous == "\t") {
                body = text[..<index]
                break
            }
            previous = text[index]
        }
        var out = ""
        var index = body.startIndex
        while index < body.endIndex {
            if body[index] == "$" {
                let (expanded, rest) = try expand(body[index...], lookup: lookup)
                out += expanded
                index = rest
            } else {
                out.append(body[index])
                index = body.index(after: index)
            }
        }
        return out.trimmingSpaces
    }

    /// Expands the reference at the start of `text` (which begins with `$`).
    private static func expand(_ text: Substring, lookup: (String) -> String?) throws(ValueProblem) -> (String, Substring.Index) {
        let afterDollar = text.index(after: text.startIndex)
        guard afterDollar < text.endIndex else { return ("$", afterDollar) }
        if text[afterDollar] == "{" {
            let inner = text[text.index(after: afterDollar)...]
            guard let close = inner.firstIndex(of: "}") else { throw ValueProblem(reason: "unterminated ${…}") }
            let body = inner[..<close]
            let next = inner.index(after: close)
            if let range = body.range(of: ":-") {
                let name = String(body[..<range.lowerBound])
                guard isName(name) else { throw ValueProblem(reason: "invalid name in ${…}") }
                let value = lookup(name) ?? ""
                return (value.isEmpty ? String(body[range.upperBound...]) : value, next)
            }
            if let dash = body.firstIndex(of: "-") {
                let name = String(body[..<dash])
                guard isName(name) else { throw ValueProblem(reason: "invalid name in ${…}") }
                return (lookup(name) ?? String(body[body.index(after: dash)...]), next)
            }
            guard isName(String(body)) else { throw ValueProblem(reason: "invalid name in ${…}") }
            return (lookup(String(body)) ?? "", next)
        }
        var end = afterDollar
        while end < text.endIndex, isNameCharacter(text[end], first: end == afterDollar) { end = text.index(after: end) }
        guard end > afterDollar else { return ("$", afterDollar) }
        return (lookup(String(text[afterDollar..<end])) ?? "", end)
    }

    private static func requireOnlyComment(_ rest: Substring) throws(ValueProblem) {
        let trimmed = rest.drop(while: { $0 == " " || $0 == "\t" })
        guard trimmed.isEmpty || trimmed.hasPrefix("#") else { throw ValueProblem(reason: "unexpected text after the closing quote") }
    }

    static func isName(_ name: String) -> Bool {
        guard let first = name.first else { return false }
        return isNameCharacter(first, first: true) && name.allSatisfy { isNameCharacter($0, first: false) }
    }

    private static func isNameCharacter(_ char: Character, first: Bool) -> Bool {
        guard char.isASCII else { return false }
        if char == "_" || char.isLetter { return true }
        return !first && char.isNumber
    }
}

/// The variables of GuildNet's `.env` (written by `scripts/sync-env-from-config.sh` from
/// `config.json`) mapped to settings. `GUILDNET_SETTING_*` lines are not handled here: they are
/// the env layer (``HostSettingsSources``).
///
/// | variable | key |
/// |---|---|
/// | `TS_LOGIN_SERVER` | `ts_login_server` |
/// | `TS_AUTHKEY` | `tailscale.auth_key` (secret) |
/// | `TS_HOSTNAME` | `tailscale.hostname` |
/// | `TS_ROUTES` | `ts_routes` (comma-separated CIDRs) |
/// | `HEADSCALE_URL` | `headscale.url` |
/// | `HEADSCALE_AUTHKEY` | `headscale.auth_key` (secret) |
/// | `CLUSTER_NAME` | `name` |
/// | `LISTEN_LOCAL` | `listen_local` |
public enum GuildNetDotEnv {
    /// Variable → settings key.
    public static let variables: [String: String] = [
        "TS_LOGIN_SERVER": "ts_login_server",
        "TS_AUTHKEY": "tailscale.auth_key",
        "TS_HOSTNAME": "tailscale.hostname",
        "TS_ROUTES": "ts_routes",
        "HEADSCALE_URL": "headscale.url",
        "HEADSCALE_AUTHKEY": "headscale.auth_key",
        "CLUSTER_NAME": "name",
        "LISTEN_LOCAL": "listen_local",
    ]

    /// Maps GuildNet's variables of `file`; `GUILDNET_SETTING_*` names are skipped, any other
    /// name is a warning. Empty values are "not set".
    /// - Throws: ``HostError`` `config_invalid` naming the file, line and variable.
    public static func map(_ file: DotEnvFile, path: String) throws(HostError) -> SourceReading {
        var reading = SourceReading(path: path)
        var lines: [String: Int] = [:]
        for entry in file.entries { lines[entry.name] = entry.line }
        let values = file.variables
        for name in values.keys.sorted() {
            guard let text = values[name] else { continue }
            if name.hasPrefix(HostSettingsSources.environmentPrefix) { continue }
            guard let key = variables[name] else {
                reading.warnings.append("\(path) line \(lines[name] ?? 0): variable \(name) is not a hostapp setting; ignored")
                continue
            }
            if text.trimmingSpaces.isEmpty { continue }
            do throws(HostError) {
                reading.values[key] = try SettingsSchema.parse(text: text, forKey: key)
            } catch {
                throw SourceText.error(path, line: lines[name] ?? 0, field: name, error.message)
            }
        }
        return reading
    }
}
