import GuildNetCore
import GuildNetStateDirectory

/// Host-wide sources, loaded once at daemon start.
///
/// Every value is already normalized by ``SettingsSchema``; JSON `null` from any source means
/// "not set in this layer" and is dropped.
public struct HostSettingsSources: Sendable, Equatable {
    /// `--set KEY=VALUE` flags.
    public var cli: [String: JSONValue]
    /// `GUILDNET_SETTING_*` variables (the process environment over the `--env-file`).
    public var env: [String: JSONValue]
    /// The host config file's `"settings"` object.
    public var global: [String: JSONValue]

    public init(cli: [String: JSONValue] = [:], env: [String: JSONValue] = [:], global: [String: JSONValue] = [:]) {
        self.cli = cli
        self.env = env
        self.global = global
    }

    /// The values of `layer` (empty for the cluster and default layers, which are not host-wide).
    public func values(for layer: SettingLayer) -> [String: JSONValue] {
        switch layer {
        case .cli: cli
        case .env: env
        case .global: global
        case .cluster, .defaults: [:]
        }
    }

    /// Top-level keys the host config file may contain.
    public static let allowedConfigKeys: Set<String> = ["settings"]

    /// Parses `--set` assignments, the environment (only GUILDNET_SETTING_* names), an optional env file and an optional host config file.
    /// - Throws: ``HostError`` with ``ErrorCode/invalidSetting`` naming the bad assignment or key;
    ///   ``ErrorCode/configInvalid`` naming the config file and what is wrong (bad JSON, `"settings"`
    ///   not an object, an unknown top-level key, an invalid setting); ``ErrorCode/io`` for unreadable files.
    public static func load(
        cliAssignments: [String],
        environment: [String: String],
        envFile: String?,
        configFile: String?
    ) throws(HostError) -> HostSettingsSources {
        let cli = try parseAssignments(cliAssignments)
        var env: [String: JSONValue] = [:]
        if let envFile {
            env = try parseEnvironment(parseEnvFile(contents: readText(envFile, what: "env file"), path: envFile), origin: "env file \(envFile)")
        }
        env.merge(try parseEnvironment(environment, origin: "environment"), uniquingKeysWith: { _, process in process })
        var global: [String: JSONValue] = [:]
        if let configFile {
            global = try parseConfigFile(bytes: readBytes(configFile, what: "config file"), path: configFile)
        }
        return HostSettingsSources(cli: cli.compactMapValues(nonNull), env: env.compactMapValues(nonNull), global: global)
    }

    // MARK: Environment names

    /// The prefix of every settings environment variable.
    public static let environmentPrefix = "GUILDNET_SETTING_"

    /// `rethinkdb.address` → `GUILDNET_SETTING_RETHINKDB__ADDRESS`: upper-cased, `.` written as `__`.
    public static func environmentName(forKey key: String) -> String {
        environmentPrefix + key.uppercased().split(separator: ".", omittingEmptySubsequences: false).joined(separator: "__")
    }

    /// `GUILDNET_SETTING_RETHINKDB__ADDRESS` → `rethinkdb.address`: lower-cased, `__` read as `.`
    /// (left to right, so `A___B` is `a._b`). `nil` when `name` lacks the prefix; the key is not validated.
    public static func key(forEnvironmentName name: String) -> String? {
        guard name.hasPrefix(environmentPrefix) else { return nil }
        var key = ""
        var rest = Substring(name.dropFirst(environmentPrefix.count).lowercased())
        while let range = rest.range(of: "__") {
            key += rest[..<range.lowerBound] + "."
            rest = rest[range.upperBound...]
        }
        return key + rest
    }

    // MARK: Parsers

    /// `KEY=VALUE` assignments; a later assignment of the same key wins.
    static func parseAssignments(_ assignments: [String]) throws(HostError) -> [String: JSONValue] {
        var values: [String: JSONValue] = [:]
        for (index, assignment) in assignments.enumerated() {
            guard let equals = assignment.firstIndex(of: "=") else {
                throw HostError(
                    .invalidSetting,
                    "--set assignment \(describeAssignment(assignment, index: index)) has no '=': expected KEY=VALUE")
            }
            let key = String(assignment[..<equals]).trimmingSpaces
            let text = String(assignment[assignment.index(after: equals)...])
            do throws(HostError) {
                values[key] = try SettingsSchema.parse(text: text, forKey: key)
            } catch {
                throw HostError(.invalidSetting, "--set: \(error.message)")
            }
        }
        return values
    }

    /// Names from a `name → text` map that start with ``environmentPrefix``, turned into settings.
    static func parseEnvironment(_ variables: [String: String], origin: String) throws(HostError) -> [String: JSONValue] {
        var values: [String: JSONValue] = [:]
        var sources: [String: String] = [:]
        for name in variables.keys.sorted() {
            guard let key = Self.key(forEnvironmentName: name), let text = variables[name] else { continue }
            do throws(HostError) {
                try SettingsSchema.validateKey(key)
            } catch {
                throw HostError(.invalidSetting, "\(origin): variable \(name) does not name a valid setting key: \(error.message)")
            }
            if let other = sources[key] {
                throw HostError(.invalidSetting, "\(origin): variables \(other) and \(name) both set \(String(reflecting: key))")
            }
            sources[key] = name
            do throws(HostError) {
                values[key] = try SettingsSchema.parse(text: text, forKey: key)
            } catch {
                throw HostError(.invalidSetting, "\(origin): \(name): \(error.message)")
            }
        }
        return values
    }

