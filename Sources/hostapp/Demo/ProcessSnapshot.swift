import Foundation

/// What `hostapp demo`'s leak report counts in its own process (Linux `/proc`; `nil` elsewhere):
/// open descriptors and listening sockets (TCP and Unix).
struct ProcessSnapshot: Sendable, Equatable {
    var openFiles: Int?
    var listeners: Int?
    /// What each descriptor is (`readlink` of `/proc/self/fd/N`), to name a leak.
    var descriptors: [String: String] = [:]

    static func take() -> ProcessSnapshot {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        guard !fds.isEmpty else { return ProcessSnapshot(openFiles: nil, listeners: nil) }
        var socketInodes: Set<String> = []
        var descriptors: [String: String] = [:]
        for fd in fds {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd) else { continue }
            descriptors[fd] = target
            if target.hasPrefix("socket:[") { socketInodes.insert(String(target.dropFirst("socket:[".count).dropLast())) }
        }
        // One descriptor is the directory listing's own.
        // /proc/self/net/* can omit an entry that moves while it is read, never add one: the most
        // of a few reads is the count.
        let listeners = (0..<5).map { _ in listening(among: socketInodes) }.max()
        return ProcessSnapshot(openFiles: fds.count - 1, listeners: listeners, descriptors: descriptors)
    }

    /// Whether this snapshot counts more descriptors or listeners than `earlier`.
    func exceeds(_ earlier: ProcessSnapshot) -> Bool {
        (openFiles ?? 0) > (earlier.openFiles ?? 0) || (listeners ?? 0) > (earlier.listeners ?? 0)
    }

    /// Descriptors open now that were not open (or were something else) in `earlier`.
    func added(since earlier: ProcessSnapshot) -> [String] {
        descriptors.filter { earlier.descriptors[$0.key] != $0.value }.map { "fd \($0.key): \($0.value)" }.sorted()
    }

    /// Sockets of `inodes` that listen: TCP state 0A, or a Unix socket with `__SO_ACCEPTCON` (0x10000).
    private static func listening(among inodes: Set<String>) -> Int {
        var count = 0
        for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
            for fields in rows(table) where fields.count > 9 && fields[3] == "0A" && inodes.contains(fields[9]) { count += 1 }
        }
        for fields in rows("/proc/self/net/unix") where fields.count > 6 {
            if let flags = Int(fields[3], radix: 16), flags & 0x10000 != 0, inodes.contains(fields[6]) { count += 1 }
        }
        return count
    }

    private static func rows(_ path: String) -> [[String]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").dropFirst().map { $0.split(separator: " ").map(String.init) }
    }
}
