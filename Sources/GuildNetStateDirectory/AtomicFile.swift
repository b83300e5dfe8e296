#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Permission bits of a file or directory.
public typealias FileMode = mode_t

/// A failed system call on a state-directory file: what was attempted, on which path, and the
/// `errno` it left. Callers turn it into the ``GuildNetCore/HostError`` code of their domain.
public struct FileFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var operation: String
    public var path: String
    public var code: Int32

    public init(operation: String, path: String, code: Int32) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    /// `strerror` of ``code``.
    public var reason: String { String(cString: strerror(code)) }
    /// Whether the file (or a parent directory) does not exist.
    public var isMissing: Bool { code == ENOENT }
    public var description: String { "\(operation) \(path): \(reason)" }
}

/// Whole-file reads and atomic, durable replacement: the one writer of every file the daemon and
/// the migration tools keep in the state directory.
///
/// A write goes to `<path>.tmp` (created with the requested mode, `O_NOFOLLOW`), is fsynced, renamed
/// over `<path>`, and the directory is fsynced: a reader (or a crash) sees the old file or the new
/// one, never a torn one. Every system call is retried on `EINTR`.
public enum AtomicFile {
    /// Largest file ``read(_:limit:)`` returns by default, so a runaway file cannot exhaust memory.
    public static let defaultReadLimit = 16 << 20

    /// The whole file, or `nil` when it does not exist.
    /// - Throws: ``FileFailure`` (`EFBIG` past `limit`).
    public static func read(_ path: String, limit: Int = defaultReadLimit) throws(FileFailure) -> [UInt8]? {
        let fd = retryingEINTR { open(path, O_RDONLY | O_CLOEXEC) }
        if fd < 0 {
            let code = errno
            if code == ENOENT { return nil }
            throw FileFailure(operation: "open", path: path, code: code)
        }
        defer { _ = close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return posixRead(fd, base, buffer.count)
            }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                throw FileFailure(operation: "read", path: path, code: code)
            }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<count])
            if bytes.count > limit {
                throw FileFailure(operation: "read", path: path, code: EFBIG)
            }
        }
    }

    /// Whether something exists at `path` (symbolic links are not followed).
    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Creates `path` and any missing parents with `mode` (existing directories are left as they are).
    public static func makeDirectories(_ path: String, mode: FileMode = StateDirectory.directoryMode) throws(FileFailure) {
        guard !path.isEmpty else { return }
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += component
            if mkdir(prefix, mode) != 0 {
                let code = errno
                if code == EEXIST {
                    var info = stat()
                    if stat(prefix, &info) != 0 || (info.st_mode & S_IFMT) != S_IFDIR {
                        throw FileFailure(operation: "mkdir", path: prefix, code: ENOTDIR)
                    }
                } else {
                    throw FileFailure(operation: "mkdir", path: prefix, code: code)
                }
            }
            prefix += "/"
        }
    }

    /// The directory part of `path` (`.` when there is none).
    public static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let parent = String(path[..<slash])
        return parent.isEmpty ? "/" : parent
    }

    /// Replaces `path` with `bytes` atomically and durably (see the type's doc). Missing parent
    /// directories are created with `directoryMode`. On failure `path` is untouched and the
    /// temporary file removed.
    public static func write(
        _ bytes: [UInt8], to path: String, mode: FileMode = StateDirectory.privateFileMode,
        directoryMode: FileMode = StateDirectory.directoryMode
    ) throws(FileFailure) {
        let directory = parentDirectory(of: path)
        try makeDirectories(directory, mode: directoryMode)
        let temporary = path + ".tmp"
        let fd = retryingEINTR { open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode) }
        guard fd >= 0 else {
            throw FileFailure(operation: "open", path: temporary, code: errno)
        }
        do throws(FileFailure) {
            if fchmod(fd, mode) != 0 {
                throw FileFailure(operation: "chmod", path: temporary, code: errno)
            }
            try writeAll(fd, bytes, path: temporary)
            if retryingEINTR({ fsync(fd) }) != 0 {
                throw FileFailure(operation: "fsync", path: temporary, code: errno)
            }
        } catch {
            _ = close(fd)
            _ = unlink(temporary)
            throw error
        }
        // close(2) must not be retried on EINTR (the descriptor is released either way).
        if close(fd) != 0 && errno != EINTR {
            let code = errno
            _ = unlink(temporary)
            throw FileFailure(operation: "close", path: temporary, code: code)
        }
        try renameDurably(temporary, to: path)
    }

    /// `rename(2)` then fsync of the destination's directory; the source is removed on failure.
    public static func renameDurably(_ source: String, to destination: String) throws(FileFailure) {
        if rename(source, destination) != 0 {
            let code = errno
            _ = unlink(source)
            throw FileFailure(operation: "rename", path: destination, code: code)
        }
        syncDirectory(parentDirectory(of: destination))
    }

    /// Removes `path` and everything below it; a missing path is not an error.
    public static func removeTree(_ path: String) throws(FileFailure) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw FileFailure(operation: "stat", path: path, code: errno)
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            guard let directory = opendir(path) else { throw FileFailure(operation: "opendir", path: path, code: errno) }
            var names: [String] = []
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name != "." && name != ".." { names.append(name) }
            }
            closedir(directory)
            for name in names { try removeTree(path + "/" + name) }
            if rmdir(path) != 0 && errno != ENOENT { throw FileFailure(operation: "rmdir", path: path, code: errno) }
        } else if unlink(path) != 0 && errno != ENOENT {
            throw FileFailure(operation: "unlink", path: path, code: errno)
        }
        syncDirectory(parentDirectory(of: path))
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(FileFailure) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return posixWrite(fd, base + offset, buffer.count - offset)
            }
            if written < 0 {
                let code = errno
                if code == EINTR { continue }
                throw FileFailure(operation: "write", path: path, code: code)
            }
            if written == 0 {
                throw FileFailure(operation: "write", path: path, code: EIO)
            }
            offset += written
        }
    }

    /// Makes a rename durable; failures are ignored (some filesystems refuse fsync on directories).
    public static func syncDirectory(_ directory: String) {
        let fd = retryingEINTR { open(directory, O_RDONLY | O_CLOEXEC | O_DIRECTORY) }
        guard fd >= 0 else { return }
        _ = retryingEINTR { fsync(fd) }
        _ = close(fd)
    }

    private static func retryingEINTR(_ call: () -> Int32) -> Int32 {
        while true {
            let result = call()
            if result < 0 && errno == EINTR { continue }
            return result
        }
    }
}

// Inside `AtomicFile`, `read` and `write` name the static methods; these reach the C functions.
@inline(__always)
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}

@inline(__always)
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}
