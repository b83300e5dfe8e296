import Foundation
import GuildNetCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One row of the live table.
struct DemoRow: Sendable {
    var cluster: String
    var state: String
    var pods: Int
    var watchPerSecond: Double
    var feedPerSecond: Double
    var forwardBytes: Int
    var databaseKeys: Int?
    var errors: Int
}

/// The demo's output: a table redrawn in place on a terminal, plain lines otherwise (a pipe, a
/// file, CI), so a log of the run stays readable.
struct DemoTable: Sendable {
    let interactive: Bool
    private let drawn = LockedLineCount()

    init(interactive: Bool) {
        self.interactive = interactive
    }

    static let header = ["CLUSTER", "STATE", "PODS", "WATCH EV/S", "FEED EV/S", "FORWARDED", "DB KEYS", "ERRORS"]

    /// Draws the table for `rows` at `elapsed` seconds.
    func render(_ rows: [DemoRow], elapsed: Double) {
        if interactive {
            var lines = [formatted(Self.header)]
            lines += rows.map { formatted(Self.cells($0)) }
            lines.append("  running \(Int(elapsed)) s — Ctrl-C stops the demo and prints the leak report")
            var text = ""
            let previous = drawn.exchange(lines.count)
            if previous > 0 { text += "\u{1B}[\(previous)A" }
            for line in lines { text += "\u{1B}[2K" + line + "\n" }
            write(text)
        } else {
            var text = ""
            for row in rows {
                text +=
                    "[\(String(format: "%5.1f", elapsed))s] \(row.cluster) state=\(row.state) pods=\(row.pods) "
                    + "watch_ev/s=\(String(format: "%.1f", row.watchPerSecond)) feed_ev/s=\(String(format: "%.1f", row.feedPerSecond)) "
                    + "forwarded=\(Self.bytes(row.forwardBytes)) db_keys=\(row.databaseKeys.map(String.init) ?? "?") errors=\(row.errors)\n"
            }
            write(text)
        }
    }

    /// A line outside the table (the table is drawn again below it).
    func note(_ line: String) {
        drawn.exchange(0)
        write(line + "\n")
    }

    static func cells(_ row: DemoRow) -> [String] {
        [
            row.cluster, row.state, String(row.pods), String(format: "%.1f", row.watchPerSecond), String(format: "%.1f", row.feedPerSecond),
            bytes(row.forwardBytes), row.databaseKeys.map(String.init) ?? "?", String(row.errors),
        ]
    }

    static let widths = [12, 10, 6, 12, 11, 11, 9, 6]

    private func formatted(_ cells: [String]) -> String {
        zip(cells, Self.widths).map { cell, width in cell.count >= width ? cell + " " : cell + String(repeating: " ", count: width - cell.count) }
            .joined()
    }

    static func bytes(_ count: Int) -> String {
        if count < 1024 { return "\(count) B" }
        if count < 1024 * 1024 { return String(format: "%.1f KiB", Double(count) / 1024) }
        return String(format: "%.1f MiB", Double(count) / (1024 * 1024))
    }

    /// Unbuffered, so a pipe reader sees each refresh at once.
    func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { buffer in
                systemWrite(1, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
            }
            if written <= 0 {
                if written < 0 && errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}

/// How many lines the interactive table drew last (to move the cursor back over them).
final class LockedLineCount: Sendable {
    private let value = LockedValue(0)
    @discardableResult
    func exchange(_ new: Int) -> Int {
        value.withLock { old in
            defer { old = new }
            return old
        }
    }
}

@inline(__always)
private func systemWrite(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    write(fd, buffer, count)
}
