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
/// ``run(onChange:)`` never blocks a thread: the descriptor is non-blocking and read every
/// ``pollInterval``; it runs until its task is cancelled (it must be a child task of its owner).
public struct FileWatcher: Sendable {
    /// The watched files (absolute or relative paths).
    public let paths: [String]
    /// How often pending events are read.
    public var pollInterval: Duration = .milliseconds(200)
    /// Quiet time after an event before the change is reported (more events restart it).
    public var settle: Duration = .milliseconds(50)

    public init(paths: [String]) {
        self.paths = paths
    }

    /// Reports changed files (sorted, deduplicated) until the task is cancelled.
    /// - Throws: ``HostError`` `io_error` when inotify cannot be set up.
    public func run(onChange: @Sendable ([String]) async -> Void) async throws {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { throw HostError(.io, "cannot start watching settings files: inotify_init1 failed (errno \(errno))") }
        defer { close(fd) }
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
            guard wd >= 0 else { throw HostError(.io, "cannot watch \(directory) (errno \(errno))") }
            directories[wd] = directory
        }
        var pending = Set<String>()
        var quietSince: ContinuousClock.Instant?
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while !Task.isCancelled {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                for (wd, name) in Self.events(in: buffer, count: count) {
                    guard let directory = directories[wd], let files = byDirectory[directory] else { continue }
                    if let path = files[name] {
                        pending.insert(path)
                    } else if name.hasPrefix("..") {
                        pending.formUnion(files.values)
                    }
                }
                if !pending.isEmpty { quietSince = .now }
                continue
            }
            if let since = quietSince, since.duration(to: .now) >= settle {
                let changed = pending.sorted()
                pending.removeAll()
                quietSince = nil
                await onChange(changed)
                continue
            }
            try await Task.sleep(for: pollInterval)
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
