import Synchronization

/// The monotonic time of a store's last use, readable by the budget without an actor hop.
final class UsageStamp: Sendable {
    private let lastUse = Atomic<Int64>(0)
    private static let clock = ContinuousClock()
    private static let origin = clock.now

    static func now() -> Int64 {
        let elapsed = origin.duration(to: clock.now)
        let (seconds, attoseconds) = elapsed.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    func touch() { lastUse.store(Self.now(), ordering: .relaxed) }

    /// Nanoseconds on the process-wide monotonic scale of ``now()``.
    var nanoseconds: Int64 { lastUse.load(ordering: .relaxed) }
}
