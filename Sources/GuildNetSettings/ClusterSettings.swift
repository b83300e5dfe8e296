import GuildNetCore
import GuildNetStateDirectory
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
    private let watchHub: FileWatchHub?

    private var cli: [String: JSONValue]
    private var env: [String: JSONValue]
    private var global: [String: JSONValue]
    private var globalOrigins: [String: String]
    private let logger: Logger
    /// Called with the keys whose effective value changed (reloads and writes); the cluster
    /// uses it to apply a change to its children.
    private var changeHandlers: [@Sendable ([String]) async -> Void] = []
    /// Settings from `cluster.register`, applied by the first successful ``start()`` only.
    private var initial: [String: JSONValue]?
    /// The cluster layer.
    private var values: [String: JSONValue] = [:]
    private var loaded = false
    private var lastError: HostError?

    public init(
        cluster: ClusterID, path: String, host: HostSettingsSources, initial: [String: JSONValue]?, logger: Logger, watchHub: FileWatchHub? = nil
    ) {
        self.init(cluster: cluster, storage: SettingsFile(path: path), host: host, initial: initial, logger: logger, watchHub: watchHub)
    }

    /// Settings kept in `storage` (the legacy layout passes its own).
    /// - Parameter watchHub: the host's watcher of every `settings.json` (one descriptor for all
    ///   clusters); without one, ``run()`` watches the file with its own ``FileWatcher``.
    public init(
        cluster: ClusterID, storage: any ClusterSettingsStorage, host: HostSettingsSources, initial: [String: JSONValue]?, logger: Logger,
        watchHub: FileWatchHub? = nil
    ) {
        self.cluster = cluster
        self.watchHub = watchHub
        self.path = storage.location
        self.storage = storage
        self.initial = initial
        let logger = logger.scoped(to: cluster)
        self.logger = logger
        self.cli = Self.sanitized(host.cli, layer: .cli, logger: logger)
        self.env = Self.sanitized(host.env, layer: .env, logger: logger)
        self.global = Self.sanitized(host.global, layer: .global, logger: logger)
        self.globalOrigins = host.globalOrigins
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

    /// Watches `settings.json` (when the cluster layer is a file) and reloads it when it changes:
    /// hand edits apply without a restart; an invalid edit is rejected and the previous layer kept.
    public func run() async throws {
        guard let path = storage.watchPath else { return try await waitForCancellation() }
        if let watchHub, let token = watchHub.watch(path, { _ = try? await self.reloadFromStorage() }) {
            defer { watchHub.unwatch(token) }
            return try await waitForCancellation()
        }
        do {
            try await FileWatcher(paths: [path]).run { _ in
                _ = try? await self.reloadFromStorage()
            }
        } catch let error as HostError {
            // Without a watcher the settings still work; edits then apply at the next start.
            logger.warning("not watching \(path): \(error.message)", metadata: ["event": "settings_watch_failed"])
            try await waitForCancellation()
        }
        try Task.checkCancellation()
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
                let origin = layer == .global ? globalOrigins[key].map { "global:" + $0 } : nil
                return EffectiveSetting(key: key, value: value, layer: layer, origin: origin)
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

    /// The effective value of a known key, as its Swift type (its schema default when no layer has it).
    public func value<Value>(_ key: SettingKey<Value>) -> Value {
        key.read(effective(key.name)?.value)
    }

    /// The effective values of every layer at once, for reading several keys in one hop.
    public func snapshot() -> SettingsSnapshot {
        var merged: [String: JSONValue] = [:]
        for layer in SettingLayer.allCases.reversed() {
            merged.merge(layerValues(layer)) { _, higher in higher }
        }
        return SettingsSnapshot(values: merged)
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
    public func set(_ changes: [String: JSONValue]) async throws -> [EffectiveSetting] {
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
        await notify(keys)
        return keys.compactMap(effective)
    }

    // MARK: Reloading

    /// Registers `handler`, called with the keys whose effective value changed after every
    /// reload or write that changed something.
    public func onChange(_ handler: @escaping @Sendable ([String]) async -> Void) {
        changeHandlers.append(handler)
    }

    /// Replaces the host-wide layers (a host settings file changed). Returns the keys whose
    /// effective value changed, sorted; logs them (names only) and notifies ``onChange(_:)``.
    @discardableResult
    public func replaceHostSources(_ host: HostSettingsSources) async -> [String] {
        let before = snapshot().values
        let beforeOrigins = globalOrigins
        cli = Self.sanitized(host.cli, layer: .cli, logger: logger)
        env = Self.sanitized(host.env, layer: .env, logger: logger)
        global = Self.sanitized(host.global, layer: .global, logger: logger)
        globalOrigins = host.globalOrigins
        let changed = Self.changedKeys(before, snapshot().values)
        if !changed.isEmpty {
            logger.info(
                "host settings reloaded", metadata: ["event": "settings_reloaded", "source": "host", "keys": .string(changed.joined(separator: ","))])
            await notify(changed)
        } else if beforeOrigins != globalOrigins {
            logger.debug("host settings reloaded; no effective value changed", metadata: ["event": "settings_reloaded", "source": "host"])
        }
        return changed
    }

    /// Reloads the cluster layer from its storage (`settings.json` was edited). An invalid file is
    /// rejected: the previous layer stays in effect and the error is logged and thrown.
    /// Returns the keys whose effective value changed, sorted.
    @discardableResult
    public func reloadFromStorage() async throws -> [String] {
        guard loaded else { return [] }
        let next: [String: JSONValue]
        do {
            next = try storage.load()
        } catch {
            let failure = HostError.wrapping(error, as: .settingsIO)
            logger.warning(
                "settings edit rejected; the previous settings stay in effect: \(failure.message)",
                metadata: ["event": "settings_reload_rejected", "code": .string(failure.code.rawValue)])
            throw failure
        }
        let before = snapshot().values
        values = next
        let changed = Self.changedKeys(before, snapshot().values)
        if !changed.isEmpty {
            logger.info(
                "cluster settings reloaded", metadata: ["event": "settings_reloaded", "source": "cluster", "keys": .string(changed.joined(separator: ","))])
            await notify(changed)
        }
        return changed
    }

    private func notify(_ keys: [String]) async {
        for handler in changeHandlers { await handler(keys) }
    }

    private static func changedKeys(_ before: [String: JSONValue], _ after: [String: JSONValue]) -> [String] {
        Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }.sorted()
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
}

/// The effective settings of a cluster at one moment (unredacted: internal use only).
public struct SettingsSnapshot: Sendable {
    let values: [String: JSONValue]

    /// The value of a known key, as its Swift type (its schema default when no layer has it).
    public subscript<Value>(_ key: SettingKey<Value>) -> Value {
        key.read(values[key.name])
    }
}
