import GuildNetCore
import GuildNetMetrics
import Logging
import ServiceLifecycle
import TestSupport
import Testing

@Suite("/metrics HTTP listener")
struct MetricsHTTPServerTests {
    private static func quietLogger() -> Logger {
        var logger = Logger(label: "metrics-http-test")
        // Cancelling the server makes Hummingbird log the cancelled child channel at error level.
        logger.logLevel = .critical
        return logger
    }

    /// Runs a server on `address` (port 0) and hands its bound port to `body`; the server is cancelled afterwards.
    private func withServer(
        _ metrics: HostMetrics,
        address: String = "127.0.0.1:0",
        _ body: @escaping @Sendable (Int) async throws -> Void
    ) async throws {
        let (ports, portSink) = AsyncStream<Int>.makeStream()
        let server = MetricsHTTPServer(
            address: try MetricsAddress.parse(address),
            metrics: metrics,
            logger: Self.quietLogger(),
            onListening: { port in portSink.yield(port) }
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // Ends the port stream when the server stops, so a failed bind cannot hang the test.
                defer { portSink.finish() }
                try await server.run()
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else {
                _ = try await group.next()  // surfaces the server's error
                Issue.record("the server stopped before listening")
                return
            }
            #expect(port > 0)
            do {
                try await body(port)
            } catch {
                group.cancelAll()
                throw error
            }
            group.cancelAll()
        }
    }

    @Test func servesExpositionOnLoopback() async throws {
        let host = HostMetrics()
        host.setClustersActive(1)
        let cluster = host.makeClusterMetrics(for: try ClusterID(name: "alpha"))
        try await cluster.start()
        cluster.lifecycle(.create)
        cluster.setDatabaseOpen(true)

        try await withServer(host) { port in
            let reply = try await httpGet(port: port, path: "/metrics")
            #expect(reply.status == 200)
            #expect(reply.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
            let parsed = ParsedExposition(reply.body)
            #expect(parsed.value("hostapp_clusters_active", [:]) == 1)
            #expect(parsed.value("hostapp_cluster_db_open", ["cluster_id": "alpha"]) == 1)
            #expect(parsed.value("hostapp_cluster_lifecycle_events_total", ["cluster_id": "alpha", "event": "create"]) == 1)

            // Each scrape renders the current state.
            cluster.unregisterAll()
            let after = try await httpGet(port: port, path: "/metrics")
            #expect(after.status == 200)
            #expect(ParsedExposition(after.body).samples(ofCluster: "alpha").isEmpty)
        }
    }

    @Test func otherPathsAreNotFound() async throws {
        try await withServer(HostMetrics()) { port in
            for path in ["/nope", "/", "/metrics/extra"] {
                let reply = try await httpGet(port: port, path: path)
                #expect(reply.status == 404, "GET \(path)")
            }
        }
    }

    @Test func stopsOnGracefulShutdownAndClosesTheListener() async throws {
        let (ports, portSink) = AsyncStream<Int>.makeStream()
        let server = MetricsHTTPServer(
            address: try MetricsAddress.parse("127.0.0.1:0"),
            metrics: HostMetrics(),
            logger: Self.quietLogger(),
            onListening: { port in portSink.yield(port) }
        )
        let group = ServiceGroup(services: [server], gracefulShutdownSignals: [], logger: Self.quietLogger())
        let port = try await withThrowingTaskGroup(of: Void.self) { tasks -> Int in
            tasks.addTask {
                defer { portSink.finish() }
                try await group.run()
            }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next(), "the server stopped before listening")
            #expect(try await httpGet(port: port, path: "/metrics").status == 200)
            await group.triggerGracefulShutdown()
            // The service group returns by itself once the listener has shut down.
            try await tasks.waitForAll()
            return port
        }
        await #expect(throws: TestFailure.self) {
            _ = try await httpGet(port: port, path: "/metrics")
        }
    }
}
