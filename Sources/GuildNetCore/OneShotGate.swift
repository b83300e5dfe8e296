/// A one-shot event: every ``wait()`` returns once ``open()`` was called, and at once after.
///
/// Waiting is not cancellable on purpose: a caller that must wait for an event even in a cancelled
/// task (a child's `stop()` waiting for its work to finish) gets exactly that; a gate that is never
/// opened keeps its waiters suspended, so whoever creates one must open it on every path.
public final class OneShotGate: Sendable {
    private struct State {
        var isOpen = false
        var waiting = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = LockedValue(State())

    public init() {}

    /// `true` once ``open()`` was called.
    public var isOpen: Bool { state.withLock { $0.isOpen } }

    /// How many callers have reached ``wait()`` (tests use it to see who is held).
    public var waiting: Int { state.withLock { $0.waiting } }

    /// Returns once the gate is open.
    public func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                state.waiting += 1
                if state.isOpen { return true }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Opens the gate, releasing every waiter. Idempotent.
    public func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.isOpen = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
