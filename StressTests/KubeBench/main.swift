import BenchSupport
import Foundation
import GuildNetCore
import GuildNetKube
import GuildNetSimulators
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `hostapp-kube-bench`: Kubernetes client + informer figures against in-process KubeSims over
/// loopback TLS. Prints ONE JSON object. Every cluster has its own KubeSim, client and informer.
///
///     hostapp-kube-bench [--events-one 100000] [--events-fifty 200000] [--clusters 50]
///                        [--memory-pods 10000] [--latency-samples 300]
///
/// Events are generated server-side in bulk (`KubeSim.bulkTouchPods`: one MODIFIED per pod per
/// round); the rate is events applied to the informer caches per second of wall time, measured
/// from the first write until every informer applied every event. The simulators, their TLS and
/// JSON encoding run in the same process on the same cores, so the figure is a lower bound for
/// the client side alone.
enum KubeBench {
    struct Options {
        var eventsOne = 100_000
        var eventsFifty = 200_000
        var clusters = 50
        var memoryPods = 10_000
        var latencySamples = 300

        init(_ arguments: [String]) throws {
            let flags = try Bench.flags(
                arguments, allowed: ["--events-one", "--events-fifty", "--clusters", "--memory-pods", "--latency-samples"])
            eventsOne = try Bench.int(flags["--events-one"], "--events-one", default: eventsOne)
            eventsFifty = try Bench.int(flags["--events-fifty"], "--events-fifty", default: eventsFifty)
            clusters = try Bench.int(flags["--clusters"], "--clusters", default: clusters)
            memoryPods = try Bench.int(flags["--memory-pods"], "--memory-pods", default: memoryPods)
            latencySamples = try Bench.int(flags["--latency-samples"], "--latency-samples", default: latencySamples)
        }
    }

    struct Cluster: Sendable {
        var sim: KubeSim
        var client: KubeClient
        var informer: KubeInformer
    }

    static let logger: Logger = {
        var logger = Logger(label: "kube-bench")
        logger.logLevel = .critical
        return logger
    }()

    static var informerOptions: KubeInformerOptions {
        var options = KubeInformerOptions()
        options.backoff = Backoff(initial: .milliseconds(1), multiplier: 2, cap: .milliseconds(100), jitter: 0.5)
        return options
    }

    static func main() async {
        await Bench.runMain("hostapp-kube-bench") { try await run(try Options(Array(CommandLine.arguments.dropFirst()))) }
    }

    static func run(_ options: Options) async throws -> JSONValue {
        #if DEBUG
        let build = "debug"
        #else
        let build = "release"
        #endif
        var result: [String: JSONValue] = [
            "build": .string(build),
            "cores": .int(Int64(ProcessInfo.processInfo.activeProcessorCount)),
        ]
        result["memory_and_relist"] = try await memoryAndRelist(pods: options.memoryPods)
        result["one_cluster"] = try await throughput(clusters: 1, events: options.eventsOne, podsPerCluster: 1_000)
        result["many_clusters"] = try await throughput(
            clusters: options.clusters, events: options.eventsFifty, podsPerCluster: max(1, min(200, options.eventsFifty / options.clusters / 10)))
        result["isolation"] = try await isolation(samples: options.latencySamples)
        return .object(result)
    }

    // MARK: - Harness

    /// Starts `count` sims (each seeded with `pods` pods), a client and an informer per sim, runs
    /// `body` while the informers run, then tears everything down.
    static func withClusters<T: Sendable>(
        _ count: Int, pods: Int, startInformers: Bool = true, _ body: @Sendable ([Cluster]) async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { simGroup in
            var clusters: [Cluster] = []
            do {
                for _ in 0..<count {
                    var simOptions = KubeSimOptions()
                    simOptions.bookmarkInterval = .seconds(60)
                    simOptions.logger = logger
                    let sim = try await KubeSim(options: simOptions)
                    simGroup.addTask { try await sim.run() }
                    if pods > 0 { try await sim.bulkCreatePods(prefix: "pod", count: pods) }
                    let endpoint = try await sim.endpoint()
                    let yaml = sim.kubeconfig(endpoint: endpoint, user: .token)
                    let config = try KubeClusterConfig.resolve(try KubeconfigLoader.parse(Data(yaml.utf8), source: "bench"), context: nil)
                    let client = try KubeClient.make(config: config, options: KubeClientOptions(), logger: logger)
                    let informer = KubeInformer(client: client, resource: .pods, namespace: "default", options: informerOptions, logger: logger)
                    clusters.append(Cluster(sim: sim, client: client, informer: informer))
                }
                let all = clusters
                let value = try await withThrowingTaskGroup(of: Void.self) { informerGroup in
                    if startInformers {
                        for cluster in all { informerGroup.addTask { await cluster.informer.run() } }
                    }
                    defer { informerGroup.cancelAll() }
                    return try await body(all)
                }
                try await shutdown(clusters)
                simGroup.cancelAll()
                try await simGroup.waitForAll()
                return value
            } catch {
                try? await shutdown(clusters)
                simGroup.cancelAll()
                throw error
            }
        }
    }

