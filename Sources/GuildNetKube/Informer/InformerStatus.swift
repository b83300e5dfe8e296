import Foundation
import GuildNetCore

/// One informer's state for `cluster.status`.
public struct InformerStatus: Sendable, Equatable {
    public var resource: String
    /// nil = all namespaces.
    public var namespace: String?
    /// `true` once the first list completed (stays true across relists, like client-go's HasSynced).
    public var synced: Bool
    /// `true` while `run()` runs.
    public var running: Bool
    /// The last resourceVersion seen (list, event or bookmark).
    public var resourceVersion: String
    public var objects: Int
    /// Lists after the first (410 Expired, ERROR events, fatal watch errors).
    public var relists: Int
    /// Watches started again after the first (clean ends, dropped streams, 429).
    public var watchRestarts: Int
    /// Watch events applied to the cache (bookmarks included).
    public var eventsApplied: Int
    /// Subscriber streams ended by overflow, and the events they dropped.
    public var subscriberOverflows: Int
    public var droppedEvents: Int
    public var subscribers: Int
    public var lastError: HostError?
    /// When the cache last matched the server (end of a list, or an applied event).
    public var lastSyncAt: Date?

    /// The status as JSON (for control replies).
    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "resource": .string(resource),
            "namespace": namespace.map { .string($0) } ?? .null,
            "synced": .bool(synced),
            "running": .bool(running),
            "resourceVersion": .string(resourceVersion),
            "objects": .int(Int64(objects)),
            "relists": .int(Int64(relists)),
            "watchRestarts": .int(Int64(watchRestarts)),
            "eventsApplied": .int(Int64(eventsApplied)),
            "subscriberOverflows": .int(Int64(subscriberOverflows)),
            "droppedEvents": .int(Int64(droppedEvents)),
            "subscribers": .int(Int64(subscribers)),
        ]
        if let lastError {
            object["lastError"] = lastError.json
        }
        if let lastSyncAt { object["lastSyncAt"] = .string(lastSyncAt.formatted(.iso8601)) }
        return .object(object)
    }
}
