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

    /// The child's lifecycle; each state holds exactly what it needs.
    private enum State {
        /// Not started yet.
        case idle
        /// Started; no connector until the first `rethink.*` op.
        case running(spawner: TaskSpawner, connector: Built?)
        /// ``stop()`` ran: every feed ended, every connection closed.
        case stopped
    }

    /// A connector and the settings it was built from (compared to decide on a rebuild; never logged).
    private struct Built {
        let connector: RethinkConnector
        let settings: ConnectorSettings
    }

    private var state = State.idle

    /// The settings a connector is built from.
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
        if case .running = state { return }
        state = .running(spawner: TaskSpawner(), connector: nil)
    }

    /// Runs each connector's changefeed group, and the feed gauge sampler once a connector exists,
    /// as child tasks until cancelled.
    public func run() async throws {
        guard case .running(let spawner, _) = state else { return try await waitForCancellation() }
        await spawner.run()
        try Task.checkCancellation()
    }

    /// Ends every feed and closes every connection. Idempotent.
    public func stop() async {
        let previous = state
        state = .stopped
        metrics.gauge(Self.feedsGauge, help: Self.feedsHelp, labels: []).set(Int64(0))
        guard case .running(let spawner, let built) = previous else { return }
        spawner.finish()
        if let built { await built.connector.shutdown() }
    }

    public func details() async -> [String: JSONValue] {
        guard case .running(_, let built?) = state else {
            return ["connected": false, "address_source": .string(await addressSource())]
        }
        let status = await built.connector.status()
        metrics.gauge(Self.feedsGauge, help: Self.feedsHelp, labels: []).set(Int64(status.feeds.active))
        guard case .object(var object) = status.json else { return [:] }
        object["address_source"] = .string(await addressSource())
        return object
    }

    // MARK: Use

    /// The cluster's connector, built (or rebuilt after a settings change) from its settings.
    /// - Throws: `cluster_stopping` while the cluster stops, `cluster_not_ready` before it started.
    public func connector() async throws -> RethinkConnector {
        _ = try runningSpawner()
        let wanted = await currentSettings()
        // Re-read the state after the suspension: stop() or another rebuild may have run meanwhile.
        let spawner = try runningSpawner()
        guard case .running(_, let previous) = state else { throw Self.stopping }
        if let previous, previous.settings == wanted { return previous.connector }
        let configuration = RethinkConnectorConfiguration(
            user: wanted.user, password: wanted.password, maxConnections: wanted.poolSize,
            connectTimeout: .seconds(wanted.connectTimeoutSeconds), maxFeeds: wanted.maxFeeds,
            feedEventsPerSecond: wanted.feedEventsPerSecond, feedBurst: wanted.feedBurst, feedBatchRows: wanted.feedBatchRows)
        let discovery = RethinkDiscovery(settings: settings, kube: kube)
        let made = RethinkConnector(configuration: configuration, resolveAddress: { try await discovery.resolve() }, logger: logger)
        guard spawner.spawn({ await self.runConnector(made) }) else { throw Self.stopping }
        // The feed gauge is sampled only once the cluster uses RethinkDB (idle clusters cost nothing).
        if previous == nil && !sampling {
            sampling = true
            spawner.spawn { await self.sampleMetrics() }
        }
        // Install the new connector before the old one's shutdown suspends, so callers meanwhile get the new one.
        state = .running(spawner: spawner, connector: Built(connector: made, settings: wanted))
        if let previous {
            logger.info("rethinkdb settings changed; rebuilt the connector (the old one's feeds end)")
            await previous.connector.shutdown()
        }
        return made
    }

    private var sampling = false

    /// Applies a settings change at once (a reload or a write): when a `rethinkdb.*` key changed
    /// and a connector exists, it is rebuilt now if its settings differ (feeds on the old one end),
    /// instead of at the next `rethink.*` op. Other clusters are never touched.
    public func settingsChanged(_ keys: [String]) async {
        guard keys.contains(where: { $0.hasPrefix("rethinkdb.") }), case .running(_, let built?) = state else { return }
        let before = built.connector
        guard let after = try? await connector(), after !== before else { return }
        logger.info(
            "rethinkdb connector rebuilt after a settings change",
            metadata: ["event": "rethink_connector_rebuilt", "keys": .string(keys.filter { $0.hasPrefix("rethinkdb.") }.joined(separator: ","))])
    }

    private func runConnector(_ connector: RethinkConnector) async {
        do {
            try await connector.run()
        } catch {
            logger.debug("rethink connector run ended: \(error)")
        }
    }

    private func runningSpawner() throws -> TaskSpawner {
        switch state {
        case .running(let spawner, _): return spawner
        case .idle: throw HostError(.clusterNotReady, "the cluster's RethinkDB connector is not started yet", transient: true)
        case .stopped: throw Self.stopping
        }
    }

    private static let stopping = HostError(.clusterStopping, "the cluster is stopping")

    /// Active changefeeds (for leak checks and metrics).
    public var activeFeeds: Int {
        get async {
            guard case .running(_, let built?) = state else { return 0 }
            return await built.connector.status().feeds.active
        }
    }

    /// Copies the connector's feed count and feed counters into the cluster's series every
    /// ``metricsSamplingInterval``.
    private func sampleMetrics() async {
        await sampleEvery(metricsSamplingInterval) {
            guard case .running(_, let built?) = state else { return }
            let status = await built.connector.status()
            publishFeedCounters(status.feeds, of: built.connector)
            metrics.gauge(Self.feedsGauge, help: Self.feedsHelp, labels: []).set(Int64(status.feeds.active))
        }
    }

    /// Adds what the connector's feed counters grew by since the last sample (a rebuilt connector
    /// starts again from zero).
    private func publishFeedCounters(_ feeds: ChangefeedStatistics, of connector: RethinkConnector) {
        if published.connector !== connector { published = PublishedFeeds(connector: connector) }
        func add(_ name: String, _ help: String, _ value: Int, _ last: inout Int) {
            let counter = metrics.counter(name, help: help, labels: [])
            if value > last { counter.increment(by: Int64(value - last)) }
            last = max(last, value)
        }
        add(Self.eventsCounter, "Changefeed events delivered to subscribers (sampled).", feeds.delivered, &published.delivered)
        add(Self.droppedCounter, "Changefeed events dropped because a subscriber was too slow (sampled).", feeds.dropped, &published.dropped)
        add(Self.gapsCounter, "Changefeed gaps: resumes after a lost connection or changes skipped by the server (sampled).", feeds.gaps, &published.gaps)
    }

    private struct PublishedFeeds {
        var connector: RethinkConnector?
        var delivered = 0
        var dropped = 0
        var gaps = 0
    }

    private var published = PublishedFeeds()

    static let eventsCounter = "hostapp_cluster_rethink_feed_events_total"
    static let droppedCounter = "hostapp_cluster_rethink_feed_events_dropped_total"
    static let gapsCounter = "hostapp_cluster_rethink_feed_gaps_total"

    static let feedsGauge = "hostapp_cluster_rethink_changefeeds_active"
    static let feedsHelp = "Changefeeds open on the cluster's RethinkDB connector."

    /// The settings a connector is built from, read in one call on every `rethink.*` op.
    private func currentSettings() async -> ConnectorSettings {
        let values = await settings.snapshot()
        return ConnectorSettings(
            user: values[.rethinkUser],
            password: values[.rethinkPassword] ?? "",
            poolSize: values[.rethinkPoolSize],
            maxFeeds: values[.rethinkMaxFeeds],
            connectTimeoutSeconds: values[.rethinkConnectTimeoutSeconds],
            feedEventsPerSecond: values[.rethinkFeedEventsPerSecond],
            feedBurst: values[.rethinkFeedBurst],
            feedBatchRows: values[.rethinkFeedBatchRows])
    }

    private func addressSource() async -> String {
        if await settings.value(.rethinkAddress) != nil { return "setting" }
        return (try? await kube.requireClient()) != nil ? "kubernetes-service" : "none"
    }
}
