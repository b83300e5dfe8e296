import GuildNetCore

/// A child that fails its first `failures` starts, then runs normally.
actor FlakyChild: ClusterChild {
    nonisolated let childID: String
    private var remainingFailures: Int
    private(set) var starts = 0
    private(set) var stops = 0

    init(id: String = "flaky", failures: Int) {
        self.childID = id
        self.remainingFailures = failures
    }

    func start() async throws {
        starts += 1
        if remainingFailures > 0 {
            remainingFailures -= 1
            throw HostError(.childFailed, "injected failure")
        }
    }

    func stop() async { stops += 1 }
}

/// A child whose start never finishes until cancelled (a hung dependency).
struct HangingChild: ClusterChild {
    let childID = "hanging"
    func start() async throws { try await waitForCancellation() }
    func stop() async {}
}

/// Counts how many children are inside stop() at once, to prove teardown runs in parallel.
final class StopBarrier: Sendable {
    private let state = LockedValue<(inside: Int, maxInside: Int)>((0, 0))
    let expected: Int

    init(expected: Int) { self.expected = expected }

    func enter() {
        state.withLock {
            $0.inside += 1
            $0.maxInside = max($0.maxInside, $0.inside)
        }
    }
    var inside: Int { state.withLock { $0.inside } }
    var maxInside: Int { state.withLock { $0.maxInside } }
}

/// A child whose stop() waits (bounded) until every sibling cluster's child is also stopping.
struct BarrierChild: ClusterChild {
    let childID = "barrier"
    let barrier: StopBarrier

    func start() async throws {}

    func stop() async {
        barrier.enter()
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(5))
        while barrier.inside < barrier.expected && clock.now < deadline {
            await Task.yield()
        }
    }
}

/// A gate a test opens once (callers stay suspended until then, even when their task is cancelled).
typealias Gate = OneShotGate

/// A child whose stop() waits until the test opens the gate: a cluster that is slow to tear down.
struct SlowStopChild: ClusterChild {
    let childID = "slow-stop"
    let gate: Gate

    func start() async throws {}
    func stop() async { await gate.wait() }
}
