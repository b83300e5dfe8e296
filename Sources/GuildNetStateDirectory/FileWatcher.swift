import Dispatch
import GuildNetCore

#if canImport(Glibc)
import Glibc
#endif

/// Watches files for changes with inotify, the way editors and kubectl replace them.
///
/// It watches each file's directory, not the file, so every way of changing a file is seen:
/// rewritten in place (`IN_CLOSE_WRITE`), replaced by a rename (`IN_MOVED_TO`: editors, `AtomicFile`),
/// created, or swapped behind a symlink (a name starting `..` moved into the directory: the
/// ConfigMap `..data` pattern). Events are coalesced over ``settle`` so one save is one change.
///
/// ``run(onChange:)`` costs nothing while nothing changes: the non-blocking descriptor is watched
/// by a dispatch read source that only wakes the calling task when events arrive. It runs until
/// its task is cancelled (it must be a child task of its owner); cancellation closes the descriptor.
public struct FileWatcher: Sendable {
    /// The watched files (absolute or relative paths).
    public let paths: [String]
    /// Quiet time after an event before the change is reported (more events restart it).
    public var settle: Duration = .milliseconds(50)
    /// How often files are compared when inotify is unavailable.
    public var pollInterval: Duration = .milliseconds(500)

    public init(paths: [String]) {
        self.paths = paths
    }

    /// Reports changed files (sorted, deduplicated) until the task is cancelled.
    /// - Throws: `CancellationError` at the end.
    public func run(onChange: @Sendable ([String]) async -> Void) async throws {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        // Without inotify (the user's instances are used up: 128 by default) the files are polled.
        guard fd >= 0 else { return try await poll(onChange: onChange) }
        var directories: [Int32: String] = [:]
        var byDirectory: [String: [String: String]] = [:]  // directory → file name → path
        for path in paths {
            let directory = AtomicFile.parentDirectory(of: path)
            let name = path.split(separator: "/").last.map(String.init) ?? path
            byDirectory[directory, default: [:]][name] = path
        }
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE)
        for directory in byDirectory.keys.sorted() {
            let wd = inotify_add_watch(fd, directory, mask)
            guard wd >= 0 else {
                close(fd)
                return try await poll(onChange: onChange)
            }
            directories[wd] = directory
        }
        let (wakeups, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let source = ReadSource(fd: fd) { continuation.yield() }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        /// Reads every pending event; the watched paths they touch.
        var broken = false
        func drain() -> Set<String> {
            var touched = Set<String>()
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                guard count > 0 else {
                    // EAGAIN: nothing pending. Anything else (the descriptor was closed under us, e.g.
                    // by someone's double close of a reused number): stop trusting it, poll instead.
                    if count < 0 && errno != EAGAIN && errno != EINTR { broken = true }
                    return touched
                }
                for (wd, name) in Self.events(in: buffer, count: count) {
                    guard let directory = directories[wd], let files = byDirectory[directory] else { continue }
                    if let path = files[name] {
                        touched.insert(path)
                    } else if name.hasPrefix("..") {
                        touched.formUnion(files.values)
                    }
                }
            }
        }
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                // A slow tick drains the descriptor too, so events are never stranded when dispatch is
                // short of threads (two wake-ups a second for the daemon, none per cluster).
                group.addTask { await Self.tick(continuation) }
                for await _ in wakeups where !Task.isCancelled {
                    var changed = drain()
                    source.rearm()
                    if broken { break }
                    guard !changed.isEmpty else { continue }
                    // Settle: wait until a quiet period passes with no new event.
                    while !Task.isCancelled {
                        do { try await Task.sleep(for: settle) } catch { break }
                        let more = drain()
                        source.rearm()
                        if more.isEmpty { break }
                        changed.formUnion(more)
                    }
                    if Task.isCancelled { break }
                    await onChange(changed.sorted())
                }
                group.cancelAll()
            }
        } onCancel: {
            continuation.finish()
        }
        // The descriptor is closed only once dispatch has let go of it (never while it could be reused).
        await source.cancelAndWait()
        if !broken { close(fd) }
        try Task.checkCancellation()
        if broken { try await poll(onChange: onChange) }
    }

    /// The fallback without inotify: compares each file's identity (inode, size, modification
    /// time, following symlinks) every ``pollInterval``.
    func poll(onChange: @Sendable ([String]) async -> Void) async throws {
        func identities() -> [String: [Int]] {
            var out: [String: [Int]] = [:]
            for path in paths {
                var info = stat()
                if stat(path, &info) == 0 {
                    out[path] = [Int(info.st_ino), Int(info.st_size), Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec)]
                }
            }
            return out
        }
        var last = identities()
        while true {
            try await Task.sleep(for: pollInterval)
            let now = identities()
            let changed = paths.filter { now[$0] != last[$0] }
            last = now
            if !changed.isEmpty { await onChange(changed.sorted()) }
        }
    }

    /// Yields to `wakeups` every `tickInterval` until cancelled.
    static func tick(_ wakeups: AsyncStream<Void>.Continuation, every interval: Duration = tickInterval) async {
        while true {
            do { try await Task.sleep(for: interval) } catch { return }
            wakeups.yield()
        }
    }

    /// How often a watcher drains its descriptor even without a dispatch wake-up.
    static let tickInterval: Duration = .seconds(1)

    /// `(wd, name)` of each `inotify_event` in the first `count` bytes of `buffer`.
    static func events(in buffer: [UInt8], count: Int) -> [(Int32, String)] {
        var out: [(Int32, String)] = []
        var offset = 0
        let header = MemoryLayout<inotify_event>.size
        while offset + header <= count {
            let wd = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: Int32.self) }
            let length = Int(buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self) })
            let start = offset + header
            let end = min(start + length, count)
            let nameBytes = buffer[start..<end].prefix { $0 != 0 }
            out.append((wd, String(decoding: nameBytes, as: UTF8.self)))
            offset = start + length
        }
        return out
    }
}

