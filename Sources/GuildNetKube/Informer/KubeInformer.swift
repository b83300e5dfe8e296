import Foundation
import GuildNetCore
import Logging

/// A cache of one resource (in one namespace, or all) kept equal to the server by list + watch,
/// mimicking client-go's Reflector:
///
/// 1. List with the pager (`resourceVersion=0` first), replace the cache, remember the list's RV.
/// 2. Watch from that RV with bookmarks and a `timeoutSeconds` in [300, 600). Every event,
///    bookmarks included, advances the RV.
/// 3. A clean end re-watches at once (one that ends in under a second with no event counts as a
///    failure). A dropped stream, 429 or a transport failure backs off and re-watches from the RV.
/// 4. 410 Expired/Gone (HTTP or an `ERROR` event), or any other watch error, backs off and relists
///    with the RV; if that list is itself 410, it relists at once with `resourceVersion=""`.
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
        case ended(events: Int, duration: Duration)
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
        var listRV: String? = "0"
        var isFirstList = true
        loop: while !Task.isCancelled {
            if let rv = listRV {
                do {
                    try await relist(resourceVersion: rv, counted: !isFirstList)
                    isFirstList = false
                    listRV = nil
                } catch {
                    if isCancellation(error) { break loop }
                    let hostError = HostError.wrapping(error, as: .k8sTransport)
                    record(hostError)
                    if hostError.code == .k8sExpired && !rv.isEmpty {
                        listRV = ""  // the RV itself is too old: list the latest state at once
                        continue
                    }
                    guard await backoff() else { break loop }
                    continue
                }
            }
            switch await watchOnce() {
            case .cancelled:
                break loop
            case .ended(let events, let duration):
                watchRestarts += 1
                if events == 0 && duration < options.minimumWatchDuration {
                    record(HostError(.k8sTransport, "very short watch: \(resource) ended after \(duration) without events"))
                    guard await backoff() else { break loop }
                }
            case .rewatch(let error):
                watchRestarts += 1
                record(error)
                guard await backoff() else { break loop }
            case .relist(let error):
                record(error)
                guard await backoff() else { break loop }
                listRV = lastSyncRV
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

    /// Lists everything and replaces the cache, emitting the differences.
    private func relist(resourceVersion: String, counted: Bool) async throws {
        let list = try await client.listAll(
            resource, namespace: namespace, pageSize: options.pageSize, resourceVersion: resourceVersion,
            labelSelector: options.labelSelector, fieldSelector: options.fieldSelector)
        if counted { relists += 1 }
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
        logger.debug("informer listed", metadata: ["objects": "\(cache.count)", "pages": "\(list.pages)", "rv": "\(lastSyncRV)"])
    }

    /// One watch from `lastSyncRV`, applying events batch by batch until it ends.
    private func watchOnce() async -> WatchOutcome {
        let clock = ContinuousClock()
        let started = clock.now
        var events = 0
        let range = options.watchTimeoutSeconds
        let timeout = range.isEmpty ? range.lowerBound : Int.random(in: range)
        do {
            let stream = try await client.watch(
                resource, namespace: namespace, resourceVersion: lastSyncRV, allowBookmarks: true, timeoutSeconds: timeout,
                labelSelector: options.labelSelector, fieldSelector: options.fieldSelector)
            var iterator = stream.makeAsyncIterator()
            while let batch = try await iterator.nextBatch() {
                events += batch.count
                if let error = apply(batch) {
                    return error.isExpired || error.code != .k8sTooManyRequests ? .relist(error.hostError) : .rewatch(error.hostError)
                }
            }
            if Task.isCancelled { return .cancelled }
            return .ended(events: events, duration: clock.now - started)
        } catch {
            if isCancellation(error) { return .cancelled }
            let hostError = HostError.wrapping(error, as: .k8sTransport)
            switch hostError.code {
            case .k8sTooManyRequests, .k8sTransport, .k8sUnavailable, .k8sServerError, .k8sServerTimeout:
                return .rewatch(hostError)
            default:
                // 410 Expired, a garbled stream (events may be lost), 401/403/404: start over from a list.
                return .relist(hostError)
            }
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
