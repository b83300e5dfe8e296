import GuildNetCore

/// How one request line must be ordered against the earlier lines of its connection. The reader
/// learns it (by parsing the line) in arrival order, before the line is dispatched.
public enum LineSequencing: Sendable, Hashable {
    /// Runs as soon as a slot is free (names no cluster, or could not be parsed).
    case independent
    /// Names the cluster with this registry key: starts after every earlier lifecycle request for it
    /// on this connection has replied; runs concurrently with other requests for it.
    case cluster(String)
    /// Registers or unregisters the cluster with this key: starts after every earlier request for
    /// it on this connection has replied.
    case clusterLifecycle(String)
}

/// A request line the reader has read: how it is ordered, and the work that answers it.
public struct AcceptedLine: Sendable {
    public var sequencing: LineSequencing
    /// Answers the line (queues its reply on the output). Runs concurrently with other lines.
    public var run: @Sendable (ControlOutput) async -> Void

    public init(sequencing: LineSequencing = .independent, run: @escaping @Sendable (ControlOutput) async -> Void) {
        self.sequencing = sequencing
        self.run = run
    }
}

/// Orders one connection's requests per cluster: `cluster.register` / `cluster.unregister` act as
/// barriers for the cluster they name; all other requests run concurrently.
///
/// ``enter(_:)`` is called by the connection's reader in arrival order; the returned ticket is
/// awaited and finished by the request's handler task. Waiting never blocks the reader, and every
/// ticket waits only for earlier tickets, so the chain always resolves (handlers always finish their
/// ticket, even when cancelled). Lanes of clusters with nothing in flight are dropped.
final class RequestSequencer: Sendable {
    private struct Lane {
        /// The latest lifecycle request, until it finishes.
        var barrier: OneShotGate?
        /// Unfinished non-lifecycle requests that entered after `barrier`.
        var shared: [OneShotGate] = []

        var isIdle: Bool { barrier == nil && shared.isEmpty }
    }

    /// One request's place in the order.
    struct Ticket: Sendable {
        fileprivate let key: String?
        fileprivate let predecessors: [OneShotGate]
        fileprivate let gate: OneShotGate?
    }

    private let lanes = LockedValue<[String: Lane]>([:])

    /// Takes the next place for a request (in arrival order).
    func enter(_ sequencing: LineSequencing) -> Ticket {
        switch sequencing {
        case .independent:
            return Ticket(key: nil, predecessors: [], gate: nil)
        case .cluster(let key):
            let gate = OneShotGate()
            let barrier = lanes.withLock { lanes -> OneShotGate? in
                lanes[key, default: Lane()].shared.append(gate)
                return lanes[key]?.barrier
            }
            return Ticket(key: key, predecessors: barrier.map { [$0] } ?? [], gate: gate)
        case .clusterLifecycle(let key):
            let gate = OneShotGate()
            let predecessors = lanes.withLock { lanes -> [OneShotGate] in
                let lane = lanes[key] ?? Lane()
                lanes[key] = Lane(barrier: gate)
                return (lane.barrier.map { [$0] } ?? []) + lane.shared
            }
            return Ticket(key: key, predecessors: predecessors, gate: gate)
        }
    }

    /// Waits until every predecessor of `ticket` has finished.
    func wait(for ticket: Ticket) async {
        for predecessor in ticket.predecessors { await predecessor.wait() }
    }

    /// Marks `ticket`'s request finished (its reply queued), releasing the requests waiting for it.
    func finish(_ ticket: Ticket) {
        guard let key = ticket.key, let gate = ticket.gate else { return }
        lanes.withLock { lanes in
            guard var lane = lanes[key] else { return }
            if lane.barrier === gate { lane.barrier = nil }
            lane.shared.removeAll { $0 === gate }
            lanes[key] = lane.isIdle ? nil : lane
        }
        gate.open()
    }

    /// Clusters with requests in flight or waiting (for tests).
    var activeLaneCount: Int { lanes.withLock { $0.count } }
}
