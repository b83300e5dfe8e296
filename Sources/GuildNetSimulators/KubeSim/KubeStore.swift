import Foundation
import GuildNetCore

/// One item on a watch stream.
enum WatchItem: Sendable {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR` with its object.
    case event(type: String, object: JSONValue)
    /// The stream ends cleanly (timeout).
    case end
    /// The stream is cut abruptly (fault injection, restart, stop).
    case cut
}

struct ObjectKey: Hashable, Comparable, Sendable {
    var namespace: String
    var name: String
    static func < (a: ObjectKey, b: ObjectKey) -> Bool {
        (a.namespace, a.name) < (b.namespace, b.name)
    }
}

struct WatchFilter: Sendable {
    var resource: KubeResource
    var namespace: String?
    var labels: KubeSelector
    var fields: KubeSelector

    func matches(resource: KubeResource, namespace: String, object: JSONValue) -> Bool {
        guard resource == self.resource else { return false }
        if let ns = self.namespace, ns != namespace { return false }
        return labels.matches(object) && fields.matches(object)
    }
}

/// Pod phases by namespace and name (a synchronous mirror of the store's pods).
final class PodPhaseIndex: Sendable {
    private let phases = LockedValue<[ObjectKey: String]>([:])

    func set(_ key: ObjectKey, phase: String?) { phases.withLock { $0[key] = phase } }

    /// The pod's phase, or nil when there is no such pod.
    func phase(namespace: String, name: String) -> String? { phases.withLock { $0[ObjectKey(namespace: namespace, name: name)] } }
}

/// The simulated cluster's state, in the API server's two layers:
/// - storage (etcd): the objects, the global resourceVersion and the bounded event history (the
///   compaction window), so a list can be answered at any RV since the last compaction;
/// - the watch cache: serves watches from RVs inside its window, `resourceVersion=0` lists and
///   lists at an RV that are not paged. Its window starts at the RV of its last restart
///   (``restartWatchCache()``) or at the compaction, whichever is later.
actor KubeStore {
    private struct HistoryEntry: Sendable {
        var rv: Int64
        var resource: KubeResource
        var namespace: String
        var name: String
        var type: String
        var object: JSONValue
        /// The object before this change (nil for ADDED): lists at older RVs undo the change.
        var previous: JSONValue?
    }

    private struct Watcher: Sendable {
        var filter: WatchFilter
        var continuation: AsyncStream<WatchItem>.Continuation
    }

    private var objects: [KubeResource: [ObjectKey: JSONValue]] = [:]
    private var resourceVersion: Int64 = 0
    private var history: [HistoryEntry] = []
    private var historyStart = 0  // index of the oldest live entry (amortised ring)
    private let historyLimit: Int
    /// Watches and continue tokens from an RV below this are expired (410).
    private var compactedRV: Int64 = 0
    /// The RV at which the watch cache last (re)started: watches from an older RV get 410.
    private var watchCacheStartRV: Int64 = 0
    private var watchers: [Int: Watcher] = [:]
    /// "A pod changed" signals for the simulated ReplicaSet (not a watch: restarts do not cut it).
    private var podChangeFeeds: [AsyncStream<Void>.Continuation] = []
    private var nextWatcherID = 0
    let defaultPodPhase: String
    /// Each pod's `status.phase`, readable without awaiting the actor (the port-forward upgrade
    /// decides on the event loop); updated with every pod write.
    nonisolated let podPhases = PodPhaseIndex()

    init(historyLimit: Int, defaultPodPhase: String) {
        self.historyLimit = max(1, historyLimit)
        self.defaultPodPhase = defaultPodPhase
        for resource in KubeResource.allCases { objects[resource] = [:] }
    }

    var currentResourceVersion: Int64 { resourceVersion }

    /// A coalescing signal yielded after every pod write (for in-process controllers).
    func podChanges() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        podChangeFeeds.append(continuation)
        return stream
    }

    /// Ends every pod-change signal stream (the sim stops).
    func finishPodChanges() {
        for feed in podChangeFeeds { feed.finish() }
        podChangeFeeds.removeAll()
    }
    var openWatchCount: Int { watchers.count }

    // MARK: - Reads

    func get(_ resource: KubeResource, namespace: String, name: String) throws -> JSONValue {
        guard let object = objects[resource]?[ObjectKey(namespace: resource.namespaced ? namespace : "", name: name)] else {
            throw KubeStatusError.notFound(resource, name)
        }
        return object
    }

    /// How a list is served, as the API server decides it (classic watch-cache rules, no
    /// consistent reads from the cache).
    enum ListSource: Equatable {
        /// Storage at the latest RV (`resourceVersion=""` or absent).
        case storageLatest
        /// Storage exactly at an RV (`resourceVersionMatch=Exact`, or a paged list at an RV with
        /// `resourceVersionMatch` unset, etcd's legacy rule).
        case storageAt(Int64)
        /// The watch cache: its current state, as long as it is at least `minimum` (RV `0`, or an
        /// unpaged list at an RV, or `NotOlderThan`).
        case watchCache(minimum: Int64)
    }

    static func listSource(resourceVersion: String?, match: String?, limit: Int?) throws -> ListSource {
        let text = resourceVersion ?? ""
        let match = match ?? ""
        guard ["", "Exact", "NotOlderThan"].contains(match) else {
            throw KubeStatusError.badRequest("resourceVersionMatch: Unsupported value: \"\(match)\": supported values: \"Exact\", \"NotOlderThan\"")
        }
        if text.isEmpty {
            if !match.isEmpty {
                throw KubeStatusError.badRequest("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided")
            }
            return .storageLatest
        }
        guard let rv = Int64(text), rv >= 0 else { throw KubeStatusError.badRequest("invalid resourceVersion: \(text)") }
        switch match {
        case "Exact":
            if rv == 0 {
                throw KubeStatusError.badRequest("resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"")
            }
            return .storageAt(rv)
        case "NotOlderThan":
            return .watchCache(minimum: rv)
        default:
            if rv != 0, let limit, limit > 0 { return .storageAt(rv) }
            return .watchCache(minimum: rv)
        }
    }

    func list(
        _ resource: KubeResource, namespace: String?, limit: Int?, continueToken: String?,
        labels: KubeSelector, fields: KubeSelector, resourceVersion requested: String? = nil, match: String? = nil
    ) throws -> JSONValue {
        var after: ObjectKey?
        var listRV = resourceVersion
        if let continueToken, !continueToken.isEmpty {
            guard let (rv, key) = Self.decodeContinue(continueToken) else {
                throw KubeStatusError.badRequest("continue key is not valid: \(continueToken)")
            }
            if rv < compactedRV {
                throw KubeStatusError.expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results."
                )
            }
            after = key
            listRV = rv
        } else {
            switch try Self.listSource(resourceVersion: requested, match: match, limit: limit) {
            case .storageLatest:
                listRV = resourceVersion
            case .storageAt(let rv):
                if rv > resourceVersion { throw Self.tooLargeStatus(requested: rv, current: resourceVersion) }
                if rv < compactedRV { throw Self.expiredStatus(requested: rv, oldest: compactedRV + 1) }
                listRV = rv
            case .watchCache(let minimum):
                if minimum > resourceVersion { throw Self.tooLargeStatus(requested: minimum, current: resourceVersion) }
                listRV = resourceVersion
            }
        }
        let table = objects(of: resource, at: listRV)
        var keys = table.keys.filter { key in
            if let namespace, key.namespace != namespace { return false }
            if let after, !(after < key) { return false }
            return true
        }
        keys.sort()
        var items: [JSONValue] = []
        var lastKey: ObjectKey?
        var remaining = 0
        for (index, key) in keys.enumerated() {
            guard let object = table[key], labels.matches(object), fields.matches(object) else { continue }
            if let limit, limit > 0, items.count >= limit {
                remaining = keys.count - index
                break
            }
            items.append(object)
            lastKey = key
        }
        var metadata: [String: JSONValue] = ["resourceVersion": .string(String(listRV))]
        if remaining > 0, let lastKey {
            metadata["continue"] = .string(Self.encodeContinue(rv: listRV, key: lastKey))
            metadata["remainingItemCount"] = .int(Int64(remaining))
        }
        return .object([
            "kind": .string(resource.kind + "List"),
            "apiVersion": "v1",
            "metadata": .object(metadata),
            "items": .array(items),
        ])
    }

    /// The objects of `resource` as they were at `rv` (at least the compaction RV): the current ones
    /// with every later change undone, newest first.
    private func objects(of resource: KubeResource, at rv: Int64) -> [ObjectKey: JSONValue] {
        let current = objects[resource] ?? [:]
        guard rv < resourceVersion else { return current }
        var table = current
        var index = history.count
        while index > historyStart && history[index - 1].rv > rv {
            index -= 1
            let entry = history[index]
            guard entry.resource == resource else { continue }
            table[ObjectKey(namespace: entry.namespace, name: entry.name)] = entry.previous
        }
        return table
    }

    /// The API server's answer to an RV it has not reached (after waiting for it): 504 with cause
    /// `ResourceVersionTooLarge`.
    static func tooLargeStatus(requested: Int64, current: Int64) -> KubeStatusError {
        KubeStatusError(
            code: 504, reason: "Timeout",
            message: "Too large resource version: \(requested), current: \(current)")
    }

    static func encodeContinue(rv: Int64, key: ObjectKey) -> String {
        let raw = "\(rv)\u{0}\(key.namespace)\u{0}\(key.name)"
        return Data(raw.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decodeContinue(_ token: String) -> (Int64, ObjectKey)? {
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64.append("=") }
        guard let data = Data(base64Encoded: base64) else { return nil }
        let parts = String(decoding: data, as: UTF8.self).split(separator: "\u{0}", omittingEmptySubsequences: false)
        guard parts.count == 3, let rv = Int64(parts[0]) else { return nil }
        return (rv, ObjectKey(namespace: String(parts[1]), name: String(parts[2])))
    }

    // MARK: - Writes

    private func nextRV() -> Int64 {
        resourceVersion += 1
        return resourceVersion
    }

    private static func timestamp() -> String {
        Date().formatted(.iso8601)
    }

    private func checkNamespaceExists(_ resource: KubeResource, _ namespace: String) throws {
        guard resource.namespaced else { return }
        guard objects[.namespaces]?[ObjectKey(namespace: "", name: namespace)] != nil else {
            throw KubeStatusError(
                code: 404, reason: "NotFound", message: "namespaces \"\(namespace)\" not found", name: namespace, kind: "namespaces")
        }
    }

    func create(_ resource: KubeResource, namespace: String, object: JSONValue) throws -> JSONValue {
        guard case .object = object else { throw KubeStatusError.badRequest("the body of the request was not a JSON object") }
        let ns = resource.namespaced ? namespace : ""
        var name = object["metadata"]?["name"]?.stringValue ?? ""
        if name.isEmpty, let prefix = object["metadata"]?["generateName"]?.stringValue, !prefix.isEmpty {
            name = prefix + String(UUID().uuidString.lowercased().prefix(5))
        }
        guard !name.isEmpty else { throw KubeStatusError.invalid(resource, "", "metadata.name: Required value: name or generateName is required") }
        if let kind = object["kind"]?.stringValue, kind != resource.kind {
            throw KubeStatusError.badRequest("the object kind \(kind) does not match the resource \(resource.rawValue)")
        }
        if resource.namespaced, let bodyNS = object["metadata"]?["namespace"]?.stringValue, !bodyNS.isEmpty, bodyNS != ns {
            throw KubeStatusError.badRequest("the namespace of the provided object does not match the namespace sent on the request")
        }
        try checkNamespaceExists(resource, ns)
        let key = ObjectKey(namespace: ns, name: name)
        if objects[resource]?[key] != nil { throw KubeStatusError.alreadyExists(resource, name) }

        var stored = object
        stored.setValue(.string(resource.kind), path: ["kind"])
        stored.setValue("v1", path: ["apiVersion"])
        stored.setValue(.string(name), path: ["metadata", "name"])
        stored.setValue(nil, path: ["metadata", "generateName"])
        if resource.namespaced { stored.setValue(.string(ns), path: ["metadata", "namespace"]) }
        stored.setValue(.string(UUID().uuidString.lowercased()), path: ["metadata", "uid"])
        stored.setValue(.string(Self.timestamp()), path: ["metadata", "creationTimestamp"])
        if resource == .pods, stored["status"]?["phase"] == nil {
            stored.setValue(.string(defaultPodPhase), path: ["status", "phase"])
        }
        if resource == .namespaces, stored["status"]?["phase"] == nil {
            stored.setValue("Active", path: ["status", "phase"])
        }
        let rv = nextRV()
        stored.setValue(.string(String(rv)), path: ["metadata", "resourceVersion"])
        objects[resource, default: [:]][key] = stored
        record(rv: rv, resource: resource, namespace: ns, type: "ADDED", object: stored, previous: nil)
        return stored
    }

    func update(_ resource: KubeResource, namespace: String, name: String, object: JSONValue) throws -> JSONValue {
        guard case .object = object else { throw KubeStatusError.badRequest("the body of the request was not a JSON object") }
        let ns = resource.namespaced ? namespace : ""
        let key = ObjectKey(namespace: ns, name: name)
        guard let existing = objects[resource]?[key] else { throw KubeStatusError.notFound(resource, name) }
        if let bodyName = object["metadata"]?["name"]?.stringValue, bodyName != name {
            throw KubeStatusError.badRequest("the name of the object (\(bodyName)) does not match the name on the URL (\(name))")
        }
        if let requested = object["metadata"]?["resourceVersion"]?.stringValue, !requested.isEmpty,
            requested != existing["metadata"]?["resourceVersion"]?.stringValue
        {
            throw KubeStatusError.conflict(resource, name)
        }
        return replace(resource, key: key, existing: existing, with: object)
    }

    func patch(_ resource: KubeResource, namespace: String, name: String, patch: JSONValue, strategic: Bool = false) throws -> JSONValue {
        guard case .object = patch else { throw KubeStatusError.badRequest("the patch was not a JSON object") }
        let ns = resource.namespaced ? namespace : ""
        let key = ObjectKey(namespace: ns, name: name)
        guard let existing = objects[resource]?[key] else { throw KubeStatusError.notFound(resource, name) }
        if let requested = patch["metadata"]?["resourceVersion"]?.stringValue, !requested.isEmpty,
            requested != existing["metadata"]?["resourceVersion"]?.stringValue
        {
            throw KubeStatusError.conflict(resource, name)
        }
        let merged = strategic ? StrategicMergePatch.apply(existing, patch) : mergePatch(existing, patch)
        if merged == existing { return existing }  // no-op patches do not bump the resourceVersion
        return replace(resource, key: key, existing: existing, with: merged)
    }

    private func replace(_ resource: KubeResource, key: ObjectKey, existing: JSONValue, with object: JSONValue) -> JSONValue {
        var stored = object
        stored.setValue(.string(resource.kind), path: ["kind"])
        stored.setValue("v1", path: ["apiVersion"])
        stored.setValue(.string(key.name), path: ["metadata", "name"])
        if resource.namespaced { stored.setValue(.string(key.namespace), path: ["metadata", "namespace"]) }
        for field in ["uid", "creationTimestamp"] {
            stored.setValue(existing["metadata"]?[field], path: ["metadata", field])
        }
        // Compare without the resourceVersion: an unchanged object is not a write.
        var comparable = stored
        comparable.setValue(existing["metadata"]?["resourceVersion"], path: ["metadata", "resourceVersion"])
        if comparable == existing { return existing }
        let rv = nextRV()
        stored.setValue(.string(String(rv)), path: ["metadata", "resourceVersion"])
        objects[resource, default: [:]][key] = stored
        record(rv: rv, resource: resource, namespace: key.namespace, type: "MODIFIED", object: stored, previous: existing)
        return stored
    }

    func delete(_ resource: KubeResource, namespace: String, name: String) throws -> JSONValue {
        let ns = resource.namespaced ? namespace : ""
        let key = ObjectKey(namespace: ns, name: name)
        guard let existing = objects[resource]?[key] else { throw KubeStatusError.notFound(resource, name) }
        var object = existing
        if resource == .namespaces {
            for child in KubeResource.allCases where child.namespaced {
                for childKey in (objects[child] ?? [:]).keys where childKey.namespace == name {
                    _ = try? delete(child, namespace: name, name: childKey.name)
                }
            }
        }
        objects[resource]?[key] = nil
        let rv = nextRV()
        object.setValue(.string(String(rv)), path: ["metadata", "resourceVersion"])
        record(rv: rv, resource: resource, namespace: ns, type: "DELETED", object: object, previous: existing)
        return object
    }

    // MARK: - History and watches

    private func record(rv: Int64, resource: KubeResource, namespace: String, type: String, object: JSONValue, previous: JSONValue?) {
        let name = object["metadata"]?["name"]?.stringValue ?? ""
        if resource == .pods {
            for feed in podChangeFeeds { feed.yield() }
            podPhases.set(ObjectKey(namespace: namespace, name: name), phase: type == "DELETED" ? nil : object["status"]?["phase"]?.stringValue ?? "")
        }
        history.append(
            HistoryEntry(rv: rv, resource: resource, namespace: namespace, name: name, type: type, object: object, previous: previous))
        if history.count - historyStart > historyLimit {
            compactedRV = history[historyStart].rv
            historyStart += 1
            if historyStart > 4096 && historyStart * 2 > history.count {
                history.removeFirst(historyStart)
                historyStart = 0
            }
        }
        for watcher in watchers.values where watcher.filter.matches(resource: resource, namespace: namespace, object: object) {
            watcher.continuation.yield(.event(type: type, object: object))
        }
    }

    /// Drops the whole event history: every RV below the current one is expired from now on.
    func compactNow() {
        history.removeAll()
        historyStart = 0
        compactedRV = resourceVersion
    }

    /// An API server restart as its watch cache sees it: the cache is rebuilt from storage at the
    /// current RV, so its window starts there (watches from older RVs get 410) and every open watch
    /// is cut. Storage keeps its history: lists at older RVs are still answered.
    func restartWatchCache() -> Int {
        watchCacheStartRV = resourceVersion
        return cutAllWatches()
    }

    static func expiredStatus(requested: Int64, oldest: Int64) -> KubeStatusError {
        KubeStatusError.expired("too old resource version: \(requested) (\(oldest))")
    }

    /// Registers a watch. Returns the events to send first (replayed history or initial state) and
    /// the live stream; throws 410 Expired when `resourceVersion` is older than the compaction window.
    func subscribe(
        filter: WatchFilter, resourceVersion requested: String?, sendInitialEvents: Bool
    ) throws -> (id: Int, backlog: [WatchItem], stream: AsyncStream<WatchItem>) {
        var backlog: [WatchItem] = []
        let rvText = requested ?? ""
        if rvText.isEmpty || rvText == "0" || sendInitialEvents {
            let table = objects[filter.resource] ?? [:]
            for key in table.keys.sorted() {
                guard let object = table[key], filter.matches(resource: filter.resource, namespace: key.namespace, object: object) else { continue }
                backlog.append(.event(type: "ADDED", object: object))
            }
            if sendInitialEvents {
                backlog.append(.event(type: "BOOKMARK", object: bookmarkObject(filter.resource, initialEventsEnd: true)))
            }
        } else {
            guard let from = Int64(rvText) else {
                throw KubeStatusError.badRequest("invalid resourceVersion: \(rvText)")
            }
            if from < watchCacheStartRV && watchCacheStartRV > compactedRV {
                // The watch cache's message: "too old resource version: X (Y)" with Y its start.
                throw Self.expiredStatus(requested: from, oldest: watchCacheStartRV)
            }
            if from < compactedRV {
                throw Self.expiredStatus(requested: from, oldest: compactedRV + 1)
            }
            var index = history.count
            while index > historyStart && history[index - 1].rv > from { index -= 1 }
            for entry in history[index...] where filter.matches(resource: entry.resource, namespace: entry.namespace, object: entry.object) {
                backlog.append(.event(type: entry.type, object: entry.object))
            }
        }
        let (stream, continuation) = AsyncStream<WatchItem>.makeStream()
        let id = nextWatcherID
        nextWatcherID += 1
        watchers[id] = Watcher(filter: filter, continuation: continuation)
        return (id, backlog, stream)
    }

    func unsubscribe(_ id: Int) {
        watchers.removeValue(forKey: id)?.continuation.finish()
    }

    private func bookmarkObject(_ resource: KubeResource, initialEventsEnd: Bool = false) -> JSONValue {
        var metadata: [String: JSONValue] = ["resourceVersion": .string(String(resourceVersion))]
        if initialEventsEnd { metadata["annotations"] = ["k8s.io/initial-events-end": "true"] }
        return .object(["kind": .string(resource.kind), "apiVersion": "v1", "metadata": .object(metadata)])
    }

    /// Queues a BOOKMARK at the current resourceVersion on watch `id` (ordered after every event already queued).
    func bookmark(_ id: Int) {
        guard let watcher = watchers[id] else { return }
        watcher.continuation.yield(.event(type: "BOOKMARK", object: bookmarkObject(watcher.filter.resource)))
    }

    /// Ends watch `id` with `item` (`.end` on timeout).
    func finish(_ id: Int, with item: WatchItem) {
        guard let watcher = watchers.removeValue(forKey: id) else { return }
        watcher.continuation.yield(item)
        watcher.continuation.finish()
    }

    /// Cuts every open watch abruptly.
    func cutAllWatches() -> Int {
        let all = watchers
        watchers.removeAll()
        for watcher in all.values {
            watcher.continuation.yield(.cut)
            watcher.continuation.finish()
        }
        return all.count
    }
}
