import Foundation
import GuildNetCore
import Logging

/// A cache of one resource (in one namespace, or all) kept equal to the server by list + watch,
/// following client-go's Reflector (docs/architecture.md, "Informers and client-go's Reflector",
/// tabulates each rule):
///
/// 1. List with the pager and replace the cache. The list's resourceVersion is
///    ``relistResourceVersion``: `0` for the first list (served from the watch cache), the last
///    synced RV afterwards, and `""` (a consistent read of the latest state) once the server refused
///    that RV. Lists at a specific RV are not paged (so the watch cache answers them, with data at
///    least as new) unless the first list came back in pages (no watch cache).
/// 2. Watch from the last RV with bookmarks and a `timeoutSeconds` in [300, 600). Every event,
///    bookmarks included, advances the RV.
/// 3. A clean end, or a stream cut after the watch ran a while, re-watches at once (one that ends in
///    under a second with no event counts as a failure). 429, 5xx and transport failures when
///    opening back off and re-watch from the RV.
/// 4. 410 Expired/Gone from a watch (HTTP or an `ERROR` event) marks the RV unavailable: after a
///    backoff the next list is a consistent read (`resourceVersion=""`), never the refused RV again
///    (a restarted API server still lists at an old RV from etcd, but refuses to watch from it).
///    A list refused with 410 or "too large resource version" is repeated at once with `""`.
///    Other watch errors (a garbled stream, 401/403/404) back off and relist from the RV.
/// 5. Backoff: 0.8 s doubling to 30 s with jitter 1.0, reset after 2 min without failure.
///
/// A relist replaces the cache and emits the differences, so subscribers see every change.
/// ``run()`` is a child of its cluster's task group: it returns when that task is cancelled and
/// then ends every subscriber stream with ``InformerEvent/finished(_:)``. No task is created inside.
public actor KubeInformer {
    public nonisolated let client: KubeClient
    public nonisolated let resource: KubeAPIResource
    /// nil = all namespaces (ignored for cluster-scoped resources).
    public nonisolated let namespace: String?
    public nonisolated let options: KubeInformerOptions
    let logger: Logger

    var cache = InformerCache()
    var subscribers = InformerSubscribers()
    var syncWaiters: [AsyncStream<Void>.Continuation] = []
    var lastSyncRV = ""
    /// The server refused `lastSyncRV` (410 from a watch or a list, or "too large"): the next list
    /// is a consistent read (client-go's `isLastSyncResourceVersionUnavailable`).
    var lastSyncRVUnavailable = false
    /// The first (`resourceVersion=0`) list came back in pages: the server has no watch cache, so
    /// later lists at a specific RV keep paging (client-go's `paginatedResult`).
    var paginatedResult = false
    var synced = false
    var running = false
    /// Set once stopped (run() returned or shutdown(reason:)): new subscriptions get a finished stream.
    var stoppedReason: HostError?
    var relists = 0
    var watchRestarts = 0
    var eventsApplied = 0
    var lastError: HostError?
    var lastSyncAt: Date?
    private var backoffAttempt = 0
    private var lastBackoffAt: ContinuousClock.Instant?

    public init(
        client: KubeClient, resource: KubeAPIResource, namespace: String? = nil, options: KubeInformerOptions = KubeInformerOptions(),
        logger: Logger
    ) {
        self.client = client
        self.resource = resource
        self.namespace = resource.namespaced ? namespace : nil
        self.options = options
        var logger = logger
        logger[metadataKey: "informer"] = "\(resource)\(namespace.map { " ns=\($0)" } ?? "")"
        self.logger = logger
    }

    // MARK: - Run loop

    /// What ended one watch.
    private enum WatchOutcome {
        /// The stream ended cleanly (`error` nil) or was cut after the server accepted the watch.
        case ended(events: Int, duration: Duration, error: HostError?)
        /// Back off, then watch again from the last RV.
        case rewatch(HostError)
        /// Back off, then relist from the last RV.
        case relist(HostError)
        case cancelled
    }

    /// Lists and watches until the calling task is cancelled, then finishes every subscriber.
    /// Errors never end it: they are recorded in ``status()`` and retried with backoff.
    public func run() async {
        guard !running else {
            logger.warning("informer run() called while already running; ignored")
            return
        }
        running = true
        stoppedReason = nil
        defer { stop() }
        logger.debug("informer started")
        var needsList = true
        loop: while !Task.isCancelled {
            if needsList {
                let rv = relistResourceVersion
                do {
                    try await relist(resourceVersion: rv, counted: synced)
                    needsList = false
                } catch {
                    if isCancellation(error) { break loop }
                    let hostError = HostError.wrapping(error, as: .k8sTransport)
                    record(hostError)
                    if Self.refusesResourceVersion(hostError) && !rv.isEmpty {
                        lastSyncRVUnavailable = true  // list the latest state at once
                        continue
                    }
                    guard await backoff() else { break loop }
                    continue
                }
            }
            switch await watchOnce() {
            case .cancelled:
                break loop
            case .ended(let events, let duration, let error):
                watchRestarts += 1
                if let error { record(error) }
                if events == 0 && duration < options.minimumWatchDuration {
                    if error == nil {
                        record(HostError(.k8sTransport, "very short watch: \(resource) ended after \(duration) without events"))
                    }
                    guard await backoff() else { break loop }
                }
            case .rewatch(let error):
                watchRestarts += 1
                record(error)
                guard await backoff() else { break loop }
            case .relist(let error):
                record(error)
                if error.code == .k8sExpired { lastSyncRVUnavailable = true }
                guard await backoff() else { break loop }
                needsList = true
            }
        }
        logger.debug("informer stopped")
    }

    private func stop() {
        running = false
        shutdown(reason: stoppedReason ?? HostError(.clusterStopping, "the \(resource) informer stopped"))
    }

    private func isCancellation(_ error: any Error) -> Bool {
        error is CancellationError || Task.isCancelled
    }

    /// The resourceVersion of the next list (client-go's `relistResourceVersion`): `""` once the
    /// server refused the last one, `0` before the first list, else the last synced RV.
    var relistResourceVersion: String {
        if lastSyncRVUnavailable { return "" }
        return lastSyncRV.isEmpty ? "0" : lastSyncRV
    }

    /// The page size of a list at `resourceVersion` (client-go's pager rule): lists at a specific RV
    /// are not paged, so a watch cache answers them (with data at least as new as the RV) instead of
    /// etcd answering exactly at that RV, unless the first list showed the server pages (no watch cache).
    func pageSize(forResourceVersion resourceVersion: String) -> Int {
        if resourceVersion.isEmpty || resourceVersion == "0" || paginatedResult { return options.pageSize }
        return 0
    }

    /// 410 Expired/Gone, or the 504 "Too large resource version" of a server behind the RV.
    static func refusesResourceVersion(_ error: HostError) -> Bool {
        error.code == .k8sExpired || (error.code == .k8sServerTimeout && error.message.contains("Too large resource version"))
    }

    /// Lists everything and replaces the cache, emitting the differences.
    private func relist(resourceVersion: String, counted: Bool) async throws {
        let list = try await client.listAll(
            resource, namespace: namespace, pageSize: pageSize(forResourceVersion: resourceVersion), resourceVersion: resourceVersion,
            labelSelector: options.labelSelector, fieldSelector: options.fieldSelector)
        if counted { relists += 1 }
        if resourceVersion == "0" && list.pages > 1 { paginatedResult = true }
        lastSyncRVUnavailable = false
        let changes = cache.replace(with: list.items)
        lastSyncRV = list.resourceVersion
        lastSyncAt = Date()
        subscribers.emit(changes)
        subscribers.emit(.synced(resourceVersion: lastSyncRV))
        if !synced {
            synced = true
            for waiter in syncWaiters { waiter.finish() }
            syncWaiters.removeAll()
        }
        logger.debug(
            "informer listed",
            metadata: ["objects": "\(cache.count)", "pages": "\(list.pages)", "rv": "\(lastSyncRV)", "requested_rv": "\(resourceVersion)"])
    }

    /// One watch from `lastSyncRV`, applying events batch by batch until it ends.
    private func watchOnce() async -> WatchOutcome {
        let clock = ContinuousClock()
        let started = clock.now
        var events = 0
        let range = options.watchTimeoutSeconds
        let timeout = range.isEmpty ? range.lowerBound : Int.random(in: range)
        let stream: KubeWatchStream
        do {
            stream = try await client.watch(
                resource, namespace: namespace, resourceVersion: lastSyncRV, allowBookmarks: true, timeoutSeconds: timeout,
                labelSelector: options.labelSelector, fieldSelector: options.fieldSelector)
        } catch {
            if isCancellation(error) { return .cancelled }
            return Self.outcome(ofFailed: HostError.wrapping(error, as: .k8sTransport))
        }
        do {
            var iterator = stream.makeAsyncIterator()
            while let batch = try await iterator.nextBatch() {
                events += batch.count
                if let error = apply(batch) {
                    return error.isExpired || error.code != .k8sTooManyRequests ? .relist(error.hostError) : .rewatch(error.hostError)
                }
            }
            if Task.isCancelled { return .cancelled }
            return .ended(events: events, duration: clock.now - started, error: nil)
        } catch {
            if isCancellation(error) { return .cancelled }
            let hostError = HostError.wrapping(error, as: .k8sTransport)
            // The connection broke after the server accepted the watch (client-go closes the watch
            // and re-watches at once): resume from the RV; a very short one backs off first.
            if hostError.code == .k8sTransport {
                return .ended(events: events, duration: clock.now - started, error: hostError)
            }
            return Self.outcome(ofFailed: hostError)
        }
    }

    /// What follows a watch that failed with `error`.
    private static func outcome(ofFailed error: HostError) -> WatchOutcome {
        switch error.code {
        case .k8sTooManyRequests, .k8sTransport, .k8sUnavailable, .k8sServerError, .k8sServerTimeout:
            return .rewatch(error)
        default:
            // 410 Expired, a garbled stream (events may be lost), 401/403/404: start over from a list.
            return .relist(error)
        }
    }

    /// Applies a batch of watch events; returns the error of an `ERROR` event (the events before it
    /// are applied).
    private func apply(_ batch: [KubeWatchEvent]) -> KubeAPIError? {
        for event in batch {
            if event.type == .error {
                return KubeAPIError.fromStatusObject(event.object, request: "WATCH \(resource)")
            }
            if let rv = event.resourceVersion, !rv.isEmpty { lastSyncRV = rv }
            eventsApplied += 1
            if event.type == .bookmark { continue }
            if let change = cache.apply(event.type, event.object) {
                subscribers.emit(change)
            }
        }
        lastSyncAt = Date()
        return nil
    }

    private func record(_ error: HostError) {
        lastError = error
        logger.debug("informer error", metadata: ["error": "\(error)"])
    }

    /// Sleeps the next backoff delay; false when cancelled meanwhile.
    private func backoff() async -> Bool {
        let clock = ContinuousClock()
        if let last = lastBackoffAt, clock.now - last >= options.backoffResetAfter { backoffAttempt = 0 }
        let delay = options.backoff.delay(attempt: backoffAttempt)
        backoffAttempt += 1
        do {
            try await Task.sleep(for: delay)
        } catch {
            return false
        }
        lastBackoffAt = clock.now
        return !Task.isCancelled
    }
}
