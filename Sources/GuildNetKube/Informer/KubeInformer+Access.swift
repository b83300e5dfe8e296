import GuildNetCore

/// Reading the cache, subscribing, status.
extension KubeInformer {
    /// Subscribes to the cache's changes. With `includeInitial`, the stream starts with every cached
    /// object as ``InformerEvent/added(_:)`` and ``InformerEvent/synced(resourceVersion:)``, then the
    /// live changes, with nothing lost or repeated in between (both happen in one actor turn). Before
    /// the first list completes the snapshot is empty and the first list's objects arrive as `added`.
    ///
    /// `bufferLimit` bounds the events queued for a slow reader (the snapshot gets room of its own);
    /// on overflow the stream ends with ``InformerEvent/overflowed(dropped:)`` (see
    /// ``InformerSubscribers``). A subscription made after the informer stopped gets a stream holding
    /// only ``InformerEvent/finished(_:)``.
    public func subscribe(includeInitial: Bool = true, bufferLimit: Int = 10_000) -> (id: Int, events: AsyncStream<InformerEvent>) {
        if let stoppedReason {
            return (0, InformerSubscribers.finishedStream(.finished(stoppedReason)))
        }
        var prefill: [InformerEvent] = []
        if includeInitial {
            prefill.reserveCapacity(cache.count + 1)
            for key in cache.objects.keys.sorted() {
                if let object = cache[key] { prefill.append(.added(object)) }
            }
            if synced { prefill.append(.synced(resourceVersion: lastSyncRV)) }
        }
        let added = subscribers.add(capacity: max(1, bufferLimit) + prefill.count + 1, prefill: prefill)
        return (added.id, added.stream)
    }

    /// Ends every subscription with ``InformerEvent/finished(_:)`` carrying `reason`, also when
    /// ``run()`` never started (its owner stopped first), and refuses new ones (they get a finished
    /// stream) until ``run()`` starts again. A running informer still ends only when its task is
    /// cancelled.
    public func shutdown(reason: HostError) {
        stoppedReason = reason
        subscribers.finishAll(.finished(reason))
        for waiter in syncWaiters { waiter.finish() }
        syncWaiters.removeAll()
    }

    /// Ends a subscription (its stream gets ``InformerEvent/finished(_:)``); false when unknown.
    @discardableResult
    public func unsubscribe(_ id: Int) -> Bool {
        subscribers.remove(id, with: .finished(HostError(.subscriptionNotFound, "unsubscribed")))
    }

    /// Every cached object (unordered).
    public func snapshot() -> [JSONValue] { Array(cache.objects.values) }

    /// `namespace/name` → resourceVersion of every cached object (cluster-scoped: `name`).
    public func resourceVersions() -> [String: String] {
        var result: [String: String] = [:]
        result.reserveCapacity(cache.count)
        for (key, object) in cache.objects {
            result[key.description] = InformerCache.resourceVersion(object) ?? ""
        }
        return result
    }

    /// One cached object.
    public func object(namespace: String? = nil, name: String) -> JSONValue? {
        cache[InformerKey(namespace: resource.namespaced ? (namespace ?? "") : "", name: name)]
    }

    public var objectCount: Int { cache.count }

    public func status() -> InformerStatus {
        InformerStatus(
            resource: resource.description, namespace: namespace, synced: synced, running: running, resourceVersion: lastSyncRV,
            objects: cache.count, relists: relists, watchRestarts: watchRestarts, eventsApplied: eventsApplied,
            subscriberOverflows: subscribers.overflows, droppedEvents: subscribers.dropped, subscribers: subscribers.count,
            lastError: lastError, lastSyncAt: lastSyncAt)
    }

    /// Waits until the first list completed; throws `timeout` (with the last error) if it takes
    /// longer than `timeout`, `cluster_stopping` if the informer stops first.
    public func waitUntilSynced(timeout: Duration) async throws {
        if synced { return }
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        syncWaiters.append(continuation)
        let finished = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for await _ in stream {}
                return !Task.isCancelled
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        continuation.finish()
        try Task.checkCancellation()
        if synced { return }
        if !finished {
            throw HostError(
                .timeout, "the \(resource) informer did not sync within \(timeout)\(lastError.map { "; last error: \($0)" } ?? "")")
        }
        throw HostError(.clusterStopping, "the \(resource) informer stopped before it synced")
    }
}
