import GuildNetCore
import GuildNetRuntime
import Logging
import TestSupport
import Testing

@Suite("Freed memory returned to the OS")
struct FreedMemoryReturnerTests {
    @Test("a burst of unregistrations is trimmed once, after the quiet period; the next one again")
    func oneTrimPerBurst() async throws {
        let calls = LockedValue(0)
        let returner = FreedMemoryReturner(quietPeriod: .milliseconds(100), logger: LogCapture().logger()) { calls.withLock { $0 += 1 } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await returner.run() }
            for _ in 0..<20 { returner.clusterReleased() }
            try await eventually("one trim after the burst") { calls.withLock { $0 } == 1 }
            returner.clusterReleased()
            try await eventually("a second trim after the next release") { calls.withLock { $0 } == 2 }
            #expect(returner.trimCount == 2)
            group.cancelAll()
        }
        #expect(calls.withLock { $0 } == 2)
    }

    @Test("a release is pending until the trim that covers it")
    func pendingUntilTrimmed() async throws {
        let returner = FreedMemoryReturner(quietPeriod: .milliseconds(50), logger: LogCapture().logger()) {}
        #expect(!returner.isTrimPending)
        returner.clusterReleased()
        // Not running yet: nothing can have trimmed it.
        #expect(returner.isTrimPending)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await returner.run() }
            try await eventually("trimmed") { returner.trimCount == 1 }
            #expect(!returner.isTrimPending)
            group.cancelAll()
        }
    }

    @Test("unregistering a cluster trims the real heap once the host is quiet")
    func hostTrimsAfterUnregister() async throws {
        let dir = TemporaryDirectory("mt")
        defer { dir.remove() }
        let logs = LogCapture()
        try await withRunningHost(stateDirectory: dir.path, logs: logs, configure: { $0.memoryTrimQuietPeriod = .milliseconds(50) }) { host in
            let returner = try #require(host.memoryReturner)
            _ = try await host.register(RegisterRequest(name: "trimmed"))
            #expect(returner.trimCount == 0)
            _ = try await host.unregister("trimmed")
            try await eventually("trimmed") { returner.trimCount == 1 }
            #expect(logs.all.contains { $0.contains("event=memory_trimmed") })
        }
    }
}
