import GuildNetCore

/// The event streams (subscriptions) of one control connection.
///
/// A streaming op (`k8s.watch`, `rethink.changes`) registers a *pump*: a closure that forwards its
/// source's events to the connection's output until the source ends. Pumps run as child tasks of the
/// connection's own task group (see ``ConnectionRunner``), so closing the connection cancels every pump,
/// and each pump's cancellation ends its source subscription. Pumps are started only after the reply
/// that created them has been queued, so a subscription's events always follow its reply.
final class ConnectionStreams: Sendable {
    /// A registered subscription: how to run it and how to end it at the client's request.
    struct Subscription: Sendable {
        let id: String
        let kind: String
        let cluster: ClusterID
        /// Forwards the source's events to the connection's output until the source ends.
        let pump: @Sendable () async -> Void
        let cancel: @Sendable () async -> Void
    }

    private struct State {
        var active: [String: Subscription] = [:]
        var nextNumber: UInt64 = 0
        var closed = false
    }

    /// The most subscriptions one connection may hold at once.
    let limit: Int
    private let connectionID: UInt64
    private let state = LockedValue(State())
    /// Every started pump is a child task of ``runPumps()``.
    private let pumps = TaskSpawner()

    init(connectionID: UInt64, limit: Int = 256) {
        self.connectionID = connectionID
        self.limit = limit
    }

    /// A new subscription id, unique in the process: `<prefix>-<connection>-<n>`.
    func makeID(prefix: String) -> String {
        let number = state.withLock { state -> UInt64 in
            state.nextNumber += 1
            return state.nextNumber
        }
        return "\(prefix)-\(connectionID)-\(number)"
    }

    /// Registers `subscription`; its pump starts when ``start(_:)`` is called (after the reply).
    /// - Throws: `subscription_limit` at the cap, `host_shutting_down` after the connection closed.
    func register(_ subscription: Subscription) throws(HostError) {
        let refusal = state.withLock { state -> HostError? in
            if state.closed { return HostError(.hostShuttingDown, "the connection is closing") }
            guard state.active.count < limit else {
                return HostError(.subscriptionLimit, "this connection already holds \(limit) subscriptions; end some with k8s.unwatch or rethink.unsubscribe")
            }
            state.active[subscription.id] = subscription
            return nil
        }
        if let refusal { throw refusal }
    }

    /// Starts the pump of a registered subscription.
    func start(_ id: String) {
        guard let subscription = state.withLock({ $0.active[id] }) else { return }
        pumps.spawn {
            await subscription.pump()
            self.remove(subscription.id)
        }
    }

    /// Forgets `id` (its pump ended). Returns whether it was still registered.
    @discardableResult
    func remove(_ id: String) -> Bool {
        state.withLock { $0.active.removeValue(forKey: id) != nil }
    }

    /// Ends subscription `id` at the client's request.
    /// - Throws: `subscription_not_found` if this connection holds no such subscription of `kind`.
    func cancel(_ id: String, kind: String) async throws {
        let subscription = state.withLock { state -> Subscription? in
            guard let found = state.active[id], found.kind == kind else { return nil }
            return state.active.removeValue(forKey: id)
        }
        guard let subscription else {
            throw HostError(.subscriptionNotFound, "this connection has no \(kind) subscription \(String(reflecting: id))")
        }
        await subscription.cancel()
    }

    /// The ids of active subscriptions (for tests and `host.status`).
    var activeIDs: [String] { state.withLock { Array($0.active.keys) } }

    /// Runs every started pump as a child task until ``close()``; then cancels the pumps still running.
    func runPumps() async {
        await pumps.run()
    }

    /// No new subscriptions; ends ``runPumps()``, which cancels the running pumps.
    func close() {
        state.withLock { state in
            state.closed = true
            state.active.removeAll()
        }
        pumps.finish()
    }
}