    static func shutdown(_ clusters: [Cluster]) async throws {
        for cluster in clusters {
            try await cluster.client.shutdown()
            await cluster.sim.stop()
        }
    }

    static func milliseconds(_ duration: Duration) -> Double { (duration.seconds * 1000 * 100).rounded() / 100 }

    /// Returns freed heap to the system (glibc `malloc_trim`, looked up at run time) so RSS
    /// reflects live memory rather than freed transient buffers.
    static func trimHeap() {
        #if canImport(Glibc)
        typealias Trim = @convention(c) (Int) -> Int32
        if let symbol = dlsym(dlopen(nil, RTLD_NOW), "malloc_trim") {
            _ = unsafeBitCast(symbol, to: Trim.self)(0)
        }
        #endif
    }

    // MARK: - Scenarios

    /// Events/s applied to informer caches: `clusters` sims each generating events/clusters MODIFIED events.
    static func throughput(clusters count: Int, events: Int, podsPerCluster: Int) async throws -> JSONValue {
        let rounds = max(1, events / (count * podsPerCluster))
        let total = rounds * count * podsPerCluster
        return try await withClusters(count, pods: podsPerCluster) { clusters in
            for cluster in clusters { try await cluster.informer.waitUntilSynced(timeout: .seconds(120)) }
            var baselines: [Int] = []
            for cluster in clusters { baselines.append(await cluster.informer.status().eventsApplied) }
            let names = (0..<podsPerCluster).map { "pod-\($0)" }
            let clock = ContinuousClock()
            let started = clock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for cluster in clusters {
                    group.addTask {
                        for round in 0..<rounds {
                            try await cluster.sim.bulkTouchPods(names: names, stamp: "r\(round)")
                        }
                    }
                }
                try await group.waitForAll()
            }
            let generated = clock.now - started
            try await Bench.waitFor("every event applied") {
                for (index, cluster) in clusters.enumerated() {
                    // Bookmarks count as applied events too; only MODIFIED events are generated here.
                    if await cluster.informer.status().eventsApplied - baselines[index] < rounds * podsPerCluster { return false }
                }
                return true
            }
            let elapsed = clock.now - started
            var relists = 0
            var restarts = 0
            for cluster in clusters {
                let status = await cluster.informer.status()
                relists += status.relists
                restarts += status.watchRestarts
            }
            return [
                "clusters": .int(Int64(count)),
                "pods_per_cluster": .int(Int64(podsPerCluster)),
                "events": .int(Int64(total)),
                "seconds": .double(elapsed.seconds),
                "events_per_second": .int(Int64(Double(total) / elapsed.seconds)),
                "generation_seconds": .double(generated.seconds),
                "relists": .int(Int64(relists)),
                "watch_restarts": .int(Int64(restarts)),
            ]
        }
    }

    /// RSS growth for `pods` cached pods, the time of the first list (pager, 500 per page) and of a
    /// forced relist (history compacted while the watch was cut → ERROR Expired → relist + diff).
    static func memoryAndRelist(pods: Int) async throws -> JSONValue {
        try await withClusters(1, pods: pods, startInformers: false) { clusters in
            let cluster = clusters[0]
            let podJSONBytes = try await cluster.sim.list(.pods, namespace: "default").serialized.count / max(1, pods)
            // Warm up TLS and the connection pool so the baseline holds them.
            _ = try await cluster.client.list(.pods, namespace: "default", limit: 1)
            trimHeap()
            let before = Proc.residentKiB()
            let clock = ContinuousClock()
            return try await withThrowingTaskGroup(of: Void.self) { group in
                let started = clock.now
                group.addTask { await cluster.informer.run() }
                try await cluster.informer.waitUntilSynced(timeout: .seconds(300))
                let listed = clock.now - started
                try await Bench.waitFor("the watch is open") { await cluster.sim.openWatchCount == 1 }
                trimHeap()
                let after = Proc.residentKiB()

                // Forced relist: stall, cut the watch, compact the history, write, release.
                await cluster.sim.stallReplies()
                await cluster.sim.cutWatchStreams()
                try await cluster.sim.bulkTouchPods(names: (0..<min(100, pods)).map { "pod-\($0)" }, stamp: "relist")
                await cluster.sim.compactHistory()
                try await Bench.waitFor("the re-watch is stalled") { await cluster.sim.stalledRequestCount >= 1 }
                let relistStarted = clock.now
                await cluster.sim.releaseReplies()
                try await Bench.waitFor("the relist") { await cluster.informer.status().relists >= 1 }
                let relisted = clock.now - relistStarted
                let status = await cluster.informer.status()
                group.cancelAll()
                try await group.waitForAll()
                let delta = after - before
                return [
                    "pods": .int(Int64(pods)),
                    "pod_json_bytes": .int(Int64(podJSONBytes)),
                    "rss_before_kib": .int(Int64(before)),
                    "rss_after_kib": .int(Int64(after)),
                    "rss_delta_kib": .int(Int64(delta)),
                    "rss_delta_kib_per_10000_pods": .int(Int64(Double(delta) * 10_000 / Double(max(1, pods)))),
                    "first_list_ms": .double(milliseconds(listed)),
                    "forced_relist_ms": .double(milliseconds(relisted)),
                    "objects": .int(Int64(status.objects)),
                ]
            }
        }
    }

    /// Cluster B's watch-event latency (write in B's sim → event at B's subscriber), with cluster A
    /// healthy, then with A's API server stalled (its watch cut, its re-watch and 16 requests hanging).
    static func isolation(samples: Int) async throws -> JSONValue {
        try await withClusters(2, pods: 10) { clusters in
            let a = clusters[0]
            let b = clusters[1]
            for cluster in clusters { try await cluster.informer.waitUntilSynced(timeout: .seconds(60)) }
            let (_, events) = await b.informer.subscribe(includeInitial: false, bufferLimit: 100_000)
            var iterator = events.makeAsyncIterator()

            func measure(_ phase: String) async throws -> [Double] {
                var latencies: [Double] = []
                let clock = ContinuousClock()
                for index in 0..<samples {
                    let name = "\(phase)-\(index)"
                    let started = clock.now
                    _ = try await b.sim.create(.pods, ["metadata": ["name": .string(name)], "spec": ["containers": [["name": "c", "image": "x"]]]])
                    while let event = await iterator.next() {
                        if event.object?["metadata"]?["name"]?.stringValue == name { break }
                    }
                    latencies.append(milliseconds(clock.now - started))
                }
                return latencies.sorted()
            }
            func percentile(_ sorted: [Double], _ p: Double) -> Double {
                sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
            }

            let normal = try await measure("normal")
            await a.sim.stallReplies()
            await a.sim.cutWatchStreams()
            let stalled: [Double] = try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<16 {
                    group.addTask { _ = try? await a.client.get(.pods, name: "hung-\(index)") }
                }
                try await Bench.waitFor("A's requests hang") { await a.sim.stalledRequestCount >= 17 }
                let measured = try await measure("stalled")
                let hanging = await a.sim.stalledRequestCount
                await a.sim.releaseReplies()
                try await group.waitForAll()
                guard hanging >= 17 else { throw HostError(.internalError, "A was not stalled during the measurement") }
                return measured
            }
            return [
                "samples": .int(Int64(samples)),
                "b_p50_ms_a_healthy": .double(percentile(normal, 0.50)),
                "b_p99_ms_a_healthy": .double(percentile(normal, 0.99)),
                "b_p50_ms_a_stalled": .double(percentile(stalled, 0.50)),
                "b_p99_ms_a_stalled": .double(percentile(stalled, 0.99)),
                "a_requests_hanging": 17,
            ]
        }
    }
}

await KubeBench.main()
