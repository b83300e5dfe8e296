/// A simulator's listening address as its owner learns it: callers of `endpoint()` wait until
/// `run()` has bound its socket, or get the error that ended `run()`. Owned by the simulator actor.
struct EndpointWaiters<Endpoint: Sendable> {
    private(set) var bound: Endpoint?
    private(set) var failure: (any Error)?
    private var waiters: [CheckedContinuation<Endpoint, any Error>] = []

    init() {}

    /// Records the address and wakes every waiter.
    mutating func bind(_ endpoint: Endpoint) {
        bound = endpoint
        for waiter in takeWaiters() { waiter.resume(returning: endpoint) }
    }

    /// Records why `run()` ended and fails every waiter.
    mutating func fail(_ error: any Error) {
        failure = error
        for waiter in takeWaiters() { waiter.resume(throwing: error) }
    }

    /// Queues a waiter (call only when neither ``bound`` nor ``failure`` is set).
    mutating func add(_ waiter: CheckedContinuation<Endpoint, any Error>) {
        waiters.append(waiter)
    }

    private mutating func takeWaiters() -> [CheckedContinuation<Endpoint, any Error>] {
        defer { waiters.removeAll() }
        return waiters
    }
}
