import GuildNetCore

/// The RethinkDB client's error codes (see ``RethinkError`` for what raises each), with their
/// default classification.
extension ErrorCode {
    public static let rethinkUnreachable = ErrorCode("rethink_unreachable", transient: true)
    public static let rethinkAuthFailed: ErrorCode = "rethink_auth_failed"
    public static let rethinkSchemaMissing: ErrorCode = "rethink_schema_missing"
    public static let rethinkQueryError: ErrorCode = "rethink_query_error"
    public static let rethinkConnectionLost = ErrorCode("rethink_connection_lost", transient: true)
    public static let rethinkProtocolError: ErrorCode = "rethink_protocol_error"
    public static let rethinkNotConfigured: ErrorCode = "rethink_not_configured"
    public static let rethinkFeedLimit = ErrorCode("rethink_feed_limit", transient: true)
    public static let rethinkFeedSkipped = ErrorCode("rethink_feed_skipped", transient: true)
    /// RethinkDB answered with an availability error (`OP_FAILED`/`OP_INDETERMINATE`, e.g. "primary
    /// replica for shard … not available" while a table starts after a restart or fails over).
    public static let rethinkUnavailable = ErrorCode("rethink_unavailable", transient: true)
}
