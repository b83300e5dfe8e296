import Foundation

/// What KubeSim and RethinkSim share: serve in the caller's task, report the bound endpoint, stop.
public protocol SimulatedServer: Actor {
    associatedtype Endpoint: Sendable
    /// Serves until the calling task is cancelled or ``stop()`` is called. Call once.
    func run() async throws
    /// The listening address; waits until ``run()`` has bound its socket.
    func endpoint() async throws -> Endpoint
    /// Makes ``run()`` return.
    func stop()
    /// The server's restart fault (`KubeSim.restart()`, `RethinkSim.restart(unavailableFor:)`).
    func simulateRestart() async
}

extension SimulatedServer {
    /// Serves `self` in a child task while `body` runs, then stops it and waits for it to finish.
    public func serving<T: Sendable>(_ body: @Sendable (Self, Endpoint) async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await self.run()
                return nil
            }
            do {
                let endpoint = try await self.endpoint()
                let result = try await body(self, endpoint)
                stop()
                while let next = try await group.next() { _ = next }
                return result
            } catch {
                stop()
                group.cancelAll()
                throw error
            }
        }
    }

    /// Serves until SIGINT or SIGTERM (for `hostapp sim …`): `ready` runs once the server listens.
    /// SIGHUP simulates a server restart (``simulateRestart()``), so a test driving a sim process
    /// can restart it.
    public func servingUntilSignal(_ ready: @Sendable (Self, Endpoint) async throws -> Void) async throws {
        let signals = SignalStream([SIGINT, SIGTERM, SIGHUP])
        defer { signals.cancel() }
        let received = signals.stream
        // Each task reports whether it was the server.
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await self.run()
                return true
            }
            group.addTask {
                for await number in received {
                    guard number == SIGHUP else { break }
                    await self.simulateRestart()
                }
                await self.stop()
                return false
            }
            try await ready(self, try await self.endpoint())
            // The server's end (after a signal, or a failure) ends the command. After a signal the
            // server is left to finish its graceful shutdown: cancelling it would cut that short.
            while let wasServer = try await group.next() {
                if wasServer { group.cancelAll() }  // ends the signal watcher's loop
            }
        }
    }
}
