import Foundation
import GuildNetCore
import TestSupport
import Testing

@testable import GuildNetSimulators

/// KubeSim's two layers across a restart: storage answers lists at any RV since the compaction,
/// the rebuilt watch cache refuses watches from before the restart.
@Suite("KubeSim restart: storage and watch cache")
struct KubeSimRestartTests {
    static func names(_ list: JSONValue) -> [String] {
        list["items"]?.arrayValue?.compactMap { $0["metadata"]?["name"]?.stringValue } ?? []
    }

    static func listRV(_ list: JSONValue) -> Int64 {
        list["metadata"]?["resourceVersion"]?.stringValue.flatMap { Int64($0) } ?? -1
    }

    @Test func restartRebuildsTheWatchCacheWhileStorageKeepsItsHistory() async throws {
        let sim = try await KubeSim()
        let store = sim.shared.store
        let none = try KubeSelector(nil, isField: false)
        let noFields = try KubeSelector(nil, isField: true)
        func list(limit: Int?, rv: String?, match: String? = nil) async throws -> JSONValue {
            try await store.list(
                .pods, namespace: "default", limit: limit, continueToken: nil, labels: none, fields: noFields, resourceVersion: rv, match: match)
        }
        _ = try await sim.create(.pods, KubeSimSemanticsTests.pod("a"))
        let before = await sim.resourceVersion
        _ = try await sim.create(.pods, KubeSimSemanticsTests.pod("b"))
        try await sim.delete(.pods, name: "a")
        _ = try await sim.patch(.pods, name: "b", ["metadata": ["labels": ["v": "2"]]])
        await sim.restart()
        let restartRV = await sim.resourceVersion
        _ = try await sim.create(.pods, KubeSimSemanticsTests.pod("c"))
        let latest = await sim.resourceVersion

        // Storage: a paged list at an older RV (resourceVersionMatch unset, etcd's legacy rule) and
        // an Exact list are answered at exactly that RV, with the state of then.
        let paged = try await list(limit: 10, rv: String(before))
        #expect(Self.names(paged) == ["a"])
        #expect(Self.listRV(paged) == before)
        let exact = try await list(limit: nil, rv: String(restartRV), match: "Exact")
        #expect(Self.names(exact) == ["b"])
        #expect(Self.listRV(exact) == restartRV)
        #expect(exact["items"]?.arrayValue?.first?["metadata"]?["labels"]?["v"] == "2")
        // The watch cache: RV 0, an unpaged list at an RV, NotOlderThan: its latest state.
        let cacheReads: [(Int?, String, String?)] = [(nil, "0", nil), (nil, String(before), nil), (10, String(before), "NotOlderThan")]
        for (limit, rv, match) in cacheReads {
            let cached = try await list(limit: limit, rv: rv, match: match)
            #expect(Self.names(cached) == ["b", "c"], "rv \(rv) limit \(String(describing: limit))")
            #expect(Self.listRV(cached) == latest)
        }
        // Storage at the latest RV: resourceVersion "" (a consistent read).
        let consistent = try await list(limit: 10, rv: "")
        #expect(Self.names(consistent) == ["b", "c"])
        #expect(Self.listRV(consistent) == latest)
        // An RV the server has not reached: 504 "Too large resource version".
        do {
            _ = try await list(limit: 10, rv: String(latest + 5), match: "Exact")
            Issue.record("expected 504")
        } catch let error as KubeStatusError {
            #expect(error.code == 504 && error.reason == "Timeout")
            #expect(error.message.hasPrefix("Too large resource version: \(latest + 5)"))
        }

        // A watch from before the restart: the watch cache's 410, naming its start.
        let filter = WatchFilter(resource: .pods, namespace: nil, labels: none, fields: noFields)
        do {
            _ = try await store.subscribe(filter: filter, resourceVersion: String(before), sendInitialEvents: false)
            Issue.record("expected 410")
        } catch let error as KubeStatusError {
            #expect(error.code == 410 && error.reason == "Expired")
            #expect(error.message == "too old resource version: \(before) (\(restartRV))")
        }
        // From the restart's RV on, it replays.
        let sub = try await store.subscribe(filter: filter, resourceVersion: String(restartRV), sendInitialEvents: false)
        #expect(sub.backlog.count == 1)
        await store.unsubscribe(sub.id)
    }

    @Test func restartCutsWatchesAndCompactionStillExpiresStorage() async throws {
        let sim = try await KubeSim()
        let store = sim.shared.store
        let none = try KubeSelector(nil, isField: false)
        let noFields = try KubeSelector(nil, isField: true)
        let filter = WatchFilter(resource: .pods, namespace: nil, labels: none, fields: noFields)
        let sub = try await store.subscribe(filter: filter, resourceVersion: "0", sendInitialEvents: false)
        let old = await sim.resourceVersion
        _ = try await sim.create(.pods, KubeSimSemanticsTests.pod("x"))
        await sim.restart()
        #expect(await sim.openWatchCount == 0)
        var sawCut = false
        for await item in sub.stream {
            if case .cut = item { sawCut = true }
        }
        #expect(sawCut)
        await sim.compactHistory()
        do {
            _ = try await store.list(.pods, namespace: nil, limit: 5, continueToken: nil, labels: none, fields: noFields, resourceVersion: String(old))
            Issue.record("expected 410")
        } catch let error as KubeStatusError {
            #expect(error.code == 410 && error.reason == "Expired")
        }
    }
}
