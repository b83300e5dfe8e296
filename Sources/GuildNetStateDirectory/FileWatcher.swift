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
        func drain() -> Set<String> {
            var touched = Set<String>()
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                guard count > 0 else { return touched }
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
            for await _ in wakeups where !Task.isCancelled {
                var changed = drain()
                guard !changed.isEmpty else { continue }
                // Settle: wait until a quiet period passes with no new event.
                while !Task.isCancelled {
                    do { try await Task.sleep(for: settle) } catch { break }
                    let more = drain()
                    if more.isEmpty { break }
                    changed.formUnion(more)
                }
                if Task.isCancelled { break }
                await onChange(changed.sorted())
            }
        } onCancel: {
            continuation.finish()
        }
        // The descriptor is closed only once dispatch has let go of it (never while it could be reused).
        await source.cancelAndWait()
        close(fd)
        try Task.checkCancellation()
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

/// A dispatch read source on a descriptor: `onReadable` runs when data is pending;
/// ``cancelAndWait()`` stops it and returns once dispatch no longer uses the descriptor.
final class ReadSource: Sendable {
    // Safe: DispatchSource's resume/cancel are thread-safe; it is resumed once in init and
    // cancelled once in cancelAndWait() (libdispatch runs the handlers on the source's queue).
    nonisolated(unsafe) private let source: any DispatchSourceRead
    private let cancelled = LockedValue<CancelState>(.running)

    private enum CancelState {
        case running
        case waiting(CheckedContinuation<Void, Never>)
        case done
    }

    init(fd: Int32, onReadable: @escaping @Sendable () -> Void) {
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: DispatchQueue(label: "guildnet.file-watcher"))
        self.source = source
        source.setEventHandler(handler: onReadable)
        let cancelled = self.cancelled
        source.setCancelHandler {
            let waiter: CheckedContinuation<Void, Never>? = cancelled.withLock { state in
                defer { state = .done }
                if case .waiting(let continuation) = state { return continuation }
                return nil
            }
            waiter?.resume()
        }
        source.resume()
    }

    /// Cancels the source and waits for its cancel handler (after which the descriptor may be closed).
    func cancelAndWait() async {
        source.cancel()
        await withCheckedContinuation { continuation in
            let done: Bool = cancelled.withLock { state in
                if case .done = state { return true }
                state = .waiting(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}
