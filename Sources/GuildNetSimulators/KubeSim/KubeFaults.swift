import GuildNetCore

/// Injected failures: stalled replies, failing the next N requests, slow drip of watch events.
actor KubeFaults {
    struct Failure: Sendable {
        var code: Int
        var retryAfterSeconds: Int?
    }

    private var stalled = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var failures: [Failure] = []
    private(set) var stalledCount = 0
    /// Requests received so far (each counted once, before any fault applies).
    private(set) var received = 0

    func stall() { stalled = true }

    func release() {
        stalled = false
        let all = waiters
        waiters.removeAll()
        for waiter in all { waiter.resume() }
    }

    func failNext(_ count: Int, code: Int, retryAfterSeconds: Int?) {
        failures.append(contentsOf: Array(repeating: Failure(code: code, retryAfterSeconds: retryAfterSeconds), count: max(0, count)))
    }

    /// Called before every request: waits while replies are stalled, then returns an injected failure, if any.
    func admit() async -> Failure? {
        received += 1
        while stalled {
            stalledCount += 1
            await withCheckedContinuation { waiters.append($0) }
            stalledCount -= 1
        }
        return failures.isEmpty ? nil : failures.removeFirst()
    }
}
