import GuildNetCore
import Prometheus
import Testing

@testable import GuildNetMetrics

private let dbOpen = "hostapp_cluster_db_open"
private let dbErrors = "hostapp_cluster_db_errors_total"
private let lifecycleEvents = "hostapp_cluster_lifecycle_events_total"
private let childRestarts = "hostapp_cluster_child_restarts_total"
private let clustersActive = "hostapp_clusters_active"

@Suite("Per-cluster metric series")
struct ClusterMetricsTests {
    /// Two started clusters with a few events each.
    private func twoClusters() async throws -> (HostMetrics, ClusterMetrics, ClusterMetrics) {
        let host = HostMetrics()
        let alpha = host.makeClusterMetrics(for: try ClusterID(name: "alpha"))
        let beta = host.makeClusterMetrics(for: try ClusterID(name: "beta"))
        try await alpha.start()
        try await beta.start()
        alpha.lifecycle(.create)
        beta.lifecycle(.create)
        beta.lifecycle(.start)
        alpha.registerChild("store")
        alpha.childRestarted("store")
        alpha.setDatabaseOpen(true)
        return (host, alpha, beta)
    }

    @Test func handleRegistersNothingBeforeUse() throws {
        let host = HostMetrics()
        let metrics = host.makeClusterMetrics(for: try ClusterID(name: "alpha"))
        #expect(metrics.seriesCount == 0)
        #expect(metrics.childID == "metrics")
        let parsed = ParsedExposition(host.exposition())
        #expect(parsed.samples == [Sample(name: clustersActive, labels: [:], value: 0)])
    }

    @Test func clustersActiveGauge() {
        let host = HostMetrics()
        host.setClustersActive(3)
        #expect(ParsedExposition(host.exposition()).value(clustersActive, [:]) == 3)
        host.setClustersActive(0)
        #expect(ParsedExposition(host.exposition()).value(clustersActive, [:]) == 0)
    }

    @Test func twoClustersHaveDistinctLabelledSeries() async throws {
        let (host, alpha, beta) = try await twoClusters()
        let parsed = ParsedExposition(host.exposition())

        for sample in parsed.samples where sample.name.hasPrefix("hostapp_cluster_") {
            #expect(sample.labels["cluster_id"] != nil, "unlabelled per-cluster sample \(sample)")
        }
        #expect(parsed.value(dbOpen, ["cluster_id": "alpha"]) == 1)
        #expect(parsed.value(dbOpen, ["cluster_id": "beta"]) == 0)
        #expect(parsed.value(lifecycleEvents, ["cluster_id": "alpha", "event": "create"]) == 1)
        #expect(parsed.value(lifecycleEvents, ["cluster_id": "beta", "event": "create"]) == 1)
        #expect(parsed.value(lifecycleEvents, ["cluster_id": "beta", "event": "start"]) == 1)
        #expect(parsed.value(lifecycleEvents, ["cluster_id": "alpha", "event": "start"]) == nil)
        #expect(parsed.value(childRestarts, ["cluster_id": "alpha", "child": "store"]) == 1)
        #expect(parsed.samples(named: childRestarts).count == 1)

        // db_open and db_errors (from start()), lifecycle events, alpha's restarts.
        #expect(parsed.samples(ofCluster: "alpha").count == 4)
        #expect(parsed.samples(ofCluster: "beta").count == 4)
        #expect(alpha.seriesCount == 4)
        #expect(beta.seriesCount == 4)
        #expect(await alpha.details() == ["series": .int(4)])
        // One HELP and one TYPE line per family, never repeated per cluster.
        #expect(parsed.helpLines.sorted() == [childRestarts, dbOpen, dbErrors, lifecycleEvents, clustersActive].sorted())
        #expect(parsed.typeLines.sorted() == parsed.helpLines.sorted())
    }

    @Test func labelValueIsTheClusterKey() async throws {
        let host = HostMetrics()
        let id = try ClusterID(name: "Prod EU/west")
        let metrics = host.makeClusterMetrics(for: id)
        try await metrics.start()
        metrics.lifecycle(.ready)
        let parsed = ParsedExposition(host.exposition())
        #expect(id.key != id.name)
        #expect(parsed.value(dbOpen, ["cluster_id": id.key]) == 0)
        #expect(parsed.value(lifecycleEvents, ["cluster_id": id.key, "event": "ready"]) == 1)
    }

    @Test func registerChildShowsZeroBeforeFirstRestart() async throws {
        let host = HostMetrics()
        let metrics = host.makeClusterMetrics(for: try ClusterID(name: "alpha"))
        metrics.registerChild("store")
        metrics.registerChild("settings")
        metrics.childRestarted("settings")
        metrics.childRestarted("settings")
        metrics.registerChild("settings")  // does not reset
        let parsed = ParsedExposition(host.exposition())
        #expect(parsed.value(childRestarts, ["cluster_id": "alpha", "child": "store"]) == 0)
        #expect(parsed.value(childRestarts, ["cluster_id": "alpha", "child": "settings"]) == 2)
    }

