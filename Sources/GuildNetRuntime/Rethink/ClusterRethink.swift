import GuildNetCore
import GuildNetKube
import GuildNetMetrics
import GuildNetRethink
import GuildNetSettings
import Logging

/// The cluster's RethinkDB subsystem (child id `rethink`): its own ``RethinkConnector`` (a lazy pool
/// of multiplexed connections plus the cluster's changefeeds), never shared with another cluster.
///
/// ```
/// rethink  ClusterRethink
///  └─ connector  RethinkConnector (pool ≤ rethinkdb.pool_size, feeds ≤ rethinkdb.max_feeds)
///      └─ feeds  one child task per changefeed, in the connector's task group (run())
/// ```
///
/// Lazy: nothing connects until the first `rethink.*` op; `rethink.warmup` connects on purpose. The
/// connector is built from the cluster's settings when first needed and rebuilt (the old one shut
/// down, its feeds ended) when `rethinkdb.user`, `rethinkdb.password`, `rethinkdb.pool_size`,
/// `rethinkdb.max_feeds`, `rethinkdb.connect_timeout_seconds`, `rethinkdb.feed_events_per_second` or
/// `rethinkdb.feed_burst` or `rethinkdb.feed_batch_rows` change. The address is resolved for
/// every new connection (see ``RethinkDiscovery``), so a changed `rethinkdb.address` applies to the
/// next connection.
public actor ClusterRethink: ClusterChild {
    public nonisolated let childID = "rethink"
    private let settings: ClusterSettings
    private let kube: ClusterKube
    private let metrics: ClusterMetrics
    private let logger: Logger

    private var connector: RethinkConnector?
    private var fingerprint: ConnectorSettings?
    private var runs: AsyncStream<RethinkConnector>.Continuation?
    private var runStream: AsyncStream<RethinkConnector>?
    private var stopping = false

    /// The settings a connector is built from (compared to decide on a rebuild; never logged).
    struct ConnectorSettings: Equatable {
        var user: String
        var password: String
        var poolSize: Int
        var maxFeeds: Int
        var connectTimeoutSeconds: Int
        var feedEventsPerSecond: Int
        var feedBurst: Int
        var feedBatchRows: Int
    }

    init(settings: ClusterSettings, kube: ClusterKube, metrics: ClusterMetrics, logger: Logger) {
        self.settings = settings
        self.kube = kube
        self.metrics = metrics
        self.logger = logger
    }

    // MARK: ClusterChild

    public func start() async throws {
        stopping = false
        let (stream, continuation) = AsyncStream<RethinkConnector>.makeStream()
        runStream = stream
        runs = continuation
    }

    /// Runs each connector's changefeed group as a child task until cancelled.
    public func run() async throws {
        guard let stream = runStream else { return try await waitForCancellation() }
        await withDiscardingTaskGroup { group in
            var sampling = false
            for await connector in stream {
                // The feed gauge is sampled only once the cluster uses RethinkDB (idle clusters cost nothing).
                if !sampling {
                    sampling = true
                    group.addTask { await self.sampleMetrics() }
                }
                group.addTask {
                    do {
                        try await connector.run()
                    } catch {
                        self.logger.debug("rethink connector run ended: \(error)")
                    }
                }
            }
        }
        try Task.checkCancellation()
    }

    /// Ends every feed and closes every connection. Idempotent.
    public func stop() async {
        stopping = true
        runs?.finish()
        runs = nil
        runStream = nil
        if let connector {
            await connector.shutdown()
        }
        connector = nil
        fingerprint = nil
        metrics.gauge(Self.feedsGauge, help: Self.feedsHelp, labels: []).set(Int64(0))
    }

    public func details() async -> [String: JSONValue] {
        guard let connector else { return ["connected": false, "address_source": .string(await addressSource())] }
        let status = await connector.status()
        metrics.gauge(Self.feedsGauge, help: Self.feedsHelp, labels: []).set(Int64(status.feeds.active))
        guard case .object(var object) = status.json else { return [:] }
        object["address_source"] = .string(await addressSource())
        return object
    }

    // MARK: Use

    /// The cluster's connector, built (or rebuilt after a settings change) from its settings.
    /// - Throws: `cluster_stopping` while the cluster stops.
    public func connector() async throws -> RethinkConnector {
        if stopping || runs == nil { throw HostError(.clusterStopping, "the cluster is stopping") }
        let wanted = await currentSettings()
        if let connector, fingerprint == wanted { return connector }
        if let old = connector {
            logger.info("rethinkdb settings changed; rebuilding the connector (its feeds end)")
            await old.shutdown()
        }
        // Re-check after the suspension: stop() may have run meanwhile.
        guard !stopping, let runs else { throw HostError(.clusterStopping, "the cluster is stopping") }
        if let connector, fingerprint == wanted { return connector }
        let configuration = RethinkConnectorConfiguration(
            user: wanted.user, password: wanted.password, maxConnections: wanted.poolSize,
            connectTimeout: .seconds(wanted.connectTimeoutSeconds), maxFeeds: wanted.maxFeeds,
            feedEventsPerSecond: wanted.feedEventsPerSecond, feedBurst: wanted.feedBurst, feedBatchRows: wanted.feedBatchRows)
        let discovery = RethinkDiscovery(settings: settings, kube: kube)
        let made = RethinkConnector(configuration: configuration, resolveAddress: { try await discovery.resolve() }, logger: logger)
        connector = made
        fingerprint = wanted
        runs.yield(made)
        return made
    }

    /// Active changefeeds (for leak checks and metrics).
    public var activeFeeds: Int {
        get async { await connector?.status().feeds.active ?? 0 }
    }

    /// Copies the connector's feed count into the cluster's gauge every ``metricsSamplingInterval``.
    private func sampleMetrics() async {
        await sampleEvery(metricsSamplingInterval) {
            metrics.gauge(Self.feedsGauge, help: Self.feedsHelp, labels: []).set(Int64(await activeFeeds))
        }
    }

    static let feedsGauge = "hostapp_cluster_rethink_changefeeds_active"
    static let feedsHelp = "Changefeeds open on the cluster's RethinkDB connector."

    /// The settings a connector is built from, read in one call on every `rethink.*` op.
    private func currentSettings() async -> ConnectorSettings {
        let values = await settings.effectiveValues(Self.connectorKeys)
        // Every key but the password has a schema default, and every layer is validated against the
        // schema, so the fallbacks below are never taken for them; the password defaults to empty.
        func string(_ key: String) -> String { values[key]?.stringValue ?? "" }
        func int(_ key: String) -> Int { Int(values[key]?.intValue ?? 0) }
        return ConnectorSettings(
            user: string("rethinkdb.user"),
            password: string("rethinkdb.password"),
            poolSize: int("rethinkdb.pool_size"),
            maxFeeds: int("rethinkdb.max_feeds"),
            connectTimeoutSeconds: int("rethinkdb.connect_timeout_seconds"),
            feedEventsPerSecond: int("rethinkdb.feed_events_per_second"),
            feedBurst: int("rethinkdb.feed_burst"),
            feedBatchRows: int("rethinkdb.feed_batch_rows"))
    }

    static let connectorKeys = [
        "rethinkdb.user", "rethinkdb.password", "rethinkdb.pool_size", "rethinkdb.max_feeds",
        "rethinkdb.connect_timeout_seconds", "rethinkdb.feed_events_per_second", "rethinkdb.feed_burst",
        "rethinkdb.feed_batch_rows",
    ]

    private func addressSource() async -> String {
        if await settings.value("rethinkdb.address") != nil { return "setting" }
        return (try? await kube.requireClient()) != nil ? "kubernetes-service" : "none"
    }
}
