import GuildNetCore

/// A known settings key with the Swift type of its value, its default and its documentation: the
/// schema (``SettingsSchema``) is the list of these, so a default is written exactly once, here.
///
/// Read one with ``ClusterSettings/value(_:)-(SettingKey<Value>)``; a key with a default reads as
/// its value type, one without as an optional.
public struct SettingKey<Value: Sendable>: Sendable {
    /// The key as written in settings files, `settings.set` and `--set`.
    public let name: String
    let info: SettingsSchema.Entry
    /// The value when no layer has the key (`nil` for optional keys).
    let fallback: Value
    let decode: @Sendable (JSONValue) -> Value?

    /// The typed form of a layer's value (validated by the schema), or the fallback.
    func read(_ value: JSONValue?) -> Value {
        value.flatMap(decode) ?? fallback
    }

    /// The type-erased entry of the schema table.
    var erased: SettingsSchema.Entry { info }
}

extension SettingKey where Value == Int {
    /// An integer key with a default.
    static func integer(_ name: String, _ range: ClosedRange<Int64>, default value: Int64, _ summary: String) -> Self {
        Self(
            name: name, info: .init(name: name, type: .integer(range), defaultValue: .int(value), summary: summary),
            fallback: Int(value), decode: { $0.intValue.map { Int($0) } })
    }
}

extension SettingKey where Value == Bool {
    /// A boolean key with a default.
    static func bool(_ name: String, default value: Bool, _ summary: String) -> Self {
        Self(
            name: name, info: .init(name: name, type: .bool, defaultValue: .bool(value), summary: summary), fallback: value,
            decode: { $0.boolValue })
    }
}

extension SettingKey where Value == String {
    /// A string key with a default (`choices`, when given, are the only values accepted).
    static func string(_ name: String, default value: String, choices: [String]? = nil, _ summary: String) -> Self {
        Self(
            name: name,
            info: .init(name: name, type: choices.map { .choice($0) } ?? .string, defaultValue: .string(value), summary: summary),
            fallback: value, decode: { $0.stringValue })
    }
}

extension SettingKey where Value == String? {
    /// An optional string key (`hostPort` checks `host:port`; `secret` redacts it everywhere).
    static func optionalString(_ name: String, hostPort: Bool = false, secret: Bool = false, _ summary: String) -> Self {
        Self(
            name: name,
            info: .init(name: name, type: hostPort ? .hostPort : .string, defaultValue: nil, summary: summary, secret: secret),
            fallback: nil, decode: { $0.stringValue.map { Optional($0) } })
    }
}

extension SettingKey where Value == [String]? {
    /// An optional array-of-strings key.
    static func optionalStrings(_ name: String, _ summary: String) -> Self {
        Self(
            name: name, info: .init(name: name, type: .stringArray, defaultValue: nil, summary: summary), fallback: nil,
            decode: { value in value.arrayValue.map { Optional($0.compactMap(\.stringValue)) } })
    }
}

// MARK: The known keys

extension SettingKey where Value == String? {
    // The Go GuildNet cluster-settings fields.
    public static let displayName = optionalString("name", "Display name of the cluster.")
    public static let apiProxyURL = optionalString("api_proxy_url", "URL of an API proxy used to reach the cluster.")
    public static let tsLoginServer = optionalString("ts_login_server", "Tailscale/Headscale login server URL.")
    // RethinkDB.
    public static let rethinkAddress = optionalString(
        "rethinkdb.address", hostPort: true, "Explicit RethinkDB address; skips service discovery.")
    public static let rethinkPassword = optionalString("rethinkdb.password", secret: true, "RethinkDB password (secret).")
    public static let rethinkNamespace = optionalString(
        "rethinkdb.namespace", "Namespace of the RethinkDB service (defaults to `namespace`).")
}

extension SettingKey where Value == [String]? {
    public static let tsRoutes = optionalStrings("ts_routes", "Subnet routes (CIDRs) reached over the tailnet.")
}

extension SettingKey where Value == String {
    public static let namespace = string("namespace", default: "default", "Default Kubernetes namespace for workloads.")
    public static let routeStrategy = string(
        "route.strategy", default: "auto", choices: SettingsSchema.routeStrategies,
        "Pins the API route strategy; auto tries direct, kubectl-proxy, then tailnet.")
    public static let rethinkUser = string("rethinkdb.user", default: "admin", "RethinkDB user.")
    public static let rethinkService = string(
        "rethinkdb.service", default: "rethinkdb", "Kubernetes service name used to discover RethinkDB.")
}

