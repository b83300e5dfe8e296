import GuildNetCore
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Who is on the other end of a control connection, for the admin audit log: the kernel's
/// credentials of the peer process (`SO_PEERCRED` on the Unix socket), or, on stdin, the name the
/// daemon was given with `--operator` (default `$USER`).
public enum ControlPeer: Sendable, Equatable {
    /// A control-socket client: its uid, gid and pid at connect time, and the uid's user name.
    case socket(uid: UInt32, gid: UInt32, pid: Int32, user: String?)
    /// The stdin transport, named by the daemon's operator.
    case stdin(operatorName: String)

    /// The audit log's `operator` object.
    public var json: JSONValue {
        switch self {
        case .socket(let uid, let gid, let pid, let user):
            var object: [String: JSONValue] = [
                "transport": "socket", "uid": .int(Int64(uid)), "gid": .int(Int64(gid)), "pid": .int(Int64(pid)),
            ]
            if let user { object["user"] = .string(user) }
            return .object(object)
        case .stdin(let name):
            return ["transport": "stdin", "name": .string(name)]
        }
    }

    /// The peer credentials of an accepted Unix-socket channel; `nil` when the kernel does not tell.
    static func of(_ channel: any Channel) async -> ControlPeer? {
        #if os(Linux)
        guard let provider = channel as? any SocketOptionProvider else { return nil }
        // `struct ucred { pid_t pid; uid_t uid; gid_t gid; }` (socket(7)); Glibc's module does not
        // import it (it needs _GNU_SOURCE), so its three 32-bit fields are read as a tuple of the same layout.
        let future: EventLoopFuture<(Int32, UInt32, UInt32)> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        guard let credentials = try? await future.get(), credentials.0 > 0 else { return nil }
        return .socket(uid: credentials.1, gid: credentials.2, pid: credentials.0, user: userName(of: credentials.1))
        #else
        return nil
        #endif
    }

    /// The user name of `uid` from the password database (`getpwuid_r`), if any.
    static func userName(of uid: UInt32) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        return buffer.withUnsafeMutableBufferPointer { storage -> String? in
            // pw_name points into `storage`: read it before the buffer goes away.
            guard let base = storage.baseAddress, getpwuid_r(uid_t(uid), &entry, base, storage.count, &result) == 0, result != nil,
                let name = entry.pw_name
            else { return nil }
            return String(cString: name)
        }
    }
}
