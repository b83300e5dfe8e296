import GuildNetCore
import Logging

/// Collects every log line a logger writes, rendered by the production ``HostLogHandler``.
public final class LogCapture: Sendable {
    private let lines = LockedValue<[String]>([])

    public init() {}

    /// A logger whose lines (text format, trace level) land in this capture.
    public func logger(label: String = "test", format: LogFormat = .text) -> Logger {
        Logger(label: label) { label in
            HostLogHandler(label: label, format: format, level: .trace, sink: LogSink { line in self.append(line) })
        }
    }

    private func append(_ line: String) { lines.withLock { $0.append(line) } }

    public var all: [String] { lines.withLock { $0 } }

    public var text: String { all.joined(separator: "\n") }

    public func contains(_ fragment: String) -> Bool { all.contains { $0.contains(fragment) } }
}