    @Test func startIsIdempotentAndKeepsValues() async throws {
        let host = HostMetrics()
        let metrics = host.makeClusterMetrics(for: try ClusterID(name: "alpha"))
        try await metrics.start()
        metrics.setDatabaseOpen(true)
        await metrics.stop()
        try await metrics.start()
        #expect(metrics.seriesCount == 2)
        #expect(ParsedExposition(host.exposition()).value(dbOpen, ["cluster_id": "alpha"]) == 1)
        metrics.setDatabaseOpen(false)
        #expect(ParsedExposition(host.exposition()).value(dbOpen, ["cluster_id": "alpha"]) == 0)
    }

    @Test func unregisterAllRemovesExactlyThatCluster() async throws {
        let (host, alpha, beta) = try await twoClusters()
        alpha.unregisterAll()

        var parsed = ParsedExposition(host.exposition())
        #expect(parsed.samples(ofCluster: "alpha").isEmpty)
        #expect(parsed.samples(ofCluster: "beta").count == 4)
        #expect(parsed.value(lifecycleEvents, ["cluster_id": "beta", "event": "start"]) == 1)
        #expect(alpha.seriesCount == 0)
        #expect(beta.seriesCount == 4)
        // Only alpha had restart series: the family is gone, HELP and TYPE lines included.
        #expect(!parsed.helpLines.contains(childRestarts))
        #expect(!parsed.typeLines.contains(childRestarts))
        #expect(parsed.helpLines.sorted() == [dbOpen, dbErrors, lifecycleEvents, clustersActive].sorted())

        beta.unregisterAll()
        parsed = ParsedExposition(host.exposition())
        #expect(parsed.samples == [Sample(name: clustersActive, labels: [:], value: 0)])
        #expect(parsed.helpLines == [clustersActive])
        #expect(parsed.typeLines == [clustersActive])
        #expect(host.catalogSeriesCount == 0)
    }

    @Test func callsAfterUnregisterAllDoNotResurrectSeries() async throws {
        let (host, alpha, _) = try await twoClusters()
        alpha.unregisterAll()
        let before = host.exposition()

        try await alpha.start()
        alpha.lifecycle(.destroy)
        alpha.childRestarted("store")
        alpha.childRestarted("kube")
        alpha.registerChild("routes")
        alpha.setDatabaseOpen(true)
        alpha.counter("hostapp_cluster_forward_bytes_total", help: "Bytes forwarded.", labels: [("direction", "in")])
            .increment(by: Int64(10))
        alpha.gauge("hostapp_cluster_watch_streams", help: "Open watch streams.", labels: []).set(Int64(4))
        await alpha.stop()
        alpha.unregisterAll()  // idempotent

        #expect(alpha.seriesCount == 0)
        #expect(await alpha.details() == ["series": .int(0)])
        let parsed = ParsedExposition(host.exposition())
        #expect(parsed.samples(ofCluster: "alpha").isEmpty)
        #expect(parsed.samples.count == ParsedExposition(before).samples.count)
        #expect(!parsed.helpLines.contains("hostapp_cluster_forward_bytes_total"))
    }

    @Test func customSeriesAreTrackedAndShared() async throws {
        let host = HostMetrics()
        let metrics = host.makeClusterMetrics(for: try ClusterID(name: "alpha"))
        let first = metrics.counter("hostapp_cluster_forward_bytes_total", help: "Bytes forwarded.", labels: [("direction", "in"), ("forward", "web")])
        // Same name and labels in another order: the same series.
        let second = metrics.counter("hostapp_cluster_forward_bytes_total", help: "Bytes forwarded.", labels: [("forward", "web"), ("direction", "in")])
        #expect(first === second)
        first.increment(by: Int64(5))
        let gauge = metrics.gauge("hostapp_cluster_routes_healthy", help: "Healthy routes.", labels: [("strategy", "direct")])
        gauge.set(Int64(1))
        #expect(metrics.seriesCount == 2)

        let parsed = ParsedExposition(host.exposition())
        #expect(parsed.value("hostapp_cluster_forward_bytes_total", ["cluster_id": "alpha", "direction": "in", "forward": "web"]) == 5)
        #expect(parsed.value("hostapp_cluster_routes_healthy", ["cluster_id": "alpha", "strategy": "direct"]) == 1)
        let text = String(decoding: host.exposition(), as: UTF8.self)
        #expect(text.contains(#"hostapp_cluster_forward_bytes_total{cluster_id="alpha",direction="in",forward="web"} 5"#))

        metrics.unregisterAll()
        #expect(ParsedExposition(host.exposition()).samples(ofCluster: "alpha").isEmpty)
        #expect(host.catalogSeriesCount == 0)
    }

