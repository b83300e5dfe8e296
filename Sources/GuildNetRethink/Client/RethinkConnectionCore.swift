import GuildNetCore
import NIOCore

/// The shared state of one connection: waiters keyed by token, handshake messages, and the error
/// that closed it. The channel handler (on the event loop) delivers into it; tasks wait on it.
///
/// Responses are matched to the one waiter of their token and resumed outside the lock; a response
/// nobody waits for (a query that timed out or was cancelled, the answer to a STOP) is dropped.
final class RethinkConnectionCore: Sendable {
    typealias Reply = CheckedContinuation<[UInt8], any Error>

    private struct Waiter: Sendable {
        var continuation: Reply
        var timeout: Scheduled<Void>?
    }

    private struct State: Sendable {
        var nextToken: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        var handshakeMessages: [[UInt8]] = []
        var handshakeWaiter: Reply?
        var failure: HostError?
    }

    private let state = LockedValue(State())

    /// A fresh token (tokens start at 0 and increase).
    func allocateToken() -> UInt64 {
        state.withLock { state in
            defer { state.nextToken &+= 1 }
            return state.nextToken
        }
    }

    /// The error that closed the connection, if it is closed.
    var failure: HostError? { state.withLock { $0.failure } }

    /// Queries waiting for a response.
    var pendingCount: Int { state.withLock { $0.waiters.count } }

    // MARK: Queries

    /// Registers `continuation` as the waiter of `token`; fails it at once if the connection is closed.
    /// - Returns: `false` when it was failed.
    func register(token: UInt64, continuation: Reply) -> Bool {
        let failure: HostError? = state.withLock { state in
            if let failure = state.failure { return failure }
            state.waiters[token] = Waiter(continuation: continuation, timeout: nil)
            return nil
        }
        if let failure {
            continuation.resume(throwing: failure)
            return false
        }
        return true
    }

    /// Attaches the timer of `token`'s waiter; cancels the timer when the waiter is already gone.
    func attach(timeout: Scheduled<Void>, to token: UInt64) {
        let attached = state.withLock { state in
            guard state.waiters[token] != nil else { return false }
            state.waiters[token]?.timeout = timeout
            return true
        }
        if !attached { timeout.cancel() }
    }

    /// Resumes `token`'s waiter with a response payload; responses nobody waits for are dropped.
    func deliver(_ frame: RethinkFrame) {
        guard let waiter = state.withLock({ $0.waiters.removeValue(forKey: frame.token) }) else { return }
        waiter.timeout?.cancel()
        waiter.continuation.resume(returning: frame.payload)
    }

    /// Fails `token`'s waiter (timeout, cancellation, write failure), if it still waits.
    func fail(token: UInt64, with error: any Error) {
        guard let waiter = state.withLock({ $0.waiters.removeValue(forKey: token) }) else { return }
        waiter.timeout?.cancel()
        waiter.continuation.resume(throwing: error)
    }

    /// Marks the connection closed and fails every waiter with `error` (the first error wins).
    func close(with error: HostError) {
        let (waiters, handshakeWaiter) = state.withLock { state -> ([Waiter], Reply?) in
            if state.failure == nil { state.failure = error }
            let waiters = Array(state.waiters.values)
            state.waiters.removeAll()
            let handshakeWaiter = state.handshakeWaiter
            state.handshakeWaiter = nil
            return (waiters, handshakeWaiter)
        }
        let failure = self.failure ?? error
        for waiter in waiters {
            waiter.timeout?.cancel()
            waiter.continuation.resume(throwing: failure)
        }
        handshakeWaiter?.resume(throwing: failure)
    }

    // MARK: Handshake

    /// Queues a NUL-terminated handshake message for ``nextHandshakeMessage()``.
    func deliverHandshake(_ message: [UInt8]) {
        let waiter: Reply? = state.withLock { state in
            if let waiter = state.handshakeWaiter {
                state.handshakeWaiter = nil
                return waiter
            }
            state.handshakeMessages.append(message)
            return nil
        }
        waiter?.resume(returning: message)
    }

    /// The next handshake message; messages received before the connection closed are still returned.
    func nextHandshakeMessage() async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { (continuation: Reply) in
            let ready: Result<[UInt8], HostError>? = state.withLock { state in
                if !state.handshakeMessages.isEmpty { return .success(state.handshakeMessages.removeFirst()) }
                if let failure = state.failure { return .failure(failure) }
                state.handshakeWaiter = continuation
                return nil
            }
            switch ready {
            case .success(let message)?: continuation.resume(returning: message)
            case .failure(let error)?: continuation.resume(throwing: error)
            case nil: break
            }
        }
    }
}
