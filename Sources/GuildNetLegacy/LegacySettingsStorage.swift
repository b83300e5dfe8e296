import GuildNetCore
import GuildNetSettings
import Logging

/// A cluster's settings layer kept in the legacy `cluster-settings` record (a flat JSON object
/// with the Go app's field names, which are valid setting keys).
///
/// Loading skips fields that are not valid settings (logging their names only); saving replaces
/// the fields it manages and keeps every other field of the record as it was, so nothing the Go
/// app stored is lost.
public struct LegacySettingsStorage: ClusterSettingsStorage {
    let cluster: ClusterID
    let database: LegacyDatabase
    let logger: Logger

    public init(cluster: ClusterID, database: LegacyDatabase, logger: Logger) {
        self.cluster = cluster
        self.database = database
        self.logger = logger
    }

    var recordLocation: LegacyLocation { LegacyLocation(collection: "cluster-settings", key: cluster.key) }

    public var location: String { "legacy:cluster-settings/\(cluster.key)" }

    public func load() throws -> [String: JSONValue] {
        guard let fields = try record() else { return [:] }
        var values: [String: JSONValue] = [:]
        for (key, raw) in fields {
            do {
                try SettingsSchema.validateKey(key)
                let value = try SettingsSchema.normalize(raw, forKey: key)
                if value != .null { values[key] = value }
            } catch {
                logger.warning("legacy setting skipped", metadata: ["event": "legacy_setting_skipped", "key": .string(key)])
            }
        }
        return values
    }

    public func save(_ values: [String: JSONValue]) throws {
        var fields = try record() ?? [:]
        for key in fields.keys where SettingsSchema.isAllowed(key) && values[key] == nil {
            fields[key] = nil
        }
        for (key, value) in values { fields[key] = value }
        do {
            try database.upsertSync(recordLocation, JSONValue.object(fields).serialized)
        } catch {
            throw HostError(.settingsIO, "cannot write \(location): \(error)")
        }
    }

    private func record() throws -> [String: JSONValue]? {
        let bytes: [UInt8]?
        do {
            bytes = try database.valueSync(recordLocation)
        } catch {
            throw HostError(.settingsIO, "cannot read \(location): \(error)")
        }
        guard let bytes else { return nil }
        guard case .object(let fields)? = try? JSONParser.parse(bytes) else {
            throw HostError(.settingsCorrupt, "\(location) is not a JSON object; it was left untouched")
        }
        return fields
    }
}
