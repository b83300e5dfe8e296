import GuildNetCore

/// A snapshot of one client's counters, for `cluster.status`.
public struct KubeClientStats: Sendable, Equatable {
    /// HTTP requests sent (retries and watches included).
    public var requests: Int = 0
    /// Requests that ended in an error (each retry that failed counts).
    public var failures: Int = 0
    /// Automatic retries after 429/5xx with `Retry-After` or after a 401 with a refreshable credential.
    public var retries: Int = 0
    /// Requests that had to wait for the rate limiter.
    public var throttledWaits: Int = 0
    /// Watch streams currently open.
    public var openWatches: Int = 0
    /// Port-forward tunnels currently open.
    public var openTunnels: Int = 0
    /// The most recent error (never contains credentials).
    public var lastError: HostError?

    public init() {}
}

/// The live counters behind ``KubeClientStats`` (a lock, not an actor: bumped on every request).
final class KubeClientCounters: Sendable {
    private let state = LockedValue(KubeClientStats())

    var snapshot: KubeClientStats { state.withLock { $0 } }

    func request() { state.withLock { $0.requests += 1 } }
    func retry() { state.withLock { $0.retries += 1 } }
    func throttled() { state.withLock { $0.throttledWaits += 1 } }
    func failure(_ error: HostError) {
        state.withLock {
            $0.failures += 1
            $0.lastError = error
        }
    }
    func watchOpened() { state.withLock { $0.openWatches += 1 } }
    func watchClosed() { state.withLock { $0.openWatches -= 1 } }
    func tunnelOpened() { state.withLock { $0.openTunnels += 1 } }
    func tunnelClosed() { state.withLock { $0.openTunnels -= 1 } }
}
