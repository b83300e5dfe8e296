import Foundation
import GuildNetCore
import GuildNetKube
import GuildNetSimulators
import Logging
import TestSupport
import Testing

/// Per-cluster isolation, teardown and credential hygiene.
@Suite("Kube isolation and teardown", .serialized)
struct KubeIsolationTests {
    typealias S = KubeTestSupport

    @Test("the factory builds independent clients: separate pools, limiters and counters")
    func clientsAreIndependent() async throws {
        try await KubeSim.withRunning { sim, endpoint in
            let config = try S.config(sim, endpoint)
            try await S.withClient(config, options: KubeClientOptions(qps: 1, burst: 1)) { slow in
                try await S.withClient(config) { fast in
                    #expect(slow.limiter !== fast.limiter)
                    _ = try await slow.rawGET("/version")
                    // The slow client's limiter is empty now; the other client is not throttled by it.
                    for _ in 0..<10 { _ = try await fast.rawGET("/version") }
                    #expect(fast.stats.throttledWaits == 0)
                    #expect(fast.stats.requests == 10)
                    #expect(slow.stats.requests == 1)
                }
            }
        }
    }

    @Test("cluster A's stalled API server does not hold up cluster B's watch events")
    func stalledClusterDoesNotBlockOther() async throws {
        var clientOptions = KubeClientOptions()
        clientOptions.requestTimeout = .seconds(60)
        let options = clientOptions
        try await KubeSim.withRunning { simA, endpointA in
            try await KubeSim.withRunning { simB, endpointB in
                try await S.withClient(try S.config(simA, endpointA), options: options) { clientA in
                    try await S.withClient(try S.config(simB, endpointB), options: options) { clientB in
                        let informerA = KubeInformer(client: clientA, resource: .pods, namespace: "default", options: S.fastInformer, logger: S.quietLogger)
                        let informerB = KubeInformer(client: clientB, resource: .pods, namespace: "default", options: S.fastInformer, logger: S.quietLogger)
                        try await S.withInformers([informerA, informerB]) {
                            try await informerA.waitUntilSynced(timeout: .seconds(10))
                            try await informerB.waitUntilSynced(timeout: .seconds(10))
                            try await eventually("both watches open") {
                                let a = await simA.openWatchCount
                                let b = await simB.openWatchCount
                                return a == 1 && b == 1
                            }
                            // Stall A: its watch is cut, the re-watch and further requests hang.
                            await simA.stallReplies()
                            await simA.cutWatchStreams()
                            try await withThrowingTaskGroup(of: Void.self) { group in
                                for index in 0..<4 {
                                    group.addTask { _ = try? await clientA.get(.pods, name: "hung-\(index)") }
                                }
                                try await eventually("A's requests hang") { await simA.stalledRequestCount >= 5 }
                                for index in 0..<50 {
                                    _ = try await simB.create(.pods, S.pod("b-\(index)"))
                                    _ = try await simA.create(.pods, S.pod("a-\(index)"))
                                    try await eventually("B's informer has b-\(index)") {
                                        await informerB.object(namespace: "default", name: "b-\(index)") != nil
                                    }
                                }
                                #expect(await informerA.objectCount == 0)
                                #expect(clientB.stats.failures == 0)
                                await simA.releaseReplies()
                                try await group.waitForAll()
                            }
                            try await eventually("A catches up after the stall") { await informerA.objectCount == 50 }
                            #expect(await informerB.objectCount == 50)
                        }
                    }
                }
            }
        }
    }

    @Test("cancelling the informers and shutting the client down closes every connection and ends every task")
    func teardownReleasesEverything() async throws {
        try await KubeSim.withRunning { sim, endpoint in
            let port = endpoint.port
            let baselineCount = ProcessResources.openFileCount()
            #expect(S.tcpConnections(port: port) == 0)
            let client = try KubeClient.make(config: try S.config(sim, endpoint), logger: S.quietLogger)
            let informers = [KubeAPIResource.pods, .configmaps, .namespaces, .services, .endpoints].map {
                KubeInformer(client: client, resource: $0, options: S.fastInformer, logger: S.quietLogger)
            }
            let log = EventLog()
            let ran = LockedValue(0)
            // Subscribed before run(): the first list's objects arrive as ADDED, then SYNCED.
            let (_, events) = await informers[2].subscribe(includeInitial: true, bufferLimit: 100)
            await withTaskGroup(of: Void.self) { outer in
                outer.addTask { for await event in events { await log.append(event) } }
                await withTaskGroup(of: Void.self) { group in
                    for informer in informers {
                        group.addTask {
                            await informer.run()
                            ran.withLock { $0 += 1 }
                        }
                    }
                    do {
                        for informer in informers { try await informer.waitUntilSynced(timeout: .seconds(10)) }
                        // Both sides are awaited: an informer's watch may be between a close and its
                        // re-open (fast options), so a single read of either count can be one short.
                        try await eventually("every watch is open on both sides") {
                            await sim.openWatchCount == 5 && client.stats.openWatches == 5
                        }
                        #expect(S.tcpConnections(port: port) > 0)
                    } catch {
                        Issue.record("setup failed: \(error)")
                    }
                    group.cancelAll()
                    await group.waitForAll()
                }
                await outer.waitForAll()
            }
            #expect(ran.withLock { $0 } == 5)
            for informer in informers { #expect(await informer.status().running == false) }
            if case .finished? = await log.last {} else { Issue.record("the subscriber got no final event") }
            #expect(await log.contains("ADDED", name: "default"))
            try await client.shutdown()
            try await eventually("the sim sees no watch") { await sim.openWatchCount == 0 }
            try await eventually("no connection to the sim is left (client or server side)") { S.tcpConnections(port: port) == 0 }
            #expect(client.stats.openWatches == 0)
            try await eventually("the descriptor count is back to the baseline", timeout: .seconds(20)) {
                ProcessResources.openFileCount() <= baselineCount
            }
        }
    }

    @Test("a token never reaches the logs, even at trace level")
    func tokenNotLogged() async throws {
        let capture = LogCapture()
        let logger = capture.logger(label: "kube")
        var simOptions = KubeSimOptions()
        simOptions.token = "kubesim-SECRET-\(UUID().uuidString)"
        simOptions.bookmarkInterval = .milliseconds(50)
        try await KubeSim.withRunning(options: simOptions) { sim, endpoint in
            let token = sim.options.token
            try await S.withClient(try S.config(sim, endpoint), logger: logger) { client in
                let informer = KubeInformer(client: client, resource: .pods, namespace: "default", options: S.fastInformer, logger: logger)
                try await S.withInformers([informer]) {
                    try await informer.waitUntilSynced(timeout: .seconds(10))
                    _ = try await client.create(.pods, S.pod("p"))
                    try await eventually("the informer has p") { await informer.objectCount == 1 }
                    await sim.cutWatchStreams()
                    _ = try? await client.get(.pods, name: "missing")
                    await sim.failNextRequests(1, status: 429, retryAfterSeconds: 0)
                    _ = try await client.rawGET("/version")
                    try await eventually("the watch came back") { await sim.openWatchCount == 1 }
                }
            }
            try await S.withClient(try S.config(sim, endpoint, user: .wrongToken), logger: logger) { client in
                _ = try? await client.rawGET("/version")
            }
            #expect(capture.all.count > 5)
            #expect(!capture.text.contains(token))
            #expect(!capture.text.contains(String(token.suffix(20))))
            #expect(!capture.text.contains("Bearer"))
        }
    }
}