    @Test func unsafeRegistrationsAreDetachedInsteadOfCrashing() throws {
        let host = HostMetrics()
        let metrics = host.makeClusterMetrics(for: try ClusterID(name: "alpha"))
        _ = metrics.counter("hostapp_cluster_things_total", help: "Things.", labels: [])

        // Each of these would crash swift-prometheus (type/help mismatch, duplicate label) or
        // export a wrong name; each gets a working handle that is never exported.
        let refused: [() -> Void] = [
            { metrics.counter("hostapp_cluster_things_total", help: "Other help.", labels: []).increment() },
            { metrics.gauge("hostapp_cluster_things_total", help: "Things.", labels: []).set(Int64(1)) },
            { metrics.gauge(clustersActive, help: "Clusters registered and not yet destroyed.", labels: []).set(Int64(9)) },
            { metrics.counter(clustersActive, help: "x", labels: []).increment() },
            { metrics.counter("hostapp_cluster_x_total", help: "x", labels: [("cluster_id", "beta")]).increment() },
            { metrics.counter("hostapp_cluster_x_total", help: "x", labels: [("a", "1"), ("a", "2")]).increment() },
            { metrics.counter("hostapp_cluster_x_total", help: "x", labels: [("bad-label", "1")]).increment() },
            { metrics.counter("hostapp_cluster_x_total", help: "x", labels: [("__reserved", "1")]).increment() },
            { metrics.counter("", help: "x", labels: []).increment() },
            { metrics.counter("1starts_with_digit", help: "x", labels: []).increment() },
            { metrics.counter("has space", help: "x", labels: []).increment() },
        ]
        for call in refused { call() }

        #expect(host.rejectedRegistrations == refused.count)
        #expect(metrics.seriesCount == 1)
        let parsed = ParsedExposition(host.exposition())
        #expect(parsed.samples.count == 2)
        #expect(parsed.value(clustersActive, [:]) == 0)
        #expect(parsed.value("hostapp_cluster_things_total", ["cluster_id": "alpha"]) == 0)
    }

    @Test func twoHandlesOfOneClusterShareSeriesUntilBothUnregister() throws {
        let host = HostMetrics()
        let id = try ClusterID(name: "alpha")
        let old = host.makeClusterMetrics(for: id)
        let new = host.makeClusterMetrics(for: id)
        old.lifecycle(.create)
        new.lifecycle(.create)
        #expect(ParsedExposition(host.exposition()).value(lifecycleEvents, ["cluster_id": "alpha", "event": "create"]) == 2)

        old.unregisterAll()
        #expect(ParsedExposition(host.exposition()).value(lifecycleEvents, ["cluster_id": "alpha", "event": "create"]) == 2)
        new.unregisterAll()
        #expect(ParsedExposition(host.exposition()).samples(ofCluster: "alpha").isEmpty)
    }

    @Test func releasingAHandleRemovesItsSeries() throws {
        let host = HostMetrics()
        let id = try ClusterID(name: "alpha")
        func useAndDrop() {
            let metrics = host.makeClusterMetrics(for: id)
            metrics.lifecycle(.create)
            metrics.setDatabaseOpen(true)
        }
        useAndDrop()
        #expect(ParsedExposition(host.exposition()).samples(ofCluster: "alpha").isEmpty)
        #expect(host.catalogSeriesCount == 0)
    }

    @Test func concurrentUseAndUnregisterLeavesNothingBehind() async throws {
        let host = HostMetrics()
        let alpha = host.makeClusterMetrics(for: try ClusterID(name: "alpha"))
        let beta = host.makeClusterMetrics(for: try ClusterID(name: "beta"))
        beta.lifecycle(.create)
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for round in 0..<200 {
                        let event = LifecycleEvent.allCases[(worker + round) % LifecycleEvent.allCases.count]
                        alpha.lifecycle(event)
                        alpha.childRestarted("child-\(round % 5)")
                        alpha.setDatabaseOpen(round % 2 == 0)
                        beta.childRestarted("store")
                    }
                }
            }
            group.addTask { alpha.unregisterAll() }
        }
        let parsed = ParsedExposition(host.exposition())
        #expect(parsed.samples(ofCluster: "alpha").isEmpty)
        #expect(alpha.seriesCount == 0)
        #expect(parsed.value(childRestarts, ["cluster_id": "beta", "child": "store"]) == 1600)
        #expect(parsed.value(lifecycleEvents, ["cluster_id": "beta", "event": "create"]) == 1)
    }
}
