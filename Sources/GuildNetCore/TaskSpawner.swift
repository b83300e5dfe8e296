/// Hands work to a task group that someone else owns: the one "spawn into my task group" pattern
/// of the supervision tree (as ServiceLifecycle's `ServiceGroup` adds services through a channel).
///
/// The owner calls ``run(drain:)`` from its long-running task; it runs every job given to
/// ``spawn(_:)`` as a child task of one discarding task group, so a job is always a child of its
/// owner and never detached. After ``finish()`` (or cancellation of the owner's task) no job is
/// accepted; `drain` runs while the jobs still run (to stop them gracefully), then what is left
/// is cancelled and awaited before ``run(drain:)`` returns.
///
/// ```swift
/// let spawner = TaskSpawner()
/// // in the owner's run():
/// await spawner.run(drain: { await stopEveryone() })
/// // anywhere:
/// spawner.spawn { await informer.run() }
/// ```
public struct TaskSpawner: Sendable {
    /// One job: an async closure run as a child task.
    public typealias Job = @Sendable () async -> Void

    private let jobs: AsyncStream<Job>
    private let continuation: AsyncStream<Job>.Continuation

    public init() {
        (jobs, continuation) = AsyncStream<Job>.makeStream()
    }

    /// Queues `job` to run as a child task of ``run(drain:)``; `false` once finished (the job is dropped).
    @discardableResult
    public func spawn(_ job: @escaping Job) -> Bool {
        if case .enqueued = continuation.yield(job) { return true }
        return false
    }

    /// Accepts no more jobs; ``run(drain:)`` then drains and returns. Safe from any context; idempotent.
    public func finish() {
        continuation.finish()
    }

    /// Runs spawned jobs until ``finish()`` or cancellation, then `drain`, then cancels the jobs
    /// still running and waits for them. Call it once.
    public func run(isolation: isolated (any Actor)? = #isolation, drain: () async -> Void = {}) async {
        await withDiscardingTaskGroup(isolation: isolation) { group in
            for await job in jobs {
                group.addTask { await job() }
            }
            await drain()
            group.cancelAll()
        }
    }
}
