/// Capped exponential backoff with jitter: attempt `n` (0-based) waits a duration drawn uniformly from
/// `[d, d·(1+jitter))` where `d = min(cap, initial · multiplier^n)`.
public struct Backoff: Sendable, Equatable {
    public var initial: Duration
    public var multiplier: Double
    public var cap: Duration
    /// 0 disables jitter; 1.0 (the client-go default) draws from `[d, 2d)`.
    public var jitter: Double

    public init(initial: Duration, multiplier: Double = 2, cap: Duration, jitter: Double = 0.5) {
        self.initial = initial
        self.multiplier = multiplier
        self.cap = cap
        self.jitter = jitter
    }

    /// The un-jittered delay before retry number `attempt` (0-based).
    public func baseDelay(attempt: Int) -> Duration {
        let initialSeconds = Self.seconds(initial)
        let capSeconds = Self.seconds(cap)
        var seconds = initialSeconds
        var step = 0
        while step < attempt && seconds < capSeconds {
            seconds *= multiplier
            step += 1
        }
        return .nanoseconds(Int64(min(seconds, capSeconds) * 1e9))
    }

    /// The jittered delay before retry number `attempt` (0-based).
    public func delay<G: RandomNumberGenerator>(attempt: Int, using generator: inout G) -> Duration {
        let base = Self.seconds(baseDelay(attempt: attempt))
        let factor = jitter > 0 ? Double.random(in: 1..<(1 + jitter), using: &generator) : 1
        return .nanoseconds(Int64(base * factor * 1e9))
    }

    public func delay(attempt: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(attempt: attempt, using: &generator)
    }

    static func seconds(_ duration: Duration) -> Double {
        let (s, atto) = duration.components
        return Double(s) + Double(atto) / 1e18
    }
}

extension Duration {
    /// This duration in (fractional) seconds.
    public var seconds: Double { Backoff.seconds(self) }
}
