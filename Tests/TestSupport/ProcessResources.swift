import Foundation

/// Real resource counts of a process, read from /proc.
public enum ProcessResources {
    /// Targets of the open file descriptors of `pid` (default: this process).
    public static func openFileTargets(pid: String = "self") -> [String] {
        let dir = "/proc/\(pid)/fd"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
        return entries.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/" + $0) }
    }

    public static func openFileCount(pid: String = "self") -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
    }

    /// Open descriptors whose target lies under `directory`.
    public static func openFiles(under directory: String, pid: String = "self") -> [String] {
        openFileTargets(pid: pid).filter { $0.hasPrefix(directory) }
    }

    /// The socket inodes among the open descriptors of `pid`.
    static func socketInodes(pid: String) -> Set<String> {
        Set(
            openFileTargets(pid: pid).compactMap { target -> String? in
                guard target.hasPrefix("socket:[") else { return nil }
                return String(target.dropFirst(8).dropLast())
            })
    }

    /// A whole /proc file (`String(contentsOfFile:)` may stop after its first page).
    static func procText(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    }

    /// One row of /proc/net/tcp{,6} for a socket of `pid`.
    struct TCPSocket {
        var localPort: Int
        var remotePort: Int
        var listening: Bool
    }

    /// The TCP sockets (v4 and v6) among the open descriptors of `pid`.
    static func tcpSockets(pid: String) -> [TCPSocket] {
        let inodes = socketInodes(pid: pid)
        var sockets: [TCPSocket] = []
        for table in ["tcp", "tcp6"] {
            guard let text = procText("/proc/net/\(table)") else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                // sl local_address rem_address st … inode(9); st 0A = LISTEN.
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count > 9, inodes.contains(String(fields[9])),
                    let local = fields[1].split(separator: ":").last.flatMap({ Int($0, radix: 16) }),
                    let remote = fields[2].split(separator: ":").last.flatMap({ Int($0, radix: 16) })
                else { continue }
                sockets.append(TCPSocket(localPort: local, remotePort: remote, listening: fields[3] == "0A"))
            }
        }
        return sockets
    }

    /// Client connections of `pid` to `port` (e.g. to an in-process simulator). A connection accepted by
    /// one of the process's own servers whose peer happens to use `port` as its ephemeral port is not
    /// counted: sockets whose local port is a listening port of the process are skipped.
    public static func tcpConnections(toPort port: Int, pid: String = "self") -> Int {
        let sockets = tcpSockets(pid: pid)
        let listeningPorts = Set(sockets.filter(\.listening).map(\.localPort))
        return sockets.filter { !$0.listening && $0.remotePort == port && !listeningPorts.contains($0.localPort) }.count
    }

    /// Connections from a client of this process to a server of this process listening on `port`:
    /// client sockets to `port` whose peer socket (local `port`, remote the client's port) is open here
    /// too. Unlike ``tcpConnections(toPort:pid:)`` it cannot count a socket of another test that merely
    /// has `port` as its remote port (an accepted socket of a closed listener whose peer once used
    /// `port` as its ephemeral port); use it for exact positive counts in a parallel test process.
    public static func inProcessConnections(toServerPort port: Int, pid: String = "self") -> Int {
        let sockets = tcpSockets(pid: pid).filter { !$0.listening }
        let serverSidePeers = Set(sockets.filter { $0.localPort == port }.map(\.remotePort))
        return sockets.filter { $0.remotePort == port && serverSidePeers.contains($0.localPort) }.count
    }

    /// Connections of `pid` with `port` at either end (both sides of an in-process simulator's connections).
    public static func tcpConnections(withPort port: Int, pid: String = "self") -> Int {
        tcpSockets(pid: pid).filter { !$0.listening && ($0.localPort == port || $0.remotePort == port) }.count
    }

    /// Listening sockets (TCP, TCP6 and Unix) owned by `pid`, as "tcp:PORT" / "unix:PATH".
    public static func listeningSockets(pid: String = "self") -> [String] {
        let inodes = socketInodes(pid: pid)
        var result: [String] = []
        for table in ["tcp", "tcp6"] {
            guard let text = procText("/proc/net/\(table)") else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count > 9, fields[3] == "0A", inodes.contains(String(fields[9])) else { continue }
                let port = fields[1].split(separator: ":").last.flatMap { Int($0, radix: 16) } ?? -1
                result.append("\(table):\(port)")
            }
        }
        if let text = procText("/proc/net/unix") {
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                // Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = __SO_ACCEPTCON (listening)
                guard fields.count >= 7, fields[3] == "00010000", inodes.contains(String(fields[6])) else { continue }
                result.append("unix:\(fields.count > 7 ? String(fields[7]) : "")")
            }
        }
        return result.sorted()
    }

    /// Resident set size of `pid` in KiB.
    public static func residentKiB(pid: String = "self") -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
        }
        return 0
    }
}

extension ProcessResources {
    /// `true` while process `pid` exists and is not a zombie (a killed process not yet reaped by
    /// whoever adopted it counts as gone).
    public static func isRunning(pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).prefix(1)
        return state != "Z" && state != "X"
    }
}
