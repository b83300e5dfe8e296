import GuildNetCore
import NIOCore

/// Splits a watch body (newline-delimited JSON arriving in arbitrary chunks) into lines. Complete
/// lines inside one chunk are copied out once; only a line spanning chunks is accumulated. A line
/// longer than `maxLineBytes` is refused (a hostile or broken server cannot grow memory unbounded).
struct KubeWatchLineSplitter {
    let maxLineBytes: Int
    private(set) var pending: [UInt8] = []

    init(maxLineBytes: Int) {
        self.maxLineBytes = max(1, maxLineBytes)
    }

    /// Appends `buffer` and returns the lines it completed (without the newline; blank lines skipped).
    mutating func append(_ buffer: ByteBuffer) throws(LineTooLong) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        let maxLineBytes = self.maxLineBytes
        var pending = self.pending
        self.pending = []
        let tooLong: Bool = buffer.withUnsafeReadableBytes { raw -> Bool in
            var start = 0
            let count = raw.count
            while start < count {
                guard let newline = raw[start...].firstIndex(of: 0x0A) else {
                    if pending.count + (count - start) > maxLineBytes { return true }
                    pending.append(contentsOf: raw[start..<count])
                    return false
                }
                if pending.isEmpty {
                    if newline - start > maxLineBytes { return true }
                    if !Self.isBlank(raw[start..<newline]) { lines.append(Array(raw[start..<newline])) }
                } else {
                    if pending.count + (newline - start) > maxLineBytes { return true }
                    pending.append(contentsOf: raw[start..<newline])
                    if !Self.isBlank(pending[...]) { lines.append(pending) }
                    pending = []
                }
                start = newline + 1
            }
            return false
        }
        if tooLong { throw LineTooLong() }
        self.pending = pending
        return lines
    }

    /// `true` when bytes that never ended in a newline are left (the stream ended mid-line).
    var hasPartialLine: Bool { !Self.isBlank(pending[...]) }

    struct LineTooLong: Error {}

    private static func isBlank<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        bytes.allSatisfy { $0 == 0x20 || $0 == 0x0D || $0 == 0x09 || $0 == 0x0A }
    }
}
