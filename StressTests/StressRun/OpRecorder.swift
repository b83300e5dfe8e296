import GuildNetCore

/// Latency samples per op and errors by code, shared by every task of the run.
final class OpRecorder: Sendable {
    private struct State {
        var latencies: [String: [Int64]] = [:]
        var errors: [String: Int] = [:]
        var errorsByOp: [String: [String: Int]] = [:]
        var counters: [String: Int] = [:]
    }

    private let state = LockedValue(State())

    /// One finished request of `op` that took `nanos`; `error` is its code when it failed.
    func record(_ op: String, nanos: Int64, error: String?) {
        state.withLock { state in
            state.latencies[op, default: []].append(nanos)
            if let error {
                state.errors[error, default: 0] += 1
                state.errorsByOp[op, default: [:]][error, default: 0] += 1
            }
        }
    }

    /// Counts something that is not a request (events, bytes, faults).
    func count(_ name: String, _ amount: Int = 1) {
        state.withLock { $0.counters[name, default: 0] += amount }
    }

    func counter(_ name: String) -> Int { state.withLock { $0.counters[name] ?? 0 } }

    var totalOperations: Int { state.withLock { $0.latencies.values.reduce(0) { $0 + $1.count } } }
    var totalErrors: Int { state.withLock { $0.errors.values.reduce(0, +) } }

    /// Per op: count, errors, p50 and p99 in milliseconds, sorted by op name.
    struct OpSummary: Sendable {
        var op: String
        var count: Int
        var errors: Int
        var p50: Double
        var p99: Double
        var max: Double
    }

    func summaries() -> [OpSummary] {
        state.withLock { state in
            state.latencies.keys.sorted().map { op in
                let sorted = (state.latencies[op] ?? []).sorted()
                func at(_ p: Double) -> Double {
                    guard !sorted.isEmpty else { return 0 }
                    return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6
                }
                let errors = state.errorsByOp[op]?.values.reduce(0, +) ?? 0
                return OpSummary(op: op, count: sorted.count, errors: errors, p50: at(0.5), p99: at(0.99), max: Double(sorted.last ?? 0) / 1e6)
            }
        }
    }

    var errorsByCode: [String: Int] { state.withLock { $0.errors } }
    var errorsByOp: [String: [String: Int]] { state.withLock { $0.errorsByOp } }
    var counters: [String: Int] { state.withLock { $0.counters } }
}
