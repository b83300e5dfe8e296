/// The protocol every per-cluster child service implements (store, settings, metrics, and later the
/// Kubernetes client, forwards, routes and RethinkDB connector).
///
/// A ``ClusterChild`` is started, run and stopped by its cluster's supervisor, always inside the
/// cluster's task group:
/// 1. ``start()`` acquires what the child needs (opens a DB, loads a file). Throwing marks the child
///    failed; the supervisor restarts it with backoff.
/// 2. ``run()`` does the child's long-running work and returns when the task is cancelled. Throwing
///    counts as a failure. Most children have no work of their own and just await cancellation.
/// 3. ``stop()`` releases everything ``start()`` acquired. It is called after every ``start()``,
///    whatever happened, and must be idempotent.
public protocol ClusterChild: Sendable {
    /// The child's stable id within its cluster (`store`, `settings`, `metrics`, …).
    var childID: String { get }
    func start() async throws
    func run() async throws
    func stop() async
    /// Child-specific details for `cluster.status` (never credentials).
    func details() async -> [String: JSONValue]
}

extension ClusterChild {
    /// Waits until the task is cancelled.
    public func run() async throws {
        try await waitForCancellation()
    }

    public func details() async -> [String: JSONValue] { [:] }
}

/// Suspends until the current task is cancelled, without polling.
public func waitForCancellation() async throws {
    // An AsyncStream that is never fed ends exactly when the iterating task is cancelled.
    let (stream, continuation) = AsyncStream<Never>.makeStream()
    for await _ in stream {}
    continuation.finish()
    try Task.checkCancellation()
}

/// The supervisor's view of one child.
public enum ChildState: String, Sendable, Codable {
    case starting
    case running
    /// Failed and waiting for its next restart.
    case restarting
    /// Failed more often than its restart budget allows; no more restarts.
    case failed
    case stopping
    case stopped
}

/// What `cluster.status` reports for one child.
public struct ChildStatus: Sendable {
    public var id: String
    public var state: ChildState
    public var restarts: Int
    public var lastError: HostError?
    public var details: [String: JSONValue]

    public init(id: String, state: ChildState, restarts: Int = 0, lastError: HostError? = nil, details: [String: JSONValue] = [:]) {
        self.id = id
        self.state = state
        self.restarts = restarts
        self.lastError = lastError
        self.details = details
    }
}
