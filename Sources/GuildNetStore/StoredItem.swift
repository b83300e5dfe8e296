import GuildNetCore

/// One key-value record of a cluster's store.
public struct StoredItem: Sendable, Equatable {
    public var key: String
    public var value: JSONValue
    /// Seconds since 1970 (UTC) when the key was first written.
    public var createdAt: Double
    /// Seconds since 1970 (UTC) of the last write.
    public var updatedAt: Double

    public init(key: String, value: JSONValue, createdAt: Double, updatedAt: Double) {
        self.key = key
        self.value = value
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}
