import GuildNetCore
import Testing

@Suite("WakeupSignal")
struct WakeupSignalTests {
    /// Every wait after one that timed out (its signal waiter cancelled) still sleeps its full
    /// duration: the regression was a route evaluation loop that spun once its wakeup stream had
    /// been finished by a cancelled iterator.
    @Test("a wait that timed out leaves later waits sleeping their full duration")
    func timedOutWaitsDoNotSpin() async {
        let signal = WakeupSignal()
        let clock = ContinuousClock()
        for _ in 0..<3 {
            let started = clock.now
            await signal.wait(atMost: .milliseconds(50))
            // Task.sleep never returns early, so a wait shorter than its duration came from a bogus wakeup.
            #expect(started.duration(to: clock.now) >= .milliseconds(50))
        }
    }

    @Test("a signal wakes a waiter long before its duration")
    func signalWakesTheWaiter() async {
        let signal = WakeupSignal()
        let clock = ContinuousClock()
        let started = clock.now
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await signal.wait(atMost: .seconds(600)) }
            group.addTask {
                // Signals repeat until the waiter has returned: the first may land before it waits,
                // which a pending flag keeps for it anyway.
                while !Task.isCancelled {
                    signal.signal()
                    try? await Task.sleep(for: .milliseconds(10))
                }
            }
            await group.next()
            group.cancelAll()
        }
        #expect(started.duration(to: clock.now) < .seconds(600))
    }

    @Test("a signal with nobody waiting makes the next wait return at once, only once")
    func pendingSignalIsConsumedOnce() async {
        let signal = WakeupSignal()
        signal.signal()
        signal.signal()
        let clock = ContinuousClock()
        let started = clock.now
        await signal.wait(atMost: .seconds(600))
        #expect(started.duration(to: clock.now) < .seconds(600))
        // The two signals coalesced: the next wait sleeps.
        let second = clock.now
        await signal.wait(atMost: .milliseconds(50))
        #expect(second.duration(to: clock.now) >= .milliseconds(50))
    }

    @Test("cancelling the waiting task ends the wait")
    func cancellationEndsTheWait() async {
        let signal = WakeupSignal()
        let task = Task { await signal.wait(atMost: .seconds(600)) }
        task.cancel()
        await task.value
        // Still usable after a cancelled wait.
        signal.signal()
        await signal.wait(atMost: .seconds(600))
    }
}