extension SettingKey where Value == Bool {
    public static let apiProxyForceHTTP = bool("api_proxy_force_http", default: false, "Talk plain HTTP to the API proxy.")
    public static let disableAPIProxy = bool("disable_api_proxy", default: false, "Never use the API proxy.")
    public static let preferPodProxy = bool(
        "prefer_pod_proxy", default: false, "Prefer the API server's pod proxy over direct pod access.")
    public static let usePortForward = bool(
        "use_port_forward", default: false, "Reach in-cluster services through port-forwards.")
}

extension SettingKey where Value == Int {
    public static let rethinkPort = integer("rethinkdb.port", 1...65_535, default: 28_015, "RethinkDB driver port.")
    public static let rethinkPoolSize = integer(
        "rethinkdb.pool_size", 1...64, default: 4, "Most connections the cluster's RethinkDB connector opens.")
    public static let rethinkMaxFeeds = integer(
        "rethinkdb.max_feeds", 1...1024, default: 32, "Most concurrent changefeeds of the cluster.")
    public static let rethinkFeedEventsPerSecond = integer(
        "rethinkdb.feed_events_per_second", 0...10_000_000, default: 10_000,
        "Changefeed events per second the cluster's feeds may deliver together; 0 is unlimited.")
    public static let rethinkFeedBurst = integer(
        "rethinkdb.feed_burst", 1...10_000_000, default: 1_000,
        "Changefeed events that may pass at once above rethinkdb.feed_events_per_second.")
    public static let rethinkFeedBatchRows = integer(
        "rethinkdb.feed_batch_rows", 1...100_000, default: 32,
        "Most rows per changefeed response (max_batch_rows); small batches keep other clusters' latency low.")
    public static let rethinkConnectTimeoutSeconds = integer(
        "rethinkdb.connect_timeout_seconds", 1...300, default: 5, "Connect and handshake timeout of one RethinkDB connection.")
    public static let kubeQPS = integer("kube.qps", 1...100_000, default: 50, "Sustained Kubernetes API requests per second.")
    public static let kubeBurst = integer("kube.burst", 1...100_000, default: 100, "Kubernetes API request burst above kube.qps.")
    public static let kubeRequestTimeoutSeconds = integer(
        "kube.request_timeout_seconds", 1...3600, default: 30, "Timeout of one Kubernetes API request (not of watches).")
    public static let forwardHealthIntervalMilliseconds = integer(
        "forward.health_interval_ms", 50...3_600_000, default: 10_000, "Time between two health probes of a port-forward (applies to forwards started later).")
    public static let forwardMaxRestarts = integer(
        "forward.max_restarts", 0...1000, default: 5, "Consecutive failed checks a port-forward survives before it gives up (state failed).")
}

extension SettingsSchema {
    /// Every known key, each declared once above.
    static let allKeys: [Entry] =
        [
            SettingKey<String?>.displayName.erased, SettingKey<String?>.apiProxyURL.erased, SettingKey<String?>.tsLoginServer.erased,
            SettingKey<String?>.rethinkAddress.erased, SettingKey<String?>.rethinkPassword.erased, SettingKey<String?>.rethinkNamespace.erased,
        ]
        + [SettingKey<[String]?>.tsRoutes.erased]
        + [
            SettingKey<String>.namespace.erased, SettingKey<String>.routeStrategy.erased, SettingKey<String>.rethinkUser.erased,
            SettingKey<String>.rethinkService.erased,
        ]
        + [
            SettingKey<Bool>.apiProxyForceHTTP.erased, SettingKey<Bool>.disableAPIProxy.erased, SettingKey<Bool>.preferPodProxy.erased,
            SettingKey<Bool>.usePortForward.erased,
        ]
        + [
            SettingKey<Int>.rethinkPort.erased, SettingKey<Int>.rethinkPoolSize.erased, SettingKey<Int>.rethinkMaxFeeds.erased,
            SettingKey<Int>.rethinkFeedEventsPerSecond.erased, SettingKey<Int>.rethinkFeedBurst.erased, SettingKey<Int>.rethinkFeedBatchRows.erased,
            SettingKey<Int>.rethinkConnectTimeoutSeconds.erased, SettingKey<Int>.kubeQPS.erased, SettingKey<Int>.kubeBurst.erased,
            SettingKey<Int>.kubeRequestTimeoutSeconds.erased, SettingKey<Int>.forwardHealthIntervalMilliseconds.erased,
            SettingKey<Int>.forwardMaxRestarts.erased,
        ]
        + guildNetKeys + routeKeys
}
