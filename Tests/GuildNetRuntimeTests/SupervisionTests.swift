import Foundation
import GuildNetCore
import GuildNetRuntime
import TestSupport
import Testing

@Suite("Cluster supervision")
struct SupervisionTests {
    @Test("a failing child is restarted with backoff; its siblings and other clusters are untouched")
    func childRestart() async throws {
        let dir = TemporaryDirectory("sv")
        defer { dir.remove() }
        let logs = LogCapture()
        let flaky = FlakyChild(failures: 3)
        try await withRunningHost(
            stateDirectory: dir.path, logs: logs,
            configure: { config in
                config.extraChildren = { context in context.cluster.key == "flaky" ? [flaky] : [] }
            }
        ) { host in
            _ = try await host.register(RegisterRequest(name: "steady"))
            _ = try await host.register(RegisterRequest(name: "flaky"))
            let cluster = try await host.cluster(named: "flaky")
            try await eventually("flaky cluster ready again") { cluster.state == .ready }
            let status = await cluster.status()
            let child = try #require(status.children.first { $0.id == "flaky" })
            #expect(child.restarts == 3)
            #expect(child.state == .running)
            #expect(child.lastError?.message == "injected failure")
            #expect(await flaky.starts == 4)
            #expect(await flaky.stops == 3)
            let store = try #require(status.children.first { $0.id == "store" })
            #expect(store.restarts == 0)
            let steady = await (try host.cluster(named: "steady")).status()
            #expect(steady.state == .ready)
            #expect(steady.children.allSatisfy { $0.restarts == 0 })
            let exposition = String(decoding: host.configuration.metrics.exposition(), as: UTF8.self)
            #expect(
                exposition.contains("hostapp_cluster_child_restarts_total{cluster_id=\"flaky\",child=\"flaky\"} 3")
                    || exposition.contains("hostapp_cluster_child_restarts_total{child=\"flaky\",cluster_id=\"flaky\"} 3"), "\(exposition)")
        }
        #expect(logs.all.filter { $0.contains("event=child_failed") && $0.contains("cluster_id=flaky") }.count == 3)
        #expect(logs.all.filter { $0.contains("event=child_restarted") }.count == 3)
        #expect(logs.all.filter { $0.contains("event=degraded") && $0.contains("cluster_id=flaky") }.count >= 1)
        #expect(!logs.all.contains { $0.contains("cluster_id=steady") && $0.contains("event=degraded") })
    }

    @Test("a child failing beyond its restart budget stays failed and the cluster degraded")
    func givesUp() async throws {
        let dir = TemporaryDirectory("gu")
        defer { dir.remove() }
        let logs = LogCapture()
        try await withRunningHost(
            stateDirectory: dir.path, logs: logs,
            configure: { config in
                config.restartPolicy.maxRestarts = 2
                config.extraChildren = { _ in [FlakyChild(failures: 1000)] }
            }
        ) { host in
            let result = try await host.register(RegisterRequest(name: "doomed"))
            #expect(result.state == .degraded)
            let cluster = try await host.cluster(named: "doomed")
            try await eventually("child marked failed") {
                await cluster.status().children.contains { $0.id == "flaky" && $0.state == .failed }
            }
            #expect(cluster.state == .degraded)
            try await cluster.store.put("still", "works")
            _ = try await host.unregister("doomed")
        }
        #expect(logs.contains("event=child_gave_up"))
    }

    @Test("a database that cannot be opened degrades its cluster after bounded retries")
    func unopenableDatabase() async throws {
        let dir = TemporaryDirectory("db")
        defer { dir.remove() }
        let logs = LogCapture()
        // A directory where local.db should be: SQLite cannot open it.
        try FileManager.default.createDirectory(atPath: dir.path + "/clusters/broken/local.db", withIntermediateDirectories: true)
        try await withRunningHost(
            stateDirectory: dir.path, logs: logs,
            configure: { config in
                config.store.openAttempts = 3
                config.restartPolicy.maxRestarts = 1
            }
        ) { host in
            let result = try await host.register(RegisterRequest(name: "broken"))
            #expect(result.state == .degraded)
            _ = try await host.register(RegisterRequest(name: "fine"))
            let broken = try await host.cluster(named: "broken")
            try await eventually("store gave up") {
                await broken.status().children.contains { $0.id == "store" && $0.state == .failed }
            }
            let status = await broken.status()
            let store = try #require(status.children.first { $0.id == "store" })
            #expect(store.lastError?.code == .dbUnavailable)
            do {
                try await broken.store.put("k", 1)
                Issue.record("put succeeded on an unopenable database")
            } catch let error as HostError {
                #expect(error.code == .dbUnavailable)
            }
            try await (try host.cluster(named: "fine")).store.put("k", 1)
        }
        // 2 supervised starts (the first and one restart) of 3 attempts each: bounded, not endless.
        #expect(logs.all.filter { $0.contains("event=db_open_failed") }.count == 2)
        #expect(logs.all.filter { $0.contains("event=db_open_retry") }.count == 4)
    }
}
