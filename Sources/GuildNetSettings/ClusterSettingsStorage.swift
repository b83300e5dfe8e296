import GuildNetCore
import GuildNetStateDirectory

/// Where a cluster's settings layer is kept: `settings.json` in the per-cluster layout
/// (``SettingsFile``), or the legacy host-wide DB's `cluster-settings` record.
///
/// Both calls are synchronous and short; ``ClusterSettings`` serializes them on its actor so a
/// write can never interleave with another.
public protocol ClusterSettingsStorage: Sendable {
    /// Where the settings live, for messages (a path, or `legacy:cluster-settings/<id>`).
    var location: String { get }
    /// The stored cluster layer, validated; empty when nothing is stored yet.
    /// - Throws: ``HostError`` `settings_corrupt` (the stored data is left untouched) or `settings_io`.
    func load() throws -> [String: JSONValue]
    /// Replaces the stored cluster layer, atomically.
    func save(_ values: [String: JSONValue]) throws
    /// The file to watch for hand edits (`nil`: not a file, nothing to watch).
    var watchPath: String? { get }
}

extension ClusterSettingsStorage {
    public var watchPath: String? { nil }
}

/// `<state-dir>/clusters/<id>/settings.json` in the ``SettingsDocument`` format, mode 0600,
/// written with ``AtomicFile``.
public struct SettingsFile: ClusterSettingsStorage {
    public let path: String

    public init(path: String) { self.path = path }

    public var location: String { path }

    public var watchPath: String? { path }

    /// Reads and validates the file; a missing file is empty.
    public func load() throws(HostError) -> [String: JSONValue] {
        let bytes: [UInt8]?
        do {
            bytes = try AtomicFile.read(path)
        } catch {
            throw HostError(.settingsIO, "cannot read settings file \(path): \(error.reason)")
        }
        guard let bytes else { return [:] }
        let stored: [String: JSONValue]
        do {
            stored = try SettingsDocument.decode(bytes)
        } catch {
            throw corrupt(error.reason)
        }
        var values: [String: JSONValue] = [:]
        for key in stored.keys.sorted() {
            guard let raw = stored[key] else { continue }
            do throws(HostError) {
                let value = try SettingsSchema.normalize(raw, forKey: key)
                if value != .null { values[key] = value }
            } catch {
                throw corrupt(error.message)
            }
        }
        return values
    }

    /// Replaces the file atomically (mode 0600).
    public func save(_ values: [String: JSONValue]) throws(HostError) {
        do {
            try AtomicFile.write(SettingsDocument.encode(values), to: path)
        } catch {
            throw HostError(.settingsIO, "cannot write settings file: \(error.description)")
        }
    }

    private func corrupt(_ problem: String) -> HostError {
        HostError(.settingsCorrupt, "settings file \(path) is invalid: \(problem); it was left untouched")
    }
}
