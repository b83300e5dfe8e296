/// Runs `operation`, giving up with ``HostError`` code ``ErrorCode/timeout`` after `timeout`.
/// The operation is cancelled when the deadline passes; both run as children of this call.
public func withDeadline<T: Sendable>(
    _ timeout: Duration,
    _ what: String,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw HostError(.timeout, "\(what) did not finish within \(timeout)")
        }
        return value
    }
}
