import Foundation
import GuildNetCore
import TestSupport
import Testing

@testable import GuildNetSimulators

/// resourceVersion, conflicts, patching, paging, watch replay and compaction, in process.
@Suite("KubeSim semantics")
struct KubeSimSemanticsTests {
    static func pod(_ name: String, labels: JSONValue = [:]) -> JSONValue {
        ["metadata": ["name": .string(name), "labels": labels], "spec": ["containers": [["name": "c", "image": "x"]]]]
    }

    static func rv(_ object: JSONValue) -> Int64 {
        object["metadata"]?["resourceVersion"]?.stringValue.flatMap { Int64($0) } ?? -1
    }

    @Test func everyWriteBumpsOneGlobalResourceVersion() async throws {
        let sim = try await KubeSim()
        let start = await sim.resourceVersion
        let a = try await sim.create(.pods, Self.pod("a"))
        let cm = try await sim.create(.configmaps, ["metadata": ["name": "c"], "data": ["k": "v"]])
        #expect(Self.rv(a) == start + 1)
        #expect(Self.rv(cm) == start + 2)
        #expect(a["metadata"]?["uid"]?.stringValue?.isEmpty == false)
        #expect(a["metadata"]?["creationTimestamp"]?.stringValue?.hasSuffix("Z") == true)
        #expect(a["status"]?["phase"]?.stringValue == "Running")
        let patched = try await sim.patch(.configmaps, name: "c", ["data": ["k": "w", "n": "1"]])
        #expect(Self.rv(patched) == start + 3)
        #expect(patched["metadata"]?["uid"] == cm["metadata"]?["uid"])
        let deleted = try await sim.delete(.pods, name: "a")
        #expect(Self.rv(deleted) == start + 4)
        #expect(await sim.resourceVersion == start + 4)
    }

    @Test func createConflictsAndNotFound() async throws {
        let sim = try await KubeSim()
        _ = try await sim.create(.pods, Self.pod("a"))
        await #expect(throws: KubeStatusError.self) { _ = try await sim.create(.pods, Self.pod("a")) }
        do {
            _ = try await sim.create(.pods, Self.pod("a"))
        } catch let error as KubeStatusError {
            #expect(error.code == 409 && error.reason == "AlreadyExists")
        }
        do {
            _ = try await sim.get(.pods, name: "nope")
            Issue.record("expected NotFound")
        } catch let error as KubeStatusError {
            #expect(error.code == 404 && error.reason == "NotFound")
            #expect(error.status["kind"]?.stringValue == "Status")
        }
        do {
            _ = try await sim.create(.pods, namespace: "missing", Self.pod("b"))
            Issue.record("expected NotFound namespace")
        } catch let error as KubeStatusError {
            #expect(error.code == 404)
        }
    }

    @Test func updateWithStaleResourceVersionConflicts() async throws {
        let sim = try await KubeSim()
        let created = try await sim.create(.configmaps, ["metadata": ["name": "c"], "data": ["k": "1"]])
        var next = created
        next.setValue("2", path: ["data", "k"])
        let updated = try await sim.update(.configmaps, name: "c", next)
        #expect(updated["data"]?["k"]?.stringValue == "2")
        // `next` still carries the old resourceVersion.
        next.setValue("3", path: ["data", "k"])
        do {
            _ = try await sim.update(.configmaps, name: "c", next)
            Issue.record("expected Conflict")
        } catch let error as KubeStatusError {
            #expect(error.code == 409 && error.reason == "Conflict")
        }
    }

    @Test func mergePatchSemantics() async throws {
        let target: JSONValue = ["a": ["b": 1, "c": 2], "list": [1, 2, 3], "gone": "x"]
        let patch: JSONValue = ["a": ["c": 3], "list": [9], "gone": nil, "$setElementOrder/list": [9]]
        let result = mergePatch(target, patch)
        #expect(result == ["a": ["b": 1, "c": 3], "list": [9]])
    }

    @Test func pagingWithLimitAndContinue() async throws {
        var options = KubeSimOptions()
        options.seedPods = 7
        let sim = try await KubeSim(options: options)
        let store = sim.shared.store
        let none = try KubeSelector(nil, isField: false)
        let noFields = try KubeSelector(nil, isField: true)
        var names: [String] = []
        var token: String?
        var pages = 0
        repeat {
            let page = try await store.list(.pods, namespace: "default", limit: 3, continueToken: token, labels: none, fields: noFields)
            pages += 1
            names += page["items"]?.arrayValue?.compactMap { $0["metadata"]?["name"]?.stringValue } ?? []
            token = page["metadata"]?["continue"]?.stringValue
            #expect(page["metadata"]?["resourceVersion"]?.stringValue != nil)
        } while token != nil
        #expect(pages == 3)
        #expect(names == (0..<7).map { String(format: "seed-pod-%05d", $0) })

        // A continue token from before a compaction is expired.
        let first = try await store.list(.pods, namespace: nil, limit: 2, continueToken: nil, labels: none, fields: noFields)
        let stale = try #require(first["metadata"]?["continue"]?.stringValue)
        _ = try await sim.create(.pods, Self.pod("after"))
        await sim.compactHistory()
        do {
            _ = try await store.list(.pods, namespace: nil, limit: 2, continueToken: stale, labels: none, fields: noFields)
            Issue.record("expected 410")
        } catch let error as KubeStatusError {
            #expect(error.code == 410 && error.reason == "Expired")
        }
    }

