import Foundation
import GuildNetCore
import TestSupport
import Testing

/// `hostapp demo` as a newcomer runs it: simulated clusters registered with the in-process daemon,
/// live figures, and a clean leak report after `--duration` or Ctrl-C.
@Suite("hostapp demo", .serialized)
struct DemoEndToEndTests {
    /// Per cluster, the teardown summary line: "  demo-1: 12 watch events, 20 feed events (…), 1.2 MiB forwarded, …".
    static func totals(_ output: String, _ cluster: String) -> (watch: Int, feed: Int, forwarded: Bool)? {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("  \(cluster): ") }) else { return nil }
        let words = line.split(separator: " ")
        func number(before label: String) -> Int? {
            guard let index = words.firstIndex(where: { $0.hasPrefix(label) }), index > 0 else { return nil }
            return Int(words[index - 1])
        }
        guard let watch = number(before: "watch"), let feed = number(before: "feed") else { return nil }
        return (watch, feed, !line.contains(" 0 B forwarded"))
    }

    @Test("--duration: plain table lines for every cluster, totals, a clean leak report, exit 0")
    func runsForADuration() async throws {
        let result = try await runHostapp(["demo", "--clusters", "2", "--duration", "2", "--pods", "2"])
        let output = result.output
        #expect(result.exitCode == 0, "\(output)")
        #expect(output.contains("control socket: "), "\(output)")
        #expect(output.contains("metrics:        http://127.0.0.1:"), "\(output)")
        #expect(output.contains("hostapp ctl --socket "), "\(output)")
        for cluster in ["demo-1", "demo-2"] {
            #expect(output.contains("] \(cluster) state=ready pods=2 "), "a table line for \(cluster): \(output)")
            let totals = try #require(Self.totals(output, cluster), "\(output)")
            #expect(totals.watch >= 2 && totals.feed >= 1 && totals.forwarded, "\(output)")
        }
        #expect(!output.contains("\u{1B}["), "no terminal escapes when stdout is a pipe")
        #expect(output.contains("open descriptors"), "\(output)")
        #expect(output.contains("listening sockets"), "\(output)")
        #expect(output.contains("supervised tasks       0 -> 0  ok"), "\(output)")
        #expect(output.hasSuffix("no leaks\n"), "\(output)")
    }

    @Test("Ctrl-C (SIGINT) tears everything down and prints a clean leak report")
    func stopsOnSIGINT() async throws {
        let process = Process()
        process.executableURL = hostappBinary
        process.arguments = ["demo", "--clusters", "1", "--pods", "1"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        let output = LockedValue(Data())
        let drain = PipeDrain.start(pipe.fileHandleForReading) { data in output.withLock { $0.append(data) } }
        try process.runOrphanSafe()
        defer { if process.isRunning { process.terminate() } }
        let text = { String(decoding: output.withLock { $0 }, as: UTF8.self) }
        try await eventually("a table line with demo-1 ready", timeout: .seconds(120)) {
            if !process.isRunning { throw TestFailure("hostapp demo exited early: \(text())") }
            return text().contains("] demo-1 state=ready")
        }
        process.interrupt()
        try await eventually("hostapp demo exits", timeout: .seconds(60)) { !process.isRunning }
        try await eventually("hostapp demo's output is read to its end") { drain.waitForEnd(timeout: .milliseconds(100)) }
        #expect(process.terminationStatus == 0, "\(text())")
        #expect(text().contains("stopping: unregistering 1 cluster"), "\(text())")
        #expect(text().hasSuffix("no leaks\n"), "\(text())")
    }
}
