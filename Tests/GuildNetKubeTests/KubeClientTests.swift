import Foundation
import GuildNetCore
import GuildNetKube
import GuildNetSimulators
import TestSupport
import Testing

/// The client against KubeSim over loopback TLS: verbs, paging, raw paths, watch.
@Suite("Kube client", .serialized)
struct KubeClientTests {
    typealias S = KubeTestSupport

    @Test("get, list one page, and listAll pages 1,200 pods 500 at a time")
    func listPaging() async throws {
        try await S.withSimClient { sim, _, client in
            try await sim.bulkCreatePods(namespace: "default", prefix: "p", count: 1_200)
            let page = try await client.list(.pods, namespace: "default", limit: 500)
            #expect(page.items.count == 500)
            #expect(page.continueToken != nil)
            #expect(page.remainingItemCount == 700)
            #expect(!page.resourceVersion.isEmpty)

            let all = try await client.listAll(.pods, namespace: "default", pageSize: 500)
            #expect(all.pages == 3)
            #expect(all.items.count == 1_200)
            #expect(Set(all.items.map(S.name)).count == 1_200)
            #expect(all.resourceVersion == String(await sim.resourceVersion))

            let one = try await client.get(.pods, namespace: "default", name: "p-7")
            #expect(S.name(one) == "p-7")
            let namespaces = try await client.listAll(.namespaces)
            #expect(Set(namespaces.items.map(S.name)).isSuperset(of: ["default", "kube-system"]))
            #expect(client.stats.requests >= 6)
            #expect(client.stats.failures == 0)
        }
    }

    @Test("a continue token older than the compaction window is 410 Expired")
    func expiredContinue() async throws {
        try await S.withSimClient { sim, _, client in
            try await sim.bulkCreatePods(namespace: "default", prefix: "p", count: 30)
            let first = try await client.list(.pods, namespace: "default", limit: 10)
            let token = try #require(first.continueToken)
            _ = try await client.create(.configmaps, ["metadata": ["name": "bump"]])
            await sim.compactHistory()
            await #expect(throws: HostError.self) {
                _ = try await client.list(.pods, namespace: "default", limit: 10, continueToken: token)
            }
            do {
                _ = try await client.list(.pods, namespace: "default", limit: 10, continueToken: token)
            } catch let error as HostError {
                #expect(error.code == .k8sExpired)
                #expect(error.transient)
            }
        }
    }

    @Test("create, get, patch, update, delete a configmap")
    func crud() async throws {
        try await S.withSimClient { sim, _, client in
            let created = try await client.create(.configmaps, ["metadata": ["name": "cm"], "data": ["a": "1"]])
            #expect(S.name(created) == "cm")
            #expect(created["metadata"]?["namespace"]?.stringValue == "default")
            let patched = try await client.patch(.configmaps, name: "cm", ["data": ["b": "2"]])
            #expect(patched["data"] == ["a": "1", "b": "2"])
            #expect(S.rv(patched) != S.rv(created))

            let replacement: JSONValue = ["metadata": ["name": "cm", "resourceVersion": .string(S.rv(patched))], "data": ["c": "3"]]
            let updated = try await client.update(.configmaps, name: "cm", replacement)
            #expect(updated["data"] == ["c": "3"])
            let fromSim = try await sim.get(.configmaps, name: "cm")
            #expect(S.rv(fromSim) == S.rv(updated))

            try await client.delete(.configmaps, name: "cm")
            await #expect(throws: HostError.self) { _ = try await client.get(.configmaps, name: "cm") }
        }
    }

    @Test("GET /version raw")
    func rawVersion() async throws {
        try await S.withSimClient { _, _, client in
            let version = try await client.rawGETJSON("/version")
            #expect(version["major"]?.stringValue == "1")
            #expect(version["gitVersion"]?.stringValue?.hasPrefix("v1.") == true)
            let bytes = try await client.rawGET("/healthz")
            #expect(String(decoding: bytes, as: UTF8.self) == "ok")
            await #expect(throws: HostError.self) { _ = try await client.rawGET("version") }
        }
    }

    @Test("watch streams ADDED, MODIFIED, DELETED and BOOKMARK; cancelling the consumer closes the stream")
    func watchAndCancel() async throws {
        var simOptions = KubeSimOptions()
        simOptions.bookmarkInterval = .milliseconds(50)
        try await S.withSimClient(simOptions: simOptions) { sim, _, client in
            let start = try await client.list(.pods, namespace: "default")
            let stream = try await client.watch(.pods, namespace: "default", resourceVersion: start.resourceVersion, timeoutSeconds: 60)
            #expect(client.stats.openWatches == 1)
            _ = try await sim.create(.pods, S.pod("w"))
            _ = try await sim.patch(.pods, name: "w", ["metadata": ["labels": ["x": "y"]]])
            try await sim.delete(.pods, name: "w")
            var seen: [KubeWatchEvent.EventType] = []
            for try await event in stream {
                if event.type == .bookmark {
                    if seen.count == 3 {
                        seen.append(.bookmark)
                        break
                    }
                    continue
                }
                #expect(S.name(event.object) == "w")
                seen.append(event.type)
            }
            #expect(seen == [.added, .modified, .deleted, .bookmark])
            try await eventually("the watch is released") { client.stats.openWatches == 0 }

            // A consumer task blocked in the stream is cancelled: the request is cancelled too.
            let idle = try await client.watch(.pods, namespace: "default", timeoutSeconds: 600)
            try await eventually("the sim has the watch") { await sim.openWatchCount == 1 }
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        for try await _ in idle {}
                    } catch {}
                }
                group.cancelAll()
            }
            try await eventually("the sim sees the watch end") { await sim.openWatchCount == 0 }
            try await eventually("the client counts no open watch") { client.stats.openWatches == 0 }
        }
    }

    @Test("a too-old resourceVersion arrives as an ERROR event that decodes to Expired")
    func watchExpired() async throws {
        try await S.withSimClient { sim, _, client in
            _ = try await sim.create(.pods, S.pod("a"))
            await sim.compactHistory()
            let stream = try await client.watch(.pods, namespace: "default", resourceVersion: "1", timeoutSeconds: 30)
            var events: [KubeWatchEvent] = []
            for try await event in stream { events.append(event) }
            #expect(events.count == 1)
            let event = try #require(events.first)
            #expect(event.type == .error)
            let error = KubeAPIError.fromStatusObject(event.object, request: "WATCH pods")
            #expect(error.isExpired)
            #expect(error.hostError.code == .k8sExpired)
        }
    }

    @Test("the rate limiter queues requests beyond the burst instead of failing them")
    func rateLimited() async throws {
        // One token every 4 s and a burst of 2: the third request waits unless the first two took
        // 4 s (a slow, loaded machine cannot make this pass by accident; at one token a second, a
        // full parallel test run on 2 cores once did take that long).
        let options = KubeClientOptions(qps: 0.25, burst: 2)
        try await S.withSimClient(options: options) { _, _, client in
            for _ in 0..<3 { _ = try await client.rawGET("/version") }
            #expect(client.stats.throttledWaits >= 1)
            #expect(client.stats.failures == 0)
        }
    }
}
