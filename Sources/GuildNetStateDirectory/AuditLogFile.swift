import GuildNetCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An append-only audit log of JSON lines (`<state-dir>/audit/*.log`): the directory is 0700, the
/// file 0600; each entry is one `write(2)` of one line on an `O_APPEND` descriptor, fsynced before
/// ``append(_:)`` returns, so concurrent writers never interleave and an acknowledged entry
/// survives a crash. Entries name keys, files and paths, never credential values.
public struct AuditLogFile: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    /// Appends `entry` as one line (fsynced).
    /// - Throws: ``FileFailure``.
    public func append(_ entry: [String: JSONValue]) throws(FileFailure) {
        try AtomicFile.makeDirectories(AtomicFile.parentDirectory(of: path), mode: StateDirectory.directoryMode)
        let fd = retryingEINTR { open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, StateDirectory.privateFileMode) }
        guard fd >= 0 else { throw FileFailure(operation: "open", path: path, code: errno) }
        defer { _ = close(fd) }
        // A file created earlier with a looser mode is tightened.
        _ = fchmod(fd, StateDirectory.privateFileMode)
        let line = JSONValue.object(entry).serialized + [0x0A]
        var offset = 0
        while offset < line.count {
            let written = line.withUnsafeBytes { buffer in
                retryingEINTR { write(fd, buffer.baseAddress.map { $0 + offset }, buffer.count - offset) }
            }
            guard written > 0 else { throw FileFailure(operation: "write", path: path, code: written < 0 ? errno : EIO) }
            offset += written
        }
        guard retryingEINTR({ fsync(fd) }) == 0 else { throw FileFailure(operation: "fsync", path: path, code: errno) }
    }

    /// The last `limit` entries, oldest first (lines that do not parse are returned as strings).
    /// Reads at most the last `maxBytes` of the file.
    public func tail(_ limit: Int, maxBytes: Int = 4 << 20) throws(FileFailure) -> [JSONValue] {
        let fd = retryingEINTR { open(path, O_RDONLY | O_CLOEXEC) }
        if fd < 0 {
            let code = errno
            if code == ENOENT { return [] }
            throw FileFailure(operation: "open", path: path, code: code)
        }
        defer { _ = close(fd) }
        let size = Int(lseek(fd, 0, SEEK_END))
        let start = max(0, size - maxBytes)
        guard lseek(fd, off_t(start), SEEK_SET) >= 0 else { throw FileFailure(operation: "lseek", path: path, code: errno) }
        var bytes = [UInt8](repeating: 0, count: size - start)
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { buffer in
                retryingEINTR { read(fd, buffer.baseAddress.map { $0 + filled }, buffer.count - filled) }
            }
            if count < 0 { throw FileFailure(operation: "read", path: path, code: errno) }
            if count == 0 { break }
            filled += count
        }
        var lines = bytes[0..<filled].split(separator: 0x0A, omittingEmptySubsequences: true)
        // Reading from the middle of the file: the first line may be partial.
        if start > 0, !lines.isEmpty { lines.removeFirst() }
        return lines.suffix(max(0, limit)).map { line in
            (try? JSONParser.parse(Array(line))) ?? .string(String(decoding: line, as: UTF8.self))
        }
    }
}

/// Runs a system call again while it fails with `EINTR`.
private func retryingEINTR<Result: BinaryInteger>(_ call: () -> Result) -> Result {
    while true {
        let result = call()
        if result >= 0 || errno != EINTR { return result }
    }
}
