import Foundation

/// What `hostapp demo`'s leak report counts in its own process (Linux `/proc`; `nil` elsewhere):
/// open descriptors and, among them, listening sockets (TCP and Unix).
struct ProcessSnapshot: Sendable, Equatable {
    var openFiles: Int?
    var listeners: Int?
    /// What each descriptor is (`readlink` of `/proc/self/fd/N`), to name a leak.
    var descriptors: [String: String] = [:]

    static func take() -> ProcessSnapshot {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        guard !fds.isEmpty else { return ProcessSnapshot(openFiles: nil, listeners: nil) }
        var listeners = 0
        var descriptors: [String: String] = [:]
        for fd in fds {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd) else { continue }
            descriptors[fd] = target
            if target.hasPrefix("socket:["), let number = Int32(fd), isListening(number) { listeners += 1 }
        }
        // One descriptor is the directory listing's own.
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

    /// Whether socket `descriptor` listens (`SO_ACCEPTCONN`), TCP or Unix: asked of the socket
    /// itself, because `/proc/net/tcp` lists the whole network namespace and can skip entries
    /// while sockets come and go.
    private static func isListening(_ descriptor: Int32) -> Bool {
        var accepting: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(descriptor, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0 && accepting != 0
    }
}
