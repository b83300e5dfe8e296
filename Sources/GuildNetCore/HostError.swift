/// A stable, snake_case error code and its default classification. Codes are part of the control
/// protocol: never rename one. Each module declares its own codes next to its errors (`k8s_*` in
/// GuildNetKube, `rethink_*` in GuildNetRethink, migration codes in GuildNetMigration); the codes
/// every module shares are below.
public struct ErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String
    /// Whether an error with this code is transient unless it says otherwise (see ``HostError/transient``).
    public let transientByDefault: Bool

    public init(rawValue: String) { self.init(rawValue, transient: false) }
    public init(stringLiteral value: String) { self.init(value, transient: false) }

    /// A code and its default classification.
    public init(_ rawValue: String, transient: Bool) {
        self.rawValue = rawValue
        self.transientByDefault = transient
    }

    public var description: String { rawValue }
    public static func == (lhs: ErrorCode, rhs: ErrorCode) -> Bool { lhs.rawValue == rhs.rawValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }
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
    public static let clusterStopping = ErrorCode("cluster_stopping", transient: true)
    public static let clusterNotReady = ErrorCode("cluster_not_ready", transient: true)
    public static let teardownTimeout = ErrorCode("teardown_timeout", transient: true)
    public static let hostShuttingDown: ErrorCode = "host_shutting_down"
    public static let childFailed = ErrorCode("child_failed", transient: true)
    // Store
    public static let dbUnavailable = ErrorCode("db_unavailable", transient: true)
    public static let dbLocked = ErrorCode("db_locked", transient: true)
    public static let dbCorrupt: ErrorCode = "db_corrupt"
    public static let dbError: ErrorCode = "db_error"
    public static let keyNotFound: ErrorCode = "key_not_found"
    // Settings and configuration
    public static let invalidSetting: ErrorCode = "invalid_setting"
    public static let settingsCorrupt: ErrorCode = "settings_corrupt"
    public static let settingsIO: ErrorCode = "settings_io"
    public static let configInvalid: ErrorCode = "config_invalid"
    public static let kubeconfigInvalid: ErrorCode = "kubeconfig_invalid"
    public static let subscriptionNotFound: ErrorCode = "subscription_not_found"
    public static let subscriptionLimit: ErrorCode = "subscription_limit"
    // Host
    public static let stateDirLocked: ErrorCode = "state_dir_locked"
    public static let io = ErrorCode("io_error", transient: true)
    public static let timeout = ErrorCode("timeout", transient: true)
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
        code.transientByDefault
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// The one JSON form of an error, in replies, events and status: `{"code","message","transient"}`.
    public var json: JSONValue {
        .object(["code": .string(code.rawValue), "message": .string(message), "transient": .bool(transient)])
    }
}

extension HostError {
    /// Wraps any error as a ``HostError``; a ``HostError`` passes through unchanged.
    public static func wrapping(_ error: any Error, as code: ErrorCode = .internalError) -> HostError {
        if let hostError = error as? HostError { return hostError }
        return HostError(code, String(describing: error))
    }
}
