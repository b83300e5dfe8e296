/// A stable, snake_case error code. Codes are part of the control protocol: never rename one.
public struct ErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }
    public var description: String { rawValue }
}

extension ErrorCode {
    // Control protocol input
    public static let invalidJSON: ErrorCode = "invalid_json"
    public static let lineTooLong: ErrorCode = "line_too_long"
    public static let invalidRequest: ErrorCode = "invalid_request"
    public static let unknownOp: ErrorCode = "unknown_op"
    public static let missingField: ErrorCode = "missing_field"
    public static let invalidField: ErrorCode = "invalid_field"
    // Cluster registry and lifecycle
    public static let invalidClusterName: ErrorCode = "invalid_cluster_name"
    public static let clusterNotFound: ErrorCode = "cluster_not_found"
    public static let clusterIDCollision: ErrorCode = "cluster_id_collision"
    public static let clusterStopping: ErrorCode = "cluster_stopping"
    public static let clusterNotReady: ErrorCode = "cluster_not_ready"
    public static let teardownTimeout: ErrorCode = "teardown_timeout"
    public static let hostShuttingDown: ErrorCode = "host_shutting_down"
    public static let childFailed: ErrorCode = "child_failed"
    // Store
    public static let dbUnavailable: ErrorCode = "db_unavailable"
    public static let dbLocked: ErrorCode = "db_locked"
    public static let dbCorrupt: ErrorCode = "db_corrupt"
    public static let dbError: ErrorCode = "db_error"
    public static let keyNotFound: ErrorCode = "key_not_found"
    // Settings and configuration
    public static let invalidSetting: ErrorCode = "invalid_setting"
    public static let settingsCorrupt: ErrorCode = "settings_corrupt"
    public static let settingsIO: ErrorCode = "settings_io"
    public static let configInvalid: ErrorCode = "config_invalid"
    public static let kubeconfigInvalid: ErrorCode = "kubeconfig_invalid"
    public static let credentialPluginFailed: ErrorCode = "credential_plugin_failed"
    // Kubernetes API (one code per Status reason class; see GuildNetKube/Client/KubeAPIError.swift)
    public static let k8sNotFound: ErrorCode = "k8s_not_found"
    public static let k8sUnauthorized: ErrorCode = "k8s_unauthorized"
    public static let k8sForbidden: ErrorCode = "k8s_forbidden"
    public static let k8sConflict: ErrorCode = "k8s_conflict"
    public static let k8sAlreadyExists: ErrorCode = "k8s_already_exists"
    public static let k8sInvalid: ErrorCode = "k8s_invalid"
    public static let k8sExpired: ErrorCode = "k8s_expired"
    public static let k8sTooManyRequests: ErrorCode = "k8s_too_many_requests"
    public static let k8sServerTimeout: ErrorCode = "k8s_server_timeout"
    public static let k8sServerError: ErrorCode = "k8s_server_error"
    public static let k8sTransport: ErrorCode = "k8s_transport"
    public static let k8sBadResponse: ErrorCode = "k8s_bad_response"
    public static let k8sUnavailable: ErrorCode = "k8s_unavailable"
    public static let subscriptionNotFound: ErrorCode = "subscription_not_found"
    public static let subscriptionLimit: ErrorCode = "subscription_limit"
    // RethinkDB (see GuildNetRethink/RethinkError.swift)
    public static let rethinkUnreachable: ErrorCode = "rethink_unreachable"
    public static let rethinkAuthFailed: ErrorCode = "rethink_auth_failed"
    public static let rethinkSchemaMissing: ErrorCode = "rethink_schema_missing"
    public static let rethinkQueryError: ErrorCode = "rethink_query_error"
    public static let rethinkConnectionLost: ErrorCode = "rethink_connection_lost"
    public static let rethinkProtocolError: ErrorCode = "rethink_protocol_error"
    public static let rethinkNotConfigured: ErrorCode = "rethink_not_configured"
    public static let rethinkFeedLimit: ErrorCode = "rethink_feed_limit"
    public static let rethinkFeedSkipped: ErrorCode = "rethink_feed_skipped"
    /// RethinkDB answered with an availability error (`OP_FAILED`/`OP_INDETERMINATE`, e.g. "primary
    /// replica for shard … not available" while a table starts after a restart or fails over).
    public static let rethinkUnavailable: ErrorCode = "rethink_unavailable"
    // Host
    public static let stateDirLocked: ErrorCode = "state_dir_locked"
    public static let io: ErrorCode = "io_error"
    public static let timeout: ErrorCode = "timeout"
    public static let internalError: ErrorCode = "internal"
}

/// The one error type that crosses module boundaries: a stable code, a human message that never
/// contains credentials, and whether retrying later may succeed.
public struct HostError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    /// `true` when the same request may succeed later (a lock, a timeout, a restart in progress).
    public var transient: Bool

    public init(_ code: ErrorCode, _ message: String, transient: Bool? = nil) {
        self.code = code
        self.message = message
        self.transient = transient ?? Self.defaultTransience(of: code)
    }

    /// The default classification of a code; individual errors may override it.
    public static func defaultTransience(of code: ErrorCode) -> Bool {
        switch code {
        case .dbLocked, .dbUnavailable, .clusterStopping, .clusterNotReady, .teardownTimeout, .timeout, .io, .childFailed,
            .credentialPluginFailed, .k8sConflict, .k8sExpired, .k8sTooManyRequests, .k8sServerTimeout, .k8sServerError,
            .k8sTransport, .k8sUnavailable, .rethinkUnreachable, .rethinkConnectionLost, .rethinkFeedLimit,
            .rethinkFeedSkipped, .rethinkUnavailable:
            return true
        default:
            return false
        }
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

extension HostError {
    /// Wraps any error as a ``HostError``; a ``HostError`` passes through unchanged.
    public static func wrapping(_ error: any Error, as code: ErrorCode = .internalError) -> HostError {
        if let hostError = error as? HostError { return hostError }
        return HostError(code, String(describing: error))
    }
}