    /// `NAME=VALUE` lines: blank lines and `#` comment lines are skipped, an `export ` prefix is
    /// allowed, and a value wrapped in matching single or double quotes is unwrapped (double quotes
    /// understand `\"`, `\\` and `\n`). A later line for the same name wins. Values are not echoed in errors.
    static func parseEnvFile(contents: String, path: String) throws(HostError) -> [String: String] {
        var variables: [String: String] = [:]
        var lineNumber = 0
        for rawLine in contents.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            var line = String(rawLine).trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") || line.hasPrefix("export\t") {
                line = String(line.dropFirst("export".count)).trimmingSpaces
            }
            guard let equals = line.firstIndex(of: "=") else {
                throw HostError(.invalidSetting, "env file \(path) line \(lineNumber): expected NAME=VALUE")
            }
            let name = String(line[..<equals]).trimmingSpaces
            guard isEnvironmentName(name) else {
                throw HostError(.invalidSetting, "env file \(path) line \(lineNumber): invalid variable name")
            }
            variables[name] = unquote(String(line[line.index(after: equals)...]).trimmingSpaces)
        }
        return variables
    }

    /// The host config file: a JSON object whose only allowed key is `"settings"`, itself an object of settings.
    static func parseConfigFile(bytes: [UInt8], path: String) throws(HostError) -> [String: JSONValue] {
        guard let document = SettingsJSON.parse(bytes) else {
            throw HostError(.configInvalid, "config file \(path) is not valid JSON")
        }
        guard case .object(let top) = document else {
            throw HostError(.configInvalid, "config file \(path): the top level must be a JSON object, not \(document.typeName)")
        }
        for name in top.keys.sorted() where !allowedConfigKeys.contains(name) {
            throw HostError(
                .configInvalid,
                "config file \(path): unknown top-level key \(String(reflecting: name)) (allowed: \(allowedConfigKeys.sorted().joined(separator: ", ")))")
        }
        guard let section = top["settings"], section != .null else { return [:] }
        guard case .object(let settings) = section else {
            throw HostError(.configInvalid, "config file \(path): \"settings\" must be an object, not \(section.typeName)")
        }
        var values: [String: JSONValue] = [:]
        for key in settings.keys.sorted() {
            guard let raw = settings[key] else { continue }
            do throws(HostError) {
                let value = try SettingsSchema.normalize(raw, forKey: key)
                if value != .null { values[key] = value }
            } catch {
                throw HostError(.configInvalid, "config file \(path): \(error.message)")
            }
        }
        return values
    }

    // MARK: Helpers

    private static func nonNull(_ value: JSONValue) -> JSONValue? {
        // Not a ternary: `nil` there would become `JSONValue.null` (it is ExpressibleByNilLiteral).
        if value == .null { return nil }
        return value
    }

    private static func readBytes(_ path: String, what: String) throws(HostError) -> [UInt8] {
        let bytes: [UInt8]?
        do throws(FileFailure) {
            bytes = try AtomicFile.read(path)
        } catch {
            throw HostError(.io, "cannot read \(what) \(path): \(error.reason)", transient: false)
        }
        guard let bytes else {
            throw HostError(.io, "cannot read \(what) \(path): no such file", transient: false)
        }
        return bytes
    }

    private static func readText(_ path: String, what: String) throws(HostError) -> String {
        String(decoding: try readBytes(path, what: what), as: UTF8.self)
    }

    /// An assignment for an error message; text that may hold a credential is not quoted.
    private static func describeAssignment(_ assignment: String, index: Int) -> String {
        let lowered = assignment.lowercased()
        if SecretKeys.secretWords.contains(where: { lowered.contains($0) }) {
            return "#\(index + 1) (not shown: it may contain a credential)"
        }
        let shown = assignment.count > 64 ? String(assignment.prefix(64)) + "…" : assignment
        return String(reflecting: shown)
    }

    private static func isEnvironmentName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")) else { return false }
        return name.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "_")
        }
    }

    private static func unquote(_ value: String) -> String {
        guard value.count >= 2, let first = value.first, value.last == first, first == "\"" || first == "'" else {
            return value
        }
        let body = value.dropFirst().dropLast()
        guard first == "\"" else { return String(body) }
        var out = ""
        var escaping = false
        for char in body {
            if escaping {
                switch char {
                case "n": out.append("\n")
                case "\"", "\\": out.append(char)
                default:
                    out.append("\\")
                    out.append(char)
                }
                escaping = false
            } else if char == "\\" {
                escaping = true
            } else {
                out.append(char)
            }
        }
        if escaping { out.append("\\") }
        return out
    }
}

extension String {
    /// The string without leading and trailing whitespace (including `\r`).
    var trimmingSpaces: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
