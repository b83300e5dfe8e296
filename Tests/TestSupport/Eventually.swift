import Foundation

public struct ConditionTimeout: Error, CustomStringConvertible {
    public var what: String
    public init(what: String) { self.what = what }
    public var description: String { "timed out waiting for \(what)" }
}

/// Awaits `condition` becoming true, checking every few milliseconds, failing after `timeout`.
/// This is how tests wait: for a condition, never for a fixed time.
public func eventually(
    _ what: String,
    timeout: Duration = .seconds(10),
    _ condition: () async throws -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while clock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(5))  // poll interval, not a wait for an outcome
    }
    if try await condition() { return }
    throw ConditionTimeout(what: what)
}
