import GuildNetCore

/// A token bucket (QPS with burst) for one client. `acquire()` reserves a token under a lock and
/// then sleeps outside it until the token is due, so callers queue fairly and never fail; only
/// cancellation ends the wait (the reserved token is then given back).
public final class KubeRateLimiter: Sendable {
    private struct Bucket: Sendable {
        var tokens: Double
        var last: ContinuousClock.Instant
    }

    public let qps: Double
    public let burst: Int
    private let bucket: LockedValue<Bucket>
    private let clock = ContinuousClock()

    /// `qps <= 0` disables limiting.
    public init(qps: Double, burst: Int) {
        self.qps = qps
        self.burst = max(1, burst)
        bucket = LockedValue(Bucket(tokens: Double(max(1, burst)), last: ContinuousClock().now))
    }

    /// Takes one token; returns `true` when the caller had to wait for it.
    @discardableResult
    public func acquire() async throws -> Bool {
        guard qps > 0 else { return false }
        let now = clock.now
        let wait: Duration = bucket.withLock { bucket in
            let elapsed = (now - bucket.last).seconds
            bucket.last = now
            bucket.tokens = min(Double(burst), bucket.tokens + max(0, elapsed) * qps)
            bucket.tokens -= 1
            if bucket.tokens >= 0 { return .zero }
            return .nanoseconds(Int64(-bucket.tokens / qps * 1e9))
        }
        guard wait > .zero else { return false }
        do {
            try await Task.sleep(for: wait)
        } catch {
            bucket.withLock { $0.tokens = min(Double(burst), $0.tokens + 1) }
            throw error
        }
        return true
    }
}