    @Test func selectors() async throws {
        let sim = try await KubeSim()
        _ = try await sim.create(.pods, Self.pod("a", labels: ["app": "web"]))
        _ = try await sim.create(.pods, Self.pod("b", labels: ["app": "db"]))
        let store = sim.shared.store
        let web = try await store.list(
            .pods, namespace: nil, limit: nil, continueToken: nil,
            labels: KubeSelector("app=web", isField: false), fields: KubeSelector(nil, isField: true))
        #expect(web["items"]?.arrayValue?.count == 1)
        let byName = try await store.list(
            .pods, namespace: "default", limit: nil, continueToken: nil,
            labels: KubeSelector(nil, isField: false), fields: KubeSelector("metadata.name=b", isField: true))
        #expect(byName["items"]?.arrayValue?.first?["metadata"]?["name"]?.stringValue == "b")
    }

    @Test func watchReplaysAfterResourceVersionThenStreamsLive() async throws {
        let sim = try await KubeSim()
        let store = sim.shared.store
        let a = try await sim.create(.pods, Self.pod("a"))
        _ = try await sim.create(.pods, Self.pod("b"))
        _ = try await sim.patch(.pods, name: "a", ["metadata": ["labels": ["x": "y"]]])
        let filter = WatchFilter(
            resource: .pods, namespace: "default", labels: try KubeSelector(nil, isField: false), fields: try KubeSelector(nil, isField: true))
        let sub = try await store.subscribe(filter: filter, resourceVersion: String(Self.rv(a)), sendInitialEvents: false)
        let replayed = sub.backlog.compactMap { item -> String? in
            if case .event(let type, let object) = item { return "\(type) \(object["metadata"]?["name"]?.stringValue ?? "")" }
            return nil
        }
        #expect(replayed == ["ADDED b", "MODIFIED a"])
        _ = try await sim.delete(.pods, name: "b")
        await store.bookmark(sub.id)
        var iterator = sub.stream.makeAsyncIterator()
        if case .event(let type, let object)? = await iterator.next() {
            #expect(type == "DELETED")
            #expect(object["metadata"]?["name"]?.stringValue == "b")
        } else {
            Issue.record("expected DELETED")
        }
        if case .event(let type, let object)? = await iterator.next() {
            #expect(type == "BOOKMARK")
            #expect(Self.rv(object) == (await sim.resourceVersion))
        } else {
            Issue.record("expected BOOKMARK")
        }
        #expect(await sim.cutWatchStreams() == 1)
        if case .cut? = await iterator.next() {} else { Issue.record("expected cut") }
    }

    @Test func watchFromCompactedResourceVersionIsExpired() async throws {
        var options = KubeSimOptions()
        options.historyLimit = 3
        let sim = try await KubeSim(options: options)
        let store = sim.shared.store
        let first = try await sim.create(.pods, Self.pod("a"))
        for index in 0..<5 { _ = try await sim.create(.pods, Self.pod("p\(index)")) }
        let filter = WatchFilter(
            resource: .pods, namespace: nil, labels: try KubeSelector(nil, isField: false), fields: try KubeSelector(nil, isField: true))
        do {
            _ = try await store.subscribe(filter: filter, resourceVersion: String(Self.rv(first)), sendInitialEvents: false)
            Issue.record("expected 410")
        } catch let error as KubeStatusError {
            #expect(error.code == 410 && error.reason == "Expired")
            #expect(error.message.hasPrefix("too old resource version: \(Self.rv(first))"))
        }
        // Within the window it replays.
        let recent = await sim.resourceVersion - 2
        let sub = try await store.subscribe(filter: filter, resourceVersion: String(recent), sendInitialEvents: false)
        #expect(sub.backlog.count == 2)
        await store.unsubscribe(sub.id)
        // sendInitialEvents: every object, then the initial-events-end bookmark.
        let initial = try await store.subscribe(filter: filter, resourceVersion: "", sendInitialEvents: true)
        #expect(initial.backlog.count == 7)
        if case .event(let type, let object)? = initial.backlog.last {
            #expect(type == "BOOKMARK")
            #expect(object["metadata"]?["annotations"]?["k8s.io/initial-events-end"]?.stringValue == "true")
        }
        await store.unsubscribe(initial.id)
    }
}

@Suite struct StrategicMergePatchTests {
    @Test func keyedListsMergeByTheirKeyAndPlainListsReplace() throws {
        let pod: JSONValue = [
            "metadata": ["labels": ["a": "1"]],
            "spec": [
                "containers": [["name": "app", "image": "v1"], ["name": "sidecar", "image": "s1"]],
                "args": ["x"],
            ],
        ]
        let patch: JSONValue = [
            "metadata": ["labels": ["b": "2"]],
            "spec": [
                "containers": [["name": "app", "image": "v2"], ["name": "sidecar", "$patch": "delete"], ["name": "new", "image": "n1"]],
                "args": ["y"],
            ],
        ]
        let merged = StrategicMergePatch.apply(pod, patch)
        #expect(merged["metadata"]?["labels"] == ["a": "1", "b": "2"])
        #expect(merged["spec"]?["containers"] == [["name": "app", "image": "v2"], ["name": "new", "image": "n1"]])
        #expect(merged["spec"]?["args"] == ["y"])
        #expect(StrategicMergePatch.apply(pod, ["spec": ["$patch": "replace", "containers": []]])["spec"] == ["containers": []])
    }
}