/// A dispatch read source on a descriptor: `onReadable` runs once when data is pending, then the
/// source stays suspended until ``rearm()`` (after the reader drained the descriptor), so a reader
/// that is slow to run never makes dispatch spin on a readable descriptor. ``cancelAndWait()``
/// stops it and returns once dispatch no longer uses the descriptor.
final class ReadSource: Sendable {
    // Safe: DispatchSource's resume/suspend/cancel are thread-safe; suspend and resume are paired
    // under `state`'s lock (the `armed` flag), and libdispatch runs the handlers on the source's queue.
    nonisolated(unsafe) private let source: any DispatchSourceRead
    private let state = LockedValue<SourceState>(SourceState())

    private struct SourceState {
        var armed = true
        var cancel = CancelState.running
    }

    private enum CancelState {
        case running
        case waiting(CheckedContinuation<Void, Never>)
        case done
    }

    init(fd: Int32, onReadable: @escaping @Sendable () -> Void) {
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: DispatchQueue(label: "guildnet.file-watcher"))
        self.source = source
        let state = self.state
        source.setEventHandler {
            let disarm: Bool = state.withLock { state in
                guard state.armed else { return false }
                state.armed = false
                return true
            }
            if disarm { source.suspend() }
            onReadable()
        }
        source.setCancelHandler {
            let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
                defer { state.cancel = .done }
                if case .waiting(let continuation) = state.cancel { return continuation }
                return nil
            }
            waiter?.resume()
        }
        source.resume()
    }

    /// Lets the source report the next readable event (call after draining the descriptor).
    func rearm() {
        let resume: Bool = state.withLock { state in
            guard !state.armed else { return false }
            state.armed = true
            return true
        }
        if resume { source.resume() }
    }

    /// Cancels the source and waits for its cancel handler (after which the descriptor may be closed).
    func cancelAndWait() async {
        source.cancel()
        rearm()  // a suspended source runs its cancel handler only once resumed
        await withCheckedContinuation { continuation in
            let done: Bool = state.withLock { state in
                if case .done = state.cancel { return true }
                state.cancel = .waiting(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}
