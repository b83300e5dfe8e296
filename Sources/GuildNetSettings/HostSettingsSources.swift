import GuildNetCore
import GuildNetStateDirectory

/// Host-wide sources, loaded at daemon start and again whenever one of their files changes
/// (``files``; see ``HostSettingsWatcher``).
///
/// Every value is already normalized by ``SettingsSchema``; JSON `null` from any source means
/// "not set in this layer" and is dropped. The global layer merges GuildNet's `config.json`
/// (`--guildnet-config`), GuildNet's variables in the `--env-file` and the host config file's
/// `"settings"`, in that fixed order (a later file wins), so the result never depends on the
/// order the files were read or changed in; ``globalOrigins`` names the file each value came from.
public struct HostSettingsSources: Sendable, Equatable {
    /// `--set KEY=VALUE` flags.
    public var cli: [String: JSONValue]
    /// `GUILDNET_SETTING_*` variables (the process environment over the `--env-file`).
    public var env: [String: JSONValue]
    /// The global layer (see the type's doc).
    public var global: [String: JSONValue]
    /// Key → the file its global value came from (`settings.get` shows `global:<file>`).
    public var globalOrigins: [String: String]
    /// Fields of GuildNet's files that are not settings, one line each (logged at start and reload).
    public var warnings: [String]
    /// The files these sources were read from (what the host watches).
    public var files: [String]

    public init(
        cli: [String: JSONValue] = [:], env: [String: JSONValue] = [:], global: [String: JSONValue] = [:],
        globalOrigins: [String: String] = [:], warnings: [String] = [], files: [String] = []
    ) {
        self.cli = cli
        self.env = env
        self.global = global
        self.globalOrigins = globalOrigins
        self.warnings = warnings
        self.files = files
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

    /// Top-level keys the host config file may contain: `settings`, and the paths of GuildNet's
    /// files (`guildnet_config`, `env_file`; relative to the config file; the flags win).
    public static let allowedConfigKeys: Set<String> = ["settings", "guildnet_config", "env_file"]

    /// Parses `--set` assignments, the environment (only GUILDNET_SETTING_* names), an optional env file, an optional
    /// host config file and an optional GuildNet `config.json`.
    /// - Throws: ``HostError`` with ``ErrorCode/invalidSetting`` naming the bad assignment or key;
    ///   ``ErrorCode/configInvalid`` naming the file (and line and field for GuildNet's files) and what
    ///   is wrong; ``ErrorCode/io`` for unreadable files.
    public static func load(
        cliAssignments: [String],
        environment: [String: String],
        envFile: String?,
        configFile: String?,
        guildNetConfig: String? = nil
    ) throws(HostError) -> HostSettingsSources {
        let cli = try parseAssignments(cliAssignments)
        var hostConfig = HostConfigFile(settings: [:], guildNetConfig: nil, envFile: nil)
        if let configFile {
            hostConfig = try parseHostConfig(bytes: readBytes(configFile, what: "config file"), path: configFile)
        }
        let envFile = envFile ?? hostConfig.envFile
        let guildNetConfig = guildNetConfig ?? hostConfig.guildNetConfig
        var sources = HostSettingsSources(cli: cli.compactMapValues(nonNull))
        var env: [String: JSONValue] = [:]
        var layers: [SourceReading] = []
        if let guildNetConfig {
            let reading = try GuildNetConfigJSON.parse(readBytes(guildNetConfig, what: "GuildNet config"), path: guildNetConfig)
            layers.append(reading)
            sources.files.append(guildNetConfig)
        }
        if let envFile {
            let text = try readText(envFile, what: "env file")
            let file: DotEnvFile
            do throws(HostError) {
                file = try DotEnvFile.parse(text, path: envFile, environment: environment)
            } catch {
                throw HostError(.invalidSetting, "env file " + error.message)
            }
            env = try parseEnvironment(file.variables, origin: "env file \(envFile)")
            layers.append(try GuildNetDotEnv.map(file, path: envFile))
            sources.files.append(envFile)
        }
        env.merge(try parseEnvironment(environment, origin: "environment"), uniquingKeysWith: { _, process in process })
        sources.env = env.compactMapValues(nonNull)
        if let configFile {
            layers.append(SourceReading(path: configFile, values: hostConfig.settings))
            sources.files.append(configFile)
        }
        for layer in layers {
            sources.warnings += layer.warnings
            for (key, value) in layer.values where value != .null {
                sources.global[key] = value
                sources.globalOrigins[key] = layer.path
            }
        }
        return sources
    }

    /// The origin `settings.get` shows for a global value of `key`: `global:<file>`, or `global`.
    public func globalOrigin(of key: String) -> String {
        globalOrigins[key].map { "global:" + $0 } ?? SettingLayer.global.rawValue
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

    /// What the host config file holds.
    struct HostConfigFile {
        var settings: [String: JSONValue]
        var guildNetConfig: String?
        var envFile: String?
    }

    /// The host config file's global settings (kept for callers that only want those).
    static func parseConfigFile(bytes: [UInt8], path: String) throws(HostError) -> [String: JSONValue] {
        try parseHostConfig(bytes: bytes, path: path).settings
    }

    /// The host config file: a JSON object with the keys of ``allowedConfigKeys``; `"settings"` is
    /// an object of settings, `guildnet_config` and `env_file` are paths (relative to the file).
    static func parseHostConfig(bytes: [UInt8], path: String) throws(HostError) -> HostConfigFile {
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
        var file = HostConfigFile(settings: [:])
        for name in ["guildnet_config", "env_file"] {
            guard let value = top[name], value != .null else { continue }
            guard case .string(let text) = value, !text.isEmpty else {
                throw HostError(.configInvalid, "config file \(path): \"\(name)\" must be a path string, not \(value.typeName)")
            }
            let resolved = text.hasPrefix("/") ? text : AtomicFile.parentDirectory(of: path) + "/" + text
            if name == "guildnet_config" { file.guildNetConfig = resolved } else { file.envFile = resolved }
        }
        guard let section = top["settings"], section != .null else { return file }
        guard case .object(let settings) = section else {
            throw HostError(.configInvalid, "config file \(path): \"settings\" must be an object, not \(section.typeName)")
        }
        for key in settings.keys.sorted() {
            guard let raw = settings[key] else { continue }
            do throws(HostError) {
                let value = try SettingsSchema.normalize(raw, forKey: key)
                if value != .null { file.settings[key] = value }
            } catch {
                throw HostError(.configInvalid, "config file \(path): \(error.message)")
            }
        }
        return file
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
}

extension String {
    /// The string without leading and trailing whitespace (including `\r`).
    var trimmingSpaces: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
