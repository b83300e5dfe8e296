import NIOConcurrencyHelpers

/// A value guarded by a lock, for the few places where state is shared outside an actor (metric
/// catalogs, connection queues, lock-free state mirrors).
///
/// Built on SwiftNIO's pthread-based `NIOLockedValueBox` rather than `Synchronization.Mutex`:
/// on Linux `Mutex` locks with raw futex calls that ThreadSanitizer cannot see, so every access
/// under it is reported as a race, which would hide real ones.
public struct LockedValue<Value: Sendable>: Sendable {
    private let box: NIOLockedValueBox<Value>

    public init(_ value: Value) {
        box = NIOLockedValueBox(value)
    }

    /// Runs `body` with exclusive access to the value.
    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        try box.withLockedValue(body)
    }
}
