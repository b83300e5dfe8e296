import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a file cannot be read, in words an operator can act on.
public enum FileAccess {
    /// The reason `path` cannot be opened for reading ("does not exist", "is not readable by this
    /// process (permission denied)", "is a directory", …); `nil` when it can be.
    /// A relative path also names the directory it was resolved in (the process's working directory).
    public static func whyUnreadable(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        let code = errno
        if fd >= 0 {
            defer { close(fd) }
            var info = stat()
            if fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { return "is a directory, not a file" }
            return nil
        }
        let reason: String
        switch code {
        case ENOENT: reason = "does not exist (no such file)"
        case EACCES: reason = "is not readable by this process (permission denied)"
        case ENOTDIR: reason = "does not exist (a part of the path is not a directory)"
        default: reason = "cannot be opened: \(String(cString: strerror(code)))"
        }
        if !path.hasPrefix("/") {
            return reason + "; relative paths are resolved in \(FileManager.default.currentDirectoryPath)"
        }
        return reason
    }
}
