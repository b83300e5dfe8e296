import GuildNetCore
import GuildNetMetrics
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Gives the heap pages freed by unregistered clusters back to the operating system.
///
/// glibc's allocator keeps freed pages in its arenas: after a soak whose clusters were all
/// unregistered, the daemon had about 5 MB of live heap and 128 MiB of RSS; `malloc_trim(0)` took
/// the RSS to 83 MiB (docs/performance.md, "Stress runs"). After each unregistration, once no
/// other one came for ``quietPeriod``, this trims once: a churn of unregistrations costs one trim,
/// after it. Without glibc it only counts.
public final class FreedMemoryReturner: Sendable {
    /// How long unregistrations must stop before the trim.
    public let quietPeriod: Duration
    private let released = Atomic<Int>(0)
    private let trims = Atomic<Int>(0)
    /// The value of `released` the last trim covered.
    private let trimmedThrough = Atomic<Int>(0)
    private let wakeups = WakeupSignal()
    private let trim: @Sendable () -> Void
    private let logger: Logger

    /// - Parameter trim: the work of one trim (tests count calls); default `malloc_trim(0)`.
    public init(quietPeriod: Duration = .seconds(5), logger: Logger, trim: (@Sendable () -> Void)? = nil) {
        self.quietPeriod = quietPeriod
        self.logger = logger
        self.trim = trim ?? Self.trimHeap
    }

    /// A cluster was unregistered and its memory freed.
    public func clusterReleased() {
        released.add(1, ordering: .relaxed)
        wakeups.signal()
    }

    /// Trims done so far.
    public var trimCount: Int { trims.load(ordering: .relaxed) }

    /// `true` from an unregistration until the trim that follows it: a leak check compares RSS
    /// once this is `false` (`host.status` `memory_trim.pending`).
    public var isTrimPending: Bool {
        released.load(ordering: .relaxed) != trimmedThrough.load(ordering: .relaxed)
    }

    /// Trims after each quiet period that follows unregistrations, until cancelled.
    public func run() async {
        while !Task.isCancelled {
            await wakeups.wait(atMost: .seconds(3600))
            var seen = released.load(ordering: .relaxed)
            guard seen != trimmedThrough.load(ordering: .relaxed) else { continue }
            while !Task.isCancelled {
                try? await Task.sleep(for: quietPeriod)
                let now = released.load(ordering: .relaxed)
                if now == seen { break }
                seen = now
            }
            guard !Task.isCancelled else { return }
            let before = Self.residentKiB()
            let clock = ContinuousClock()
            // Inline: one trim walks the arenas for a few milliseconds (logged below), once per
            // burst of unregistrations; a pool thread started for it would look like a thread leak.
            let took = clock.measure { trim() }
            logger.info(
                "returned freed memory to the operating system",
                metadata: [
                    "event": "memory_trimmed", "rss_kib_before": "\(before)", "rss_kib_after": "\(Self.residentKiB())",
                    "duration_ms": "\((took.seconds * 1000).rounded())",
                ])
            trims.add(1, ordering: .relaxed)
            trimmedThrough.store(seen, ordering: .relaxed)
        }
    }

    private static func residentKiB() -> Int { (ProcessSample.residentBytes() ?? 0) / 1024 }

    /// glibc's `malloc_trim`, looked up at run time (not in Swift's Glibc module; absent on other
    /// C libraries, where trimming does nothing).
    private static func trimHeap() {
        #if canImport(Glibc)
        typealias MallocTrim = @convention(c) (Int) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
        _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
        #endif
    }
}
