import GuildNetCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive advisory lock (`flock`) on `<state-dir>/hostapp.lock`, held by the daemon for its
/// whole life so that a second daemon, or a migration, cannot open the same DBs at once.
/// The kernel drops the lock when the process dies, so it can never go stale.
public final class StateDirectoryLock: Sendable {
    public let path: String
    private let fd: CInt

    /// Takes the lock without waiting.
    /// - Throws: ``HostError`` `state_dir_locked` when another process holds it, `io_error` otherwise.
    public init(stateDirectory: String) throws(HostError) {
        do {
            try AtomicFile.makeDirectories(stateDirectory)
        } catch {
            throw HostError(.io, "cannot create state directory \(stateDirectory): \(error.reason)")
        }
        path = StateDirectory(stateDirectory).lock
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw HostError(.io, "cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno == EWOULDBLOCK ? "another hostapp process holds it" : String(cString: strerror(errno))
            close(fd)
            throw HostError(.stateDirLocked, "state directory \(stateDirectory) is locked (\(path)): \(reason)")
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { write(fd, $0, strlen($0)) }
        self.fd = fd
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
