import GuildNetCore
import GuildNetRuntime
import Logging

/// Runs a real ``HostActor`` in a task group for the duration of `body`, then shuts it down and
/// waits for its teardown, exactly as the daemon does.
public func withRunningHost<T: Sendable>(
    stateDirectory: String,
    logs: LogCapture = LogCapture(),
    configure: (inout HostConfiguration) -> Void = { _ in },
    _ body: @Sendable (HostActor) async throws -> T
) async throws -> T {
    var configuration = HostConfiguration(stateDirectory: stateDirectory, logger: logs.logger())
    configuration.restartPolicy.backoff = Backoff(initial: .milliseconds(5), cap: .milliseconds(50), jitter: 0.5)
    configuration.store.openBackoff = Backoff(initial: .milliseconds(5), cap: .milliseconds(20), jitter: 0)
    configure(&configuration)
    let host = HostActor(configuration: configuration)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            await host.run()
            return nil
        }
        do {
            let result = try await body(host)
            host.beginShutdown()
            for try await _ in group {}
            return result
        } catch {
            host.beginShutdown()
            for try await _ in group {}
            throw error
        }
    }
}
