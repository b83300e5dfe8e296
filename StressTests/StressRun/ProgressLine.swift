import BenchSupport
import Foundation
import GuildNetCore

/// The progress line on stderr while the run goes: rewritten in place on a terminal, one line
/// every 10 s otherwise.
struct ProgressLine: Sendable {
    let context: RunContext
    let started: ContinuousClock.Instant

    func run(until done: @Sendable () -> Bool) async {
        let terminal = isatty(STDERR_FILENO) != 0
        var ticks = 0
        while !done() {
            try? await Task.sleep(for: .seconds(1))
            ticks += 1
            if terminal {
                FileHandle.standardError.write(Data("\r\u{1B}[K\(line())".utf8))
            } else if ticks % 10 == 0 {
                FileHandle.standardError.write(Data("\(line())\n".utf8))
            }
        }
        if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K\(line())\n".utf8)) }
    }

    func line() -> String {
        let elapsed = (ContinuousClock.now - started).seconds
        let recorder = context.recorder
        let ops = recorder.totalOperations
        let pid = String(context.daemon.pid)
        let faults = context.faultsInjected.values.reduce(0, +)
        let rate = elapsed > 0 ? Double(ops) / elapsed : 0
        let clusters = "clusters \(context.steadyReady)/\(context.scenario.clusters) live \(context.liveClusters.count)"
        let churn = "churn \(context.churnCompleted)/\(context.scenario.churnCycles)"
        let events = "feed ev \(recorder.counter("feed_events")), watch ev \(recorder.counter("watch_events"))"
        let daemon =
            "daemon fds \(ProcFacts.descriptorTargets(pid: pid).count) thr \(ProcFacts.threads(pid: pid)) rss \(ProcFacts.residentKiB(pid: pid) / 1024) MiB"
        return
            "[\(Int(elapsed))s] \(ops) ops (\(Int(rate))/s), \(recorder.totalErrors) errors | \(clusters) | \(churn) | \(events) | faults \(faults) | \(daemon)"
            + (context.daemon.isAlive ? "" : " | DAEMON GONE")
    }
}
