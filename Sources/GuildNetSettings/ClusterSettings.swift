import GuildNetCore
import Logging

/// One cluster's settings: a child of its ClusterActor (childID `settings`).
///
/// The cluster layer lives in `settings.json` (`{"version":1,"settings":{...}}`); the host-wide
/// layers come from ``HostSettingsSources``. Resolution order: `cli` > `env` > `cluster` > `global` > `default`.
///
/// - A corrupt or invalid file fails ``start()`` with ``ErrorCode/settingsCorrupt`` and is never
///   modified or deleted; writes are refused until a later ``start()`` loads a valid file.
/// - Writes are all-or-nothing and atomic (temporary file, fsync, rename); the file is mode 0600.
/// - Values are never logged, only key names.
public actor ClusterSettings: ClusterChild {
    public nonisolated let childID = "settings"
    public nonisolated let cluster: ClusterID
    /// Where the cluster layer is stored (the path of `settings.json` in the per-cluster layout).
    public nonisolated let path: String
    private let storage: any ClusterSettingsStorage

    /// Current on-disk format version.
    public static let fileVersion: Int64 = 1

    private let cli: [String: JSONValue]
    private let env: [String: JSONValue]
    private let global: [String: JSONValue]
    private let logger: Logger
    /// Settings from `cluster.register`, applied by the first successful ``start()`` only.
    private var initial: [String: JSONValue]?
    /// The cluster layer.
    private var values: [String: JSONValue] = [:]
    private var loaded = false
    private var lastError: HostError?

    public init(cluster: ClusterID, path: String, host: HostSettingsSources, initial: [String: JSONValue]?, logger: Logger) {
        self.init(cluster: cluster, storage: SettingsFile(path: path), host: host, initial: initial, logger: logger)
    }

    /// Settings kept in `storage` (the legacy layout passes its own).
    public init(cluster: ClusterID, storage: any ClusterSettingsStorage, host: HostSettingsSources, initial: [String: JSONValue]?, logger: Logger) {
        self.cluster = cluster
        self.path = storage.location
        self.storage = storage
        self.initial = initial
        let logger = logger.scoped(to: cluster)
        self.logger = logger
        self.cli = Self.sanitized(host.cli, layer: .cli, logger: logger)
        self.env = Self.sanitized(host.env, layer: .env, logger: logger)
        self.global = Self.sanitized(host.global, layer: .global, logger: logger)
    }

    // MARK: ClusterChild

    /// Loads `settings.json` (a missing file is empty), validates it, then applies `initial` on top of
    /// the cluster layer and persists it when non-empty.
    /// - Throws: ``HostError`` ``ErrorCode/settingsCorrupt`` (naming the path and the problem; the
    ///   file is left untouched), ``ErrorCode/settingsIO``, or ``ErrorCode/invalidSetting`` for bad
    ///   initial settings.
    public func start() async throws {
        do {
            var next = try storage.load()
            if let initial, !initial.isEmpty {
                let changes = try Self.validated(initial)
                Self.apply(changes, to: &next)
                try storage.save(next)
                logger.info(
                    "initial settings applied",
                    metadata: ["event": "settings_updated", "keys": .string(changes.keys.sorted().joined(separator: ","))])
            }
            values = next
            initial = nil
            loaded = true
            lastError = nil
            logger.debug("settings loaded", metadata: ["event": "settings_loaded", "keys": .stringConvertible(next.count)])
        } catch {
            let failure = HostError.wrapping(error, as: .settingsIO)
            lastError = failure
            loaded = false
            throw failure
        }
    }

    public func stop() async {
        loaded = false
    }

    public func details() async -> [String: JSONValue] {
        var details: [String: JSONValue] = [
            "path": .string(path),
            "keys": .int(Int64(values.count)),
            "loaded": .bool(loaded),
        ]
        if let lastError { details["last_error"] = .string(lastError.description) }
        return details
    }

    // MARK: Reading

    /// The effective value of `key` and its layer, or `nil` when no layer has it.
    public func effective(_ key: String) -> EffectiveSetting? {
        for layer in SettingLayer.allCases {
            if let value = layerValues(layer)[key] {
                return EffectiveSetting(key: key, value: value, layer: layer)
            }
        }
        return nil
    }

    /// Every key present in any layer, sorted by key.
    public func effectiveAll() -> [EffectiveSetting] {
        var keys = Set<String>()
        for layer in SettingLayer.allCases { keys.formUnion(layerValues(layer).keys) }
        return keys.sorted().compactMap(effective)
    }

    /// The effective value, unredacted (internal use: never put it in a reply or a log line).
    public func value(_ key: String) -> JSONValue? {
        effective(key)?.value
    }

    /// The effective values of `keys`, read at once (keys no layer has are left out); unredacted,
    /// internal use like ``value(_:)``.
    public func effectiveValues(_ keys: [String]) -> [String: JSONValue] {
        var result: [String: JSONValue] = [:]
        for key in keys {
            if let value = value(key) { result[key] = value }
        }
        return result
    }

    /// The cluster layer as stored in `settings.json`.
    public func clusterLayer() -> [String: JSONValue] {
        values
    }

    private func layerValues(_ layer: SettingLayer) -> [String: JSONValue] {
        switch layer {
        case .cli: cli
        case .env: env
        case .cluster: values
        case .global: global
        case .defaults: SettingsSchema.defaults
        }
    }

    // MARK: Writing

    /// Validates every key/value first (all-or-nothing), then writes to the cluster layer (JSON null
    /// removes the key) and persists atomically (mode 0600). Returns the new effective values of the
    /// keys set, sorted by key (a removed key with no other layer is absent). Logs key names only.
    /// - Throws: ``HostError`` ``ErrorCode/invalidSetting``; ``ErrorCode/settingsIO`` when the file
    ///   cannot be written (nothing changes); the load error, or ``ErrorCode/clusterNotReady``, when
    ///   the settings are not loaded.
    @discardableResult
    public func set(_ changes: [String: JSONValue]) throws -> [EffectiveSetting] {
        let normalized = try Self.validated(changes)
        guard loaded else {
            if let lastError { throw lastError }
            throw HostError(.clusterNotReady, "settings of cluster \(cluster.key) are not loaded", transient: true)
        }
        guard !normalized.isEmpty else { return [] }
        var next = values
        Self.apply(normalized, to: &next)
        try storage.save(next)
        values = next
        let keys = normalized.keys.sorted()
        logger.info("settings updated", metadata: ["event": "settings_updated", "keys": .string(keys.joined(separator: ","))])
        return keys.compactMap(effective)
    }

    // MARK: Helpers

    /// Normalized `changes` (null kept, meaning "remove").
    private static func validated(_ changes: [String: JSONValue]) throws(HostError) -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for key in changes.keys.sorted() {
            guard let value = changes[key] else { continue }
            out[key] = try SettingsSchema.normalize(value, forKey: key)
        }
        return out
    }

    private static func apply(_ changes: [String: JSONValue], to layer: inout [String: JSONValue]) {
        for (key, value) in changes {
            if value == .null { layer[key] = nil } else { layer[key] = value }
        }
    }

    /// Host-layer values normalized; anything invalid (only possible for hand-built sources) is
    /// dropped with a warning naming the key.
    private static func sanitized(_ layer: [String: JSONValue], layer name: SettingLayer, logger: Logger) -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for key in layer.keys.sorted() {
            guard let raw = layer[key] else { continue }
            do throws(HostError) {
                let value = try SettingsSchema.normalize(raw, forKey: key)
                if value != .null { out[key] = value }
            } catch {
                logger.warning(
                    "ignoring invalid host setting",
                    metadata: ["event": "setting_ignored", "layer": .string(name.rawValue), "error": .string(error.message)])
            }
        }
        return out
    }

    /// Reads and validates `settings.json`; a missing file is empty.
    static func load(_ path: String) throws(HostError) -> [String: JSONValue] {
        let bytes: [UInt8]?
        do throws(SettingsFileIO.Failure) {
            bytes = try SettingsFileIO.read(path)
        } catch {
            throw HostError(.settingsIO, "cannot read settings file \(path): \(error.reason)")
        }
        guard let bytes else { return [:] }
        guard let document = SettingsJSON.parse(bytes) else {
            throw corrupt(path, "not valid JSON")
        }
        guard case .object(let top) = document else {
            throw corrupt(path, "the top level is \(document.typeName), not an object")
        }
        for name in top.keys.sorted() where name != "version" && name != "settings" {
            throw corrupt(path, "unknown top-level key \(String(reflecting: name))")
        }
        if let version = top["version"], version.intValue != fileVersion {
            throw corrupt(path, "unsupported version \(SettingsJSON.compact(version, limit: 20)) (expected \(fileVersion))")
        }
        guard let section = top["settings"], section != .null else { return [:] }
        guard case .object(let stored) = section else {
            throw corrupt(path, "\"settings\" is \(section.typeName), not an object")
        }
        var values: [String: JSONValue] = [:]
        for key in stored.keys.sorted() {
            guard let raw = stored[key] else { continue }
            do throws(HostError) {
                let value = try SettingsSchema.normalize(raw, forKey: key)
                if value != .null { values[key] = value }
            } catch {
                throw corrupt(path, error.message)
            }
        }
        return values
    }

    private static func corrupt(_ path: String, _ problem: String) -> HostError {
        HostError(.settingsCorrupt, "settings file \(path) is invalid: \(problem); it was left untouched")
    }

    /// Writes `{"version":1,"settings":{...}}` atomically with mode 0600.
    static func persist(_ values: [String: JSONValue], to path: String) throws(HostError) {
        let document: JSONValue = .object(["version": .int(fileVersion), "settings": .object(values)])
        guard let bytes = SettingsJSON.prettyBytes(document) else {
            throw HostError(.internalError, "cannot encode settings for \(path)")
        }
        do throws(SettingsFileIO.Failure) {
            try SettingsFileIO.writeAtomically(bytes, to: path, mode: SettingsFileIO.privateFileMode, directoryMode: SettingsFileIO.privateDirectoryMode)
        } catch {
            throw HostError(.settingsIO, "cannot write settings file: \(error.description)")
        }
    }
}
