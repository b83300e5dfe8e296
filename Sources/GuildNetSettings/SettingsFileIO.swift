#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Small POSIX file helpers: whole-file reads and atomic, durable replacement.
enum SettingsFileIO {
    /// A failed system call: what was attempted and the `errno` it left.
    struct Failure: Error, Sendable {
        var operation: String
        var path: String
        var code: Int32

        var reason: String { String(cString: strerror(code)) }
        var description: String { "\(operation) \(path): \(reason)" }
    }

    /// Mode of files holding settings (they may contain credentials).
    static let privateFileMode: mode_t = 0o600
    /// Mode of directories created for them.
    static let privateDirectoryMode: mode_t = 0o700

    /// Largest file read, so a runaway file cannot exhaust memory.
    static let maxReadBytes = 16 << 20

    /// The whole file, or `nil` when it does not exist.
    static func read(_ path: String) throws(Failure) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let code = errno
            if code == ENOENT { return nil }
            throw Failure(operation: "open", path: path, code: code)
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
                throw Failure(operation: "read", path: path, code: code)
            }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<count])
            if bytes.count > maxReadBytes {
                throw Failure(operation: "read", path: path, code: EFBIG)
            }
        }
    }

    /// Creates `path` and any missing parents with `mode` (existing directories are left as they are).
    static func makeDirectories(_ path: String, mode: mode_t) throws(Failure) {
        guard !path.isEmpty else { return }
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += component
            if mkdir(prefix, mode) != 0 {
                let code = errno
                if code == EEXIST {
                    var info = stat()
                    if stat(prefix, &info) != 0 || (info.st_mode & S_IFMT) != S_IFDIR {
                        throw Failure(operation: "mkdir", path: prefix, code: ENOTDIR)
                    }
                } else {
                    throw Failure(operation: "mkdir", path: prefix, code: code)
                }
            }
            prefix += "/"
        }
    }

    /// The directory part of `path` (`.` when there is none).
    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let parent = String(path[..<slash])
        return parent.isEmpty ? "/" : parent
    }

    /// Replaces `path` with `bytes` atomically: writes `<path>.tmp` (created with `mode`), fsyncs it,
    /// renames it over `path` and fsyncs the directory. Missing parent directories are created with
    /// `directoryMode`. On failure `path` is untouched and the temporary file removed.
    static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t, directoryMode: mode_t) throws(Failure) {
        let directory = parentDirectory(of: path)
        try makeDirectories(directory, mode: directoryMode)
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else {
            throw Failure(operation: "open", path: temporary, code: errno)
        }
        do throws(Failure) {
            if fchmod(fd, mode) != 0 {
                throw Failure(operation: "chmod", path: temporary, code: errno)
            }
            try writeAll(fd, bytes, path: temporary)
            if fsync(fd) != 0 {
                throw Failure(operation: "fsync", path: temporary, code: errno)
            }
            let closed = close(fd)
            if closed != 0 {
                throw Failure(operation: "close", path: temporary, code: errno)
            }
        } catch {
            _ = close(fd)
            _ = unlink(temporary)
            throw error
        }
        if rename(temporary, path) != 0 {
            let code = errno
            _ = unlink(temporary)
            throw Failure(operation: "rename", path: path, code: code)
        }
        syncDirectory(directory)
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(Failure) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return posixWrite(fd, base + offset, buffer.count - offset)
            }
            if written < 0 {
                let code = errno
                if code == EINTR { continue }
                throw Failure(operation: "write", path: path, code: code)
            }
            if written == 0 {
                throw Failure(operation: "write", path: path, code: EIO)
            }
            offset += written
        }
    }

    /// Makes a rename durable; failures are ignored (some filesystems refuse fsync on directories).
    private static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_CLOEXEC | O_DIRECTORY)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        _ = close(fd)
    }
}

// Inside `SettingsFileIO`, `read` names the static method; these reach the C functions.
@inline(__always)
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}

@inline(__always)
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}
