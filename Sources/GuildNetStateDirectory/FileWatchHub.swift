import Dispatch
import GuildNetCore

#if canImport(Glibc)
import Glibc
#endif

/// One inotify descriptor for many watched files that come and go (every cluster's
/// `settings.json`), so a watched file costs an inotify watch, not a descriptor, and nothing while
/// idle. The same change detection as ``FileWatcher``; handlers of different files run
/// concurrently as child tasks of ``run()``, so one slow reload never delays another.
public final class FileWatchHub: Sendable {
    /// Called when the watched file changed (coalesced over ``settle``).
    public typealias Handler = @Sendable () async -> Void

    private struct Entry {
        var directory: String
        var name: String
        var handler: Handler
    }

    private struct State {
        var fd: Int32
        var directories: [Int32: String] = [:]  // wd → directory
        var watches: [String: Int32] = [:]  // directory → wd
        var entries: [UInt64: Entry] = [:]
        var nextToken: UInt64 = 0
        /// ``run()`` ended: nothing more is watched.
        var stopped = false
        /// Where a newly opened descriptor is handed to ``run()``.
        var opened: AsyncStream<Int32>.Continuation?
    }

    private let state: LockedValue<State>
    /// Quiet time after an event before handlers run (more events restart it).
    public let settle: Duration

    public init(settle: Duration = .milliseconds(50)) {
        self.settle = settle
        state = LockedValue(State(fd: -1))
    }

    deinit {
        state.withLock { state in
            if state.fd >= 0 { close(state.fd) }
            state.fd = -1
        }
    }

    /// Watches `path`; `nil` when it cannot be watched (no inotify, or the hub stopped).
    public func watch(_ path: String, _ handler: @escaping Handler) -> UInt64? {
        let directory = AtomicFile.parentDirectory(of: path)
        let name = path.split(separator: "/").last.map(String.init) ?? path
        return state.withLock { state -> UInt64? in
            guard !state.stopped else { return nil }
            if state.fd < 0 {
                // Opened with the first watch: a host with no cluster holds no inotify instance
                // (the system allows a user only a few, 128 by default).
                state.fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
                guard state.fd >= 0 else { return nil }
                state.opened?.yield(state.fd)
            }
            if state.watches[directory] == nil {
                let wd = inotify_add_watch(state.fd, directory, UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE))
                guard wd >= 0 else { return nil }
                state.watches[directory] = wd
                state.directories[wd] = directory
            }
            state.nextToken += 1
            state.entries[state.nextToken] = Entry(directory: directory, name: name, handler: handler)
            return state.nextToken
        }
    }

    /// Stops watching what `token` watched (its directory's watch goes when nothing else needs it).
    public func unwatch(_ token: UInt64) {
        state.withLock { state in
            guard let entry = state.entries.removeValue(forKey: token) else { return }
            guard !state.entries.values.contains(where: { $0.directory == entry.directory }),
                let wd = state.watches.removeValue(forKey: entry.directory)
            else { return }
            state.directories[wd] = nil
            if state.fd >= 0 { inotify_rm_watch(state.fd, wd) }
        }
    }

    /// Number of files watched (for tests and status).
    public var count: Int { state.withLock { $0.entries.count } }

    /// Delivers changes until the task is cancelled. The descriptor is opened by the first watch
    /// and closed again whenever nothing is watched (a host without clusters holds none).
    public func run() async {
        let (opened, openedContinuation) = AsyncStream<Int32>.makeStream()
        state.withLock { state in
            if state.fd >= 0 { openedContinuation.yield(state.fd) }
            state.opened = openedContinuation
        }
        // Waits (without a thread) for a descriptor, monitors it until nothing is watched, repeats.
        await withTaskCancellationHandler {
            for await fd in opened where !Task.isCancelled {
                await monitor(fd)
            }
        } onCancel: {
            openedContinuation.finish()
        }
        state.withLock { state in
            state.stopped = true
            if state.fd >= 0 { close(state.fd) }
            state.fd = -1
            state.opened = nil
        }
    }

    /// Delivers the events of `fd` until cancelled or nothing is watched; then closes `fd`.
    private func monitor(_ fd: Int32) async {
        let (wakeups, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let source = ReadSource(fd: fd) { continuation.yield() }
        let settle = self.settle
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await FileWatcher.tick(continuation) }
                var buffer = [UInt8](repeating: 0, count: 64 * 1024)
                for await _ in wakeups where !Task.isCancelled {
                    var tokens = drain(fd, &buffer)
                    source.rearm()
                    // The last unwatch removed the last inotify watch (its IN_IGNORED woke us): let the
                    // descriptor go; a later watch opens a new one.
                    if detachIfIdle(fd) { break }
                    guard !tokens.isEmpty else { continue }
                    while !Task.isCancelled {
                        do { try await Task.sleep(for: settle) } catch { break }
                        let more = drain(fd, &buffer)
                        source.rearm()
                        if more.isEmpty { break }
                        tokens.formUnion(more)
                    }
                    let handlers = state.withLock { state in tokens.sorted().compactMap { state.entries[$0]?.handler } }
                    for handler in handlers { group.addTask { await handler() } }
                }
                group.cancelAll()
            }
        } onCancel: {
            continuation.finish()
        }
        await source.cancelAndWait()
        state.withLock { state in
            guard state.fd == fd else { return }
            state.fd = -1
            state.directories = [:]
            state.watches = [:]
        }
        close(fd)
    }

    /// When nothing is watched, detaches `fd` from the state (under the lock, so a concurrent watch
    /// opens a new descriptor instead of adding to this one) and returns true.
    private func detachIfIdle(_ fd: Int32) -> Bool {
        state.withLock { state in
            guard state.fd == fd, state.entries.isEmpty else { return false }
            state.fd = -1
            state.directories = [:]
            state.watches = [:]
            return true
        }
    }

    /// Reads every pending event; the tokens of the entries they touch.
    private func drain(_ fd: Int32, _ buffer: inout [UInt8]) -> Set<UInt64> {
        var touched: [(Int32, String)] = []
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            touched += FileWatcher.events(in: buffer, count: count)
        }
        guard !touched.isEmpty else { return [] }
        return state.withLock { state in
            var tokens = Set<UInt64>()
            for (wd, name) in touched {
                guard let directory = state.directories[wd] else { continue }
                for (token, entry) in state.entries where entry.directory == directory && (entry.name == name || name.hasPrefix("..")) {
                    tokens.insert(token)
                }
            }
            return tokens
        }
    }
}
