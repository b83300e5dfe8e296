/// A periodic loop's sleep that an event can cut short: ``wait(atMost:)`` returns after the
/// duration, at the next ``signal()``, or at once when a signal arrived since the last wait.
///
/// Unlike iterating an `AsyncStream` in a child task raced against a sleep, cancelling a wait
/// leaves the signal usable: an `AsyncStream` finishes for good when the task iterating it is
/// cancelled, after which every later wait would return at once (a busy loop).
public final class WakeupSignal: Sendable {
    private struct State {
        var pending = false
        var nextWaiter = 0
        var waiter: (id: Int, continuation: CheckedContinuation<Void, Never>)?
    }

    private let state = LockedValue(State())

    public init() {}

    /// Wakes the current waiter, or the next one if nobody waits (signals coalesce into one).
    public func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter.continuation
        }
        waiter?.resume()
    }

    /// Returns after `duration`, at a signal, or when the calling task is cancelled. One waiter
    /// at a time (a second concurrent waiter replaces the first, which returns at once).
    public func wait(atMost duration: Duration) async {
        if state.withLock({ state in
            defer { state.pending = false }
            return state.pending
        }) {
            return
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: duration) }
            group.addTask { await self.nextSignal() }
            await group.next()
            group.cancelAll()
        }
    }

    /// Suspends until a signal or cancellation.
    private func nextSignal() async {
        let id = state.withLock { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let (resumeNow, replaced) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
                    if Task.isCancelled { return (true, nil) }
                    if state.pending {
                        state.pending = false
                        return (true, nil)
                    }
                    let replaced = state.waiter?.continuation
                    state.waiter = (id, continuation)
                    return (false, replaced)
                }
                replaced?.resume()
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard let waiter = state.waiter, waiter.id == id else { return nil }
                state.waiter = nil
                return waiter.continuation
            }
            waiter?.resume()
        }
    }
}
