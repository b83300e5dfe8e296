import GuildNetCore

/// What a subscriber of a ``KubeInformer`` receives, in cache order.
public enum InformerEvent: Sendable, Equatable {
    /// An object entered the cache (initial snapshot, watch, or a relist difference).
    case added(JSONValue)
    /// A cached object changed.
    case modified(JSONValue)
    /// An object left the cache (its last known state).
    case deleted(JSONValue)
    /// The subscriber's view equals a complete list at `resourceVersion`: sent after the initial
    /// snapshot (or after the first list when subscribing before it) and after every relist.
    case synced(resourceVersion: String)
    /// The subscriber fell more than its buffer behind: the oldest queued events were dropped
    /// (`dropped` of them). Last element: the stream ends; subscribe again to resync.
    case overflowed(dropped: Int)
    /// The informer stopped (cancelled, or the subscription was removed). Last element.
    case finished(HostError)

    /// `ADDED` / `MODIFIED` / `DELETED` for object events, nil for markers.
    public var watchType: String? {
        switch self {
        case .added: "ADDED"
        case .modified: "MODIFIED"
        case .deleted: "DELETED"
        case .synced, .overflowed, .finished: nil
        }
    }

    /// The object of an object event.
    public var object: JSONValue? {
        switch self {
        case .added(let object), .modified(let object), .deleted(let object): object
        case .synced, .overflowed, .finished: nil
        }
    }
}
