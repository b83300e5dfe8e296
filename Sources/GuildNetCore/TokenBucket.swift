/// A token bucket: `rate` tokens per second, holding at most `burst`. ``acquire(_:)`` reserves its
/// tokens under a lock and then sleeps outside it until they are due, so callers queue fairly and
/// never fail; only cancellation ends the wait (the reserved tokens are then given back).
///
/// One bucket per cluster and purpose: the Kubernetes client's request rate (`kube.qps`,
/// `kube.burst`) and the RethinkDB changefeeds' event rate (`rethinkdb.feed_events_per_second`,
/// `rethinkdb.feed_burst`).
public final class TokenBucket: Sendable {
    private struct Bucket: Sendable {
        var tokens: Double
        var last: ContinuousClock.Instant
    }

    /// Tokens added per second; `<= 0` means unlimited.
    public let rate: Double
    /// The most tokens held (what may pass at once after a quiet spell).
    public let burst: Int
    private let bucket: LockedValue<Bucket>
    private let clock = ContinuousClock()

    /// `rate <= 0` disables limiting.
    public init(rate: Double, burst: Int) {
        self.rate = rate
        self.burst = max(1, burst)
        bucket = LockedValue(Bucket(tokens: Double(max(1, burst)), last: ContinuousClock().now))
    }

    /// Whether the bucket limits at all.
    public var isLimiting: Bool { rate > 0 }

    /// The tokens in the bucket now; negative while callers wait for tokens they reserved.
    public var availableTokens: Double {
        bucket.withLock { bucket in
            min(Double(burst), bucket.tokens + max(0, (clock.now - bucket.last).seconds) * rate)
        }
    }

    /// Takes `count` tokens (at least 1); returns `true` when the caller had to wait for them.
    @discardableResult
    public func acquire(_ count: Int = 1) async throws -> Bool {
        guard rate > 0 else { return false }
        let count = Double(max(1, count))
        let wait: Duration = bucket.withLock { bucket in
            // Read the clock under the lock, so `last` never moves backwards and no interval is
            // credited twice when callers race.
            let now = clock.now
            let elapsed = (now - bucket.last).seconds
            bucket.last = now
            bucket.tokens = min(Double(burst), bucket.tokens + max(0, elapsed) * rate)
            bucket.tokens -= count
            if bucket.tokens >= 0 { return .zero }
            return .nanoseconds(Int64(-bucket.tokens / rate * 1e9))
        }
        guard wait > .zero else { return false }
        do {
            try await Task.sleep(for: wait)
        } catch {
            bucket.withLock { $0.tokens = min(Double(burst), $0.tokens + count) }
            throw error
        }
        return true
    }
}
