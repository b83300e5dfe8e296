import GuildNetCore

/// Live figures of one demo cluster, written by its workload tasks and read by the table.
final class DemoCounters: Sendable {
    struct Values: Sendable {
        var watchEvents = 0
        var feedEvents = 0
        var forwardBytes = 0
        var rowsWritten = 0
        var pods: Set<String> = []
        var errors = 0
        var lastError: String?
    }

    private let values = LockedValue(Values())

    var snapshot: Values { values.withLock { $0 } }

    func update(_ change: (inout Values) -> Void) {
        values.withLock { change(&$0) }
    }

    func failed(_ error: any Error) {
        update {
            $0.errors += 1
            $0.lastError = "\(error)"
        }
    }
}
