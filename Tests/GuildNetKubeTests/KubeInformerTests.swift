import Foundation
import GuildNetCore
import GuildNetKube
import GuildNetSimulators
import TestSupport
import Testing

/// Informers against KubeSim: every change seen across cut streams and 410s, subscribers in order.
@Suite("Kube informer", .serialized)
struct KubeInformerTests {
    typealias S = KubeTestSupport

    /// Reads `events` into `log` until the stream ends.
    static func drain(_ events: AsyncStream<InformerEvent>, into log: EventLog) async {
        for await event in events { await log.append(event) }
    }

    /// The informer's cache equals the server's objects (names and resourceVersions).
    static func cacheMatchesServer(_ informer: KubeInformer, _ sim: KubeSim, _ resource: KubeResource, namespace: String?) async throws -> Bool {
        let server = try await S.serverState(sim, resource, namespace: namespace)
        return await informer.resourceVersions() == server
    }

    @Test("lists, then sees every create, update and delete in order; subscribers get the snapshot first")
    func seesEveryChange() async throws {
        try await S.withSimClient { sim, _, client in
            try await sim.bulkCreatePods(prefix: "seed", count: 25)
            let informer = KubeInformer(client: client, resource: .pods, namespace: "default", options: S.fastInformer, logger: S.quietLogger)
            try await S.withInformers([informer]) {
                try await informer.waitUntilSynced(timeout: .seconds(10))
                #expect(await informer.objectCount == 25)
                let (subscriberID, events) = await informer.subscribe(includeInitial: true, bufferLimit: 1_000)
                let log = EventLog()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await Self.drain(events, into: log) }
                    _ = try await sim.create(.pods, S.pod("a"))
                    _ = try await sim.patch(.pods, name: "a", ["metadata": ["labels": ["v": "2"]]])
                    _ = try await sim.update(.pods, name: "a", S.pod("a", labels: ["v": "3"]))
                    try await sim.delete(.pods, name: "a")
                    try await sim.delete(.pods, name: "seed-3")
                    try await eventually("the subscriber saw seed-3 deleted") { await log.contains("DELETED", name: "seed-3") }
                    #expect(try await Self.cacheMatchesServer(informer, sim, .pods, namespace: "default"))
                    #expect(await informer.unsubscribe(subscriberID))
                    try await group.waitForAll()
                }
                let objectEvents = await log.objectEvents
                // The snapshot: 25 ADDED, then SYNCED, then the live changes in order.
                #expect(objectEvents.prefix(25).allSatisfy { $0.type == "ADDED" && $0.name.hasPrefix("seed-") })
                let allEvents = await log.events
                try #require(allEvents.count > 26)
                let listRV = S.rv(try await sim.get(.pods, name: "seed-24"))
                #expect(allEvents[25] == InformerEvent.synced(resourceVersion: listRV))
                let live = objectEvents.dropFirst(25).map { "\($0.type) \($0.name)" }
                #expect(live == ["ADDED a", "MODIFIED a", "MODIFIED a", "DELETED a", "DELETED seed-3"])
                let rvs = objectEvents.dropFirst(25).map { Int64($0.rv) ?? -1 }
                #expect(rvs == rvs.sorted())
                if case .finished(let reason)? = await log.last {
                    #expect(reason.code == .subscriptionNotFound)
                } else {
                    Issue.record("the stream did not end with finished")
                }
                let status = await informer.status()
                #expect(status.synced && status.running)
                #expect(status.eventsApplied >= 5)
                #expect(status.relists == 0)
                #expect(status.objects == 24)
            }
            #expect(await informer.status().running == false)
        }
    }

    @Test("a cut stream resumes from the last resourceVersion without a relist and misses nothing")
    func cutStreamResumes() async throws {
        try await S.withSimClient { sim, _, client in
            let informer = KubeInformer(client: client, resource: .pods, namespace: "default", options: S.fastInformer, logger: S.quietLogger)
            try await S.withInformers([informer]) {
                try await informer.waitUntilSynced(timeout: .seconds(10))
                let (_, events) = await informer.subscribe(includeInitial: false, bufferLimit: 10_000)
                let log = EventLog()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await Self.drain(events, into: log) }
                    for round in 0..<5 {
                        try await eventually("a watch is open") { await sim.openWatchCount == 1 }
                        // Stall new requests so the writes land while the informer is disconnected.
                        await sim.stallReplies()
                        #expect(await sim.cutWatchStreams() == 1)
                        try await sim.bulkCreatePods(prefix: "r\(round)", count: 10)
                        try await eventually("the re-watch waits in the stall") { await sim.stalledRequestCount >= 1 }
                        await sim.releaseReplies()
                    }
                    try await eventually("the cache equals the server") {
                        try await Self.cacheMatchesServer(informer, sim, .pods, namespace: "default")
                    }
                    try await eventually("every pod reached the subscriber") {
                        await log.objectEvents.filter { $0.type == "ADDED" }.count == 50
                    }
                    group.cancelAll()
                }
                let status = await informer.status()
                #expect(status.relists == 0)
                #expect(status.watchRestarts >= 5)
                #expect(status.lastError?.code == .k8sTransport)
                let names = await log.objectEvents.map(\.name)
                #expect(Set(names).count == 50)
            }
        }
    }

    @Test("a forced 410 (history compacted while disconnected) relists; subscribers see the differences")
    func expiredRelists() async throws {
        var simOptions = KubeSimOptions()
        simOptions.historyLimit = 20
        try await S.withSimClient(simOptions: simOptions) { sim, _, client in
            try await sim.bulkCreatePods(prefix: "old", count: 10)
            let informer = KubeInformer(client: client, resource: .pods, namespace: "default", options: S.fastInformer, logger: S.quietLogger)
            try await S.withInformers([informer]) {
                try await informer.waitUntilSynced(timeout: .seconds(10))
                let (_, events) = await informer.subscribe(includeInitial: true, bufferLimit: 10_000)
                let log = EventLog()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await Self.drain(events, into: log) }
                    try await eventually("a watch is open") { await sim.openWatchCount == 1 }
                    await sim.stallReplies()
                    #expect(await sim.cutWatchStreams() == 1)
                    // More writes than the history keeps: the informer's resourceVersion falls out of the window.
                    try await sim.bulkCreatePods(prefix: "new", count: 30)
                    for index in 0..<5 { try await sim.delete(.pods, name: "old-\(index)") }
                    _ = try await sim.patch(.pods, name: "old-7", ["metadata": ["labels": ["changed": "yes"]]])
                    try await eventually("the re-watch waits in the stall") { await sim.stalledRequestCount >= 1 }
                    await sim.releaseReplies()
                    try await eventually("the informer relisted") { await informer.status().relists >= 1 }
                    try await eventually("the cache equals the server") {
                        try await Self.cacheMatchesServer(informer, sim, .pods, namespace: "default")
                    }
                    try await eventually("the subscriber saw the differences") {
                        let names = await log.objectEvents
                        return names.filter { $0.type == "DELETED" }.count == 5 && names.contains { $0.type == "MODIFIED" && $0.name == "old-7" }
                    }
                    // After the relist, live events flow again.
                    _ = try await sim.create(.pods, S.pod("after"))
                    try await eventually("a live event after the relist") { await log.contains("ADDED", name: "after") }
                    group.cancelAll()
                }
                let objectEvents = await log.objectEvents
                #expect(objectEvents.filter { $0.type == "ADDED" && $0.name.hasPrefix("new-") }.count == 30)
                let status = await informer.status()
                #expect(status.lastError?.code == .k8sExpired)
                #expect(status.objects == 36)
            }
        }
    }

    @Test(
        "after an API server restart (watch cache rebuilt past the informer's RV) the watch's 410 leads to one consistent relist, and writes after the restart arrive"
    )
    func restartRelistsConsistentlyOnce() async throws {
        var simOptions = KubeSimOptions()
        simOptions.bookmarkInterval = .seconds(3600)  // no bookmark may advance the watch's RV before the restart
        try await S.withSimClient(simOptions: simOptions) { sim, _, client in
            try await sim.bulkCreatePods(prefix: "seed", count: 5)
            let informer = KubeInformer(client: client, resource: .pods, namespace: "default", options: S.fastInformer, logger: S.quietLogger)
            try await S.withInformers([informer]) {
                try await informer.waitUntilSynced(timeout: .seconds(10))
                let (_, events) = await informer.subscribe(includeInitial: false, bufferLimit: 10_000)
                let log = EventLog()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await Self.drain(events, into: log) }
                    try await eventually("a watch is open") { await sim.openWatchCount == 1 }
                    // Writes to another resource move the global RV past the pods watch's (as events
                    // and leases do on a real cluster), so the rebuilt watch cache starts after it.
                    for index in 0..<3 { _ = try await sim.create(.configmaps, ["metadata": ["name": .string("cm-\(index)")]]) }
                    let staleRV = await informer.status().resourceVersion
                    await sim.restart()
                    _ = try await sim.create(.pods, S.pod("after"))
                    try await sim.delete(.pods, name: "seed-0")
                    try await eventually("the writes after the restart reached the subscriber") {
                        let added = await log.contains("ADDED", name: "after")
                        let deleted = await log.contains("DELETED", name: "seed-0")
                        return added && deleted
                    }
                    try await eventually("the cache equals the server") {
                        try await Self.cacheMatchesServer(informer, sim, .pods, namespace: "default")
                    }
                    _ = try await sim.create(.pods, S.pod("live"))
                    try await eventually("live events flow again") { await log.contains("ADDED", name: "live") }
                    group.cancelAll()
                    #expect(staleRV != String(await sim.resourceVersion))
                }
                let status = await informer.status()
                #expect(status.relists == 1, "one relist, at resourceVersion \"\", not a loop at the refused RV")
                #expect(status.lastError?.code == .k8sExpired)
                #expect(status.synced && status.objects == 6)
            }
        }
    }

    @Test("an initial snapshot taken during concurrent writes has no gap: replaying the stream gives the server state")
    func gapFreeSnapshot() async throws {
        try await S.withSimClient { sim, _, client in
            try await sim.bulkCreatePods(prefix: "base", count: 200)
            let informer = KubeInformer(client: client, resource: .pods, namespace: "default", options: S.fastInformer, logger: S.quietLogger)
            try await S.withInformers([informer]) {
                try await informer.waitUntilSynced(timeout: .seconds(10))
                let log = EventLog()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for index in 0..<100 {
                            _ = try await sim.create(.pods, S.pod("live-\(index)"))
                            if index % 3 == 0 { try await sim.delete(.pods, name: "base-\(index)") }
                        }
                    }
                    // Subscribe while the writer runs.
                    try await eventually("some writes happened") { await informer.objectCount > 205 }
                    let (_, events) = await informer.subscribe(includeInitial: true, bufferLimit: 10_000)
                    group.addTask { await Self.drain(events, into: log) }
                    try await group.next()  // the writer
                    try await eventually("the cache equals the server") {
                        try await Self.cacheMatchesServer(informer, sim, .pods, namespace: "default")
                    }
                    let expected = try await S.serverState(sim, .pods, namespace: "default")
                    try await eventually("the replayed stream equals the server") {
                        var replay: [String: String] = [:]
                        for event in await log.objectEvents {
                            let key = "default/\(event.name)"
                            if event.type == "DELETED" { replay[key] = nil } else { replay[key] = event.rv }
                        }
                        return replay == expected
                    }
                    group.cancelAll()
                }
            }
        }
    }

    @Test("a subscriber that does not read overflows: its stream ends with overflowed, the informer goes on")
    func overflow() async throws {
        try await S.withSimClient { sim, _, client in
            let informer = KubeInformer(client: client, resource: .configmaps, namespace: nil, options: S.fastInformer, logger: S.quietLogger)
            try await S.withInformers([informer]) {
                try await informer.waitUntilSynced(timeout: .seconds(10))
                let (_, slow) = await informer.subscribe(includeInitial: false, bufferLimit: 5)
                for index in 0..<20 { _ = try await sim.create(.configmaps, ["metadata": ["name": .string("c\(index)")]]) }
                try await eventually("the overflow is counted") { await informer.status().subscriberOverflows == 1 }
                var received: [InformerEvent] = []
                for await event in slow { received.append(event) }
                #expect(received.count <= 7)
                if case .overflowed(let dropped)? = received.last {
                    #expect(dropped > 0)
                } else {
                    Issue.record("the last event is not overflowed: \(String(describing: received.last))")
                }
                #expect(await informer.status().subscribers == 0)
                try await eventually("the informer still follows") { await informer.objectCount == 20 }
            }
        }
    }

    @Test("stopping the informer finishes every subscriber; later subscriptions get a finished stream")
    func stopFinishesSubscribers() async throws {
        try await S.withSimClient { _, _, client in
            let informer = KubeInformer(client: client, resource: .namespaces, options: S.fastInformer, logger: S.quietLogger)
            let log = EventLog()
            try await S.withInformers([informer]) {
                try await informer.waitUntilSynced(timeout: .seconds(10))
                let (_, events) = await informer.subscribe(includeInitial: true, bufferLimit: 100)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await Self.drain(events, into: log) }
                    try await eventually("the snapshot arrived") { await log.contains("ADDED", name: "kube-system") }
                    await informer.shutdown(reason: HostError(.clusterStopping, "test stop"))
                    try await group.waitForAll()
                }
            }
            if case .finished(let reason)? = await log.last {
                #expect(reason.code == .clusterStopping)
            } else {
                Issue.record("no finished event")
            }
            let (_, late) = await informer.subscribe(includeInitial: true, bufferLimit: 10)
            var lateEvents: [InformerEvent] = []
            for await event in late { lateEvents.append(event) }
            #expect(lateEvents.count == 1)
            #expect(await informer.status().running == false)
        }
    }

    @Test("waitUntilSynced times out with the last error while the API server does not answer")
    func syncTimeout() async throws {
        try await S.withSimClient(user: .wrongToken) { _, _, client in
            let informer = KubeInformer(client: client, resource: .pods, options: S.fastInformer, logger: S.quietLogger)
            try await S.withInformers([informer]) {
                do {
                    try await informer.waitUntilSynced(timeout: .milliseconds(500))
                    Issue.record("synced with a wrong token")
                } catch let error as HostError {
                    #expect(error.code == .timeout)
                }
                try await eventually("the error is recorded") { await informer.status().lastError?.code == .k8sUnauthorized }
                #expect(await informer.status().synced == false)
            }
        }
    }
}
